-- Move due scheduled requests onto the write queue (as their stored message), atomically.
-- KEYS: 1 schedule zset, 2 write queue
-- ARGV: 1 now ms, 2 max to promote, 3 request hash prefix
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local pushed = 0
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  local found = redis.call('HMGET', ARGV[3] .. id, 'state', 'request')
  -- A request edited, rejected or expired since it was scheduled is no longer approved.
  if found[1] == 'approved' and found[2] then
    redis.call('RPUSH', KEYS[2], found[2])
    pushed = pushed + 1
  end
end
return pushed
