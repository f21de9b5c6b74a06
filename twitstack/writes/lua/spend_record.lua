-- Record a billed call that no budget check preceded (a retry, a read-back, a refresh): X
-- bills it whatever the budget says. KEYS: spend_core's S; ARGV: spend_core's P.
-- Returns spend_reply (blocked is always '').
--#include spend_core
local state = spend_state(KEYS, ARGV)
state.blocked = ''
spend_add(KEYS, ARGV, tonumber(ARGV[3]))
for i = 1, 4 do state.spent[i] = state.spent[i] + tonumber(ARGV[3]) end
return spend_reply(state)
