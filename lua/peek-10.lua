--[[
  peek: the next n ready messages in FIFO order, without reserving them. Never returns reserved
  or delayed messages. Works while delivery is paused.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] ready     list   FIFO of ids
  KEYS[3] delayed   zset   id -> due ms
  KEYS[4] reserved  zset   id -> deadline ms
  KEYS[5] expiry    zset   id -> expire-at ms
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  KEYS[8] outbox    list   dead letters to move
  KEYS[9] push      zset   delivery ("<id>|<n>", or "<id>|u" for unicast) -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record (JSON) of a push-queue message
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] K: bound on maintenance and on skipped (ghost or expired) ids
  ARGV[3] pub/sub channel told how many messages became ready
  ARGV[4] n (1..100)
  Returns: {flags, now, messages...}
           messages: id, record, state per message (state: the delivery state or "")
           flags: 1 = outbox work pending, 2 = queue does not exist (nothing returned)
  Errors:  none
]]
-- @include "maintain"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
Q.channel = ARGV[3]
if not Q.exists then return {flags(Q), now} end
local K, n = tonumber(ARGV[2]), tonumber(ARGV[4])

maintain(Q, ARGV[2])
flush(Q)

local reply = {flags(Q), now}
local start, found, limit = 0, 0, n + K
while found < n and start < limit do
  local chunk = redis.call("LRANGE", KEYS[READY], start, start + math.min(n - found, limit - start) - 1)
  if #chunk == 0 then break end
  start = start + #chunk
  local recs = redis.call("HMGET", KEYS[MSG], unpack(chunk))
  local states = redis.call("HMGET", KEYS[DLV], unpack(chunk))
  for i, id in ipairs(chunk) do
    local rec = recs[i]
    if rec and found < n and rec_expire(rec) > now_s then
      found = found + 1
      reply[#reply + 1] = id
      reply[#reply + 1] = rec
      reply[#reply + 1] = states[i] or ""
    end
  end
end
return reply
