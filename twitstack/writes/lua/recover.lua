-- Give a dead consumer's in-flight messages back to the queue, counting the crash for each.
-- Messages that were in flight at `max_crashes` crashes stay put and are returned as poison,
-- for the caller to dead-letter.
-- KEYS: 1 processing list, 2 heartbeat key, 3 source queue, 4 crash counts hash, 5 consumers set
-- ARGV: 1 force '1' (own list at restart) or '0', 2 max crashes, 3 consumer id
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return {0, {}} end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local moved = 0
local poison = {}
-- Newest first, each pushed to the head: the oldest in-flight message ends up first in line.
for i = #items, 1, -1 do
  local raw = items[i]
  local crashes = redis.call('HINCRBY', KEYS[4], redis.sha1hex(raw), 1)
  if crashes >= tonumber(ARGV[2]) then
    poison[#poison + 1] = raw
  else
    redis.call('LREM', KEYS[1], -1, raw)
    redis.call('LPUSH', KEYS[3], raw)
    moved = moved + 1
  end
end
if redis.call('LLEN', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[5], ARGV[3])
end
return {moved, poison}
