-- ledger_record(K, A): record a request once; a second record of the same id changes nothing.
-- K: 1 request hash, 2 events stream, 3 schedule zset, 4 expiry zset
-- A: 1 id, 2 request json, 3 state, 4 revision, 5 created_ms, 6 now_iso, 7 actor,
--    8 reason, 9 events maxlen, 10 state index prefix, 11 schedule due ms or '',
--    12 expires ms or ''
-- Returns {'created' | 'exists', state, revision}. An id whose request reached a final state
-- is never recorded again while its tombstone lives, even if its hash is gone (revision '0').
-- ledger_record in two halves, for a caller that moves a new record on in the same call
-- (begin_sending): ledger_record_find answers {'exists', state, revision} or nil (it may be
-- created); ledger_record_fields and ledger_record_event are what creating it writes.
local function ledger_record_find(K, A)
  if redis.call('EXISTS', K[1]) == 1 then
    local found = redis.call('HMGET', K[1], 'state', 'revision')
    return {'exists', found[1], found[2]}
  end
  local final = redis.call('GET', 'writes:tombstone:' .. A[1])
  if final then return {'exists', final, '0'} end
  return nil
end

local function ledger_record_fields(A)
  return {'request', A[2], 'state', A[3], 'revision', A[4], 'created_ms', A[5],
    'recorded_at', A[6], 'updated_at', A[6], 'attempt', '0', 'last_actor', A[7],
    'last_reason', A[8]}
end

local function ledger_record_event(K, A)
  redis.call('XADD', K[2], 'MAXLEN', '~', A[9], '*', 'id', A[1], 'from', '',
    'to', A[3], 'actor', A[7], 'reason', A[8], 'time', A[6],
    'revision', A[4], 'attempt', '0')
end

-- Create the record ledger_record_find found free.
local function ledger_record_write(K, A)
  redis.call('HSET', K[1], unpack(ledger_record_fields(A)))
  redis.call('ZADD', A[10] .. A[3], A[5], A[1])
  if A[11] ~= '' then redis.call('ZADD', K[3], A[11], A[1]) end
  if A[12] ~= '' then redis.call('ZADD', K[4], A[12], A[1]) end
  ledger_record_event(K, A)
  return {'created', A[3], A[4]}
end

local function ledger_record(K, A)
  return ledger_record_find(K, A) or ledger_record_write(K, A)
end
