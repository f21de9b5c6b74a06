-- One request's step: see begin_sending_core.lua (the group-commit batch runs the same core).
--#include begin_sending_core
return begin_sending(KEYS, ARGV)
