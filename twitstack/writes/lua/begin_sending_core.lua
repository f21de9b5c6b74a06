-- The writer's first step for an approved message it verified: record it (once), reserve
-- rate-limit room and spend budget, and commit approved -> sending, charging the spend
-- ledger, all in one atomic call (so replicas never spend past a cap between a check and a
-- charge). With require_approval = false a pending message takes the same step,
-- auto-approved on the way (pending -> approved, its own event), instead of a record, a move
-- and two reads apart. The ledger is read once (one EXISTS, and one HMGET of a record that
-- exists), and a new record is written once, already moved (see ledger_transition's `fresh`).
-- KEYS: 1-6 as ledger_transition, 7-9 as budget_reserve's K (budget hash, old window hashes),
--       10-14 spend_core's S
-- ARGV: 1-22 as ledger_transition (approved -> sending at the expected revision),
--       23-34 as ledger_record (A[1..12]), 35 the message bytes the caller verified,
--       36 now (epoch s), 37 in-flight counter ttl ms, 38-48 spend_core's P; the last:
--       auto-approve a pending one '1'/'0' (last, so the arguments of the steps before it
--       keep their places)
-- Returns {outcome, 'created'|'exists', state|blocked-until, revision, attempt,
-- 'auto'|'', spend_reply...}; outcome is 'ok' (sending committed and charged), 'blocked'
-- (no rate-limit room: still approved), 'budget' (a spend cap would be passed: still
-- approved, the account paused with reason budget until the period ends), 'differs' (the
-- ledger holds another state, revision or content than the message: the caller reads it),
-- 'unreadable' (the held record's field named third cannot be moved: nothing written), or a
-- transition status. 'auto' says this call moved it pending -> approved (reason
-- auto_approved).
--#include record_core
--#include budget_core
--#include transition_core
--#include spend_core
local function begin_sending(KEYS, ARGV)
  local R = {}
  for i = 1, 12 do R[i] = ARGV[22 + i] end
  local RK = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
  -- One EXISTS over the hash and the tombstone: neither is the usual case of a message no one
  -- recorded yet. Otherwise one HMGET reads all the moves below need; a hash found there and
  -- a count of 1 also says there is no tombstone.
  local count = redis.call('EXISTS', KEYS[1], LEDGER_TOMBSTONE_PREFIX .. R[1])
  local existing, known, untombstoned = nil, nil, count == 0
  if count > 0 then
    known = redis.call('HMGET', KEYS[1], 'state', 'revision', 'attempt', 'created_ms',
      'request', 'spent_nonce')
    if known[1] then
      existing = {'exists', known[1], known[2]}
      untombstoned = count == 1
    else
      -- A tombstone alone, or a hash without a state: found as a record would find them.
      existing = ledger_record_find(RK, R)
    end
  end
  local created = not existing
  local recorded = created and 'created' or 'exists'
  -- A new record is written once this call knows where it goes: moved on by the transition
  -- below (one HSET, one index entry, its two events), or as it is where the call stops short.
  local fresh = nil
  if created then
    fresh = {A = R, fields = ledger_record_fields(R),
      write = function() ledger_record_write(RK, R) end,
      event = function() ledger_record_event(RK, R) end}
    known = {R[3], R[4], '0', R[5], R[2], false}
    untombstoned = true
  end
  local function record_as_is()
    if fresh then fresh.write() end
    fresh = nil
  end
  local found = {known[1], known[2], known[5]}
  -- The approval the caller verified covers this exact message: go on only if the ledger holds
  -- that message (as taken, or as the ledger encodes it), approved, at that revision.
  local wanted = (ARGV[#ARGV] == '1' and found[1] == 'pending') and 'pending' or 'approved'
  if found[1] ~= wanted or found[2] ~= ARGV[4]
      or (found[3] ~= ARGV[35] and found[3] ~= R[2]) then
    record_as_is()
    return {'differs', recorded, found[1] or '', found[2] or '0', '0', ''}
  end
  -- A held record whose attempt count the move below cannot take (HINCRBY refuses it: junk
  -- written by hand) would stop this script midway, and a script keeps what it wrote before an
  -- error: the reservation, here. Refused before any write instead, for the caller to
  -- quarantine, as is a created_ms that is no epoch ms (junk too); the ledger itself writes
  -- plain integers there (an attempt below 15 digits is bumped without HINCRBY).
  if not fresh then
    local attempt, created_ms = known[3] or '0', known[4]
    if not (string.match(attempt, '^%d+$') and #attempt < 15) then
      return {'unreadable', recorded, 'attempt', found[2], '0', ''}
    end
    if not (created_ms and string.match(created_ms, '^%d+$') and #created_ms < 16) then
      return {'unreadable', recorded, 'created_ms', found[2], '0', ''}
    end
  end
  local auto = ''
  if wanted == 'pending' then
    -- The same move a separate auto-approval makes: pending -> approved at this revision,
    -- nothing else changed, nothing dispatched (this call goes on to send it).
    local A = {}
    for i = 1, 22 do A[i] = ARGV[i] end
    A[2], A[3], A[6], A[9], A[13] = 'pending', 'approved', 'auto_approved', '', '0'
    A[15], A[16], A[17], A[18], A[20] = '0', '', '', 'none', ''
    -- A new record stays unwritten (defer): the sending move below, or record_as_is, creates
    -- it once, with this move's event after its own.
    local approved, moved_fresh = ledger_transition(KEYS, A,
      {fresh = fresh, found = known, untombstoned = untombstoned, defer = true})
    fresh = moved_fresh  -- nil when the move wrote the record (moved or not)
    if approved[1] ~= 'ok' then
      return {'differs', recorded, approved[2], approved[3], approved[4], ''}
    end
    -- That move changed the state alone.
    known = {'approved', known[2], known[3], known[4], known[5], known[6]}
    auto = 'auto'
  end
  local S = {KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]}
  local P = {}
  for i = 1, 11 do P[i] = ARGV[37 + i] end
  local spend = spend_state(S, P)
  local function answer(head)
    for _, v in ipairs(spend_reply(spend)) do head[#head + 1] = v end
    return head
  end
  if spend.blocked ~= '' then
    record_as_is()
    return answer({'budget', recorded, spend_pause(S, P, spend), found[2], '0', auto})
  end
  local blocked = budget_reserve({KEYS[7], KEYS[8], KEYS[9]}, ARGV[36], ARGV[37])
  if blocked ~= '0' then
    record_as_is()
    return answer({'blocked', recorded, blocked, found[2], '0', auto})
  end
  local moved = ledger_transition(KEYS, ARGV,
    {fresh = fresh, found = known, untombstoned = untombstoned})
  if moved[1] == 'ok' then
    spend_charge(S, P, spend)
  else
    -- Refused (e.g. a spent approval): give the reservation back, nothing goes to X.
    budget_retire(KEYS[7])
  end
  return answer({moved[1], recorded, moved[2], moved[3], moved[4], auto})
end
