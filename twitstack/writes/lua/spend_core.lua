-- The X spend ledger and its budget caps (twitstack/writes/spend.py), shared by every writer.
-- S: 1 day rollup, 2 month rollup, 3 and 4 the old layout's caps raised for this day and this
--    month (hashes '<account>' or '*' -> micro-USD; read only until the period's rollup has
--    folded them in), 5 the account's pause.
-- A rollup is a hash of micro-USD: '<account>|<action>', '<account>|*', '*|*'; and, read by
-- the same HMGET: '<account>|*|cap' and '*|*|cap', caps raised for this period (the higher of
-- a raised and the configured cap applies), '<account>|*|held', set while a budget pause of
-- this period may hold the account (so the pause is read only then), and 'layout' = '2' once
-- the old caps hash of the period was folded in (migrate on read: see spend_fold).
-- P: 1 account, 2 action, 3 cost (micro-USD, an integer), 4-7 configured caps: account day,
--    account month, total day, total month ('' = no cap), 8 day ttl s, 9 month ttl s,
--    10 end of the day, 11 end of the month (epoch s).
-- Hostile values never raise here (an error would refuse every request of the account): a
-- rollup of another type is left as it is for an operator and reads as totals that cannot be
-- read (nothing is written to it; a refund to it is dropped), a total that is a number but no
-- plain integer (440000.5 from HINCRBYFLOAT, 4.4e5, ' 440000') is read rounded up and
-- rewritten as one, a total that cannot be read (junk, negative, NaN, inf) is left as it is
-- and holds every capped budget it counts in (spending must never go on as if nothing was
-- spent: it holds until someone writes the true total or the period ends), a raised cap that
-- is not an integer (or an old caps key of another type) is ignored, a pause key of another
-- type is left alone; each counts in the junk figure the writer logs.
-- The hot path costs one HMGET and one HSET per rollup, plus an EXPIRE when a period's rollup
-- is new: the HMGET reads every field the check and the charge need, so the charge writes the
-- sums (atomic like HINCRBY: nothing runs between inside one script), and errors are caught
-- with pcall instead of asking TYPE first.

local function spend_int(raw)
  if type(raw) ~= 'string' or #raw > 15 or not raw:match('^%d+$') then return nil end
  return tonumber(raw)
end

-- A total that is no plain integer but still a number: a finite decimal >= 0, rounded up (never
-- read as less than was spent); nil when it cannot be read (letters, hex, NaN, inf, < 0).
local function spend_amount(raw)
  local n = spend_int(raw)
  if n ~= nil then return n end
  if type(raw) ~= 'string' or raw:find('[^%d%s%.eE+-]') then return nil end
  n = tonumber(raw)
  if n == nil or n ~= n or n == math.huge or n < 0 then return nil end
  return math.ceil(n) + 0  -- + 0: -0 reads as 0
end

local function spend_failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

-- A count as Redis stores it: Lua 5.1's tostring writes 1e+15 and up in exponent form.
local function spend_text(n)
  return string.format('%.0f', n)
end

-- What rollup `key` holds for P: {counts = {account total, total, P's action} (0 when
-- absent), junk, new, bad, lost = {account, total}, caps = {account, total} raw, held,
-- layout, wrong}; `new`: neither total is there yet (the period's first charge starts its
-- lifetime). A key of another type (`wrong`) has both totals lost: counting afresh from 0
-- would spend the period's budget again. A total that is a number but no count is rewritten
-- rounded up; one that cannot be read is left as it is and `lost` says so (it holds its
-- budget, and no charge writes over it); P's action field that is junk reads as 0: `bad` says
-- so, counted when a charge writes it.
local function spend_read(key, P)
  local got = redis.pcall('HMGET', key, P[1] .. '|*', '*|*', P[1] .. '|' .. P[2],
    P[1] .. '|*|cap', '*|*|cap', P[1] .. '|*|held', 'layout')
  local r = {counts = {0, 0, 0}, junk = 0, new = true, bad = false, lost = {false, false},
             caps = {false, false}, held = false, layout = false}
  if spend_failed(got) then
    r.junk, r.new, r.lost, r.layout, r.wrong = 1, false, {true, true}, true, true
    return r
  end
  local totals = {P[1] .. '|*', '*|*'}
  for i = 1, 3 do
    if got[i] then
      if i < 3 then r.new = false end
      local n = spend_int(got[i])
      if n == nil then
        if i == 3 then
          r.bad = true
        else
          n = spend_amount(got[i])
          if n == nil then
            r.lost[i] = true
          else
            redis.call('HSET', key, totals[i], spend_text(n))
            r.counts[i] = n
          end
          r.junk = r.junk + 1
        end
      else
        r.counts[i] = n
      end
    end
  end
  r.caps = {got[4], got[5]}
  r.held = got[6] ~= false
  r.layout = got[7] ~= false
  return r
