-- Compare-and-set one request's state, move its index entry and append the event, atomically.
-- KEYS: 1 request hash, 2 events stream, 3 schedule zset, 4 expiry zset, 5 retention zset,
--       6 write queue
-- ARGV: 1 id, 2 allowed from-states (space separated), 3 to-state, 4 expected revision or '',
--       5 actor, 6 reason, 7 now_iso, 8 now_ms, 9 result json or '', 10 events maxlen,
--       11 retention s, 12 retention-until ms, 13 terminal '1'/'0', 14 state index prefix,
--       15 bump attempt '1'/'0', 16 new request json or '', 17 new revision or '',
--       18 dispatch 'none'|'queue'|'schedule', 19 schedule due ms, 20 expires ms, '' or '-',
--       21 request hash prefix, 22 terminal states (space separated)
local found = redis.call('HMGET', KEYS[1], 'state', 'revision', 'attempt', 'created_ms')
local state, revision, attempt, created = found[1], found[2], found[3] or '0', found[4]
if not state then return {'not_found', '', '0', '0'} end
local allowed = false
for s in string.gmatch(ARGV[2], '%S+') do
  if s == state then allowed = true end
end
if not allowed then return {'state_mismatch', state, revision, attempt} end
if ARGV[4] ~= '' and ARGV[4] ~= revision then
  return {'revision_mismatch', state, revision, attempt}
end
local id, to = ARGV[1], ARGV[3]
redis.call('ZREM', ARGV[14] .. state, id)
redis.call('ZADD', ARGV[14] .. to, created, id)
redis.call('HSET', KEYS[1], 'state', to, 'updated_at', ARGV[7], 'last_actor', ARGV[5],
  'last_reason', ARGV[6])
if ARGV[15] == '1' then
  attempt = tostring(redis.call('HINCRBY', KEYS[1], 'attempt', 1))
  redis.call('HSET', KEYS[1], 'sending_started_at', ARGV[7])
end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[9]) end
if ARGV[16] ~= '' then redis.call('HSET', KEYS[1], 'request', ARGV[16]) end
if ARGV[17] ~= '' then
  revision = ARGV[17]
  redis.call('HSET', KEYS[1], 'revision', revision)
end
-- Only approved requests wait in the schedule; any other move cancels a pending promotion.
if to ~= 'approved' then redis.call('ZREM', KEYS[3], id) end
if ARGV[18] == 'queue' then
  redis.call('RPUSH', KEYS[6], redis.call('HGET', KEYS[1], 'request'))
elseif ARGV[18] == 'schedule' then
  redis.call('ZADD', KEYS[3], ARGV[19], id)
end
if ARGV[20] == '-' then
  redis.call('ZREM', KEYS[4], id)
elseif ARGV[20] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[20], id)
end
if ARGV[13] == '1' then
  redis.call('ZREM', KEYS[4], id)
  redis.call('EXPIRE', KEYS[1], ARGV[11])
  redis.call('ZADD', KEYS[5], ARGV[12], id)
  -- Drop index entries of terminal requests whose hash has lapsed (a few per call).
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[8], 'LIMIT', 0, 20)
  for _, old in ipairs(lapsed) do
    if redis.call('EXISTS', ARGV[21] .. old) == 0 then
      for s in string.gmatch(ARGV[22], '%S+') do redis.call('ZREM', ARGV[14] .. s, old) end
    end
    redis.call('ZREM', KEYS[5], old)
  end
end
local fields = {'id', id, 'from', state, 'to', to, 'actor', ARGV[5], 'reason', ARGV[6],
  'time', ARGV[7], 'revision', revision, 'attempt', attempt}
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'result'
  fields[#fields + 1] = ARGV[9]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[10], '*', unpack(fields))
return {'ok', state, revision, attempt}
