"""The Lua scripts behind ``RedisLimitStore``. Each runs atomically on the server and reads the server's own
clock (``TIME``), so every process agrees on "now" whatever its local clock says.

Times inside the scripts are milliseconds with a microsecond fraction. NOTE: numbers bound for Redis are
formatted with ``%.3f``/``%.17g``: Lua's default ``tostring`` keeps 14 digits, which would round epoch
milliseconds to whole units and skew windows.
"""

from __future__ import annotations

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
"""

HIT = (
    _NOW
    + """
-- KEYS: window sorted set (member "<cost>:<token>", score = time), its running total.
-- ARGV: limit, window ms, cost, count (1 hit / 0 peek), token.
-- Returns false when the cost fits (counted if ARGV[4] == '1'), else the wait in ms, or 'inf' for never.
local limit, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local log, sum = KEYS[1], KEYS[2]
local cutoff = string.format('%.3f', now - window)
local function cost_of(member) return tonumber(string.match(member, '^([^:]+):')) end

local total = tonumber(redis.call('GET', sum))
local changed = false
if total == nil then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
  total = 0
  for _, member in ipairs(redis.call('ZRANGE', log, 0, -1)) do total = total + cost_of(member) end
  changed = total > 0
else
  local old = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
  if #old > 0 then
    for _, member in ipairs(old) do total = total - cost_of(member) end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
    changed = true
  end
end

local wait = false
if cost > limit then
  wait = 'inf'
elseif total + cost > limit then
  local need, freed, start = total + cost - limit, 0, 0
  while not wait do
    local batch = redis.call('ZRANGE', log, start, start + 63, 'WITHSCORES')
    if #batch == 0 then wait = 'inf' break end
    for i = 1, #batch, 2 do
      freed = freed + cost_of(batch[i])
      if freed >= need then
        wait = string.format('%.3f', tonumber(batch[i + 1]) + window - now)
        break
      end
    end
    start = start + 64
  end
elseif ARGV[4] == '1' and cost > 0 then
  local ttl = math.ceil(window) + 1000
  redis.call('ZADD', log, string.format('%.3f', now), ARGV[3] .. ':' .. ARGV[5])
  redis.call('PEXPIRE', log, ttl)
  redis.call('SET', sum, string.format('%.17g', total + cost), 'PX', ttl)
  return false
end

if changed then
  if redis.call('EXISTS', log) == 0 then
    redis.call('DEL', sum)
  else
    redis.call('SET', sum, string.format('%.17g', total), 'KEEPTTL')
  end
end
return wait
"""
)

ACQUIRE = (
    _NOW
    + """
-- KEYS: lease sorted set (member = lease id, score = expiry). ARGV: limit, lease ms, lease id.
-- Returns 1 when the lease was taken, false when every slot is held.
local leases = KEYS[1]
redis.call('ZREMRANGEBYSCORE', leases, '-inf', string.format('%.3f', now))
if redis.call('ZCARD', leases) >= tonumber(ARGV[1]) then return false end
local lease = tonumber(ARGV[2])
redis.call('ZADD', leases, string.format('%.3f', now + lease), ARGV[3])
local ttl = math.ceil(lease) + 1000
if redis.call('PTTL', leases) < ttl then redis.call('PEXPIRE', leases, ttl) end
return 1
"""
)

HELD = (
    _NOW
    + """
-- KEYS: lease sorted set. Returns the number of leases not yet expired.
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.3f', now), '+inf')
"""
)

COOL_DOWN = """
-- KEYS: cooldown key. ARGV: ms. Extends a running cooldown, never shortens it.
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""
