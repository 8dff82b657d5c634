// The Lua behind RedisStore. Each decision is one script, so Redis runs it atomically across all
// the keys it names: replicas sharing a Redis admit exactly `limit` between them. The window
// arithmetic mirrors windows.ts (see the rule there); the budget bookkeeping mirrors budget-book.ts.
//
// Time is the caller's `now`, passed in ARGV, not Redis TIME: tests control it, and a decision
// means the same in both stores. Replicas' clocks must therefore be NTP-synced; a replica whose
// clock runs behind writes into the newest bucket of a window, so skew lengthens counts, never
// shortens them.
//
// Integers only: Lua numbers are doubles (exact to 2^53, like NanoUSD), and every number that
// goes back to Redis is formatted with %d, as Lua's tostring would write 1e+15.

const COMMON = `
local function fmt(n) return string.format('%d', n) end
`;

const WINDOW = `
-- A window hash: bucket index -> count, 'total' (their sum), 'oldest' (lowest bucket present),
-- 'newest' (bucket written last), 'bms' (bucketMs the indices are in).
local function leaves(b, W, B) return (b + 1) * B + W - 1 end

local function prune(k, W, B, now)
  local h = redis.call('HMGET', k, 'total', 'oldest', 'newest', 'bms')
  local total = tonumber(h[1])
  if not total then return 0, nil, nil end
  -- Prune in the granularity the stored indices are in, which a config change may have changed.
  local oldest, newest, bms = tonumber(h[2]), tonumber(h[3]), tonumber(h[4])
  local lo = math.floor((now - W + 1) / bms)
  if oldest < lo then
    if lo - oldest > W / bms + 2 then
      -- Far behind (a clock jump): visiting every index would be slow, the fields are fewer.
      local fields = redis.call('HGETALL', k)
      for i = 1, #fields, 2 do
        local b = tonumber(fields[i])
        if b and b < lo then
          total = total - tonumber(fields[i + 1])
          redis.call('HDEL', k, fields[i])
        end
      end
    else
      for b = oldest, math.min(lo - 1, newest) do
        local f = fmt(b)
        local v = redis.call('HGET', k, f)
        if v then
          total = total - tonumber(v)
          redis.call('HDEL', k, f)
        end
      end
    end
    oldest = lo
  end
  while oldest <= newest and redis.call('HEXISTS', k, fmt(oldest)) == 0 do oldest = oldest + 1 end
  if oldest > newest then
    redis.call('DEL', k)
    return 0, nil, nil
  end
  if bms ~= B then
    -- Granularity changed: what still counts moves into the current bucket (longer, never shorter).
    local cur = math.floor(now / B)
    redis.call('DEL', k)
    if total <= 0 then return 0, nil, nil end
    redis.call('HSET', k, fmt(cur), fmt(total), 'total', fmt(total), 'oldest', fmt(cur), 'newest', fmt(cur), 'bms', fmt(B))
    redis.call('PEXPIRE', k, fmt(leaves(cur, W, B) - now + B))
    return total, cur, cur
  end
  redis.call('HSET', k, 'total', fmt(total), 'oldest', fmt(oldest))
  return total, oldest, newest
end
`;

/**
 * KEYS: one hash per window. ARGV: now, then windowMs, bucketMs, limit, cost per window.
 * Returns {admitted, retryAfterMs, refused window index or -1, then remaining, resetMs, bucket per window}.
 */
