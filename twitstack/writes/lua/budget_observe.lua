-- Record X's rate-limit headers (see budget_core.lua for ARGV).
-- KEYS: 1 budget hash, 2-3 the old layout's window and 24-hour hashes (read once, to migrate)
--#include budget_core
return budget_observe(KEYS[1], KEYS[2], KEYS[3], ARGV)
