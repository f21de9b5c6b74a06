"""Redis key names of the write pipeline, in one place so every service agrees on them.

All keys are plain (no cluster hash tags): twitstack targets one Redis (or a primary with
replicas), and the ledger's Lua scripts touch several of these keys at once.
"""

from __future__ import annotations

from twitstack.writes.models import ModerationStatus

# Producers RPUSH JSON messages here (the seed's name); consumers take from the left.
WRITE_QUEUE = "write_queue"
# Messages that could not be decoded, or crashed consumers too often: JSON reason records.
DEAD_LETTER = "write_queue:dead"
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


def processing_list(consumer: str) -> str:
    """The list holding the messages `consumer` has taken but not yet acked."""
    return _PROCESSING_PREFIX + consumer


def heartbeat(consumer: str) -> str:
    """The key whose TTL says `consumer` is alive."""
    return _HEARTBEAT_PREFIX + consumer


def request(request_id: str) -> str:
    """The hash holding one request's ledger record."""
    return REQUEST_PREFIX + request_id


def state_index(state: ModerationStatus | str) -> str:
    """The sorted set of request ids currently in `state`."""
    return STATE_INDEX_PREFIX + ModerationStatus(state).value
