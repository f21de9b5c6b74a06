-- Rate-limit budgets per (account, endpoint), shared by every writer replica.
-- A window key is a hash {limit, remaining, reset (epoch s)}; the in-flight key is a counter
-- of requests that reserved room and have not been answered yet.
-- These keys are a cache of X's headers: a key of the wrong type or a field that is not a
-- number (junk written by hand or by a bug) is dropped and read as unknown, never raised on
-- (an error here would refuse every request of the account, forever).

-- A window's {reset, remaining, limit} as numbers (or nil), read in one call; a key of
-- another type is dropped (and reads as unknown).
local function read_window(key)
  local found = redis.pcall('HMGET', key, 'reset', 'remaining', 'limit')
  if found['err'] then
    redis.call('DEL', key)
    return {nil, nil, nil}
  end
  return {tonumber(found[1] or ''), tonumber(found[2] or ''), tonumber(found[3] or '')}
end

-- The in-flight count; a key of another type or a value that is no count is dropped (0).
local function clean_counter(key)
  local found = redis.pcall('GET', key)
  if found == false then return 0 end
  local value = type(found) == 'string' and tonumber(found) or nil
  if value == nil or value ~= math.floor(value) or value < 0 or value >= 1e15 then
    redis.call('DEL', key)
    return 0
  end
  return value
end

-- Retire one in-flight request: DECR alone (no read first); a counter that DECR refuses (junk,
-- another type) or that goes below 0 ends at 0, as if it had been dropped first.
local function budget_retire(in_flight)
  local left = redis.pcall('DECR', in_flight)
  if type(left) == 'table' then redis.call('DEL', in_flight) end
  if type(left) ~= 'number' or left < 0 then redis.call('SET', in_flight, 0) end
end

-- budget_reserve(windows, in_flight, now, ttl_ms): '0' when granted (the in-flight counter
-- goes up), else the reset time it is blocked until. Room is X's last reported `remaining`
-- minus our requests still in flight: X's count does not include those yet. A window whose
-- reset has passed is unknown territory: send, and learn the new window from X's headers.
local function budget_reserve(windows, in_flight, now, ttl_ms)
  now = tonumber(now)
  local pending = clean_counter(in_flight)
  local blocked = 0
  for _, key in ipairs(windows) do
    local found = read_window(key)
    local reset = found[1] or 0
    if reset > now then
      local remaining = found[2] or 1
      if remaining - pending <= 0 and reset > blocked then blocked = reset end
    end
  end
  if blocked > 0 then return tostring(blocked) end
  -- INCR and PEXPIRE in one write: the count was just read (and cleaned).
  redis.call('SET', in_flight, string.format('%d', pending + 1), 'PX', ttl_ms)
  return '0'
end

-- Store X's view of one window; returns the remaining count in force. Writes only what
-- changes: an answer that tells nothing new (an older or equal count of the same window) costs
-- no write, and the key's lifetime is set when a window starts (it outlives that window), not
-- by every answer.
local function budget_update(key, limit, remaining, reset, ttl)
  if limit == '' then return -1 end
  local found = read_window(key)
  remaining = tonumber(remaining)
  local new_reset = tonumber(reset)
  local old_reset = found[1] or 0
  if old_reset > new_reset then return found[2] or remaining end
  if old_reset == new_reset then
    local old = found[2] or remaining
    if old < remaining then remaining = old end
    if found[2] == remaining and found[3] == tonumber(limit) then return remaining end
  end
  redis.call('HSET', key, 'limit', limit, 'remaining', remaining, 'reset', reset)
  if old_reset ~= new_reset then redis.call('EXPIRE', key, ttl) end
  return remaining
end

-- budget_observe(window, daily, in_flight, A): record X's view of each window and retire one
-- in-flight request. A: 1-3 window limit/remaining/reset, 4-6 the same for the 24-hour
-- window ('' when X sent none), 7 key ttl s, 8 '1' if the request held a reservation.
-- Within one window X's count only grows, so the lower `remaining` wins (answers can arrive
-- out of order); an answer from an older window is stale and ignored.
-- Returns {window remaining, daily remaining}, -1 for a window X did not report.
local function budget_observe(window, daily, in_flight, A)
  local w = budget_update(window, A[1], A[2], A[3], A[7])
  local d = budget_update(daily, A[4], A[5], A[6], A[7])
  if A[8] == '1' then budget_retire(in_flight) end
  return {w, d}
end
