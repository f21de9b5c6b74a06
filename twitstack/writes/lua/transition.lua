-- One compare-and-set transition of the ledger (see transition_core.lua for KEYS and ARGV).
-- ARGV 23 (optional): the attempt the caller's decision was made on. A reconciler that read a
-- request in `unknown`, then looked at X, must not apply its verdict to a later attempt that
-- went `unknown` meanwhile (that attempt's post was never looked for): 'attempt_mismatch'.
--#include transition_core
if ARGV[23] ~= nil and ARGV[23] ~= '' then
  local found = redis.call('HMGET', KEYS[1], 'state', 'revision', 'attempt')
  if found[1] and (found[3] or '0') ~= ARGV[23] then
    return {'attempt_mismatch', found[1], found[2] or '0', found[3] or '0'}
  end
end
return ledger_transition(KEYS, ARGV)
