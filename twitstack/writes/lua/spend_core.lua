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
-- The hot path costs 5 reads (HMGET x4, HGET) and one HSET per rollup, plus an EXPIRE when a
-- period's rollup is new: the rollups' HMGET reads every field the charge changes, so the
-- charge writes the sums (atomic like HINCRBY: nothing runs between inside one script), and
-- errors are caught with pcall instead of asking TYPE first.

local function spend_int(raw)
  if type(raw) ~= 'string' or #raw > 15 or not raw:match('^%d+$') then return nil end
  return tonumber(raw)
end

local function spend_failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

-- A count as Redis stores it: Lua 5.1's tostring writes 1e+15 and up in exponent form.
local function spend_text(n)
  return string.format('%.0f', n)
end

-- The counts of `fields` in rollup `key` (0 when absent); {counts, junk, new, bad}; `new`:
-- none of the totals (all fields but the last) is there yet. A key of another type is renamed
-- aside; a field that is not a count reads as 0 and is reset to 0,
-- except the last one (P's action): `bad` says it was junk, counted when a charge writes it.
local function spend_counts(key, fields)
  local got = redis.pcall('HMGET', key, unpack(fields))
  if spend_failed(got) then
    redis.call('RENAME', key, key .. ':junk')
    local zeros = {}
    for i = 1, #fields do zeros[i] = 0 end
    return zeros, 1, true, false
  end
  local counts, junk, new, bad = {}, 0, true, false
  for i = 1, #fields do
    if got[i] then
      if i < #fields then new = false end
      counts[i] = spend_int(got[i])
      if counts[i] == nil then
        counts[i] = 0
        if i == #fields then
          bad = true
        else
          redis.call('HSET', key, fields[i], '0')
          junk = junk + 1
        end
      end
    else
      counts[i] = 0
    end
  end
  return counts, junk, new, bad
end

-- The state of the four budgets of P[1]: spent and cap each (cap -1 = none), the first one
-- the cost would exceed ('' when none), the junk figure, and what the charge needs.
local function spend_state(S, P)
  local fields = {P[1] .. '|*', '*|*', P[1] .. '|' .. P[2]}
  local day, junk_d, new_d, bad_d = spend_counts(S[1], fields)
  local month, junk_m, new_m, bad_m = spend_counts(S[2], fields)
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
                 new = {new_d, new_m}, pause = pause, action = {day[3], month[3]},
                 bad = {bad_d, bad_m}}
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

-- Add `cost` to P's account and action in both rollups without reading them first (a refund:
-- HINCRBY per field); `new` says which rollup this period has not seen yet (its lifetime
-- starts now). Returns the junk figure.
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
  -- spend_state read every field this writes, and left each rollup a hash (or no key).
  for i = 1, 2 do
    redis.call('HSET', S[i], P[1] .. '|' .. P[2], spend_text(state.action[i] + cost),
      P[1] .. '|*', spend_text(state.spent[i] + cost), '*|*', spend_text(state.spent[2 + i] + cost))
    if state.new[i] then redis.call('EXPIRE', S[i], P[7 + i]) end
    if state.bad[i] then state.junk = state.junk + 1 end
  end
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
  for i = 1, 4 do out[#out + 1] = spend_text(state.spent[i]) end
  for i = 1, 4 do out[#out + 1] = spend_text(state.cap[i]) end
  return out
end
