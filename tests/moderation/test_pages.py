"""Server-rendered pages: queue, detail warnings, history, dead letters, accounts, admin."""

from __future__ import annotations

import json
import re
import time

import pytest
from structlog.testing import capture_logs

from tests.moderation.harness import PASSWORD, Harness
from twitstack.moderation.accounts import account_statuses
from twitstack.moderation.roles import Role
from twitstack.writer.ratelimit import RateLimitBudgets
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus as S

pytestmark = pytest.mark.anyio


async def test_queue_paginates_filters_and_serves_rows_for_live_refresh(mod: Harness) -> None:
    await mod.add_user("vi", Role.VIEWER)
    for i in range(55):
        mod.clock.advance(1)
        await mod.pending(author="ann" if i < 5 else "bob", text=f"item {i}")
    async with mod.client() as client:
        await mod.login(client, "vi")
        first = await client.get("/queue")
        second = await client.get("/queue?page=2")
        ann = await client.get("/queue?author=ann&sort=oldest")
        rows = await client.get("/queue/rows?author=ann")
    assert 'id="pending-total">55<' in first.text
    assert "Page 1 of 2" in first.text
    assert first.text.count('<tr data-id="') == 50
    assert second.text.count('<tr data-id="') == 5
    ann_texts = re.findall(r">item (\d+)<", ann.text)
    assert ann_texts == ["0", "1", "2", "3", "4"]
    assert rows.headers["x-total-count"] == "5"
    assert "<html" not in rows.text
    assert rows.text.count('<tr data-id="') == 5


async def test_detail_shows_weighted_count_warnings_and_source(mod: Harness) -> None:
    await mod.add_user("vi", Role.VIEWER)
    request_id = await mod.pending(
        author="bot",
        payload={
            "text": "Buy $AAA and $BBB now https://example.com <script>",
            "reply": {"in_reply_to_tweet_id": "123"},
        },
        source={"id": "123", "author": "someone", "text": "unrelated chatter"},
    )
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = await client.get(f"/requests/{request_id}")
    assert "weighted characters" in page.text
    assert "cashtags" in page.text
    assert "$0.200" in page.text
    assert "has not mentioned or quoted @default" in page.text
    assert "unrelated chatter" in page.text
    assert "&lt;script&gt;" in page.text
    assert "<script>" not in page.text.replace('<script src="/static/app.js" defer></script>', "")
    assert "Approve" not in page.text  # a viewer sees no decision buttons


async def test_history_links_executed_posts_and_shows_failure_reasons(mod: Harness) -> None:
    await mod.add_user("vi", Role.VIEWER)
    done = await mod.pending(author="bot", text="posted")
    failed = await mod.pending(author="bot", text="refused")
    ledger = mod.deps.decisions.ledger
    for request_id in (done, failed):
        await ledger.transition(
            request_id, S.APPROVED, from_states=[S.PENDING], actor="t", reason="t"
        )
        await ledger.transition(
            request_id, S.SENDING, from_states=[S.APPROVED], actor="w", reason="s"
        )
    await ledger.transition(
        done,
        S.EXECUTED,
        from_states=[S.SENDING],
        actor="w",
        reason="sent",
        result={"tweet_id": "1790000000000000001"},
    )
    await ledger.transition(
        failed, S.FAILED, from_states=[S.SENDING], actor="w", reason="403: duplicate content"
    )
    await mod.deps.history.catch_up()
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = await client.get("/history")
        only_failed = await client.get("/history?tab=failed")
    assert "https://x.com/i/web/status/1790000000000000001" in page.text
    assert "403: duplicate content" in page.text
    assert "posted" not in only_failed.text


async def test_dead_letters_retry_and_discard_are_audited(mod: Harness) -> None:
    await mod.add_user("mo", Role.MODERATOR)
    message = json.dumps({"action": "tweet", "payload": {"text": "retry me"}})
    await mod.redis.rpush(
        keys.DEAD_LETTER,
        json.dumps({"reason_code": "too_large", "message": message}),
        json.dumps({"reason_code": "invalid_json", "message": "{bad"}),
    )
    async with mod.client() as client:
        csrf = await mod.login(client, "mo")
        page = await client.get("/dead-letters")
        ids = re.findall(r"/dead-letters/([0-9a-f]{16})/retry", page.text)
        retried = await client.post(f"/dead-letters/{ids[0]}/retry", data={"csrf_token": csrf})
        page = await client.get("/dead-letters")
        [remaining] = re.findall(r"/dead-letters/([0-9a-f]{16})/discard", page.text)
        await client.post(f"/dead-letters/{remaining}/discard", data={"csrf_token": csrf})
    assert retried.status_code == 303
    assert await mod.redis.lrange(keys.WRITE_QUEUE, 0, -1) == [message.encode()]
    assert await mod.redis.llen(keys.DEAD_LETTER) == 0
    assert await mod.deps.audit.count(action="dead_letter.retry") == 1
    assert await mod.deps.audit.count(action="dead_letter.discard") == 1


