"""Redis key names of the write pipeline, in one place so every service agrees on them.

All keys are plain (no cluster hash tags): twitstack targets one Redis (or a primary with
replicas), and the ledger's Lua scripts touch several of these keys at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from twitstack.writes.models import ModerationStatus

# Producers RPUSH JSON messages here (the seed's name); consumers take from the left.
WRITE_QUEUE = "write_queue"
# Messages that could not be decoded, or crashed consumers too often: JSON reason records.
DEAD_LETTER = "write_queue:dead"
# Shared data no reader could parse (ledger records, events, scraped items): newest first,
# capped; each entry JSON {at, service, source, ref, reason, detail}. The set holds
# "<source>:<ref>" of everything quarantined, so every replica reports an item once.
QUARANTINE = "writes:quarantine"
QUARANTINED_REFS = "writes:quarantine:refs"
# Set of consumer ids that have ever taken work, so recovery can find their processing lists.
CONSUMERS = "write_queue:consumers"
# Hash sha1(raw message) -> times the message was in flight when its consumer died.
CRASH_COUNTS = "write_queue:crashes"

_PROCESSING_PREFIX = "write_queue:processing:"
_HEARTBEAT_PREFIX = "write_queue:heartbeat:"

# Ledger: one hash per request, one sorted set per state (score = created_at in ms).
REQUEST_PREFIX = "writes:request:"
STATE_INDEX_PREFIX = "writes:state:"
# Stream of every state change (XREAD from a stored last id); capped with MAXLEN ~.
EVENTS = "writes:events"
# Approved requests waiting for their not_before (score = due time in ms).
SCHEDULE = "writes:schedule"
# Requests with an expires_at that are not yet terminal (score = expiry time in ms).
EXPIRY = "writes:expiry"
# Terminal requests whose hash has an EXPIRE (score = when it lapses, ms), to prune indexes.
RETENTION = "writes:retention"
# String per request id that reached a final state: that state, kept `ledger_retention_s`
# (>= approval_max_age_s) plus signing.MAX_CLOCK_SKEW. Written only inside the ledger's Lua
# (lua/ledger_guards.lua).
TOMBSTONE_PREFIX = "writes:tombstone:"
# String per approval nonce: the request id whose sending spent it, or "revoked".
SPENT_PREFIX = "writes:spent:"

# The writer's shared per-account state lives under this prefix (see the functions below).
WRITER_PREFIX = "twitstack:writer"
# Credentials, sealed (twitstack.core.sealing); outside WRITER_PREFIX so that Redis ACLs can
# let moderation and ops read the writer's account state but not these.
SECRET_PREFIX = "twitstack:secret"
# Connected X accounts (OAuth 2.0 with PKCE from the UI or CLI), `twitstack.writes.x_accounts`.
X_ACCOUNTS_PREFIX = "twitstack:accounts"
# Hash: X user id -> JSON record (label, handle, scopes, client id, connected at/by).
X_ACCOUNTS = f"{X_ACCOUNTS_PREFIX}:x"
# Stream of every connect, reconnect, disconnect and token-health change (capped, MAXLEN ~).
X_ACCOUNTS_AUDIT = f"{X_ACCOUNTS_PREFIX}:audit"
# Rate-limit windows the writer tracks per (account, endpoint): X's `x-rate-limit-*` window and
# the `x-user-limit-24hour-*` one, kept with the in-flight count in one hash per (account,
# endpoint) (`rate_limit_budgets`, fields "<window>.limit", "<window>.remaining",
# "<window>.reset", "pending", "pending.until", "layout"; see lua/budget_core.lua).
RATE_LIMIT_WINDOWS = ("window", "24h")
# The old layout (read once by the budget scripts, folded into `rate_limit_budgets` and
# dropped): a hash per window, `rate_limit_budget`, and a counter string with this suffix.
IN_FLIGHT_WINDOW = "pending"
# The audit stream (capped) of spend caps admins raised at runtime (`spend_caps`). Outside
# WRITER_PREFIX: moderation's admins write these too.
SPEND_CAPS_AUDIT = "twitstack:budget:audit"

# The notifier's state (twitstack.notifier): an outbox of deliveries (sorted set: delivery
# id -> due time in ms, and a hash: delivery id -> JSON), the delivery ids it has scheduled
# (sorted set, score = when, pruned after a while) so nothing is scheduled twice, its dead
# letters (JSON, newest first, capped) and a hash of what it last saw: its cursor in EVENTS,
# the newest dead letters seen, the accounts already reported as needing a reconnect.
NOTIFY_PREFIX = "twitstack:notify"
NOTIFY_OUTBOX = f"{NOTIFY_PREFIX}:outbox"
NOTIFY_ITEMS = f"{NOTIFY_PREFIX}:items"
NOTIFY_SCHEDULED = f"{NOTIFY_PREFIX}:scheduled"
NOTIFY_DEAD = f"{NOTIFY_PREFIX}:dead"
NOTIFY_STATE = f"{NOTIFY_PREFIX}:state"
# Coalescing of event notifications, per "channel|kind" slot: the delivery still open to more
# events (field `slot:<slot>`, and `id:<delivery id>` back to its slot), and when the slot's
# last message was claimed for sending (field `claimed:<slot>`, ms).
NOTIFY_COALESCE = f"{NOTIFY_PREFIX}:coalesce"
# Pending requests already reported as waiting (sorted set: request id -> when, in ms); an id
# is forgotten once its request is no longer pending, not after a time, so a request waiting
# for months is reported once and the set never outgrows the pending requests.
NOTIFY_WAITING = f"{NOTIFY_PREFIX}:waiting"


def processing_list(consumer: str) -> str:
    """The list holding the messages `consumer` has taken but not yet acked."""
    return _PROCESSING_PREFIX + consumer


def heartbeat(consumer: str) -> str:
    """The key whose TTL says `consumer` is alive."""
    return _HEARTBEAT_PREFIX + consumer


def request(request_id: str) -> str:
    """The hash holding one request's ledger record."""
    return REQUEST_PREFIX + request_id


