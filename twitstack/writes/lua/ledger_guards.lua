-- Guards that keep an approval from being sent twice, whatever happens to the request hash.
-- Key prefixes are fixed here (twitstack.writes.keys names the same ones; a test checks):
-- scripts that include the ledger's cores take no extra KEYS for them, and twitstack runs on
-- one Redis, not a cluster.
-- writes:tombstone:<id>  the final state a request reached, kept `retention s` (at least
--                        approval_max_age_s, which `config check` enforces): a record of that
--                        id is never created again and never sent again while it lives.
-- writes:spent:<nonce>   the request id whose sending spent the approval (while a re-send of
--                        that record may use it again), the final state that request reached
--                        (then none may), or 'revoked' for an approval voided before it was
--                        sent (edit, reject, expiry, review).
local LEDGER_TOMBSTONE_PREFIX = 'writes:tombstone:'
local LEDGER_SPENT_PREFIX = 'writes:spent:'
-- Verifiers accept approvals stamped up to this far ahead of their clock (signing.py
-- MAX_CLOCK_SKEW; a test checks), so such an approval verifies that much past retention after
-- it reached this host: the guards live retention plus this, or a re-pushed copy would run again.
local LEDGER_GUARD_SLACK_S = 300

-- How long a tombstone or spent-nonce key lives, given the ledger's retention in seconds.
local function ledger_guard_ttl(ttl_s)
  return tonumber(ttl_s) + LEDGER_GUARD_SLACK_S
end

-- The nonce of the approval in `stored` (the request as the hash holds it), or nil (none, or
-- unreadable).
local function ledger_approval_nonce(stored)
  if not stored then return nil end
  local ok, decoded = pcall(cjson.decode, stored)
  if not ok or type(decoded) ~= 'table' or type(decoded['approval']) ~= 'table' then
    return nil
  end
  local nonce = decoded['approval']['nonce']
  if type(nonce) ~= 'string' or nonce == '' then return nil end
  return nonce
end

-- Spend the stored approval as `id` moves into sending. `stored` and `spent_nonce` are the
-- hash's `request` and `spent_nonce` fields as the caller read them. Returns (why not, nil)
-- when refused, else (nil, the nonce the caller must store as `spent_nonce`, or nil: none).
-- A re-send of the same record (after a 429 or reconciliation) holds the nonce in its hash
-- field `spent_nonce`; a re-created or replayed record does not.
-- `untombstoned`: the caller created the record in this same call, after finding no tombstone.
local function ledger_spend_approval(id, ttl_s, stored, spent_nonce, untombstoned)
  if not untombstoned and redis.call('EXISTS', LEDGER_TOMBSTONE_PREFIX .. id) == 1 then
    return 'tombstoned', nil
  end
  local nonce = ledger_approval_nonce(stored)
  if not nonce then return nil, nil end
  -- Check and spend in one command (SET NX GET, Redis 7): a key already there is left as it is.
  local spent = redis.pcall('SET', LEDGER_SPENT_PREFIX .. nonce, id, 'NX', 'GET', 'EX',
    ledger_guard_ttl(ttl_s))
  -- A key of another type there (junk written by hand) proves no approval free: it counts as
  -- spent, rather than an error stopping the caller's script with its earlier writes kept.
  if type(spent) == 'table' and spent.err then return 'spent', nil end
  if not spent then return nil, nonce end
  if spent == id and spent_nonce == nonce then return nil, nil end
  return 'spent', nil
end

-- Void the stored approval (`stored`: the hash's `request` field) before it was ever sent, so
-- a copy of it can never be replayed.
local function ledger_revoke_approval(stored, ttl_s)
  local nonce = ledger_approval_nonce(stored)
  if nonce then redis.call('SET', LEDGER_SPENT_PREFIX .. nonce, 'revoked', 'NX', 'EX',
    ledger_guard_ttl(ttl_s)) end
end