export const ADMIT = `${COMMON}${WINDOW}
local now = tonumber(ARGV[1])
local n = #KEYS
local W, B, L, C, total, oldest, newest, wait = {}, {}, {}, {}, {}, {}, {}, {}
local refused, refusedWait, refusedImpossible = -1, 0, false
for i = 1, n do
  local a = 2 + (i - 1) * 4
  W[i], B[i], L[i], C[i] = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  total[i], oldest[i], newest[i] = prune(KEYS[i], W[i], B[i], now)
  wait[i] = 0
  if total[i] + C[i] > L[i] then
    local impossible = C[i] > L[i]
    if impossible then
      wait[i] = W[i]
    else
      local excess = total[i] + C[i] - L[i]
      local b = oldest[i]
      while b <= newest[i] do
        local v = redis.call('HGET', KEYS[i], fmt(b))
        if v then excess = excess - tonumber(v) end
        if excess <= 0 then break end
        b = b + 1
      end
      wait[i] = math.max(0, leaves(b, W[i], B[i]) - now)
    end
    if refused < 0 or (impossible and not refusedImpossible) or (impossible == refusedImpossible and wait[i] > refusedWait) then
      refused, refusedWait, refusedImpossible = i, wait[i], impossible
    end
  end
end
local out = {0, 0, -1}
if refused > 0 then
  out[2], out[3] = refusedWait, refused - 1
  for i = 1, n do
    if total[i] + C[i] > L[i] then
      table.insert(out, 0); table.insert(out, wait[i])
    else
      table.insert(out, math.max(0, L[i] - total[i]))
      table.insert(out, oldest[i] and math.max(0, leaves(oldest[i], W[i], B[i]) - now) or 0)
    end
    table.insert(out, -1)
  end
  return out
end
out[1] = 1
for i = 1, n do
  local k = KEYS[i]
  local b = math.floor(now / B[i])
  if newest[i] and newest[i] > b then b = newest[i] end
  local first = oldest[i] or b
  redis.call('HINCRBY', k, fmt(b), fmt(C[i]))
  local t = total[i] + C[i]
  redis.call('HSET', k, 'total', fmt(t), 'oldest', fmt(first), 'newest', fmt(b), 'bms', fmt(B[i]))
  redis.call('PEXPIRE', k, fmt(leaves(b, W[i], B[i]) - now + B[i]))
  table.insert(out, math.max(0, L[i] - t))
  table.insert(out, math.max(0, leaves(first, W[i], B[i]) - now))
  table.insert(out, b)
end
return out
`;

/** KEYS: the window hash. ARGV: now, windowMs, bucketMs, bucket, delta. */
export const ADJUST = `${COMMON}${WINDOW}
local now, W, B, bucket, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local k = KEYS[1]
if tonumber(redis.call('HGET', k, 'bms')) ~= B then return 0 end
local total, oldest = prune(k, W, B, now)
if not oldest or bucket < oldest then return 0 end
local v = tonumber(redis.call('HGET', k, fmt(bucket)))
if not v then return 0 end
local nv = math.max(0, v + delta)
redis.call('HSET', k, fmt(bucket), fmt(nv), 'total', fmt(total + nv - v))
return 1
`;

const BUDGET = `
-- Four keys per budget: h (hash: spent, reserved, until), held (zset: reservation id by expiry),
-- amt (hash: id -> amount), swept (zset: ids that expired into spent, by when to forget them).
local DAY = 86400000

local function sweep(h, held, amt, swept, now, grace)
  local ids = redis.call('ZRANGEBYSCORE', held, '-inf', fmt(now))
  if #ids > 0 then
    for _, id in ipairs(ids) do
      local a = redis.call('HGET', amt, id)
      if a then
        redis.call('HINCRBY', h, 'spent', a)
        redis.call('HINCRBY', h, 'reserved', fmt(-tonumber(a)))
        redis.call('HDEL', amt, id)
        redis.call('ZADD', swept, fmt(now + grace), id)
      end
      redis.call('ZREM', held, id)
    end
    local u = redis.call('HGET', h, 'until')
    if u then redis.call('PEXPIREAT', swept, fmt(tonumber(u) + DAY)) end
  end
  redis.call('ZREMRANGEBYSCORE', swept, '-inf', fmt(now))
end

local function level(h)
  local l = redis.call('HMGET', h, 'spent', 'reserved')
  return tonumber(l[1]) or 0, tonumber(l[2]) or 0
end
`;

/**
 * KEYS: 4 per budget, then the index zset (budget key by expiry, for snapshots). ARGV: now, amount,
 * holdMs, id, grace, then limit, enforce (0|1), expiresAt, key per budget.
 * Returns {1} or {0, refused index, spent, reserved}.
 */
