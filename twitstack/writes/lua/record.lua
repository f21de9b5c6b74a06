-- Record a request once: a second record of the same id changes nothing and says so.
-- KEYS: 1 request hash, 2 events stream, 3 schedule zset, 4 expiry zset
-- ARGV: 1 id, 2 request json, 3 state, 4 revision, 5 created_ms, 6 now_iso, 7 actor,
--       8 reason, 9 events maxlen, 10 state index prefix, 11 schedule due ms or '',
--       12 expires ms or ''
if redis.call('EXISTS', KEYS[1]) == 1 then
  local found = redis.call('HMGET', KEYS[1], 'state', 'revision')
  return {'exists', found[1], found[2]}
end
redis.call('HSET', KEYS[1], 'request', ARGV[2], 'state', ARGV[3], 'revision', ARGV[4],
  'created_ms', ARGV[5], 'recorded_at', ARGV[6], 'updated_at', ARGV[6], 'attempt', '0',
  'last_actor', ARGV[7], 'last_reason', ARGV[8])
redis.call('ZADD', ARGV[10] .. ARGV[3], ARGV[5], ARGV[1])
if ARGV[11] ~= '' then redis.call('ZADD', KEYS[3], ARGV[11], ARGV[1]) end
if ARGV[12] ~= '' then redis.call('ZADD', KEYS[4], ARGV[12], ARGV[1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'id', ARGV[1], 'from', '',
  'to', ARGV[3], 'actor', ARGV[7], 'reason', ARGV[8], 'time', ARGV[6],
  'revision', ARGV[4], 'attempt', '0')
return {'created', ARGV[3], ARGV[4]}
