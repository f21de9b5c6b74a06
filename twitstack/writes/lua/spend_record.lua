-- Record a billed call that no budget check preceded (a retry, a read-back, a refresh): X
-- bills it whatever the budget says. KEYS: spend_core's S; ARGV: spend_core's P.
-- Returns spend_reply (blocked is always '').
--#include spend_core
local state = spend_state(KEYS, ARGV)
state.blocked = ''
-- A record never ends a budget hold: only a granted send does.
spend_charge(KEYS, ARGV, state, true)
return spend_reply(state)
