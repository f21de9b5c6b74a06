"""Attacks on the hardened web app that got through: each test failed before its fix."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.moderation.harness import Harness, csrf_from, open_harness
from tests.moderation.live import serve_live
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.writes.models import WriteAction

anyio = pytest.mark.anyio


def _json(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "suffix", "body", "who"),
    [
        ("PATCH", "", b'{"revision": 1, "payload": {"text": "a\\ud800"}}', "ann"),
        (
            "PATCH",
            "",
            b'{"revision": 1, "payload": {"text": "q", "poll": {"options": ["\\udfff", "b"],'
            b' "duration_minutes": 5}}}',
            "ann",
        ),
        ("POST", "/reject", b'{"reason": "spam \\ud83d"}', "mo"),
        ("POST", "/approve", b'{"revision": 1, "\\ud800": 1}', "mo"),
    ],
    ids=["edit-text", "edit-poll", "reject-reason", "approve-key"],
)
@anyio
async def test_a_lone_surrogate_in_any_json_body_is_a_4xx(
    mod: Harness, method: str, suffix: str, body: bytes, who: str
) -> None:
    """JSON may spell a lone surrogate (`\\ud800`), which is no Unicode text: Redis and
    SQLite cannot encode it. It was a 500 on PATCH and on reject; it must be refused."""
    await mod.add_user("ann", Role.AUTHOR)
    await mod.add_user("mo", Role.MODERATOR)
    request_id = await mod.pending(author="ann", text="hello")
    token = await mod.bearer(who)
    async with mod.client() as client:
        response = await client.request(
            method, f"/api/requests/{request_id}{suffix}", content=body, headers=_json(token)
        )
        record = await client.get(f"/api/requests/{request_id}", headers=_json(token))
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"]
    assert record.json()["state"] == "pending"
    assert record.json()["revision"] == 1


@pytest.mark.parametrize(
    "value", ["²", "٣", "9" * 5000, "1" + "0" * 4300], ids=["super", "arabic", "5000", "4301"]
)
@pytest.mark.parametrize("name", ["page", "size"])
@anyio
async def test_list_paging_that_is_not_ascii_digits_is_a_422(
    mod: Harness, name: str, value: str
) -> None:
    """`str.isdigit` accepts superscripts and other scripts' digits that `int` refuses, and
    `int` refuses more than 4,300 digits: both were a 500."""
    await mod.add_user("vic", Role.VIEWER)
    token = await mod.bearer("vic", ("read",))
    async with mod.client() as client:
        response = await client.get("/api/requests", params={name: value}, headers=_json(token))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{name}: expected an integer")


def _client_at(mod: Harness, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=mod.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


@pytest.mark.parametrize(
    ("first", "pattern"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:{i:x}:{i:x}:{i:x}:{i:x}"),
        ("203.0.113.7", "::ffff:203.0.113.7"),
    ],
    ids=["ipv6-same-64", "ipv4-mapped"],
)
@anyio
async def test_the_per_address_limit_counts_a_client_not_each_of_its_addresses(
    mod: Harness, first: str, pattern: str
) -> None:
    """An IPv6 client holds a whole /64 (2^64 addresses): keyed per /128, the per-address
    limit never bit, and one host could spray passwords over every account. An IPv4 client
    seen as `::ffff:a.b.c.d` on a dual-stack socket is the same client."""
    limit = mod.deps.settings.login_max_failures_per_ip
    async with _client_at(mod, first) as client:
        token = csrf_from((await client.get("/login")).text)
        for i in range(limit):
            await client.post(
                "/login",
                data={"username": f"user{i}", "password": "wrong-password!", "csrf_token": token},
            )
    address = pattern.format(i=limit + 1)
    async with _client_at(mod, address) as other:
        token = csrf_from((await other.get("/login")).text)
        response = await other.post(
            "/login", data={"username": "someone", "password": "wrong", "csrf_token": token}
        )
    assert response.status_code == 429, response.text


def _an_author(harness: Harness) -> Any:
    async def setup() -> dict[str, Any]:
        await harness.add_user("ann", Role.AUTHOR)
        return {"token": await harness.bearer("ann", ("write",))}

    return setup()


def _read_until_closed(sock: socket.socket) -> bytes:
    reply = b""
    for _ in range(100):  # bounded: the server closes after its answer
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/login", "application/x-www-form-urlencoded"),
        ("/api/auth/token", "application/json"),
        ("/api/requests", "application/json"),
    ],
)
def test_a_body_trickled_in_slowly_is_cut_off(
    redis_url: str, tmp_path: Path, path: str, content_type: str
) -> None:
    """A client that sends the headers and a little of the body, then nothing, held its
    connection forever (uvicorn has no body timeout): a few hundred such clients use up the
    file descriptors. Now the body must arrive by `max_body_seconds` or the answer is 408."""
    with serve_live(redis_url, tmp_path, _an_author, max_body_seconds=1) as live:
        port = int(live.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {live.info['token']}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\nu".encode()
            )
            reply = _read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"request body not received within 1 seconds" in reply


@anyio
async def test_a_viewer_learns_nothing_computed_from_a_dm_text(mod: Harness) -> None:
    """The API hid a DM's text from viewers but still sent its weighted length."""
    await mod.add_user("vic", Role.VIEWER)
    secret = "meet me at the usual place at 9"
    request_id = await mod.pending(
        author="ann", action=WriteAction.DM, payload={"text": secret, "recipient_id": "42"}
    )
    token = await mod.bearer("vic", ("read",))
    async with mod.client() as client:
        response = await client.get(f"/api/requests/{request_id}", headers=_json(token))
    body = response.json()
    assert body["text_hidden"] is True
    assert "text" not in body["payload"]
    assert body["weighted_length"] is None
    assert secret not in response.text


