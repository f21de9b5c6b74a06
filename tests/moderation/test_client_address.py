"""Which client address throttling and the audit log use, over a real uvicorn socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.moderation.harness import Harness, csrf_from
from tests.moderation.live import serve_live
from twitstack.core.sections.moderation import ModerationSettings
from twitstack.moderation.access import forwarded_client
from twitstack.moderation.audit import AuditEntry
from twitstack.moderation.roles import Role


async def _setup(harness: Harness) -> dict[str, Any]:
    await harness.add_user("alice", Role.VIEWER)
    return {}


async def _failed_logins(harness: Harness) -> list[AuditEntry]:
    return await harness.deps.audit.page(limit=100, offset=0, action="login.failed")


def _fail_logins(base_url: str, forwarded: list[str]) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        token = csrf_from(client.get("/login").text)
        for address in forwarded:
            response = client.post(
                "/login",
                data={"username": "nobody", "password": "wrong-password!", "csrf_token": token},
                headers={"x-forwarded-for": address},
            )
            statuses.append(response.status_code)
    return statuses


def test_forwarded_for_is_ignored_without_trusted_proxies(redis_url: str, tmp_path: Path) -> None:
    """By default a client cannot pick its own address: the TCP peer is throttled and audited."""
    forged = [f"203.0.113.{i}" for i in range(1, 8)]
    with serve_live(redis_url, tmp_path, _setup, login_max_failures_per_ip=5) as live:
        statuses = _fail_logins(live.base_url, forged)
        entries = live.portal(_failed_logins)
    # Rotating the header does not escape the per-IP limit of 5.
    assert statuses == [401] * 5 + [429] * 2
    assert {entry.ip for entry in entries} == {"127.0.0.1"}


def test_forwarded_for_is_used_from_a_trusted_proxy(redis_url: str, tmp_path: Path) -> None:
    """Behind a configured proxy, the forwarded address is throttled and audited."""
    with serve_live(
        redis_url, tmp_path, _setup, trusted_proxies=["127.0.0.1"], login_max_failures_per_ip=5
    ) as live:
        statuses = _fail_logins(live.base_url, ["198.51.100.7"] * 6 + ["198.51.100.8"])
        entries = live.portal(_failed_logins)
    assert statuses == [401] * 5 + [429, 401]
    assert sorted(entry.ip for entry in entries) == ["198.51.100.7"] * 5 + ["198.51.100.8"]


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("10.0.0.1", "1.2.3.4", "1.2.3.4"),  # trusted proxy: its forwarded client
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client's own prefix is not believed
        ("10.0.0.1", "1.2.3.4, 10.0.0.2", "1.2.3.4"),  # a chain of trusted proxies is walked
        ("10.0.0.1", "garbage", "10.0.0.1"),  # a garbled header leaves the proxy as the client
        ("10.0.0.1", "1.2.3.4, garbage", "10.0.0.1"),
        ("192.0.2.5", "1.2.3.4", "192.0.2.5"),  # not a trusted proxy: header ignored
        ("10.0.0.1", None, "10.0.0.1"),
    ],
)
def test_forwarded_client_walks_only_trusted_hops(
    peer: str, header: str | None, expected: str
) -> None:
    proxies = ModerationSettings(trusted_proxies=["10.0.0.0/29"]).trusted_proxies
    assert forwarded_client(peer, header, proxies) == expected
