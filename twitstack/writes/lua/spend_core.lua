-- The X spend ledger and its budget caps (twitstack/writes/spend.py), shared by every writer.
-- S: 1 day rollup, 2 month rollup (hashes of micro-USD: '<account>|<action>', '<account>|*',
--    '*|*'), 3 caps raised for this day, 4 for this month (hashes '<account>' or '*' ->
--    micro-USD; the higher of a raised and the configured cap applies), 5 the account's pause.
-- P: 1 account, 2 action, 3 cost (micro-USD, an integer), 4-7 configured caps: account day,
--    account month, total day, total month ('' = no cap), 8 day ttl s, 9 month ttl s,
--    10 end of the day, 11 end of the month (epoch s).
-- Hostile values never raise here (an error would refuse every request of the account): a
-- rollup of another type is renamed aside to '<key>:junk', a count that is not an integer is
-- reset, a raised cap that is not an integer (or a caps key of another type) is ignored, a
-- pause key of another type is left alone; each counts in the junk figure the writer logs.
-- The hot path costs 5 reads (HMGET x4, HGET) and 6 HINCRBY, plus EXPIREs when a period's
-- rollup is new: errors are caught with pcall instead of asking TYPE first.

local function spend_int(raw)
  if type(raw) ~= 'string' or #raw > 15 or not raw:match('^%d+$') then return nil end
  return tonumber(raw)
end

local function spend_failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

-- The counts of `fields` in rollup `key` (0 when absent); {counts, junk, new}. A key of
-- another type is renamed aside; a field that is not a count is reset to 0.
local function spend_counts(key, fields)
  local got = redis.pcall('HMGET', key, unpack(fields))
  if spend_failed(got) then
    redis.call('RENAME', key, key .. ':junk')
    local zeros = {}
    for i = 1, #fields do zeros[i] = 0 end
    return zeros, 1, true
  end
  local counts, junk, new = {}, 0, true
  for i = 1, #fields do
    if got[i] then
      new = false
      counts[i] = spend_int(got[i])
      if counts[i] == nil then
        redis.call('HSET', key, fields[i], '0')
        counts[i] = 0
        junk = junk + 1
      end
    else
      counts[i] = 0
    end
  end
  return counts, junk, new
end

-- The state of the four budgets of P[1]: spent and cap each (cap -1 = none), the first one
-- the cost would exceed ('' when none), the junk figure, and what the charge needs.
local function spend_state(S, P)
  local mine, all = P[1] .. '|*', '*|*'
  local day, junk_d, new_d = spend_counts(S[1], {mine, all})
  local month, junk_m, new_m = spend_counts(S[2], {mine, all})
  local junk = junk_d + junk_m
  local raised = {}
  for period = 1, 2 do
    local got = redis.pcall('HMGET', S[2 + period], P[1], '*')
    if spend_failed(got) then
      junk = junk + 1
    else
      for who = 1, 2 do
        if got[who] then
          local n = spend_int(got[who])
          if n == nil then junk = junk + 1 else raised[(who - 1) * 2 + period] = n end
        end
      end
    end
  end
  local pause = redis.pcall('HGET', S[5], 'reason')
  local state = {spent = {day[1], month[1], day[2], month[2]}, cap = {}, blocked = '',
                 new = {new_d, new_m}, pause = pause}
  local scopes = {'account|day', 'account|month', 'total|day', 'total|month'}
  local cost = tonumber(P[3])
  for i = 1, 4 do
    local cap = spend_int(P[3 + i]) or -1
    if raised[i] ~= nil and raised[i] > cap then cap = raised[i] end
    state.cap[i] = cap
    if state.blocked == '' and cap >= 0 and state.spent[i] + cost > cap then
      state.blocked = scopes[i]
    end
  end
  state.junk = junk
  return state
end

-- Add `cost` to P's account and action in both rollups; `new` says which rollup this period
-- has not seen yet (its lifetime starts now). Returns the junk figure.
local function spend_add(S, P, cost, new)
  local junk = 0
  for i = 1, 2 do
    local key = S[i]
    for _, field in ipairs({P[1] .. '|' .. P[2], P[1] .. '|*', '*|*'}) do
      if spend_failed(redis.pcall('HINCRBY', key, field, cost)) then
        -- Not a count (or not a hash): set it aside and count afresh.
        if spend_failed(redis.pcall('HSET', key, field, cost)) then
          redis.call('RENAME', key, key .. ':junk')
          redis.call('HSET', key, field, cost)
          new[i] = true
        end
        junk = junk + 1
      end
    end
    if new[i] then redis.call('EXPIRE', key, P[7 + i]) end
  end
  return junk
end

-- Charge P[3]; the state's figures follow.
local function spend_charge(S, P, state)
  local cost = tonumber(P[3])
  state.junk = state.junk + spend_add(S, P, cost, state.new)
  for i = 1, 4 do state.spent[i] = state.spent[i] + cost end
  -- Spending again: a budget pause this account carried is over (a raised cap, a new period).
  if state.pause == 'budget' then redis.call('DEL', S[5]) end
end

-- Hold the account with reason 'budget' until the blocking period ends; another pause
-- (credentials, usage cap) or a key of another type is left as it is. Returns that end.
local function spend_pause(S, P, state)
  local period = state.blocked:match('|(%a+)$')
  local untl = period == 'day' and P[10] or P[11]
  if state.pause == false or state.pause == 'budget' then
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
