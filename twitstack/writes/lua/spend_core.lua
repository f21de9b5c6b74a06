-- The X spend ledger and its budget caps (twitstack/writes/spend.py), shared by every writer.
-- S: 1 day rollup, 2 month rollup (hashes of micro-USD: '<account>|<action>', '<account>|*',
--    '*|*'), 3 caps raised for this day, 4 for this month (hashes '<account>' or '*' ->
--    micro-USD; the higher of a raised and the configured cap applies), 5 the account's pause.
-- P: 1 account, 2 action, 3 cost (micro-USD, an integer), 4-7 configured caps: account day,
--    account month, total day, total month ('' = no cap), 8 day ttl s, 9 month ttl s,
--    10 end of the day, 11 end of the month (epoch s).
-- Hostile values never raise here (an error would refuse every request of the account): a
-- rollup of another type is renamed aside to '<key>:junk', a count that is not an integer is
-- reset to 0, a raised cap that is not an integer is ignored; each sets the junk flag the
-- writer logs and counts.

local function spend_int(raw)
  if type(raw) ~= 'string' or #raw > 15 or not raw:match('^%d+$') then return nil end
  return tonumber(raw)
end

local function spend_rollup_clean(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'hash' and kind ~= 'none' then
    redis.call('RENAME', key, key .. ':junk')
    return 1
  end
  return 0
end

local function spend_count(key, field)
  local raw = redis.call('HGET', key, field)
  if not raw then return 0, 0 end
  local n = spend_int(raw)
  if n == nil then
    redis.call('HSET', key, field, '0')
    return 0, 1
  end
  return n, 0
end

-- The state of the four budgets of P[1]: spent and cap each (cap -1 = none), the first one
-- the cost would exceed ('' when none) and the junk flag.
local function spend_state(S, P)
  local junk = spend_rollup_clean(S[1]) + spend_rollup_clean(S[2])
  local raised = {}
  local where = {{S[3], P[1]}, {S[4], P[1]}, {S[3], '*'}, {S[4], '*'}}
  for i = 1, 4 do
    local kind = redis.call('TYPE', where[i][1])['ok']
    if kind == 'hash' then
      local got = redis.call('HGET', where[i][1], where[i][2])
      if got then
        raised[i] = spend_int(got)
        if raised[i] == nil then junk = junk + 1 end
      end
    elseif kind ~= 'none' then
      junk = junk + 1
    end
  end
  local fields = {{S[1], P[1] .. '|*'}, {S[2], P[1] .. '|*'}, {S[1], '*|*'}, {S[2], '*|*'}}
  local scopes = {'account|day', 'account|month', 'total|day', 'total|month'}
  local state = {spent = {}, cap = {}, blocked = '', junk = 0}
  local cost = tonumber(P[3])
  for i = 1, 4 do
    local spent, bad = spend_count(fields[i][1], fields[i][2])
    junk = junk + bad
    local cap = spend_int(P[3 + i]) or -1
    if raised[i] ~= nil and raised[i] > cap then cap = raised[i] end
    state.spent[i] = spent
    state.cap[i] = cap
    if state.blocked == '' and cap >= 0 and spent + cost > cap then state.blocked = scopes[i] end
  end
  state.junk = junk
  return state
end

local function spend_add(S, P, cost)
  for i = 1, 2 do
    local key = S[i]
    spend_rollup_clean(key)
    for _, field in ipairs({P[1] .. '|' .. P[2], P[1] .. '|*', '*|*'}) do
      spend_count(key, field)
      redis.call('HINCRBY', key, field, cost)
    end
    redis.call('EXPIRE', key, P[7 + i])
  end
end

-- Charge P[3] and return the reply tail after it (see spend_reply).
local function spend_charge(S, P, state)
  local cost = tonumber(P[3])
  spend_add(S, P, cost)
  for i = 1, 4 do state.spent[i] = state.spent[i] + cost end
  -- Spending again: a budget pause this account carried is over (a raised cap, a new period).
  if redis.call('TYPE', S[5])['ok'] == 'hash' and redis.call('HGET', S[5], 'reason') == 'budget' then
    redis.call('DEL', S[5])
  end
end

-- Hold the account with reason 'budget' until the blocking period ends; another pause
-- (credentials, usage cap) is left as it is. Returns that end.
local function spend_pause(S, P, state)
  local period = state.blocked:match('|(%a+)$')
  local untl = period == 'day' and P[10] or P[11]
  local kind = redis.call('TYPE', S[5])['ok']
  if kind == 'none' or (kind == 'hash' and redis.call('HGET', S[5], 'reason') == 'budget') then
    redis.call('HSET', S[5], 'reason', 'budget', 'until', untl, 'budget', state.blocked)
  end
  return untl
end

-- {blocked scope, junk, spent 1-4, cap 1-4}: what the writer's gauges show.
local function spend_reply(state)
  local out = {state.blocked, tostring(state.junk)}
  for i = 1, 4 do out[#out + 1] = tostring(state.spent[i]) end
  for i = 1, 4 do out[#out + 1] = tostring(state.cap[i]) end
  return out
end
