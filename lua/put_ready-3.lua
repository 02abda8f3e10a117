--[[
  put_ready: put's common case with a quarter of its keys. Appends a batch of messages to the end
  of an existing queue's FIFO when nothing else is involved: no maintenance due, no delay, every
  message in expiry order, not a push queue, no alerts, no default delay, not marked over a
  quota. Otherwise it writes nothing and answers FULL, and the engine sends put
  (lua/put-12.lua), which handles every case. Redis charges a script call ~1.3k instructions per key it declares, and this one
  touches three keys where put may touch twelve (callgrind, bench/RESULTS.md).
  KEYS[1]  meta      hash   `q` (the state), over
  KEYS[2]  ready     list   FIFO of ids
  KEYS[3]  msg       hash   id -> record
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] pub/sub channel told how many messages became ready
  ARGV[3..] 2 values per message: options, body, as put's (includes/record.lua
          MESSAGE_OPTIONS: "" = every queue default). Their count is not sent: an argument
          costs ~1.2k instructions, more than #ARGV
  Returns: {flags, now, created, queue_id, [backlog: ready, delayed, reserved, bytes, oldest_at],
           ids...}: put's reply (created 0, queue_id "", never a backlog)
           ids: id per message
           flags: 0; or -1 (then only lasting): FULL, nothing written: send put. lasting: 1 if
           the reason lasts (the queue's settings: the engine sends put for a while), else 0
  Errors:  QUEUE_NOT_FOUND
]]
-- @include "record"
-- @include "state"

local now, now_s = now_from(ARGV[1])
local raw = redis.call("HGET", KEYS[1], "q")
if not raw then
  if redis.call("EXISTS", KEYS[1]) == 0 then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
  return FULL  -- a queue of an older FerryMQ: put moves its state into `q`
end
local s = unpack_state(raw)
if s[DELAY] > 0 or has_flag(s, PUSH_QUEUE) or has_flag(s, HAS_ALERTS) or has_flag(s, OVER_QUOTA) then
  return FULL_LASTING
end
if now >= s[DUE] or not has_flag(s, TABLES) then return FULL end

local n = (#ARGV - 2) / 2
local id_ms, id_sfx, xtail, due = s[ID_MS], s[ID_SFX], s[XTAIL], s[DUE]
local ms_s = now > id_ms and now_s or ms_string(id_ms)
local default_timeout, default_expire_at = s[TIMEOUT], now + s[EXPIRES_IN]
local head = default_head(now_s, default_timeout, default_expire_at)
local records, ids = {}, {}
local reply = {0, now, 0, "", n > 0 and "" or nil}  -- sized for one id, the usual put
for i = 1, n do
  local opts, body = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local expire_at, record = default_expire_at, nil
  if opts ~= "" then
    local timeout, delay, expires_in, ctype, ref = string.match(opts, MESSAGE_OPTIONS)
    if delay ~= "" or ref ~= "" then return FULL end
    if expires_in ~= "" then expire_at = now + tonumber(expires_in) end
    record = new_record(now_s, timeout == "" and default_timeout or tonumber(timeout), expire_at, ctype, body)
  end
  -- In expiry order, or it needs an `expiry` entry (includes/queue.lua XTAIL): put's to make.
  if expire_at < xtail then return FULL end
  xtail = expire_at
  if expire_at < due then due = expire_at end
  local id
  id_ms, id_sfx, ms_s, id = next_id(now, now_s, id_ms, id_sfx, ms_s)
  records[2 * i - 1], records[2 * i] = id, record or head .. body
  ids[i], reply[4 + i] = id, id
end

if n > 0 then
  redis.call("HSET", KEYS[3], unpack(records))
  redis.call("RPUSH", KEYS[2], unpack(ids))
  redis.call("PUBLISH", ARGV[2], n == 1 and "1" or string.format("%d", n))
  s[ID_MS], s[ID_SFX], s[XTAIL], s[DUE], s[TOTAL] = id_ms, id_sfx, xtail, due, s[TOTAL] + n
  redis.call("HSET", KEYS[1], "q", pack_state(s))
end
return reply
