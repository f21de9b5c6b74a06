-- ledger_transition(K, A): compare-and-set one request's state, move its index entry and
-- append the event, atomically.
-- K: 1 request hash, 2 events stream, 3 schedule zset, 4 expiry zset, 5 retention zset,
--    6 write queue
-- A: 1 id, 2 allowed from-states (space separated), 3 to-state, 4 expected revision or '',
--    5 actor, 6 reason, 7 now_iso, 8 now_ms, 9 result json or '', 10 events maxlen,
--    11 retention s, 12 retention-until ms, 13 terminal '1'/'0', 14 state index prefix,
--    15 bump attempt '1'/'0', 16 new request json or '', 17 new revision or '',
--    18 dispatch 'none'|'queue'|'schedule', 19 schedule due ms, 20 expires ms, '' or '-',
--    21 request hash prefix, 22 terminal states (space separated)
-- Returns {status, state found, revision, attempt}; status 'spent' or 'tombstoned' refuses a
-- move into sending whose approval was already used or revoked, or whose id reached a final
-- state (see ledger_guards.lua). `created_here`: the caller recorded the request in this same
-- call (ledger_record found no tombstone), so the tombstone need not be looked up again.
--#include ledger_guards
local function ledger_transition(K, A, created_here)
  local found = redis.call('HMGET', K[1], 'state', 'revision', 'attempt', 'created_ms',
    'request', 'spent_nonce')
  local state, revision, attempt, created = found[1], found[2], found[3] or '0', found[4]
  if not state then return {'not_found', '', '0', '0'} end
  local allowed = false
  for s in string.gmatch(A[2], '%S+') do
    if s == state then allowed = true end
  end
  if not allowed then return {'state_mismatch', state, revision, attempt} end
  if A[4] ~= '' and A[4] ~= revision then
    return {'revision_mismatch', state, revision, attempt}
  end
  local bumped = nil
  if A[15] == '1' then
    -- Counted here, before anything is written; a count that is not a plain integer is left
    -- to HINCRBY, whose error (or answer) it has always been.
    if string.match(attempt, '^%d+$') and #attempt < 15 then
      bumped = tostring(tonumber(attempt) + 1)
    else
      bumped = tostring(redis.call('HINCRBY', K[1], 'attempt', 1))
    end
  end
  local id, to = A[1], A[3]
  -- Every field this move changes, written by one HSET.
  local changed = {'state', to, 'updated_at', A[7], 'last_actor', A[5], 'last_reason', A[6]}
  local function change(field, value)
    changed[#changed + 1] = field
    changed[#changed + 1] = value
  end
  if to == 'sending' then
    local refused, nonce = ledger_spend_approval(id, A[11], found[5], found[6], created_here)
    if refused then return {refused, state, revision, attempt} end
    if nonce then change('spent_nonce', nonce) end
  elseif state == 'approved' and to ~= 'approved' then
    -- Edited, rejected, expired or held for review: this approval may never be sent.
    ledger_revoke_approval(found[5], A[11])
  end
  redis.call('ZREM', A[14] .. state, id)
  redis.call('ZADD', A[14] .. to, created, id)
  if bumped then
    attempt = bumped
    change('attempt', attempt)
    change('sending_started_at', A[7])
  end
  if A[9] ~= '' then change('result', A[9]) end
  if A[16] ~= '' then change('request', A[16]) end
  if A[17] ~= '' then
    revision = A[17]
    change('revision', revision)
  end
  redis.call('HSET', K[1], unpack(changed))
  -- Only approved requests wait in the schedule; a move out of approved cancels a pending
  -- promotion (no other state is ever scheduled).
  if state == 'approved' and to ~= 'approved' then redis.call('ZREM', K[3], id) end
  if A[18] == 'queue' then
    redis.call('RPUSH', K[6], A[16] ~= '' and A[16] or found[5])
  elseif A[18] == 'schedule' then
    redis.call('ZADD', K[3], A[19], id)
  end
  if A[20] == '-' then
    redis.call('ZREM', K[4], id)
  elseif A[20] ~= '' then
    redis.call('ZADD', K[4], A[20], id)
  end
  if A[13] == '1' then
    redis.call('SET', LEDGER_TOMBSTONE_PREFIX .. id, to, 'EX', ledger_guard_ttl(A[11]))
    redis.call('ZREM', K[4], id)
    redis.call('EXPIRE', K[1], A[11])
    redis.call('ZADD', K[5], A[12], id)
    -- Drop index entries of terminal requests whose hash has lapsed (a few per call).
    local lapsed = redis.call('ZRANGEBYSCORE', K[5], '-inf', A[8], 'LIMIT', 0, 20)
    for _, old in ipairs(lapsed) do
      if redis.call('EXISTS', A[21] .. old) == 0 then
        for s in string.gmatch(A[22], '%S+') do redis.call('ZREM', A[14] .. s, old) end
      end
      redis.call('ZREM', K[5], old)
    end
  end
  local fields = {'id', id, 'from', state, 'to', to, 'actor', A[5], 'reason', A[6],
    'time', A[7], 'revision', revision, 'attempt', attempt}
  if A[9] ~= '' then
    fields[#fields + 1] = 'result'
    fields[#fields + 1] = A[9]
  end
  redis.call('XADD', K[2], 'MAXLEN', '~', A[10], '*', unpack(fields))
  return {'ok', state, revision, attempt}
end
