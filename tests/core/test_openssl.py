"""twitstack.core.openssl agrees with cryptography, through libcrypto and through its fallback."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twitstack.core import openssl
from twitstack.core.openssl import AuthenticationFailed, Ed25519Verifier, aes_gcm_open, aes_gcm_seal

SIZES = (0, 1, 15, 16, 17, 255, 4096)


@pytest.fixture(params=["libcrypto", "cryptography"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cryptography":
        monkeypatch.setattr(openssl, "libcrypto", lambda: None)
    elif openssl.libcrypto() is None:
        pytest.skip("this Python's ssl module does not use a shared libcrypto")
    return str(request.param)


def test_the_test_machine_uses_libcrypto() -> None:
    # CI's CPython links ssl against the system OpenSSL: the ctypes path is the one tested.
    assert openssl.libcrypto() is not None


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", SIZES)
def test_aes_gcm_matches_cryptography(size: int) -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    plaintext, aad = os.urandom(size), os.urandom(size % 40)
    sealed = aes_gcm_seal(key, nonce, plaintext, aad)
    assert sealed == AESGCM(key).encrypt(nonce, plaintext, aad)
    assert aes_gcm_open(key, nonce, sealed, aad) == plaintext
    assert aes_gcm_open(key, nonce, AESGCM(key).encrypt(nonce, plaintext, aad), aad) == plaintext


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("size", SIZES)
def test_aes_gcm_refuses_what_cryptography_refuses(size: int) -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    plaintext, aad = os.urandom(size), b"context"
    sealed = aes_gcm_seal(key, nonce, plaintext, aad)
    flipped = [bytes(sealed[:i]) + bytes([sealed[i] ^ 1]) + sealed[i + 1 :] for i in (0, -1)]
    cases = [
        (key, nonce, flipped[0], aad),
        (key, nonce, flipped[1], aad),
        (key, nonce, sealed, aad + b"!"),
        (os.urandom(32), nonce, sealed, aad),
        (key, os.urandom(12), sealed, aad),
        (key, nonce, sealed[:15], aad),
    ]
    for case in cases:
        with pytest.raises(InvalidTag):
            AESGCM(case[0]).decrypt(*case[1:])
        with pytest.raises(AuthenticationFailed):
            aes_gcm_open(*case)


@pytest.mark.usefixtures("backend")
def test_ed25519_verifies_exactly_the_signatures_cryptography_makes() -> None:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    verifier = Ed25519Verifier(raw)
    other = Ed25519Verifier(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    for message in (b"", b"approve", os.urandom(1000)):
        signature = private.sign(message)
        assert verifier.verify(signature, message)
        assert not other.verify(signature, message)
        assert not verifier.verify(signature, message + b"x")
        assert not verifier.verify(bytes([signature[0] ^ 1]) + signature[1:], message)
        assert not verifier.verify(signature[:63], message)
        assert not verifier.verify(b"\0" * 64, message)


def test_a_public_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519Verifier(b"short")
