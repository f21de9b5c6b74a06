"""Coalescing event notifications: at most one message per channel and kind per window.

10,000 failures read in batches of 100 would otherwise be 100 messages on every channel. Each
"channel|kind" slot has at most one *open* delivery: scheduled, not yet claimed for sending.
A batch's notification for a slot with an open delivery is merged into it (the count added,
requests listed up to MAX_REQUESTS, the link turned to the filtered list); otherwise it becomes
the open delivery, due no sooner than `window` after the slot's last message was claimed.
Claiming closes the slot (`outbox._CLAIM`), so nothing is merged into a message being sent:
counts stay exact. Merging and the events cursor move in one script, like `outbox.schedule`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio import Redis

from twitstack.notifier.compose import MAX_REQUESTS, list_url, plural_title
from twitstack.notifier.models import Delivery
from twitstack.notifier.outbox import Guard
from twitstack.writes import keys

# KEYS: state, scheduled, outbox, items, coalesce. ARGV: guard field ('' = none), expected,
# new value, now (ms), window (ms), requests listed at most, then (id, delivery JSON, slot,
# plural title, list URL) per delivery. -1: the guard moved (someone else got there first).
_SCHEDULE = """
if ARGV[1] ~= '' then
  local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
  if current ~= ARGV[2] then return -1 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
local now, window, limit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function merge(stored, body, many, url)
  local old, new = cjson.decode(stored), cjson.decode(body)
  local o, n = old.notification, new.notification
  local count = #o.requests + (o.more or 0) + #n.requests + (n.more or 0)
  for _, ref in ipairs(n.requests) do
    if #o.requests >= limit then break end
    table.insert(o.requests, ref)
  end
  o.more = count - #o.requests
  o.title = string.format('%d %s', count, many)
  o.url = url
  return cjson.encode(old)
end
local added = 0
for i = 7, #ARGV, 5 do
  local id, body, slot = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZADD', KEYS[2], 'NX', now, id) == 1 then
    local open = redis.call('HGET', KEYS[5], 'slot:' .. slot)
    local stored = open and redis.call('HGET', KEYS[4], open)
    local merged = false
    if stored then
      -- Junk someone wrote over the open delivery is left to the sender's quarantine.
      local ok, result = pcall(merge, stored, body, ARGV[i + 3], ARGV[i + 4])
      if ok then
        redis.call('HSET', KEYS[4], open, result)
        merged = true
      end
    end
    if not merged then
      local last = tonumber(redis.call('HGET', KEYS[5], 'claimed:' .. slot) or '') or 0
      redis.call('HSET', KEYS[4], id, body)
      redis.call('ZADD', KEYS[3], math.max(now, last + window), id)
      redis.call('HSET', KEYS[5], 'slot:' .. slot, id, 'id:' .. id, slot)
      added = added + 1
    end
  end
end
return added
"""


def slot(delivery: Delivery) -> str:
    """The coalescing slot of a delivery: its channel and event kind."""
    return f"{delivery.channel}|{delivery.notification.event.value}"


class Coalescer:
    """Schedules event notifications into their slots' open deliveries."""

    def __init__(self, redis: Redis, *, base: str, window_s: float) -> None:
        self._script = redis.register_script(_SCHEDULE)
        self._base = base
        self._window_ms = int(window_s * 1000)

    async def schedule(
        self, deliveries: Sequence[Delivery], *, guard: Guard, now: float | None = None
    ) -> int:
        """Merge or add each delivery; new deliveries added, or -1 if `guard` failed."""
        at = int((time.time() if now is None else now) * 1000)
        args: list[str | int] = [guard.field, guard.expected, guard.new, at, self._window_ms,
                                 MAX_REQUESTS]  # fmt: skip
        for delivery in deliveries:
            kind = delivery.notification.event
            args += [delivery.id, delivery.to_json(), slot(delivery), plural_title(kind),
                     list_url(kind, self._base)]  # fmt: skip
        keys_ = [keys.NOTIFY_STATE, keys.NOTIFY_SCHEDULED, keys.NOTIFY_OUTBOX, keys.NOTIFY_ITEMS,
                 keys.NOTIFY_COALESCE]  # fmt: skip
        return int(await self._script(keys=keys_, args=args))
