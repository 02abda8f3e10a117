--[[
  touch: extend a current reservation to now + timeout; the reservation gets a new id.
  KEYS[1] meta      hash   `q`: DUE lowered to the new deadline
  KEYS[2] reserved  zset   id -> deadline ms
  KEYS[3] msg       hash   id -> record
  KEYS[4] dlv       hash   id -> delivery state "count|token|timeout|expire"
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] message id
  ARGV[3] reservation id to check ("" = any current reservation)
  ARGV[4] timeout ms ("" = the reservation's own timeout; "@ms" = until that moment)
  ARGV[5] new reservation id
  Returns: {reservation_id, deadline, timeout}
           reservation_id: the new one (ARGV[5]); deadline: ms; timeout: ms
  Errors:  QUEUE_NOT_FOUND, NOT_FOUND, NOT_RESERVED (not reserved, lapsed, or another reservation)
]]
-- @include "record"
-- @include "state"

local now, now_s = now_from(ARGV[1])
local id, rid = ARGV[2], ARGV[3]

local s = read_state(KEYS[1], redis.call("HGET", KEYS[1], "q"))
if not s then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
if redis.call("HEXISTS", KEYS[3], id) == 0 then return redis.error_reply("NOT_FOUND message not found") end
local deadline = redis.call("ZSCORE", KEYS[2], id)
if not deadline or tonumber(deadline) <= now then
  return redis.error_reply("NOT_RESERVED message is not reserved")
end
local deliveries, token, timeout, expire_at = dlv_fields(redis.call("HGET", KEYS[4], id))
if not deliveries or (rid ~= "" and rid ~= token) then
  return redis.error_reply("NOT_RESERVED reservation id is not current")
end

if string.sub(ARGV[4], 1, 1) == "@" then
  timeout = string.format("%09d", math.max(1, tonumber(string.sub(ARGV[4], 2)) - now))
elseif ARGV[4] ~= "" then
  timeout = string.format("%09d", tonumber(ARGV[4]))
end
local new_deadline = now + tonumber(timeout)
redis.call("ZADD", KEYS[2], "XX", ms_string(new_deadline), id)
-- A shorter timeout may lapse before anything else is due (see DUE in includes/queue.lua).
if s[DUE] > new_deadline then
  s[DUE] = new_deadline
  redis.call("HSET", KEYS[1], "q", pack_state(s))
end
redis.call("HSET", KEYS[4], id, dlv_state(deliveries, ARGV[5], timeout, expire_at))
return {ARGV[5], new_deadline, tonumber(timeout)}