def tombstone(request_id: str) -> str:
    """The final state `request_id` reached, while the ledger still remembers it."""
    return TOMBSTONE_PREFIX + request_id


def spent_approval(nonce: str) -> str:
    """Who spent the approval with `nonce` (a request id), or "revoked"."""
    return SPENT_PREFIX + nonce


def state_index(state: ModerationStatus | str) -> str:
    """The sorted set of request ids currently in `state`."""
    return STATE_INDEX_PREFIX + ModerationStatus(state).value


def rate_limit_budgets(account: str, endpoint: str) -> str:
    """The hash of (account, endpoint)'s rate-limit windows and in-flight count."""
    return f"{WRITER_PREFIX}:rl:{account}:{endpoint}"


def rate_limit_budget(account: str, endpoint: str, window: str) -> str:
    """The old layout's hash {limit, remaining, reset} of one window (`RATE_LIMIT_WINDOWS`).

    Read only to migrate: the budget scripts fold it into `rate_limit_budgets` and drop it.
    """
    return f"{rate_limit_budgets(account, endpoint)}:{window}"


def rate_limit_in_flight(account: str, endpoint: str) -> str:
    """The old layout's in-flight counter (a string with a PX); read only to migrate."""
    return rate_limit_budget(account, endpoint, IN_FLIGHT_WINDOW)


def account_paused(account: str) -> str:
    """The hash {reason, until} present while the writer must not act for `account`."""
    return f"{WRITER_PREFIX}:paused:{account}"


def spend_rollup(period: str) -> str:
    """The hash of micro-USD spent in one UTC day ("2026-12-05") or month ("2026-12").

    Fields "<account>|<action>", "<account>|*" (the account's total) and "*|*" (everything);
    caps raised for this period only, "<account>|*|cap" and "*|*|cap" (micro-USD: the next
    period is capped by the settings again); "<account>|*|held" while a budget pause of this
    period may hold the account; "layout" once the period's old `spend_caps` hash was folded in.
    """
    return f"{WRITER_PREFIX}:spend:{period}"


def spend_caps(period: str) -> str:
    """The old layout's hash of caps raised for one day or month: "<account>" or "*" ->
    micro-USD. Read until the period's rollup has folded it in (see `spend_rollup`).
    """
    return f"twitstack:budget:caps:{period}"


def oauth2_tokens(account: str) -> str:
    """The public hash {expires_at, version} of an OAuth 2.0 account's stored token pair.

    Releases before sealing kept the pair itself here (fields access_token, refresh_token);
    the writer seals such entries into `sealed_oauth2_tokens` on first read.
    """
    return f"{WRITER_PREFIX}:token:{account}"


def sealed_oauth2_tokens(account: str) -> str:
    """The string holding an account's sealed OAuth 2.0 pair; only the writer's user reads it."""
    return f"{SECRET_PREFIX}:oauth2:{account}"


def x_connect_pending(state: str) -> str:
    """The short-lived, single-use record of one authorization in progress (PKCE verifier)."""
    return f"{X_ACCOUNTS_PREFIX}:pending:{state}"


def token_refresh_lock(account: str) -> str:
    """The lock one replica holds while it spends `account`'s refresh token."""
    return oauth2_tokens(account) + ":lock"


def writer_notes(request_id: str) -> str:
    """The hash of per-request counters the writer keeps (ambiguous attempts, re-sends)."""
    return f"{WRITER_PREFIX}:notes:{request_id}"


@dataclass(frozen=True, slots=True)
class WriterKey:
    """What a key under `WRITER_PREFIX` is about; `kind` is budget (a budget hash), rl and
    in_flight (the old layout's, until migrated), paused or token."""

    kind: str
    account: str
    endpoint: str | None = None
    window: str | None = None


def parse_writer_key(key: str) -> WriterKey | None:
    """The account-state key `key` names, or None for other keys (notes, locks, unknown)."""
    if not key.startswith(WRITER_PREFIX + ":"):
        return None
    parts = key[len(WRITER_PREFIX) + 1 :].split(":")
    if parts[0] == "rl" and len(parts) == 3:
        return WriterKey("budget", parts[1], parts[2])
    if parts[0] == "rl" and len(parts) == 4:
        if parts[3] == IN_FLIGHT_WINDOW:
            return WriterKey("in_flight", parts[1], parts[2])
        return WriterKey("rl", parts[1], parts[2], parts[3])
    if parts[0] in ("paused", "token") and len(parts) == 2:
        return WriterKey(parts[0], parts[1])
    return None
