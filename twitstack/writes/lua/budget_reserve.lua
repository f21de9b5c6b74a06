-- Reserve room for one request (see budget_core.lua).
-- KEYS: 1 window budget, 2 24-hour budget, 3 in-flight counter; ARGV: 1 now (epoch s), 2 ttl ms
--#include budget_core
return budget_reserve({KEYS[1], KEYS[2]}, KEYS[3], ARGV[1], ARGV[2])