end

-- Upgrade: caps raised before the caps moved into the rollups live in the old caps hash of the
-- period (S[2 + period]). While the rollup has no 'layout' field every one of them is read
-- (they only ever raise a cap, so the higher of the old and the new value applies) and the
-- charge writes them into the rollup with 'layout' (spend_charge): nothing is lost if this
-- call charges nothing, as the old hash is read again next time. Returns the raised caps of P
-- (account, total) from the old hash and the fields the charge must write.
local function spend_fold(S, P, period, state)
  local found = {false, false}
  local fields = {'layout', '2'}
  local old = redis.pcall('HGETALL', S[2 + period])
  if spend_failed(old) then
    state.junk = state.junk + 1
    return found, fields
  end
  local others, values = {}, {}
  for i = 1, #old, 2 do
    local n = spend_int(old[i + 1])
    if n == nil then
      state.junk = state.junk + 1
    elseif old[i] == P[1] then
      found[1] = n
    elseif old[i] == '*' then
      found[2] = n
    else
      others[#others + 1] = old[i] .. '|*|cap'
      values[#values + 1] = n
    end
  end
  -- Other accounts' old caps: kept unless the rollup already holds a higher one.
  if #others > 0 then
    local now = redis.call('HMGET', S[period], unpack(others))
    for i, field in ipairs(others) do
      local held = spend_int(now[i])
      if held == nil or held < values[i] then
        fields[#fields + 1] = field
        fields[#fields + 1] = spend_text(values[i])
      end
    end
  end
  return found, fields
end

-- The state of the four budgets of P[1]: spent and cap each (cap -1 = none), the first one
-- the cost would exceed or whose spend cannot be read ('' when none), the junk figure, and
-- what the charge needs. A capped budget whose spend cannot be read shows as spent up to its
-- cap.
local function spend_state(S, P)
  local state = {spent = {}, cap = {}, blocked = '', new = {}, action = {}, bad = {},
                 held = {}, fold = {}, raised = {}, lost = {}, wrong = {}, junk = 0}
  local raised = {}
  for period = 1, 2 do
    local r = spend_read(S[period], P)
    state.junk = state.junk + r.junk
    state.spent[period], state.spent[2 + period] = r.counts[1], r.counts[2]
    state.action[period], state.new[period], state.bad[period] = r.counts[3], r.new, r.bad
    state.held[period], state.wrong[period] = r.held, r.wrong
    state.lost[period], state.lost[2 + period] = r.lost[1], r.lost[2]
    local old = {false, false}
    if not r.layout then old, state.fold[period] = spend_fold(S, P, period, state) end
    for who = 1, 2 do
      local slot = (who - 1) * 2 + period
      if r.caps[who] then
        local n = spend_int(r.caps[who])
        if n == nil then state.junk = state.junk + 1 else raised[slot] = n end
      end
      if old[who] and (raised[slot] == nil or old[who] > raised[slot]) then
        raised[slot] = old[who]
        state.raised[slot] = old[who]
      end
    end
  end
  local scopes = {'account|day', 'account|month', 'total|day', 'total|month'}
  local cost = tonumber(P[3])
  for i = 1, 4 do
    local cap = spend_int(P[3 + i]) or -1
    if raised[i] ~= nil and raised[i] > cap then cap = raised[i] end
    state.cap[i] = cap
    if state.lost[i] and cap >= 0 then state.spent[i] = cap end
    if state.blocked == '' and cap >= 0 and (state.lost[i] or state.spent[i] + cost > cap) then
      state.blocked = scopes[i]
    end
  end
  return state
end

-- The account's pause reason (false when none; a reply table for a key of another type).
local function spend_pause_reason(S, state)
  if state.pause == nil then state.pause = redis.pcall('HGET', S[5], 'reason') end
  return state.pause
end

-- Add `cost` to P's account and action in both rollups without reading them first (a refund:
-- HINCRBY per field); `new` says which rollup this period has not seen yet (its lifetime
-- starts now). A sum below 0 (a total someone lowered) ends at 0. Returns the junk figure.
local function spend_add(S, P, cost, new)
  local junk = 0
  for i = 1, 2 do
    local key, wrong = S[i], false
    for _, field in ipairs({P[1] .. '|' .. P[2], P[1] .. '|*', '*|*'}) do
      local sum = redis.pcall('HINCRBY', key, field, cost)
      if spend_failed(sum) then
        local raw = redis.pcall('HGET', key, field)
        if spend_failed(raw) then
          -- Not a hash: left for an operator (counting afresh would forget what was spent).
          wrong = true
          junk = junk + 1
          break
        else
          -- Not a count: a number is kept (rounded up), junk left as it is (still holding).
          local n = spend_amount(raw)
          if n ~= nil then redis.call('HSET', key, field, spend_text(math.max(n + cost, 0))) end
        end
        junk = junk + 1
      elseif sum < 0 then
        redis.call('HSET', key, field, '0')
        junk = junk + 1
      end
    end
    if new[i] and not wrong then redis.call('EXPIRE', key, P[7 + i]) end
  end
  return junk
end

-- Charge P[3]; the state's figures follow. `keep_pause`: a record never ends a budget hold
-- (only a granted send does).
local function spend_charge(S, P, state, keep_pause)
  local cost = tonumber(P[3])
  -- spend_state read every field this writes; each rollup is a hash, no key, or (`wrong`) of
  -- another type, never written. A total that cannot be read is left as it is: it goes on
  -- holding its budget.
  for i = 1, 2 do
    local fields = {P[1] .. '|' .. P[2], spend_text(state.action[i] + cost)}
    for _, t in ipairs({{P[1] .. '|*', i}, {'*|*', 2 + i}}) do
      if not state.lost[t[2]] then
        fields[#fields + 1] = t[1]
        fields[#fields + 1] = spend_text(state.spent[t[2]] + cost)
      end
    end
    if state.fold[i] then
      for _, v in ipairs(state.fold[i]) do fields[#fields + 1] = v end
      -- P's own old caps: moved into the rollup with the rest.
      local own = {P[1] .. '|*|cap', '*|*|cap'}
      for who = 1, 2 do
        local n = state.raised[(who - 1) * 2 + i]
        if n ~= nil then
          fields[#fields + 1] = own[who]
          fields[#fields + 1] = spend_text(n)
        end
      end
    end
    -- A rollup of another type is not written (it holds its capped budgets until fixed).
    if not state.wrong[i] then redis.call('HSET', S[i], unpack(fields)) end
    if state.new[i] then redis.call('EXPIRE', S[i], P[7 + i]) end
    if state.bad[i] then state.junk = state.junk + 1 end
  end
  for i = 1, 4 do state.spent[i] = state.spent[i] + cost end
  -- Spending again: a budget pause this account carried is over (a raised cap, a new period).
  if not keep_pause and (state.held[1] or state.held[2]) then
    if spend_pause_reason(S, state) == 'budget' then redis.call('DEL', S[5]) end
    for i = 1, 2 do
      if state.held[i] then redis.call('HDEL', S[i], P[1] .. '|*|held') end
    end
  end
end

-- Hold the account with reason 'budget' until the blocking period ends; another pause
-- (credentials, usage cap) or a key of another type is left as it is. The blocking period's
-- rollup notes the hold ('<account>|*|held') so that a later charge reads the pause. Returns
-- that end.
local function spend_pause(S, P, state)
  local period = state.blocked:match('|(%a+)$')
  local untl = period == 'day' and P[10] or P[11]
  local pause = spend_pause_reason(S, state)
  if pause == false or pause == 'budget' then
    redis.call('HSET', S[5], 'reason', 'budget', 'until', untl, 'budget', state.blocked)
    local i = period == 'day' and 1 or 2
    if not state.held[i] and not state.wrong[i] then
      redis.call('HSET', S[i], P[1] .. '|*|held', '1')
      if state.new[i] then redis.call('EXPIRE', S[i], P[7 + i]) end
    end
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
