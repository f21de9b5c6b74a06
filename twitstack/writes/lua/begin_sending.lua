-- The writer's first step for an approved message it verified: record it (once), reserve
-- rate-limit room and spend budget, and commit approved -> sending, charging the spend
-- ledger, all in one atomic call (so replicas never spend past a cap between a check and a
-- charge). With require_approval = false a pending message takes the same step,
-- auto-approved on the way (pending -> approved, its own event), instead of a record, a move
-- and two reads apart.
-- KEYS: 1-6 as ledger_transition, 7 window budget, 8 24-hour budget, 9 in-flight counter,
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
-- or a transition status. 'auto' says this call moved it pending -> approved (reason
-- auto_approved).
--#include record_core
--#include budget_core
--#include transition_core
--#include spend_core
local R = {}
for i = 1, 12 do R[i] = ARGV[22 + i] end
local recorded = ledger_record({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, R)
local created = recorded[1] == 'created'
-- Just recorded: the ledger holds exactly R, no need to read it back.
local found = created and {R[3], R[4], R[2]}
  or redis.call('HMGET', KEYS[1], 'state', 'revision', 'request')
-- The approval the caller verified covers this exact message: go on only if the ledger holds
-- that message (as taken, or as the ledger encodes it), approved, at that revision.
local wanted = (ARGV[#ARGV] == '1' and found[1] == 'pending') and 'pending' or 'approved'
if found[1] ~= wanted or found[2] ~= ARGV[4]
    or (found[3] ~= ARGV[35] and found[3] ~= R[2]) then
  return {'differs', recorded[1], found[1] or '', found[2] or '0', '0', ''}
end
local auto = ''
if wanted == 'pending' then
  -- The same move a separate auto-approval makes: pending -> approved at this revision,
  -- nothing else changed, nothing dispatched (this call goes on to send it).
  local A = {}
  for i = 1, 22 do A[i] = ARGV[i] end
  A[2], A[3], A[6], A[9], A[13] = 'pending', 'approved', 'auto_approved', '', '0'
  A[15], A[16], A[17], A[18], A[20] = '0', '', '', 'none', ''
  local approved = ledger_transition(KEYS, A, created)
  if approved[1] ~= 'ok' then
    return {'differs', recorded[1], approved[2], approved[3], approved[4], ''}
  end
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
  return answer({'budget', recorded[1], spend_pause(S, P, spend), found[2], '0', auto})
end
local blocked = budget_reserve({KEYS[7], KEYS[8]}, KEYS[9], ARGV[36], ARGV[37])
if blocked ~= '0' then return answer({'blocked', recorded[1], blocked, found[2], '0', auto}) end
local moved = ledger_transition(KEYS, ARGV, created)
if moved[1] == 'ok' then
  spend_charge(S, P, spend)
elseif redis.call('DECR', KEYS[9]) < 0 then
  -- Refused (e.g. a spent approval): give the reservation back, nothing goes to X.
  redis.call('SET', KEYS[9], 0)
end
return answer({moved[1], recorded[1], moved[2], moved[3], moved[4], auto})
