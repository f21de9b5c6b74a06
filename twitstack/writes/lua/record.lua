-- Record a request once (see record_core.lua for KEYS and ARGV).
--#include record_core
return ledger_record(KEYS, ARGV)
