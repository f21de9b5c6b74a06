"""A newcomer's first minutes with `twitstack demo`: a busy port, the CLI against the demo's
Redis, drafts X accepts and one it refuses, a quiet banner, nothing left behind."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.demo.first_run import (
    demo_env,
    field,
    form_fields,
    listening_addresses,
    logged_in,
    running_demo,
    wait_for,
)

pytestmark = pytest.mark.slow
_REQUEST_LINK = re.compile(r'href="/requests/([0-9a-f]{32})"')
REFUSED = "did not mention or quote @twitstack_demo"


def test_busy_port_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    """Port taken by another program: one line on stderr with `--port`, exit 1, no temp dir."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "twitstack", "demo", "--port", str(port)],
            cwd=tmp_path, env=demo_env(tmp_path), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"twitstack: moderation: port {port} on 127.0.0.1 is already in use; "
        f"pick another with --port (twitstack demo --port {port + 1})"
    ]
    assert "Traceback" not in done.stdout
    assert list((tmp_path / "tmp").iterdir()) == []


def test_cli_reaches_the_demo_redis_and_nothing_is_left_behind(tmp_path: Path) -> None:
    """`enqueue`, `queue stats` and `doctor` against the printed Redis URL; the request shows
    in the UI; logs go to demo.log, not the terminal; Ctrl-C removes the temporary directory."""
    port = free_port()
    with running_demo(tmp_path, "--port", str(port)) as (proc, banner):
        redis_url = field(banner, "Redis")
        assert redis_url.startswith("redis://127.0.0.1:")
        assert field(banner, "fake X: DMs").endswith("/_sandbox/dms")
        log_file = Path(field(banner, "logs"))
        state = Path(field(banner, "state"))
        assert log_file.parent == state
        assert state.parent == tmp_path / "tmp"
        assert "[info" not in banner  # the daemon's log lines are in demo.log
        env = demo_env(tmp_path) | {"TWITSTACK_REDIS_URL": redis_url}
        enqueued = subprocess.run(
            [sys.executable, "-m", "twitstack", "enqueue", "tweet", "hello from the CLI"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert enqueued.returncode == 0, enqueued.stderr
        request_id = enqueued.stdout.strip()
        stats = subprocess.run(
            [sys.executable, "-m", "twitstack", "queue", "stats"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert stats.returncode == 0, stats.stderr
        assert "requests        pending" in stats.stdout
        doctor = subprocess.run(
            [sys.executable, "-m", "twitstack", "doctor"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert f"[warn] redis: {redis_url} reachable, but it does not answer INFO" in doctor.stdout
        with logged_in(f"http://127.0.0.1:{port}", banner) as ui:
            api = f"/api/requests/{request_id}"
            wait_for(lambda: ui.get(api).status_code == 200,
                     what="the CLI's request in the moderation API")  # fmt: skip
            found = ui.get(api).json()
            assert found["payload"]["text"] == "hello from the CLI"
            assert found["state"] == "pending"
            # The README's producer snippet, pointed at the demo.
            produced = subprocess.run(
                [sys.executable, "-c", readme_producer(redis_url) + "\nprint(rc.id)\n"],
                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert produced.returncode == 0, produced.stderr
            api = f"/api/requests/{produced.stdout.strip()}"
            wait_for(lambda: ui.get(api).status_code == 200, what="the producer's request")
            assert ui.get(api).json()["payload"]["text"] == "hello world"
        assert "writer.request_state_changed" in log_file.read_text()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output[-2000:]
    assert "[info" not in output
    assert not state.exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def readme_producer(redis_url: str) -> str:
    """The README's "Producing write requests" snippet, with the demo's Redis URL."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Producing write requests") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert snippet is not None
    assert "redis://localhost:6379/0" in snippet.group(1)
    return snippet.group(1).replace("redis://localhost:6379/0", redis_url)


def test_drafts_show_the_flow_and_one_refusal(tmp_path: Path) -> None:
    """The scraper's drafts answer people who mentioned the account: approving one posts the
    reply at the fake X. Exactly one draft is labelled as one X would refuse."""
    port = free_port()
    with running_demo(tmp_path, "--port", str(port)) as (_, banner):
        posts_url = field(banner, "fake X: posts")
        with logged_in(f"http://127.0.0.1:{port}", banner) as ui:
            pages: dict[str, str] = {}

            def drafts_arrived() -> bool:
                for request_id in _REQUEST_LINK.findall(ui.get("/queue").text):
                    if request_id not in pages:
                        pages[request_id] = ui.get(f"/requests/{request_id}").text
                mentions = sum("Thanks for the mention" in page for page in pages.values())
                return mentions >= 3 and any(REFUSED in page for page in pages.values())

            wait_for(drafts_arrived, what="the scraper's drafts")
            refused = [i for i, page in pages.items() if REFUSED in page]
            assert len(refused) == 1
            accepted = next(i for i, p in pages.items() if "Thanks for the mention" in p)
            assert REFUSED not in pages[accepted]
            action = f"/requests/{accepted}/approve"
            approved = ui.post(action, data=form_fields(pages[accepted], action))
            assert approved.status_code == 303, approved.text
            assert "error" not in approved.headers["location"]

            def replies() -> list[dict[str, object]]:
                posts = httpx.get(posts_url, timeout=5).json()["posts"]
                return [p for p in posts if "Thanks for the mention" in str(p)]

            wait_for(lambda: len(replies()) == 1, what="the reply at the fake X")
            wait_for(lambda: "executed" in ui.get(f"/requests/{accepted}").text,
                     what="the draft executed")  # fmt: skip


def test_the_demo_imports_nothing_from_the_test_extras(tmp_path: Path) -> None:
    """`pip install -e .` is enough: the demo's whole import graph avoids every test extra."""
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]["test"]
    names = sorted({re.split(r"[<>=\[ ;]", spec, maxsplit=1)[0].lower() for spec in extras})
    modules = {"pyyaml": "yaml", "moto": "moto", "playwright": "playwright"}
    blocked = sorted(
        {modules.get(n, n.replace("-", "_")) for n in names if not n.startswith("types")}
    )
    probe = (
        "import sys\n"
        f"BLOCKED = {blocked!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'test extra imported: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import twitstack.cli, twitstack.demo.runner, twitstack.demo.commands\n"
        "import twitstack.notifier.service, twitstack.supervisor, twitstack.writer.service\n"
        "import twitstack.moderation.service, twitstack.scraper.service\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=demo_env(tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.stdout == "ok\n", done.stderr[-2000:]
    assert "pytest" in blocked
    assert "aiosmtpd" in blocked


def test_redis_stays_on_loopback_when_the_ui_listens_on_every_interface(tmp_path: Path) -> None:
    """`--host 0.0.0.0` opens the UI to the network; the demo's Redis (no password, the
    signing keys) must still listen on 127.0.0.1 only."""
    port = free_port()
    with running_demo(tmp_path, "--host", "0.0.0.0", "--port", str(port)) as (proc, banner):
        redis_url = field(banner, "Redis")
        assert redis_url.startswith("redis://127.0.0.1:"), redis_url
        redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        # Where the kernel says it listens, read from /proc (the test talks to no other address).
        assert listening_addresses(redis_port) == {"127.0.0.1"}
        with socket.create_connection(("127.0.0.1", redis_port), timeout=5):
            pass
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
