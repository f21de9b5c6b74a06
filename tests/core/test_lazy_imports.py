"""`twitstack run --only writer` keeps the other services' libraries out of its memory.

A real daemon process (private Redis, a real notify socket) runs until READY=1 and a clean
SIGTERM; at exit it writes the names in sys.modules, and none of the scraper's or the
moderation service's libraries, nor the ones loaded only on first use, may be among them.
The writer's /metrics still answers from that process (its server is the daemon's own).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from twitstack.writes.signing import generate_key_pair

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

DRIVER = """
import atexit, json, sys, threading
started = []
thread_start = threading.Thread.start
def start(thread):
    started.append(thread.name)
    thread_start(thread)
threading.Thread.start = start
def dump():
    with open(sys.argv[1], "w") as out:
        json.dump({"modules": sorted(sys.modules), "threads": started}, out)
atexit.register(dump)
from twitstack.cli import main
sys.exit(main(["run", "--only", "writer"]))
"""

# Libraries an idle writer never uses: the scraper's (twscrape and what it brings, the S3
# archive's botocore) and the moderation UI's (Jinja2, argon2, PyJWT, SQLite). twitter_text is
# the writer's own: it loads it at start, before taking a message (writes.text.load_text_rules),
# without the setuptools pkg_resources twitter_text itself would import. Nor the HTTP server
# of the UI (uvicorn, Starlette: the metrics port has its own, core.metrics_server), nor the
# console extras structlog and httpx import when installed (Rich, Pygments, colorama, click;
# twitstack._lean_imports), nor trio and greenlet, which httpcore and structlog import when
# installed. Nor cryptography's bindings: the writer verifies approvals and opens sealed tokens
# through the libcrypto the ssl module loaded (twitstack.core.openssl); the test's writer
# trusts an approval key, so its verifier is built.
NOT_IN_AN_IDLE_WRITER = (
    "pkg_resources", "setuptools", "twscrape", "aioboto3", "aiobotocore", "botocore", "boto3",
    "aiosqlite", "jinja2", "argon2", "jwt", "twitstack.scraper.service",
    "twitstack.scraper.twscrape_adapter", "twitstack.moderation.app",
    "twitstack.moderation.service", "uvicorn", "starlette", "python_multipart", "rich",
    "pygments", "colorama", "click", "trio", "greenlet", "twitstack.core.http_server",
    "cryptography.hazmat",
)  # fmt: skip


def _metrics_port(process: subprocess.Popen[str]) -> int:
    """The writer's metrics port, from the JSON line the supervisor logs once started."""
    assert process.stdout is not None
    fd = process.stdout.fileno()  # read raw: a buffered readline would hide lines from select
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        for _ in range(200):
            assert selector.select(timeout=30), "no log line from the daemon"
            chunk = os.read(fd, 65536)
            assert chunk, "the daemon closed its stdout"
            received += chunk
            for line in received.splitlines():
                if b'"supervisor.started"' in line:
                    return int(json.loads(line)["metrics_ports"]["writer"])
    raise AssertionError("the daemon never logged supervisor.started")


def test_only_writer_does_not_load_other_services_libraries(tmp_path: Path, redis_url: str) -> None:
    notify_path = tmp_path / "notify.sock"
    modules_path = tmp_path / "modules.txt"
    (tmp_path / "empty.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWITSTACK_")}
    env.update({
        "TWITSTACK_CONFIG": str(tmp_path / "empty.toml"), "TWITSTACK_ENV": "prod",
        "TWITSTACK_REDIS_URL": redis_url, "TWITSTACK_DATA_DIR": str(tmp_path / "data"),
        "TWITSTACK_SUPERVISOR__METRICS_HOST": "127.0.0.1", "TWITSTACK_WRITER__METRICS_PORT": "0",
        "NOTIFY_SOCKET": str(notify_path), "PYTHONPATH": str(REPO),
        "TWITSTACK_WRITER__APPROVAL_PUBLIC_KEYS": json.dumps([generate_key_pair()[1]]),
    })  # fmt: skip
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(60)
        process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(modules_path)], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            ready = False
            for _ in range(50):  # the daemon sends a few datagrams before READY=1
                if b"READY=1" in notify.recv(4096):
                    ready = True
                    break
            assert ready, "the writer never sent READY=1"
            port = _metrics_port(process)
            scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, stderr[-2000:]
    assert scrape.status_code == 200
    assert "writer_queue_depth" in scrape.text
    dump = json.loads(modules_path.read_text())
    loaded = set(dump["modules"])
    assert "twitstack.writer.service" in loaded  # the dump is of a writer that really ran
    unwanted = sorted(
        name for name in loaded for lib in NOT_IN_AN_IDLE_WRITER
        if name == lib or name.startswith(lib + ".")
    )  # fmt: skip
    assert unwanted == []
    # The daemon compiles the writer's text rules before its event loop starts
    # (supervisor.load_before_loop), where their transient peak costs no resident memory
    # later; a worker thread loading them at the writer's start would mean it did not.
    assert "twitter_text" in loaded
    assert dump["threads"] == []


def test_a_library_import_of_twitstack_leaves_structlog_and_httpx_whole() -> None:
    """Only the command line leaves the console extras out: a program importing twitstack as a
    library (the scraper client, the write models) gets structlog and httpx as installed."""
    probe = (
        "import importlib.util, sys\n"
        "from twitstack.scraper import ScraperClient\n"
        "import twitstack.core.logging, twitstack.writes.models, httpx, structlog\n"
        "assert '_lean_imports' not in ' '.join(sys.modules), 'library import ran the CLI hook'\n"
        "if importlib.util.find_spec('click') and importlib.util.find_spec('rich'):\n"
        "    assert type(httpx.main).__name__ == 'Command', httpx.main  # click's, not the stub\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
