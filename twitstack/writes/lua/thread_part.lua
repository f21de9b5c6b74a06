-- A thread's progress in its ledger record: commit that a part is about to be sent, or record
-- the X id of a part that was posted. Parts are 0-based; `thread_posted` holds the posted
-- parts' ids in order, comma separated (X ids are digits).
-- KEYS: 1 request hash, 2 events stream
-- ARGV: 1 'begin'|'posted', 2 id, 3 part index, 4 expected attempt or '', 5 tweet id,
--       6 now iso, 7 now ms, 8 actor, 9 events maxlen
-- begin: only in `sending`, at the expected attempt, when every earlier part is posted and
--   this one is not: marks the part in flight (and restarts the stale-sending clock).
-- posted: in `sending` or `unknown`, when this is the next part: appends its id and an event.
-- Returns {status, detail}: 'ok', 'already' (posted holds this id there), or a refusal
-- ('state_mismatch', 'attempt_mismatch', 'part_mismatch', 'conflict') with what was found.
local found = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'thread_posted', 'revision')
local state, attempt, posted, revision = found[1], found[2] or '0', found[3] or '', found[4]
if not state then return {'not_found', ''} end
local ids = {}
for id in string.gmatch(posted, '[^,]+') do ids[#ids + 1] = id end
local index = tonumber(ARGV[3])
if ARGV[1] == 'begin' then
  if state ~= 'sending' then return {'state_mismatch', state} end
  if ARGV[4] ~= '' and ARGV[4] ~= attempt then return {'attempt_mismatch', attempt} end
  if #ids ~= index then return {'part_mismatch', tostring(#ids)} end
  redis.call('HSET', KEYS[1], 'thread_inflight', index, 'thread_inflight_ms', ARGV[7],
    'sending_started_at', ARGV[6])
  return {'ok', ''}
end
if state ~= 'sending' and state ~= 'unknown' then return {'state_mismatch', state} end
if #ids > index then
  if ids[index + 1] == ARGV[5] then return {'already', ''} end
  return {'conflict', ids[index + 1]}
end
if #ids ~= index then return {'part_mismatch', tostring(#ids)} end
ids[#ids + 1] = ARGV[5]
redis.call('HSET', KEYS[1], 'thread_posted', table.concat(ids, ','), 'updated_at', ARGV[6])
redis.call('HDEL', KEYS[1], 'thread_inflight', 'thread_inflight_ms')
local result = '{"part":' .. (index + 1) .. ',"tweet_id":"' .. ARGV[5] .. '"}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'id', ARGV[2], 'from', state,
  'to', state, 'actor', ARGV[8], 'reason', 'thread_part_posted', 'time', ARGV[6],
  'revision', revision, 'attempt', attempt, 'result', result)
return {'ok', ''}
