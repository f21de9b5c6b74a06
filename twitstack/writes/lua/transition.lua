-- One compare-and-set transition of the ledger (see transition_core.lua for KEYS and ARGV).
--#include transition_core
return ledger_transition(KEYS, ARGV)
