-- Give back a reservation whose request got no rate-limit headers. KEYS: 1 budget hash,
-- then optionally spend_core's S[1..2] with ARGV account, action, charged micro-USD, day ttl,
-- month ttl: the charge is refunded too (only for a request that never reached X).
--#include budget_core
--#include spend_core
budget_retire(KEYS[1])
if KEYS[2] then
  spend_add({KEYS[2], KEYS[3]}, {ARGV[1], ARGV[2], ARGV[3], '', '', '', '', ARGV[4], ARGV[5]},
    -tonumber(ARGV[3]), {false, false})
end
return 1
