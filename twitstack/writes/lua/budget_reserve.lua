-- Reserve room for one request and, given spend keys, check and charge its spend (see
-- budget_core.lua, spend_core.lua).
-- KEYS: 1 budget hash, 2-3 the old layout's window and 24-hour hashes (read once, to migrate),
--       4-8 spend_core's S (optional)
-- ARGV: 1 now (epoch s), 2 in-flight ttl ms, 3-13 spend_core's P (with the S keys)
-- Returns '0' (granted) or the reset it is blocked until; with spend keys,
-- {'0' granted and charged | blocked-until | 'budget', budget end, spend_reply...}.
--#include budget_core
--#include spend_core
local K = {KEYS[1], KEYS[2], KEYS[3]}
if KEYS[4] == nil then return budget_reserve(K, ARGV[1], ARGV[2]) end
local S = {KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]}
local P = {}
for i = 1, 11 do P[i] = ARGV[2 + i] end
local spend = spend_state(S, P)
local head
if spend.blocked ~= '' then
  head = {'budget', spend_pause(S, P, spend)}
else
  local blocked = budget_reserve(K, ARGV[1], ARGV[2])
  if blocked == '0' then spend_charge(S, P, spend) end
  head = {blocked, '0'}
end
for _, v in ipairs(spend_reply(spend)) do head[#head + 1] = v end
return head
