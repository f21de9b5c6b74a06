"""Open everything the moderation app needs (DB, stores, keys) and close it again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from twitstack.core.logging import get_logger, register_secret
from twitstack.core.sections.moderation import ModerationSettings
from twitstack.moderation import keyfiles
from twitstack.moderation.apikeys import ApiKeyStore
from twitstack.moderation.audit import AuditLog
from twitstack.moderation.db import open_database
from twitstack.moderation.dead_letters import DeadLetterBox
from twitstack.moderation.decisions import RequestDecisions
from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.history import HistoryIngester
from twitstack.moderation.list_cache import ListCache
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.queries import FilterOptions
from twitstack.moderation.security import LoginThrottle
from twitstack.moderation.sessions import SessionStore
from twitstack.moderation.tokens import TokenIssuer
from twitstack.moderation.users import UserStore
from twitstack.moderation.views.render import new_environment
from twitstack.writes.ledger import DEFAULT_EVENTS_MAXLEN, DEFAULT_RETENTION_S, RequestLedger
from twitstack.writes.media_store import local_media_store
from twitstack.writes.quarantine import Quarantine
from twitstack.writes.signing import ApprovalSigner, public_key_to_base64

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = get_logger("twitstack.moderation")


@asynccontextmanager
async def open_moderation_deps(
    settings: ModerationSettings,
    *,
    redis: Redis,
    data_dir: Path,
    registry: CollectorRegistry,
    metrics: ModerationMetrics | None = None,
    clock: Callable[[], float] = time.time,
    passwords: PasswordService | None = None,
    known_accounts: tuple[str, ...] = (),
    ledger_retention_s: int = DEFAULT_RETENTION_S,
    events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
) -> AsyncIterator[ModerationDeps]:
    """Open the store, load or create key material and build every collaborator.

    `ledger_retention_s` and `events_maxlen` are the writer section's, so both services keep
    terminal requests and cap the events stream alike. A service that is restarted passes the
    `metrics` it built once: registering them in `registry` again would fail.
    """
    secret = keyfiles.jwt_secret(settings, data_dir)
    register_secret(secret.decode("utf-8"))
    key_text, generated = keyfiles.approval_private_key(settings, data_dir)
    register_secret(key_text)
    signer = ApprovalSigner(key_text)
    if generated:
        log.warning(
            "moderation.approval_key_generated",
            public_key=public_key_to_base64(signer.public_key),
            hint="add public_key to writer.approval_public_keys",
        )
    async with open_database(data_dir / settings.db_filename) as db:
        pw = passwords or PasswordService(concurrency=settings.password_check_concurrency)
        metrics = metrics if metrics is not None else ModerationMetrics(registry)
        audit = AuditLog(db, clock)
        # Pages and decisions reading through this ledger quarantine what they cannot read.
        quarantine = Quarantine(redis, metrics.quarantined, service="moderation")
        ledger = RequestLedger(
            redis,
            retention_s=ledger_retention_s,
            events_maxlen=events_maxlen,
            quarantine=quarantine,
        )
        history = HistoryIngester(db, redis, ledger, metrics)
        decisions = RequestDecisions(
            db=db,
            ledger=ledger,
            signer=signer,
            audit=audit,
            history=history,
            metrics=metrics,
            clock=clock,
            two_person_actions=frozenset(settings.two_person_actions),
        )
        yield ModerationDeps(
            settings=settings,
            db=db,
            redis=redis,
            clock=clock,
            registry=registry,
            metrics=metrics,
            passwords=pw,
            users=UserStore(db, pw, clock),
            sessions=SessionStore(
                db,
                clock,
                idle_s=settings.session_idle_timeout_s,
                absolute_s=settings.session_absolute_timeout_s,
            ),
            audit=audit,
            apikeys=ApiKeyStore(db, clock),
            tokens=TokenIssuer(
                secret, audience=settings.jwt_audience, ttl_s=settings.jwt_ttl_s, clock=clock
            ),
            throttle=LoginThrottle(
                clock,
                window_s=settings.login_window_s,
                per_account=settings.login_max_failures_per_account,
                per_ip=settings.login_max_failures_per_ip,
            ),
            templates=new_environment(),
            signer=signer,
            history=history,
            decisions=decisions,
            dead_letters=DeadLetterBox(redis),
            filter_options=FilterOptions(db, clock),
            lists=ListCache(clock, lambda: history.generation),
            known_accounts=known_accounts,
            quarantine=quarantine,
            # The service replaces this with the configured store (S3 when set up).
            media_store=lambda: local_media_store(data_dir / "media"),
            media_tmp_dir=data_dir / "media-tmp",
        )
