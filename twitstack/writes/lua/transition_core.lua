-- ledger_transition(K, A, O): compare-and-set one request's state, move its index entry and
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
-- state (see ledger_guards.lua).
-- O (optional), what the caller already knows:
--   untombstoned    the id has no tombstone (the caller looked in this same call), so it need
--                   not be looked up again;
--   found           the hash's state, revision, attempt, created_ms, request and spent_nonce,
--                   read in this same call (so not read again);
--   fresh           a record this call found free to create (record_core's ledger_record_find)
--                   but has not written yet: {A = its ledger_record arguments, fields = its
--                   hash fields, write = a function creating it as it is, event = one appending
--                   its creation event}. The move starts from it; if the move is refused it is
--                   created as it is, else it is created already moved: one HSET, its index
--                   entry straight in the new state, its creation event then the move's (one
--                   event per state change);
--   defer           with `fresh`, a move that writes nothing but the record and its event
--                   (not into sending, not out of approved, no attempt, dispatch, expiry
--                   change or terminal state) writes nothing: it returns, after its reply,
--                   the moved record as a new `fresh` for the next move or its caller;
--   prune_elsewhere a terminal move leaves lapsed index entries to a periodic
--                   ledger_prune_lapsed (the writer's, every reconcile interval) instead of
--                   pruning a few itself.
--#include ledger_guards

-- Drop the index entries of up to `limit` terminal requests whose hash has lapsed (their
-- retention ended before `now_ms`): `retention` the retention zset, `index` the state index
-- prefix, `hashes` the request hash prefix, `terminals` the terminal states (space
-- separated). Returns how many retention entries it took.
local function ledger_prune_lapsed(retention, now_ms, limit, index, hashes, terminals)
  local lapsed = redis.call('ZRANGEBYSCORE', retention, '-inf', now_ms, 'LIMIT', 0, limit)
  for _, old in ipairs(lapsed) do
    if redis.call('EXISTS', hashes .. old) == 0 then
      for s in string.gmatch(terminals, '%S+') do redis.call('ZREM', index .. s, old) end
    end
    redis.call('ZREM', retention, old)
  end
  return #lapsed
end

-- Whether `stored` (a hash's `request` field, false if none) may have put its id in the
-- expiry index: only a request carrying expires_at was ever put there (record_core, or a
-- move with a new request, A[20]). The ledger stores compact JSON (twitstack.writes.wire),
-- where `"expires_at":` can only be a key (a quote inside a string is escaped), so a plain
-- find never misses one; a nested key of that name only costs a ZREM that finds nothing.
local function ledger_may_expire(stored)
  return not stored or string.find(stored, '"expires_at":', 1, true) ~= nil
end

local function ledger_transition(K, A, O)
  O = O or {}
  local fresh = O.fresh
  local found = O.found
  if fresh then
    local R = fresh.A
    found = {R[3], R[4], '0', R[5], R[2], nil}
  elseif not found then
    found = redis.call('HMGET', K[1], 'state', 'revision', 'attempt', 'created_ms',
      'request', 'spent_nonce')
  end
  local state, revision, attempt, created = found[1], found[2], found[3] or '0', found[4]
  -- The index score is created_ms as the ledger writes it (epoch ms). One ZADD refuses (junk
  -- written by hand) would stop this script after the old index entry was dropped, leaving
  -- the request in no index, where no sweep or reader finds it again: now stands in for it.
  if not (created and string.match(created, '^%d+$') and #created < 16) then created = A[8] end
  local function refuse(reply)
    if fresh then fresh.write() end
    return reply
  end
  if not state then return {'not_found', '', '0', '0'} end
  local allowed = false
  for s in string.gmatch(A[2], '%S+') do
    if s == state then allowed = true end
  end
  if not allowed then return refuse({'state_mismatch', state, revision, attempt}) end
  if A[4] ~= '' and A[4] ~= revision then
    return refuse({'revision_mismatch', state, revision, attempt})
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
    local refused, nonce = ledger_spend_approval(id, A[11], found[5], found[6],
      O.untombstoned or fresh ~= nil)
    if refused then return refuse({refused, state, revision, attempt}) end
    if nonce then change('spent_nonce', nonce) end
  elseif state == 'approved' and to ~= 'approved' then
    -- Edited, rejected, expired or held for review: this approval may never be sent.
    ledger_revoke_approval(found[5], A[11])
  end
  -- A move of a fresh record that writes nothing but the record and its event can stay
  -- unwritten too (O.defer): the next move, or the caller, creates the record once.
  local deferred = fresh and O.defer and to ~= 'sending' and state ~= 'approved'
    and A[15] ~= '1' and A[18] == 'none' and A[20] == '' and A[13] ~= '1'
  if not fresh then redis.call('ZREM', A[14] .. state, id) end
  if not deferred then redis.call('ZADD', A[14] .. to, created, id) end
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
  if fresh then
    -- The new record's fields, but those this move sets (one HSET for both).
    local set = {}
    for i = 1, #changed, 2 do set[changed[i]] = true end
    for i = 1, #fresh.fields, 2 do
      if not set[fresh.fields[i]] then change(fresh.fields[i], fresh.fields[i + 1]) end
    end
  end
  local function event()
    local fields = {'id', id, 'from', state, 'to', to, 'actor', A[5], 'reason', A[6],
      'time', A[7], 'revision', revision, 'attempt', attempt}
    if A[9] ~= '' then
      fields[#fields + 1] = 'result'
      fields[#fields + 1] = A[9]
    end
    redis.call('XADD', K[2], 'MAXLEN', '~', A[10], '*', unpack(fields))
  end
  if deferred then
    -- The record as this move leaves it, still to be created: its events are the record's
    -- and then this move's.
    local R = {}
    for i = 1, 12 do R[i] = fresh.A[i] end
    R[2], R[3], R[4] = A[16] ~= '' and A[16] or R[2], to, revision
    local moved = {A = R, fields = changed}
    moved.event = function()
      fresh.event()
      event()
    end
    moved.write = function()
      redis.call('HSET', K[1], unpack(changed))
      redis.call('ZADD', A[14] .. to, created, id)
      if R[11] ~= '' then redis.call('ZADD', K[3], R[11], id) end
      if R[12] ~= '' then redis.call('ZADD', K[4], R[12], id) end
      moved.event()
    end
    return {'ok', state, revision, attempt}, moved
  end
  redis.call('HSET', K[1], unpack(changed))
  -- Only approved requests wait in the schedule; a move out of approved cancels a pending
  -- promotion (no other state is ever scheduled).
  local cancels = state == 'approved' and to ~= 'approved'
  if fresh then
    -- Nothing scheduled it yet: it is scheduled only if its record would be and stays so.
    if fresh.A[11] ~= '' and not cancels then redis.call('ZADD', K[3], fresh.A[11], id) end
    if fresh.A[12] ~= '' then redis.call('ZADD', K[4], fresh.A[12], id) end
    fresh.event()
  elseif cancels then
    redis.call('ZREM', K[3], id)
  end
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
    -- The approval it spent is done with: its key now holds the final state, no longer the id
    -- that a re-send of the same record (a 429, a reconciliation) may spend it again for.
    -- Else a hash put back in approved by hand, its tombstone deleted, was sent again.
    if found[6] then
      redis.call('SET', LEDGER_SPENT_PREFIX .. found[6], to, 'XX', 'KEEPTTL')
    end
    -- An expiry entry left here (for an id that is done) would sit among the due ones for ever.
    if (A[20] ~= '' and A[20] ~= '-') or (A[20] == '' and ledger_may_expire(found[5])) then
      redis.call('ZREM', K[4], id)
    end
    redis.call('EXPIRE', K[1], A[11])
    redis.call('ZADD', K[5], A[12], id)
    -- Drop index entries of terminal requests whose hash has lapsed (a few per call).
    if not O.prune_elsewhere then ledger_prune_lapsed(K[5], A[8], 20, A[14], A[21], A[22]) end
  end
  event()
  return {'ok', state, revision, attempt}
end
