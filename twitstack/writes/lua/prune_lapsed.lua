-- Drop the index entries of terminal requests whose hash has lapsed (see transition_core.lua's
-- ledger_prune_lapsed).
-- KEYS: 1 retention zset. ARGV: 1 now (epoch ms), 2 at most this many, 3 state index prefix,
-- 4 request hash prefix, 5 terminal states (space separated).
-- Returns how many retention entries it took.
--#include transition_core
return ledger_prune_lapsed(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5])