export const RESERVE = `${COMMON}${BUDGET}
local now, amount, hold, id, grace = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local n = (#KEYS - 1) / 4
local index = KEYS[#KEYS]
for i = 1, n do
  local k = (i - 1) * 4
  sweep(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], now, grace)
end
for i = 1, n do
  local a = 6 + (i - 1) * 4
  if ARGV[a + 1] == '1' then
    local spent, reserved = level(KEYS[(i - 1) * 4 + 1])
    if spent + reserved + amount > tonumber(ARGV[a]) then return {0, i - 1, spent, reserved} end
  end
end
for i = 1, n do
  local k = (i - 1) * 4
  local a = 6 + (i - 1) * 4
  local h, held, amt, swept = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local u = tonumber(redis.call('HGET', h, 'until'))
  local expiresAt = tonumber(ARGV[a + 2])
  if not u or expiresAt > u then u = expiresAt end
  redis.call('HINCRBY', h, 'reserved', ARGV[2])
  redis.call('HSETNX', h, 'spent', '0')
  redis.call('HSET', h, 'until', fmt(u))
  redis.call('HSET', amt, id, ARGV[2])
  redis.call('ZADD', held, fmt(now + hold), id)
  for _, key in ipairs({h, held, amt}) do redis.call('PEXPIREAT', key, fmt(u + DAY)) end
  if redis.call('EXISTS', swept) == 1 then redis.call('PEXPIREAT', swept, fmt(u + DAY)) end
  redis.call('ZADD', index, fmt(u), ARGV[a + 3])
end
return {1}
`;

/** KEYS: 4 per budget. ARGV: now, id, amount, actual, grace. Returns spent, reserved per budget. */
export const SETTLE = `${COMMON}${BUDGET}
local now, id, amount, actual, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {}
for i = 1, #KEYS / 4 do
  local k = (i - 1) * 4
  local h, held, amt, swept = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  sweep(h, held, amt, swept, now, grace)
  local a = redis.call('HGET', amt, id)
  if a then
    redis.call('HINCRBY', h, 'reserved', fmt(-tonumber(a)))
    redis.call('HINCRBY', h, 'spent', fmt(actual))
    redis.call('HDEL', amt, id)
    redis.call('ZREM', held, id)
  elseif redis.call('ZREM', swept, id) == 1 then
    -- Expired into spent already: only the difference is new.
    local spent = level(h)
    redis.call('HSET', h, 'spent', fmt(math.max(0, spent + actual - amount)))
  end
  local spent, reserved = level(h)
  table.insert(out, spent); table.insert(out, reserved)
end
return out
`;

/** KEYS: 4 per budget. ARGV: now, grace. Returns spent, reserved per budget. */
export const LEVELS = `${COMMON}${BUDGET}
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS / 4 do
  local k = (i - 1) * 4
  sweep(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], now, grace)
  local spent, reserved = level(KEYS[k + 1])
  table.insert(out, spent); table.insert(out, reserved)
end
return out
`;

/**
 * Adds spend recorded elsewhere, once per batch id. KEYS: the marker of the batch, the index,
 * then one budget hash per entry. ARGV: marker lifetime ms, then delta, expiresAt, key per entry.
 * Returns 1 if applied, 0 if that batch was applied before.
 */
export const APPLY_SPEND = `${COMMON}
local DAY = 86400000
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 3, #KEYS do
  local h = KEYS[i]
  local a = 2 + (i - 3) * 3
  local delta, expiresAt = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local spent = tonumber(redis.call('HGET', h, 'spent')) or 0
  redis.call('HSET', h, 'spent', fmt(math.max(0, spent + delta)))
  local u = tonumber(redis.call('HGET', h, 'until'))
  if not u or expiresAt > u then
    redis.call('HSET', h, 'until', fmt(expiresAt))
    u = expiresAt
  end
  redis.call('PEXPIREAT', h, fmt(u + DAY))
  redis.call('ZADD', KEYS[2], fmt(u), ARGV[a + 2])
end
return 1
`;
