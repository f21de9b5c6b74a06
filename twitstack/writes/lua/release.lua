-- Put one in-flight message back at the head of the queue (e.g. on shutdown), if still held.
-- KEYS: 1 processing list, 2 source queue
-- ARGV: 1 raw message
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
