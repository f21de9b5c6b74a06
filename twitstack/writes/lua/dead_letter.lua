-- Move one in-flight message to the dead-letter list, once even if two callers race.
-- KEYS: 1 processing list, 2 dead-letter list, 3 crash counts hash
-- ARGV: 1 raw message, 2 dead-letter record json, 3 sha1 of the raw message
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[3])
  return 1
end
return 0