@anyio
async def test_a_crafted_request_link_cannot_put_words_on_the_page(mod: Harness) -> None:
    """`/requests/<any text>` echoed the text in its 404 ("No request <text> in the ledger."):
    the same trick `?error=` was closed against. Only a well-formed id is echoed."""
    await mod.add_user("mia", Role.MODERATOR)
    words = "Session expired: re-enter your password at evil.example"
    async with mod.client() as client:
        await mod.login(client, "mia")
        crafted = await client.get(f"/requests/{words}")
        plain = await client.get("/requests/req-42.missing")
    assert crafted.status_code == 404
    assert "Session expired" not in crafted.text
    assert "evil.example" not in crafted.text
    assert plain.status_code == 404
    assert "No request req-42.missing in the ledger." in plain.text


@anyio
async def test_a_moderator_cannot_approve_a_revision_they_wrote(mod: Harness) -> None:
    """Authors may not approve their own requests, but a moderator could rewrite anyone's
    pending request (PATCH or the edit form) and approve the new text alone."""
    await mod.add_user("ann", Role.AUTHOR)
    await mod.add_user("mia", Role.MODERATOR)
    await mod.add_user("max", Role.MODERATOR)
    request_id = await mod.pending(author="ann", text="a harmless draft")
    mia = await mod.bearer("mia")
    max_ = await mod.bearer("max")
    async with mod.client() as client:
        edited = await client.patch(
            f"/api/requests/{request_id}",
            json={"revision": 1, "payload": {"text": "something ann never wrote"}},
            headers=_json(mia),
        )
        assert edited.status_code == 200, edited.text
        seen = {"revision": 2, "content_hash": await mod.content_hash(request_id)}
        alone = await client.post(
            f"/api/requests/{request_id}/approve", json=seen, headers=_json(mia)
        )
        csrf = await mod.login(client, "mia")
        page = await client.get(f"/requests/{request_id}")
        form = await client.post(
            f"/requests/{request_id}/approve",
            data={"csrf_token": csrf, "revision": "2", "content_hash": seen["content_hash"]},
        )
        state = (await client.get(f"/api/requests/{request_id}", headers=_json(mia))).json()
        other = await client.post(
            f"/api/requests/{request_id}/approve", json=seen, headers=_json(max_)
        )
    assert alone.status_code == 403
    assert alone.json()["detail"].startswith("you cannot approve your own request")
    assert 'id="own-note"' in page.text
    assert f'action="/requests/{request_id}/approve"' not in page.text
    assert form.status_code == 303
    assert state["state"] == "pending"
    assert other.status_code == 200, other.text
    assert other.json()["approved"] is True


@anyio
@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/users/{big}/role", {"role": "admin"}),
        ("/users/{big}/disable", {}),
        ("/users/{big}/enable", {}),
        ("/users/{big}/password", {"password": "correct horse battery staple"}),
        ("/apikeys/{big}/revoke", {}),
        ("/apikeys", {"name": "k", "owner": "{big}", "scopes": "read"}),
    ],
)
async def test_an_id_beyond_sqlite_integers_is_not_a_500(
    mod: Harness, path: str, form: dict[str, str]
) -> None:
    """An id past 2^63-1 made sqlite3 raise OverflowError: a 500 on the admin pages."""
    big = str(2**63)
    await mod.add_user("adm", Role.ADMIN)
    async with mod.client() as client:
        csrf = await mod.login(client, "adm")
        data = {name: value.format(big=big) for name, value in form.items()}
        response = await client.post(path.format(big=big), data={"csrf_token": csrf, **data})
    assert response.status_code in (200, 303), response.text


@anyio
async def test_a_forwarded_for_line_of_the_clients_own_is_not_believed(
    redis_url: str, tmp_path: Path, fast_passwords: PasswordService
) -> None:
    """A proxy that adds its own `X-Forwarded-For` line (HAProxy's `option forwardfor`)
    leaves the client's line before it. Only the first line was read, so the client chose
    its address; the lines are one list, in order (RFC 9110 5.3)."""
    async with (
        open_harness(redis_url, tmp_path, fast_passwords, trusted_proxies=["127.0.0.1"]) as harness,
        harness.client() as client,
    ):
        token = csrf_from((await client.get("/login")).text)
        response = await client.post(
            "/login",
            data={"username": "nobody", "password": "wrong-password!", "csrf_token": token},
            headers=[("x-forwarded-for", "203.0.113.66"), ("x-forwarded-for", "198.51.100.7")],
        )
        entries = await harness.deps.audit.page(limit=10, offset=0, action="login.failed")
    assert response.status_code == 401
    assert [entry.ip for entry in entries] == ["198.51.100.7"]
