"""`twitstack demo` as a newcomer runs it: one command, log in, approve, see the post, Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.demo.first_run import csrf, demo_env, form_fields, read_banner

pytestmark = pytest.mark.slow
_LOGIN = re.compile(r"log in as\s+(\S+) / (\S+)")
_XAPI = re.compile(r"fake X: posts\s+(http://\S+)/_sandbox/posts")
_REQUEST_LINK = re.compile(r'href="/requests/([0-9a-f]{32})"')
SEEDED_TWEET = "Shipping twitstack today"


def test_demo_approve_posts_to_fake_x_and_ctrl_c_exits_0(tmp_path: Path) -> None:
    """Log in with the printed password, approve a seeded request, find it at the fake X."""
    port = free_port()
    env = demo_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "twitstack", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = read_banner(proc)
        login = _LOGIN.search(banner)
        xapi = _XAPI.search(banner)
        assert login is not None
        assert xapi is not None
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10, follow_redirects=False) as ui:
            form = ui.get("/login")
            answer = ui.post(
                "/login",
                data={
                    "username": login.group(1),
                    "password": login.group(2),
                    "csrf_token": csrf(form.text),
                },
            )
            assert answer.status_code == 303, answer.text
            # The demo connected @twitstack_friend through the PKCE flow at start.
            accounts = ui.get("/accounts").text
            assert "@twitstack_friend" in accounts
            assert "<code>friend</code>" in accounts
            request_id, detail_html = None, ""
            deadline = time.monotonic() + 30
            while request_id is None and time.monotonic() < deadline:
                queue = ui.get("/queue")
                assert queue.status_code == 200
                for candidate in _REQUEST_LINK.findall(queue.text):
                    page = ui.get(f"/requests/{candidate}")
                    if SEEDED_TWEET in page.text:
                        request_id, detail_html = candidate, page.text
                if request_id is None:
                    time.sleep(0.2)
            assert request_id is not None, "the seeded tweet never reached the queue"
            action = f"/requests/{request_id}/approve"
            approved = ui.post(action, data=form_fields(detail_html, action))
            assert approved.status_code == 303, approved.text
            assert "error" not in approved.headers["location"], approved.headers["location"]

            posts: list[dict[str, object]] = []
            deadline = time.monotonic() + 30
            while not posts and time.monotonic() < deadline:
                posts = httpx.get(f"{xapi.group(1)}/_sandbox/posts", timeout=5).json()["posts"]
                if not posts:
                    time.sleep(0.2)
            assert len(posts) == 1, posts
            post_id = str(posts[0]["id"])

            deadline = time.monotonic() + 30
            history = ""
            while post_id not in history and time.monotonic() < deadline:
                history = ui.get("/history").text
                if post_id not in history:
                    time.sleep(0.2)
            assert post_id in history, "the history page does not show the post id"
            # "view post" opens the fake X's page for the post, not x.com.
            view = f"{xapi.group(1)}/_sandbox/posts/{post_id}"
            assert view in history
            assert "x.com/" not in history
            assert httpx.get(view, timeout=5).status_code == 200
            assert "@twitstack_demo" in ui.get(f"/requests/{request_id}").text
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert login.group(2) not in output.split("Approve a request in the UI")[-1]
