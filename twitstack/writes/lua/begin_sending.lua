-- The writer's first step for an approved message it verified: record it (once), reserve
-- rate-limit room, and commit approved -> sending, all in one atomic call.
-- KEYS: 1-6 as ledger_transition, 7 window budget, 8 24-hour budget, 9 in-flight counter
-- ARGV: 1-22 as ledger_transition (approved -> sending at the expected revision),
--       23-34 as ledger_record (A[1..12]), 35 the message bytes the caller verified,
--       36 now (epoch s), 37 in-flight counter ttl ms
-- Returns {outcome, 'created'|'exists', state|blocked-until, revision, attempt}; outcome is
-- 'ok' (sending committed), 'blocked' (no room: still approved), 'differs' (the ledger holds
-- another state, revision or content than the message: the caller reads it), or a
-- transition status.
--#include record_core
--#include budget_core
--#include transition_core
local R = {}
for i = 1, 12 do R[i] = ARGV[22 + i] end
local recorded = ledger_record({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, R)
local found = redis.call('HMGET', KEYS[1], 'state', 'revision', 'request')
-- The approval the caller verified covers this exact message: go on only if the ledger holds
-- that message (as taken, or as the ledger encodes it), approved, at that revision.
if found[1] ~= 'approved' or found[2] ~= ARGV[4]
    or (found[3] ~= ARGV[35] and found[3] ~= R[2]) then
  return {'differs', recorded[1], found[1] or '', found[2] or '0', '0'}
end
local blocked = budget_reserve({KEYS[7], KEYS[8]}, KEYS[9], ARGV[36], ARGV[37])
if blocked ~= '0' then return {'blocked', recorded[1], blocked, found[2], '0'} end
local moved = ledger_transition(KEYS, ARGV)
-- Refused (e.g. a spent approval): give the reservation back, nothing goes to X.
if moved[1] ~= 'ok' and redis.call('DECR', KEYS[9]) < 0 then redis.call('SET', KEYS[9], 0) end
return {moved[1], recorded[1], moved[2], moved[3], moved[4]}
