-- Record X's rate-limit headers (see budget_core.lua for ARGV).
-- KEYS: 1 window budget, 2 24-hour budget, 3 in-flight counter
--#include budget_core
return budget_observe(KEYS[1], KEYS[2], KEYS[3], ARGV)
