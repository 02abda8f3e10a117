--[[
  push_ack: a subscriber acknowledges a delivery it answered with 202 (DELETE of its subscriber
  message): the delivery is done.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] ready     list   (maintenance only)
  KEYS[3] delayed   zset   (maintenance only)
  KEYS[4] reserved  zset   (maintenance only)
  KEYS[5] expiry    zset   (unused here)
  KEYS[6] msg       hash   (unused here)
  KEYS[7] dlv       hash   (unused here)
  KEYS[8] outbox    list   (unused here)
  KEYS[9] push      zset   delivery -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] subscriber message id (message id and a two-digit subscriber index)
  ARGV[3] the delivery's token from its acknowledgement URL ("" = authorised otherwise)
  Returns: 1 acknowledged, 0 nothing was waiting (already delivered, or failed: no change)
  Errors:  NOT_FOUND (no such subscriber message, or a token that is not this delivery's)
]]
-- @include "push"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
local sid, token = ARGV[2], ARGV[3]
local id, index = string.sub(sid, 1, -3), tonumber(string.sub(sid, -2))
local rec = load_push(Q, id)
local sub = rec and index and rec.subs[index]
if not sub or (token ~= "" and sub.k ~= token) then
  return redis.error_reply("NOT_FOUND no such subscriber message")
end
if sub.s ~= "reserved" then return 0 end
push_delivered(Q, id, rec, index, sub.c or 200)
save_push(Q, id, rec)
flush(Q)
return 1
