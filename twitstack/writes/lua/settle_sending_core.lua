-- The writer's last step for one request: record X's rate-limit headers, claim the post X
-- created, make the ledger transition, and ack the queue message, all in one atomic call (no
-- acked-but-unsettled gap, and the claim is taken before `executed` is recorded).
-- KEYS: 1-6 as ledger_transition, 7-9 as budget_observe's (budget hash, old window hashes),
--       10 processing list, 11 crash counts hash, 12 post claim or '' (none)
-- ARGV: 1-22 as ledger_transition, 23 observe '1'/'0', 24-31 as budget_observe's A[1..8],
--       32 the message to ack or '' (none), 33 its sha1, 34 claim ttl s
-- Returns {status, state found, revision, attempt, window remaining, daily remaining,
-- the claim's holder or ''}.
--#include budget_core
--#include transition_core
local function settle_sending(KEYS, ARGV)
  -- A claim is first-come and never moves (see twitstack/writes/claims.py).
  -- One SET NX GET (Redis 7) takes a free claim or names its holder, leaving it as it is.
  local holder = ''
  if KEYS[12] ~= '' then
    holder = redis.pcall('SET', KEYS[12], ARGV[1], 'NX', 'GET', 'EX', ARGV[34])
    if type(holder) == 'table' and string.find(tostring(holder.err), 'WRONGTYPE', 1, true) then
      -- A key of another type (written by hand) names no request: no claim. Dropped and taken,
      -- or this settle (after X's 201) would stop here on every try.
      redis.call('DEL', KEYS[12])
      holder = redis.call('SET', KEYS[12], ARGV[1], 'NX', 'GET', 'EX', ARGV[34])
    end
    holder = holder or ARGV[1]
  end
  local seen = {-1, -1}
  if ARGV[23] == '1' then
    local O = {}
    for i = 1, 8 do O[i] = ARGV[23 + i] end
    seen = budget_observe(KEYS[7], KEYS[8], KEYS[9], O)
  end
  -- The writer prunes lapsed index entries on its own clock (sweeps.prune_lapsed), not per job.
  local moved = ledger_transition(KEYS, ARGV, {prune_elsewhere = true})
  -- The ledger is the truth, so the message is done with whether or not this call moved it.
  if ARGV[32] ~= '' then
    redis.call('LREM', KEYS[10], 1, ARGV[32])
    redis.call('HDEL', KEYS[11], ARGV[33])
  end
  return {moved[1], moved[2], moved[3], moved[4], seen[1], seen[2], holder}
end
