-- One request's step: see settle_sending_core.lua (the group-commit batch runs the same core).
--#include settle_sending_core
return settle_sending(KEYS, ARGV)
