-- A moderator's approval: the ledger_transition into approved, only if the stored request is
-- still byte for byte the one the moderator's client read and the server signed.
-- KEYS: 1-6 as ledger_transition
-- ARGV: 1-22 as ledger_transition, 23 the stored request json the approval was made from
-- Returns {status, state found, revision, attempt}; status 'content_mismatch' when the stored
-- request changed since it was read (even by a raw HSET that bumped no revision).
--#include transition_core
local stored = redis.call('HMGET', KEYS[1], 'request', 'state', 'revision', 'attempt')
if stored[2] and stored[1] ~= ARGV[23] then
  return {'content_mismatch', stored[2], stored[3] or '0', stored[4] or '0'}
end
return ledger_transition(KEYS, ARGV)
