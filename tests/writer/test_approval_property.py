"""Property: whatever moderators do and whatever is tampered with in Redis, X receives only
texts that some approver other than every author signed, each at most once.

Each example runs the real moderation decisions and the real writer service over the test's
Redis and the fake X: random edits, approvals (fresh or on a stale look), rejections, and the
attacks of issue 10 (raw HSET of the text, flip to approved, DEL of the hash, replay of every
approved message ever captured), with pauses that let the writer execute in between.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.moderation.harness import Harness, open_harness
from tests.writer.conftest import RunningSandbox
from tests.writer.harness import running_writer, wait_until, writer_settings
from twitstack.core.config import Settings
from twitstack.moderation.decisions import DecisionError
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.roles import Role
from twitstack.moderation.users import User
from twitstack.sandbox.xapi.config import XApiSandboxConfig
from twitstack.writes import keys
from twitstack.writes.models import ModerationStatus, WriteAction, WriteRequest
from twitstack.writes.signing import generate_key_pair

S = ModerationStatus
pytestmark = pytest.mark.anyio
MODERATORS = ("ann", "ben", "cat")
PRIVATE_KEY, PUBLIC_KEY = generate_key_pair()
_INDEX = st.integers(0, 1)  # request 0 is a tweet, request 1 a DM that needs two approvers
_WHO = st.sampled_from(MODERATORS)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), _INDEX, _WHO),
        st.tuples(st.just("look"), _INDEX, _WHO),
        st.tuples(st.just("approve"), _INDEX, _WHO),
        st.tuples(st.just("approve_last_look"), _INDEX, _WHO),
        st.tuples(st.just("reject"), _INDEX, _WHO),
        st.tuples(st.just("swap"), _INDEX, _WHO),
        st.tuples(st.just("flip"), _INDEX, _WHO),
        st.tuples(st.just("delete"), _INDEX, _WHO),
        st.tuples(st.just("replay"), _INDEX, _WHO),
        st.tuples(st.just("settle"), _INDEX, _WHO),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture
def sandbox_config() -> XApiSandboxConfig:
    return XApiSandboxConfig()


@pytest.fixture
def fast_passwords() -> PasswordService:
    """argon2id with tiny parameters: the behaviour under test is the same, only cheaper."""
    return PasswordService(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Model:
    """What the test knows independently of the code under test."""

    ids: list[str]
    authors: list[set[str]] = field(default_factory=lambda: [{"bot"}, {"bot"}])
    looks: dict[tuple[int, str], tuple[int, str, str]] = field(default_factory=dict)
    captured: list[list[bytes]] = field(default_factory=lambda: [[], []])
    rightly_signed: set[str] = field(default_factory=set)
    counter: int = 0

    def text(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix} {self.counter} {uuid.uuid4().hex[:6]}"


async def _users(mod: Harness) -> dict[str, User]:
    found: dict[str, User] = {}
    for name in MODERATORS:
        await mod.add_user(name, Role.MODERATOR)
        user = await mod.deps.users.by_name(name)
        assert user is not None
        found[name] = user
    return found


async def _look(mod: Harness, model: Model, index: int, who: str) -> tuple[int, str, str]:
    record = await mod.deps.decisions.get(model.ids[index])
    if record is None:
        return (0, "", "")
    seen = (record.request.revision, record.request.content_hash(), _text_of(record.request))
    model.looks[(index, who)] = seen
    return seen


def _text_of(request: WriteRequest) -> str:
    text = request.payload.get("text")
    return text if isinstance(text, str) else ""


async def _approve(
    mod: Harness, model: Model, index: int, user: User, seen: tuple[int, str, str]
) -> None:
    revision, content_hash, text = seen
    if not revision:
        return
    try:
        outcome = await mod.deps.decisions.approve(
            model.ids[index],
            expected_revision=revision,
            expected_content_hash=content_hash,
            user=user,
        )
    except DecisionError:
        return
    if not outcome.approved:
        return
    raw = await mod.redis.hget(keys.request(model.ids[index]), "request")
    assert raw is not None
    stored = json.loads(raw)
    # The binding itself: what was signed is exactly what this approver looked at.
    assert stored["payload"]["text"] == text
    model.captured[index].append(bytes(raw))
    if not set(outcome.approvers) & model.authors[index]:
        model.rightly_signed.add(text)


async def _tamper(redis: Redis, model: Model, op: str, index: int) -> None:
    key = keys.request(model.ids[index])
    if op == "swap":
        raw = await redis.hget(key, "request")
        if raw is not None:
            data = json.loads(raw)
            data["payload"]["text"] = model.text("evil")
            await redis.hset(key, "request", json.dumps(data))
    elif op == "flip":
        if await redis.exists(key):
            await redis.hset(key, "state", "approved")
    elif op == "delete":
        await redis.delete(key)
    elif op == "replay":
        for raw in model.captured[index]:
            await redis.rpush(keys.WRITE_QUEUE, raw)


async def _apply(
    mod: Harness, users: dict[str, User], model: Model, op: str, index: int, who: str
) -> None:
    user = users[who]
    request_id = model.ids[index]
    if op == "edit":
        record = await mod.deps.decisions.get(request_id)
        if record is None:
            return
        payload = {**dict(record.request.payload), "text": model.text(f"r{index} by {who}")}
        # The editor is an author from the moment they try (the code records it first too).
        model.authors[index].add(who)
        with contextlib.suppress(DecisionError):
            await mod.deps.decisions.edit(
                request_id, payload, expected_revision=record.request.revision, user=user
            )
    elif op == "look":
        await _look(mod, model, index, who)
    elif op == "approve":
        await _approve(mod, model, index, user, await _look(mod, model, index, who))
    elif op == "approve_last_look":
        seen = model.looks.get((index, who))
        if seen is not None:
            await _approve(mod, model, index, user, seen)
    elif op == "settle":
        # Let the writer finish what it has, so later tampering meets executed requests too.
        await wait_until(lambda: _idle(mod.redis))
    elif op == "reject":
        with contextlib.suppress(DecisionError):
            await mod.deps.decisions.reject(request_id, reason="no", user=user)
    else:
        await _tamper(mod.redis, model, op, index)


async def _idle(redis: Redis) -> bool:
    if await redis.llen(keys.WRITE_QUEUE):
        return False
    for consumer in await redis.smembers(keys.CONSUMERS):
        name = consumer.decode() if isinstance(consumer, bytes) else str(consumer)
        if await redis.llen(keys.processing_list(name)):
            return False
    return await redis.zcard(keys.state_index(S.SENDING)) == 0


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
# The attacks of issue 10 as explicit examples, so every run tries them besides random ones.
@example(
    operations=[
        ("approve", 1, "ann"),
        ("approve", 1, "ben"),
        ("settle", 1, "ann"),
        ("flip", 1, "ann"),
        ("replay", 1, "ann"),
    ]
)
@example(
    operations=[
        ("approve", 1, "ann"),
        ("approve", 1, "ben"),
        ("settle", 1, "ann"),
        ("delete", 1, "ann"),
        ("replay", 1, "ann"),
    ]
)
@example(
    operations=[
        ("approve", 0, "ann"),
        ("reject", 0, "ben"),
        ("flip", 0, "ann"),
        ("replay", 0, "ann"),
    ]
)
@example(operations=[("edit", 0, "ann"), ("approve", 0, "ann")])
@example(operations=[("look", 0, "ann"), ("swap", 0, "ben"), ("approve_last_look", 0, "ann")])
@example(
    operations=[
        ("approve", 1, "ann"),
        ("edit", 1, "ben"),
        ("swap", 1, "ben"),
        ("approve", 1, "cat"),
        ("approve", 1, "ben"),
    ]
)
async def test_x_receives_only_rightly_approved_texts_each_at_most_once(
    operations: list[tuple[str, int, str]],
    redis_url: str,
    redis: Redis,
    sandbox: RunningSandbox,
    make_settings: Callable[..., Settings],
    fast_passwords: PasswordService,
    tmp_path: Path,
) -> None:
    """Random edits, approvals, rejections and Redis tampering: X gets only texts an approver
    who wrote no revision signed, and none twice."""
    await redis.flushdb()
    sandbox.state.reset()
    data_dir = tmp_path / uuid.uuid4().hex
    data_dir.mkdir()
    async with open_harness(
        redis_url,
        data_dir,
        fast_passwords,
        two_person_actions=("dm",),
        approval_private_key=PRIVATE_KEY,
    ) as mod:
        users = await _users(mod)
        model = Model(ids=[])
        first = await mod.pending(author="bot", text=model.text("r0"))
        second = await mod.pending(
            author="bot",
            action=WriteAction.DM,
            payload={"recipient_id": "1001", "text": model.text("r1")},
        )
        model.ids = [first, second]
        config = writer_settings(make_settings, sandbox.base_url, approval_public_keys=[PUBLIC_KEY])
        async with running_writer(config, redis, sandbox):
            for op, index, who in operations:
                await _apply(mod, users, model, op, index, who)
            await wait_until(lambda: _idle(redis))
    posted = sandbox.state.content.post_text_counts()
    sent = [dm.text for dm in sandbox.state.content.dms]
    received = list(posted.elements()) + sent
    assert set(received) <= model.rightly_signed, (received, model.rightly_signed)
    assert len(received) == len(set(received)), received
