-- Group commit: one script call runs a batch of one step's entries (begin_sending's or
-- settle_sending's), each exactly as its own call would, and pays once per batch for the keys
-- every entry touches (a budget hash, the spend rollups, TIME, the state and retention indexes).
-- A batch script includes this file FIRST, so that `redis` in every core it includes after it
-- is the shim below, not Redis's: the cores stay the one copy of the logic.
--
-- The shim answers a command from memory only where the answer and the keyspace left at the
-- end are exactly what Redis would give and hold; anything else first writes out what it holds
-- for the keys the command names, then passes the command through (so errors are Redis's own):
--   TIME                  read once per call (nothing in a script call lasts long enough for
--                         the few ms to matter: its entries are one atomic step)
--   hashes named by group_commit_cache (only those: the shared ones)
--     HMGET/HGET          fields read once (by the first entry's own command, so a key of
--                         another type fails it as before), then from memory
--     HSET                of fields already read, values strings or integers below 1e15
--                         (converted as Redis converts a Lua number): in memory, written out as
--                         one HSET
--     HINCRBY             of a field read, both it and the increment plain integers: in memory
--     EXPIRE key s        after a write held in memory (so the key exists): kept, written out
--                         after that HSET (the deadline is later by at most the call's few ms)
--   sorted sets           ZADD key integer-score member and ZREM key member...: the first on
--                         a key runs (it fails on a key of another type as before); later ones
--                         only note, per member, the last score or removal, written out as one
--                         ZREM and one ZADD per key. Their replies are not Redis's (1 for each):
--                         no core reads them (a test holds the cores to that).
--   other hashes          HDEL key field...: the same, one HDEL per key (the crash counts an
--                         ack clears)
-- Everything held is written out at the end of the call, also for entries that failed (a
-- script keeps what it wrote before an error; so does an entry here).
local group_real = redis
local group_cache = {}    -- hash key -> {known = {field -> value|false}, dirty = {field -> true},
                          -- order = {fields}, expire = seconds or nil}
local group_cacheable = {}
-- sorted set (or hash) key -> {kind = 'zset'|'hash', last = {member -> score|false},
-- order = {members}}
local group_zsets = {}
local group_zset_order = {}
local group_hash_order = {}
local group_time = nil

-- Mark hash `key` as one the shim may hold in memory.
local function group_commit_cache(key)
  if key ~= '' then group_cacheable[key] = true end
end

-- A Lua number as Redis writes it into a command (%.17g), for integers below 1e15; nil else.
local function group_text(v)
  if type(v) == 'string' then return v end
  if type(v) == 'number' and v == math.floor(v) and v > -1e15 and v < 1e15 then
    return string.format('%d', v)
  end
  return nil
end

-- A plain integer as Redis's HINCRBY reads one (no sign but '-', no leading zero), below 1e15.
local function group_int(s)
  if type(s) == 'number' then
    if group_text(s) == nil then return nil end
    return s
  end
  if type(s) ~= 'string' or #s > 15 then return nil end
  if s == '0' or string.match(s, '^%-?[1-9]%d*$') then return tonumber(s) end
  return nil
end

local function group_flush_hash(key)
  local c = group_cache[key]
  if not c then return end
  if #c.order > 0 then
    local fields = {}
    for _, f in ipairs(c.order) do
      fields[#fields + 1] = f
      fields[#fields + 1] = c.known[f]
    end
    group_real.call('HSET', key, unpack(fields))
    if c.expire then group_real.call('EXPIRE', key, c.expire) end
  end
  c.dirty, c.order, c.expire = {}, {}, nil
end

local function group_flush_zset(key)
  local z = group_zsets[key]
  if not z then return end
  local adds, rems = {}, {}
  for _, m in ipairs(z.order) do
    local score = z.last[m]
    if score then
      adds[#adds + 1] = score
      adds[#adds + 1] = m
    else
      rems[#rems + 1] = m
    end
  end
  if #rems > 0 then
    group_real.call(z.kind == 'hash' and 'HDEL' or 'ZREM', key, unpack(rems))
  end
  if #adds > 0 then group_real.call('ZADD', key, unpack(adds)) end
  z.last, z.order = {}, {}
end

-- Write out and forget what is held for `key` (before a command the shim does not model).
local function group_forget(key)
  if group_cache[key] then
    group_flush_hash(key)
    group_cache[key] = nil
  end
  if group_zsets[key] then
    group_flush_zset(key)
    group_zsets[key] = nil
  end
end

-- Write out everything held (the end of the call).
local function group_flush_all()
  for _, key in ipairs(group_hash_order) do group_flush_hash(key) end
  for _, key in ipairs(group_zset_order) do group_flush_zset(key) end
end

local function group_pass(protected, args)
  for i = 2, #args do
    local a = args[i]
    if type(a) == 'string' and (group_cache[a] or group_zsets[a]) then group_forget(a) end
  end
  if protected then return group_real.pcall(unpack(args)) end
  return group_real.call(unpack(args))
end

-- Read `fields` of cached hash `key` into memory (one HMGET of those not known yet); returns
-- the cache entry, or nil and the error reply / raises as the plain command would.
local function group_read(protected, cmd, key, fields, args)
  local c = group_cache[key]
  local missing = {}
  for _, f in ipairs(fields) do
    if c == nil or c.known[f] == nil then missing[#missing + 1] = f end
  end
  if #missing == 0 then return c end
  if c == nil then
    -- The first read of the key is the entry's own command, as it was issued.
    local got = group_pass(protected, args)
    if type(got) == 'table' and got.err then return nil, got end
    if cmd == 'HGET' then got = {got} end
    c = {known = {}, dirty = {}, order = {}}
    group_cache[key] = c
    group_hash_order[#group_hash_order + 1] = key
    for i, f in ipairs(fields) do c.known[f] = got[i] end
    return c
  end
  -- A key read before is a hash or none, and only the shim changed it since: no error here.
  local got = group_real.call('HMGET', key, unpack(missing))
  for i, f in ipairs(missing) do
    if c.known[f] == nil then c.known[f] = got[i] end
  end
  return c
end

local function group_set(c, field, value)
  if not c.dirty[field] then
    c.dirty[field] = true
    c.order[#c.order + 1] = field
  end
  c.known[field] = value
end

local function group_hash_command(protected, cmd, key, args)
  local n = #args
  if cmd == 'HMGET' or cmd == 'HGET' then
    if (cmd == 'HGET' and n ~= 3) or n < 3 then return group_pass(protected, args) end
    local held = group_cache[key]
    if held then
      -- The usual case: every field known already.
      local out, known = {}, held.known
      for i = 3, n do
        local v = known[args[i]]
        if v == nil then
          out = nil
          break
        end
        out[i - 2] = v
      end
      if out then
        if cmd == 'HGET' then return out[1] end
        return out
      end
    end
    local fields = {}
    for i = 3, n do
      if type(args[i]) ~= 'string' then return group_pass(protected, args) end
      fields[#fields + 1] = args[i]
    end
    local c, err = group_read(protected, cmd, key, fields, args)
    if c == nil then return err end
    if cmd == 'HGET' then return c.known[fields[1]] end
    local out = {}
    for i, f in ipairs(fields) do out[i] = c.known[f] end
    return out
  end
  local c = group_cache[key]
  if cmd == 'HSET' and c and n >= 4 and n % 2 == 0 then
    for i = 3, n, 2 do
      if type(args[i]) ~= 'string' or c.known[args[i]] == nil or group_text(args[i + 1]) == nil
      then
        return group_pass(protected, args)
      end
    end
    local added = 0
    for i = 3, n, 2 do
      -- Absent before this HSET (a field named twice counts once, as Redis counts it).
      if c.known[args[i]] == false then added = added + 1 end
      group_set(c, args[i], group_text(args[i + 1]))
    end
    return added
  end
  if cmd == 'HINCRBY' and c and n == 4 and type(args[3]) == 'string' then
    local old = c.known[args[3]]
    local by = group_int(args[4])
    if old ~= nil and by ~= nil then
      local base = old == false and 0 or group_int(old)
      if base ~= nil and type(old) ~= 'number' then
        local sum = base + by
        if sum > -1e15 and sum < 1e15 then
          group_set(c, args[3], string.format('%d', sum))
          return sum
        end
      end
    end
  end
  if cmd == 'EXPIRE' and c and n == 3 and #c.order > 0 then
    local s = group_int(args[3])
    if s ~= nil and s > 0 and s < 1e9 then
      c.expire = string.format('%d', s)
      return 1
    end
  end
  if cmd == 'EXPIRE' and c and n == 3 and #c.order == 0 then
    local s = group_int(args[3])
    if s ~= nil and s > 0 then
      -- Nothing held: the key is as Redis has it, and a lifetime in the future changes no
      -- field (one in the past deletes the key: passed through below, and forgotten).
      if protected then return group_real.pcall(unpack(args)) end
      return group_real.call(unpack(args))
    end
  end
  return group_pass(protected, args)
end

-- A held write of `member`: its score, or false for a removal; the last one wins.
local function group_note(z, member, score)
  if z.last[member] == nil then z.order[#z.order + 1] = member end
  z.last[member] = score
end

local function group_buffer_command(protected, cmd, key, args)
  local n = #args
  local z = group_zsets[key]
  local plain = true
  for i = 3, n do
    if type(args[i]) ~= 'string' then plain = false end
  end
  if cmd == 'ZADD' and (n ~= 4 or not plain or not string.match(args[3], '^%d+$')
      or #args[3] > 15) then
    return group_pass(protected, args)
  end
  if n < 3 or not plain then return group_pass(protected, args) end
  local kind = cmd == 'HDEL' and 'hash' or 'zset'
  if z ~= nil and z.kind ~= kind then return group_pass(protected, args) end
  if z == nil then
    -- The first write runs: it fails as before on a key of another type, else the key is a
    -- sorted set (a hash) or none from here on (only the shim touches it until written out).
    local got = group_pass(protected, args)
    if type(got) == 'table' and got.err then return got end
    group_zsets[key] = {kind = kind, last = {}, order = {}}
    group_zset_order[#group_zset_order + 1] = key
    return got
  end
  if cmd == 'ZADD' then
    group_note(z, args[4], args[3])
  else
    for i = 3, n do group_note(z, args[i], false) end
  end
  return 1
end

local function group_model(protected, ...)
  local args = {...}
  local cmd = type(args[1]) == 'string' and string.upper(args[1]) or ''
  args[1] = cmd ~= '' and cmd or args[1]
  local key = args[2]
  if cmd == 'TIME' and #args == 1 then
    if group_time == nil then group_time = group_real.call('TIME') end
    return {group_time[1], group_time[2]}
  end
  if type(key) == 'string' and group_cacheable[key] and not group_zsets[key] and (
      cmd == 'HMGET' or cmd == 'HGET' or cmd == 'HSET' or cmd == 'HINCRBY'
      or cmd == 'EXPIRE') then
    return group_hash_command(protected, cmd, key, args)
  end
  if type(key) == 'string' and not group_cacheable[key] and not group_cache[key]
      and (cmd == 'ZADD' or cmd == 'ZREM' or cmd == 'HDEL') then
    return group_buffer_command(protected, cmd, key, args)
  end
  return group_pass(protected, args)
end

-- Commands whose one key is their first argument (Redis's command table), run as they are
-- when the shim holds nothing of that key: most of a batch's commands (the per-request keys)
-- cost no more than a table lookup here.
local GROUP_ONE_KEY = {}
for _, c in ipairs({'XADD', 'SET', 'GET', 'HSET', 'HMGET', 'HGET', 'HINCRBY', 'HGETALL',
                    'EXPIRE', 'PTTL', 'LREM', 'ZRANGEBYSCORE'}) do
  GROUP_ONE_KEY[c] = true
end

local function group_dispatch(protected, cmd, key, ...)
  if GROUP_ONE_KEY[cmd] and type(key) == 'string' and not group_cacheable[key]
      and not group_cache[key] and not group_zsets[key] then
    if protected then return group_real.pcall(cmd, key, ...) end
    return group_real.call(cmd, key, ...)
  end
  return group_model(protected, cmd, key, ...)
end

local redis = setmetatable({
  call = function(...) return group_dispatch(false, ...) end,
  pcall = function(...) return group_dispatch(true, ...) end,
}, {__index = group_real})

-- Run `step(KEYS, ARGV)` for each entry of the batch and write out what the shim holds.
-- ARGV: 1 the number of entries n, then n pairs (keys, arguments of each entry), then the
-- entries' arguments in order; KEYS: the entries' keys in order. `cache(K, A)` names the hashes
-- of an entry the shim may hold. Returns one reply per entry: {'ok', its reply...} or
-- {'error', the error's text}, so that one entry's error (junk written by hand) is its own.
local function group_commit_run(step, cache)
  local n = tonumber(ARGV[1])
  local k, a = 0, 1 + 2 * n
  local entries = {}
  for i = 1, n do
    local nk, na = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local K, A = {}, {}
    for j = 1, nk do K[j] = KEYS[k + j] end
    for j = 1, na do A[j] = ARGV[a + j] end
    k, a = k + nk, a + na
    entries[i] = {K, A}
    cache(K, A)
  end
  local out = {}
  for i, e in ipairs(entries) do
    local ok, reply = pcall(step, e[1], e[2])
    if ok then
      local row = {'ok'}
      for _, v in ipairs(reply) do row[#row + 1] = v end
      out[i] = row
    else
      if type(reply) == 'table' then reply = reply.err or reply.message end
      reply = tostring(reply)
      -- A lone call's error names where its script stopped ("script: <sha>, on
      -- @user_script:<line>."), which is how the writer tells a script stopped by its data
      -- (kept for an operator) from an outage (handed back): the entry's error says it too.
      local line = string.match(reply, '^user_script:(%d+):') or '?'
      out[i] = {'error', reply .. ' script: group commit entry ' .. i .. ', on @user_script:'
        .. line .. '.'}
    end
  end
  group_flush_all()
  return out
end
