"""ModerationDeps: everything the web app's endpoints use, built once by the service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment
from prometheus_client import CollectorRegistry

from twitstack.core.sections.moderation import ModerationSettings
from twitstack.core.sections.spend import SpendSettings
from twitstack.moderation.apikeys import ApiKeyStore
from twitstack.moderation.audit import AuditLog
from twitstack.moderation.db import Database
from twitstack.moderation.dead_letters import DeadLetterBox
from twitstack.moderation.decisions import RequestDecisions
from twitstack.moderation.flash import FlashStore
from twitstack.moderation.history import HistoryIngester
from twitstack.moderation.list_cache import ListCache, RenderedList
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.moderation.passwords import PasswordService
from twitstack.moderation.queries import FilterOptions
from twitstack.moderation.quoted_posts import QuotedPosts
from twitstack.moderation.security import LoginThrottle
from twitstack.moderation.sessions import SessionStore
from twitstack.moderation.spend_summary import SpendSummary
from twitstack.moderation.tokens import TokenIssuer
from twitstack.moderation.users import UserStore
from twitstack.moderation.x_accounts_ui import XAccountsUi
from twitstack.writes.media_store import MediaStore
from twitstack.writes.quarantine import Quarantine
from twitstack.writes.signing import ApprovalSigner

if TYPE_CHECKING:
    from redis.asyncio import Redis


@asynccontextmanager
async def _no_store() -> AsyncIterator[MediaStore]:
    raise OSError("no media store configured")
    yield  # pragma: no cover


Clock = Callable[[], float]


@dataclass(frozen=True)
class CookieNames:
    """Cookie names and flags: `__Host-` and Secure over TLS, plain names for the dev switch."""

    secure: bool

    @property
    def session_name(self) -> str:
        return "__Host-twitstack" if self.secure else "twitstack_session"

    @property
    def csrf_name(self) -> str:
        return "__Host-twitstack-csrf" if self.secure else "twitstack_csrf"


@dataclass
class ModerationDeps:
    """The app's collaborators; the service opens and closes the resources behind them."""

    settings: ModerationSettings
    db: Database
    redis: Redis
    clock: Clock
    registry: CollectorRegistry
    metrics: ModerationMetrics
    passwords: PasswordService
    users: UserStore
    sessions: SessionStore
    audit: AuditLog
    apikeys: ApiKeyStore
    tokens: TokenIssuer
    throttle: LoginThrottle
    templates: Environment
    signer: ApprovalSigner
    history: HistoryIngester
    decisions: RequestDecisions
    dead_letters: DeadLetterBox
    filter_options: FilterOptions
    lists: ListCache[RenderedList]
    known_accounts: tuple[str, ...] = ()
    # Where pages report shared data they cannot read (writes/quarantine.py); None in tests.
    quarantine: Quarantine | None = None
    flash: FlashStore = field(default_factory=FlashStore)
    # Connecting X accounts (Accounts pages); None where the service did not open it.
    x_accounts: XAccountsUi | None = None
    # Opens the media store for one use (uploads, thumbnails); uploads spool in media_tmp_dir.
    media_store: Callable[[], AbstractAsyncContextManager[MediaStore]] = field(
        default=lambda: _no_store()
    )
    media_tmp_dir: Path = Path("media-tmp")
    # Previews of quoted posts from the scraper's store (ids and links only without one).
    quoted_posts: QuotedPosts = field(default_factory=lambda: QuotedPosts(None))
    # X's prices and the spend caps (the Settings' spend section, shared with the writer).
    spend: SpendSettings = field(default_factory=SpendSettings)
    # The queue's spend header, re-read from Redis at most every 2 s (spend_summary.py).
    queue_spend: SpendSummary = field(default_factory=SpendSummary)
    # Uploads are refused (507) while that disk has less than this free ([media] min_free_mb).
    media_min_free_bytes: int = 1024 * 1024 * 1024
    # Each user's uploads per UTC day ([media] max_upload_mb_per_user_day); 0: no limit.
    media_user_day_bytes: int = 2048 * 1024 * 1024

    @property
    def cookies(self) -> CookieNames:
        return CookieNames(secure=self.settings.secure_cookies)
