-- Rate-limit budgets per (account, endpoint), shared by every writer replica: one hash per
-- (account, endpoint) (keys.rate_limit_budgets) holds X's two windows and our in-flight count,
-- so a reservation is one HMGET and one HSET:
--   window.limit/.remaining/.reset   X's x-rate-limit-* window (reset in epoch s)
--   24h.limit/.remaining/.reset      X's x-user-limit-24hour-* window
--   pending                          requests that reserved room and await X's answer
--   pending.until                    epoch ms after which `pending` is void: every reservation
--                                    moves it to now + ttl, so a crashed writer's reservations
--                                    lapse as the old counter key's PX did. Set and compared on
--                                    Redis's clock (TIME), never a writer's: a replica whose
--                                    clock is off would void the others' reservations (ahead)
--                                    or have its own voided early (behind)
--   layout                           '2' once the keys of the old layout were folded in
-- These fields are a cache of X's headers: a key of the wrong type is dropped, a field that is
-- not a number (junk written by hand or by a bug) reads as unknown and is overwritten by the
-- next write, never raised on (an error here would refuse every request of the account).
-- Upgrade: a hash without `layout` folds in the old layout's keys once (migrate on read: the
-- old window hashes, K[2] and K[3], and the old in-flight counter, K[1] .. ':pending'), then
-- drops them; see budget_read.

local BUDGET_FIELDS = {'window.reset', 'window.remaining', 'window.limit',
                       '24h.reset', '24h.remaining', '24h.limit',
                       'pending', 'pending.until', 'layout'}
local BUDGET_WINDOWS = {'window', '24h'}
local BUDGET_TTL_S = 172800 -- 2 days: beyond any X window and any reservation
-- How far a stored reset may lie past the reset of an answer from an older window: X's longest
-- window (24 h), plus an hour for that answer's way from X into Redis. Further is no window X
-- has (a reset in ms, one written by hand) and is replaced by the answer.
local BUDGET_MAX_AHEAD_S = 90000

-- A finite number, or nil.
local function budget_num(raw)
  local n = tonumber(raw or '')
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end

-- A count (an integer, 0 <= n < 1e15), or nil.
local function budget_count(raw)
  local n = budget_num(raw)
  if n == nil or n ~= math.floor(n) or n < 0 or n >= 1e15 then return nil end
  return n
end

-- Redis's clock in epoch ms, the clock of `pending.until`: one TIME per script call at most
-- (kept in b), and none in a call that does not need it.
local function budget_now_ms(b)
  if b.now_ms == nil then
    local t = redis.call('TIME')
    b.now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return b.now_ms
end

