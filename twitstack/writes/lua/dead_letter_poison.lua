-- Dead-letter a poison message (it crashed its consumer too often) and, in the same atomic
-- step, flag the request it carried: approved -> needs_review, or recorded as needs_review if
-- the ledger never held it. An approved request whose only trigger is dead-lettered would
-- otherwise wait for ever; a request in any other state is left to its own machinery.
-- KEYS: 1-6 as ledger_transition, 7 processing list, 8 dead-letter list, 9 crash counts hash
-- ARGV: 1-22 as ledger_transition (approved -> needs_review), 23-34 as ledger_record (the
--       needs_review copy), 35 raw message, 36 dead-letter record json, 37 sha1 of the message
-- Returns {1 if dead-lettered by this call else 0, 'ok' | 'recorded' | 'tombstoned' | a
-- transition status}.
--#include record_core
--#include transition_core
if redis.call('LREM', KEYS[7], 1, ARGV[35]) == 0 then return {0, ''} end
redis.call('RPUSH', KEYS[8], ARGV[36])
redis.call('HDEL', KEYS[9], ARGV[37])
if redis.call('EXISTS', KEYS[1]) == 0 then
  local R = {}
  for i = 1, 12 do R[i] = ARGV[22 + i] end
  local recorded = ledger_record({KEYS[1], KEYS[2], KEYS[3], KEYS[4]}, R)
  -- A tombstoned id (finished, hash gone) is not recorded again: nothing to flag.
  if recorded[1] ~= 'created' then return {1, 'tombstoned'} end
  return {1, 'recorded'}
end
local moved = ledger_transition(KEYS, ARGV)
return {1, moved[1]}