async def test_accounts_page_shows_rate_limits_and_token_expiry_without_tokens(
    mod: Harness,
) -> None:
    await mod.add_user("vi", Role.VIEWER)
    await mod.redis.hset(
        "twitstack:writer:rl:default:post_tweets:window",
        mapping={"limit": 200, "remaining": 0, "reset": 1_900_000_000},
    )
    await mod.redis.hset(
        "twitstack:writer:token:default",
        mapping={"access_token": "SECRET-ACCESS", "expires_at": 1_900_000_000.0},
    )
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = await client.get("/accounts")
    assert "post_tweets" in page.text
    assert "2030-03-17" in page.text  # 1_900_000_000 as a UTC date
    assert "SECRET-ACCESS" not in page.text


async def test_admin_manages_users_and_every_change_is_audited(mod: Harness) -> None:
    await mod.add_user("root", Role.ADMIN)
    async with mod.client() as client:
        csrf = await mod.login(client, "root")
        weak = await client.post(
            "/users",
            data={"csrf_token": csrf, "username": "new", "password": "password1", "role": "author"},
        )
        weak_page = await client.get(weak.headers["location"])
        made = await client.post(
            "/users",
            data={"csrf_token": csrf, "username": "new", "password": PASSWORD, "role": "author"},
        )
        new_user = await mod.deps.users.by_name("new")
        assert new_user is not None
        new_id = new_user.id
        await client.post(f"/users/{new_id}/role", data={"csrf_token": csrf, "role": "moderator"})
        audit = await client.get("/audit")
    assert "common" in weak_page.text
    assert made.status_code == 303
    user = await mod.deps.users.by_name("new")
    assert user is not None
    assert user.role is Role.MODERATOR
    for action in ("login", "user.create", "user.role"):
        assert action in audit.text


async def test_secrets_never_reach_pages_or_logs(mod: Harness) -> None:
    await mod.add_user("root", Role.ADMIN)
    with capture_logs() as logs:
        async with mod.client() as client:
            csrf = await mod.login(client, "root")
            created = await client.post(
                "/apikeys",
                data={"csrf_token": csrf, "name": "ci", "owner": "1", "scopes": "read"},
            )
            key = re.search(r"(tsk_[0-9a-f]{12}_[A-Za-z0-9_-]+)", created.text)
            assert key is not None
            listing = await client.get("/apikeys")
            token = await client.post("/api/auth/token", json={"api_key": key.group(1)})
            pages = [listing.text, (await client.get("/audit")).text]
    secrets = [PASSWORD, key.group(1), token.json()["access_token"]]
    rendered_logs = repr(logs)
    for secret in secrets:
        assert secret not in rendered_logs
        for page in pages:
            assert secret not in page
    rows = await mod.deps.db.fetchall("SELECT * FROM audit_log")
    assert all(secret not in repr(tuple(r)) for r in rows for secret in secrets)


async def test_accounts_page_shows_the_budget_hash_windows_and_in_flight_count(
    mod: Harness,
) -> None:
    """One hash per (account, endpoint) holds both windows and the in-flight count; a window
    still in the old layout's own hash is shown too (until the writer folds it in)."""
    await mod.add_user("vi", Role.VIEWER)
    await mod.redis.hset(
        keys.rate_limit_budgets("default", "dm_create"),
        mapping={"window.limit": 15, "window.remaining": 7, "window.reset": 1_900_000_000,
                 "24h.limit": 1440, "24h.remaining": 1439, "24h.reset": 1_900_000_000,
                 "pending": 3, "pending.until": (time.time() + 60) * 1000, "layout": 2},
    )  # fmt: skip
    await mod.redis.hset(
        keys.rate_limit_budget("default", "post_tweets", "window"),
        mapping={"limit": 200, "remaining": 150, "reset": 1_900_000_000},
    )
    statuses = {s.name: s for s in await account_statuses(mod.redis, ["default"])}
    rows = {(b.endpoint, b.window): (b.limit, b.remaining) for b in statuses["default"].budgets}
    assert rows == {
        ("dm_create", "window"): (15, 7),
        ("dm_create", "24h"): (1440, 1439),
        ("post_tweets", "window"): (200, 150),
    }
    assert statuses["default"].in_flight == {"dm_create": 3}
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = await client.get("/accounts")
    assert page.status_code == 200
    assert "In flight: <code>dm_create</code> 3" in page.text


async def test_accounts_page_renders_while_the_writer_has_requests_in_flight(
    mod: Harness,
) -> None:
    """The writer's in-flight count is a field of the budget hash, not a window."""
    await mod.add_user("vi", Role.VIEWER)
    budgets = RateLimitBudgets(mod.redis, clock=mod.clock)
    assert await budgets.reserve("default", "post_tweets") is None
    await mod.redis.hset(
        "twitstack:writer:rl:default:post_tweets:window",
        mapping={"limit": 200, "remaining": 150, "reset": 1_900_000_000},
    )
    async with mod.client() as client:
        await mod.login(client, "vi")
        page = await client.get("/accounts")
    assert page.status_code == 200
    assert "In flight: <code>post_tweets</code> 1" in page.text
    assert "<td>pending</td>" not in page.text