-- Fold the old layout's keys into the hash K[1] (b: what budget_read found there; a field the
-- hash already holds is newer and wins) and drop them. The old in-flight count keeps its
-- remaining lifetime; its writers' settles decrement the old key, so the count carried over
-- can only be too high, never too low, and lapses with that lifetime (at most the ttl).
local function budget_migrate(K, b)
  local fields = {'layout', '2'}
  for i, name in ipairs(BUDGET_WINDOWS) do
    local old = redis.pcall('HMGET', K[1 + i], 'reset', 'remaining', 'limit')
    if not old['err'] and b.windows[i][1] == nil and budget_num(old[1]) ~= nil then
      local w = {budget_num(old[1]), budget_num(old[2]), budget_num(old[3])}
      b.windows[i] = w
      for j, part in ipairs({'reset', 'remaining', 'limit'}) do
        if w[j] ~= nil then
          fields[#fields + 1] = name .. '.' .. part
          fields[#fields + 1] = string.format('%.17g', w[j])
        end
      end
    end
  end
  local counter = K[1] .. ':pending'
  local old = budget_count(redis.pcall('GET', counter))
  local left = redis.pcall('PTTL', counter)
  if old ~= nil and old > 0 and type(left) == 'number' and left > 0 then
    local now_ms = budget_now_ms(b)
    local mine = 0
    if b.pending_until ~= nil and b.pending_until > now_ms then mine = b.pending end
    b.pending = mine + old
    b.pending_until = math.max(b.pending_until or 0, now_ms + left)
    fields[#fields + 1] = 'pending'
    fields[#fields + 1] = string.format('%d', b.pending)
    fields[#fields + 1] = 'pending.until'
    fields[#fields + 1] = string.format('%.0f', b.pending_until)
  end
  redis.call('HSET', K[1], unpack(fields))
  redis.call('EXPIRE', K[1], BUDGET_TTL_S)
  redis.call('DEL', K[2], K[3], counter)
  b.layout = '2'
end

-- What the hash K[1] holds: {windows = {{reset, remaining, limit} x2}, pending, pending_until}
-- (numbers or nil; a junk `pending` reads as 0). A key of another type is dropped.
local function budget_read(K)
  local got = redis.pcall('HMGET', K[1], unpack(BUDGET_FIELDS))
  if got['err'] then
    redis.call('DEL', K[1])
    got = {}
  end
  local b = {windows = {}, pending = budget_count(got[7]) or 0,
             pending_until = budget_num(got[8]), layout = got[9]}
  for i = 1, 2 do
    b.windows[i] = {budget_num(got[3 * i - 2]), budget_num(got[3 * i - 1]),
                    budget_num(got[3 * i])}
  end
  if not b.layout then budget_migrate(K, b) end
  return b
end

-- Retire one in-flight request without reading first (a request that got no answer): HINCRBY
-- alone; a count that HINCRBY refuses (junk, a key of another type) or that goes below 0 ends
-- at 0, as if it had been dropped first.
local function budget_retire(key)
  local left = redis.pcall('HINCRBY', key, 'pending', -1)
  if type(left) == 'number' and left >= 0 then return end
  if type(redis.pcall('HSET', key, 'pending', 0)) == 'table' then
    redis.call('DEL', key)
    redis.call('HSET', key, 'pending', 0)
  end
  -- The hash may be new here (a retire after it expired): it must not outlive its use.
  redis.call('EXPIRE', key, BUDGET_TTL_S)
end

-- budget_reserve(K, now, ttl_ms): '0' when granted (the in-flight count goes up), else the
-- reset time it is blocked until. K: the budget hash, the old layout's window and 24-hour
-- hashes. Room is X's last reported `remaining` minus our requests still in flight: X's count
-- does not include those yet. A window whose reset has passed is unknown territory: send, and
-- learn the new window from X's headers. `now` (the writer's clock, epoch s) is compared with
-- X's resets only; the in-flight count's lapse runs on Redis's clock (budget_now_ms), which
-- is read only when there is a count to void or a grant to stamp.
local function budget_reserve(K, now, ttl_ms)
  now = tonumber(now)
  local b = budget_read(K)
  local pending = b.pending
  if pending > 0 and (b.pending_until == nil or b.pending_until <= budget_now_ms(b)) then
    pending = 0
  end
  local blocked = 0
  for i = 1, 2 do
    local reset = b.windows[i][1] or 0
    if reset > now then
      local remaining = b.windows[i][2] or 1
      if remaining - pending <= 0 and reset > blocked then blocked = reset end
    end
  end
  if blocked > 0 then return tostring(blocked) end
  redis.call('HSET', K[1], 'pending', string.format('%d', pending + 1),
    'pending.until', string.format('%.0f', budget_now_ms(b) + tonumber(ttl_ms)))
  return '0'
end

-- X's view of one window (found: {reset, remaining, limit}) added to `fields` (an HSET's
-- arguments) when it changes anything; returns the remaining count in force and whether a new
-- window starts. An answer that tells nothing new (an older or equal count of the same window)
-- adds nothing; a stored reset further past the answer's than any window is junk and replaced.
local function budget_update(found, name, limit, remaining, reset, fields)
  if limit == '' then return -1, false end
  remaining = tonumber(remaining)
  local new_reset = tonumber(reset)
  local old_reset = found[1] or 0
  if old_reset > new_reset and old_reset <= new_reset + BUDGET_MAX_AHEAD_S then
    return found[2] or remaining, false
  end
  if old_reset == new_reset then
    local old = found[2] or remaining
    if old < remaining then remaining = old end
    if found[2] == remaining and found[3] == tonumber(limit) then return remaining, false end
  end
  for _, v in ipairs({name .. '.limit', limit, name .. '.remaining', remaining,
                      name .. '.reset', reset}) do
    fields[#fields + 1] = v
  end
  return remaining, old_reset ~= new_reset
end

-- budget_observe(key, old window, old 24-hour, A): record X's view of each window and retire
-- one in-flight request, in one HMGET and at most one HSET. A: 1-3 window
-- limit/remaining/reset, 4-6 the same for the 24-hour window ('' when X sent none), 7 key ttl
-- s, 8 '1' if the request held a reservation. Within one window X's count only grows, so the
-- lower `remaining` wins (answers can arrive out of order); an answer from an older window is
-- stale and ignored. The key's lifetime is renewed when a window starts (it outlives that
-- window), not by every answer.
-- Returns {window remaining, daily remaining}, -1 for a window X did not report.
local function budget_observe(key, old_window, old_daily, A)
  local b = budget_read({key, old_window, old_daily})
  local fields, out, started = {}, {}, false
  for i, name in ipairs(BUDGET_WINDOWS) do
    local left, new = budget_update(b.windows[i], name, A[3 * i - 2], A[3 * i - 1], A[3 * i],
      fields)
    out[i] = left
    started = started or new
  end
  if A[8] == '1' then
    fields[#fields + 1] = 'pending'
    fields[#fields + 1] = string.format('%d', math.max(b.pending - 1, 0))
  end
  if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
  if started then redis.call('EXPIRE', key, A[7]) end
  return out
end
