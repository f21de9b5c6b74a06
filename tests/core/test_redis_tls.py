"""A managed Redis over TLS: `rediss://` URLs reach a TLS-only redis-server and verify it."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port
from twitstack.core.errors import RedisUnavailableError
from twitstack.core.redis import open_redis


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("twitstack test CA"))
        .issuer_name(_name("twitstack test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server that only speaks TLS, on a free loopback port; yields (port, CA file)."""
    ca, cert, key = _write_pki(tmp_path)
    port = free_port()
    binary = shutil.which("redis-server")
    assert binary is not None
    args = [
        binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
        "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
        "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail("redis-server refused the TLS options (built without TLS?)")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.02)
        yield port, ca
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_rediss_url_with_the_servers_ca_connects(tls_redis: tuple[int, Path]) -> None:
    """rediss:// with ssl_ca_certs in the URL: the shared pool works over verified TLS."""
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    with anyio.fail_after(20):
        async with open_redis(url, startup_timeout_s=5) as redis:
            await redis.set("tls-check", "ok")
            assert await redis.get("tls-check") == b"ok"


@pytest.mark.anyio
async def test_rediss_url_refuses_a_server_it_cannot_verify(tls_redis: tuple[int, Path]) -> None:
    """Without the server's CA the TLS handshake fails: start-up gives up with a clear error."""
    port, _ = tls_redis
    with anyio.fail_after(20), pytest.raises(RedisUnavailableError, match="cannot reach Redis"):
        async with open_redis(f"rediss://127.0.0.1:{port}/0", startup_timeout_s=1):
            pass
