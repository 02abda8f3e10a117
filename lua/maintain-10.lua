--[[
  maintain: the sweeper's pass over one queue nobody may be reading: requeue lapsed reservations
  (dead-lettering those out of deliveries), promote due delayed messages, drop expired ones.
  Writes nothing when there is nothing to do.
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
  ARGV[2] K: maintenance bound
  ARGV[3] pub/sub channel told how many messages became ready
  ARGV[4] (optional) the quota mark the queue should carry: "" none, else "<quota> <limit>" (its
          project is over that quota: puts are refused); absent: left as it is
  Returns: {flags, more (1 = a bound was hit: call again), outbox length, messages (ready +
           delayed + reserved + being pushed), bytes (MEMORY USAGE of the records; 0 where
           unavailable)}
           flags: 1 = outbox work pending, 2 = queue does not exist
  Errors:  none
]]
-- @include "queue"

local now = now_from(ARGV[1])
local Q = open_queue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], now)
if not Q.exists then return {flags(Q), 0, 0, 0, 0} end
Q.channel = ARGV[3]
local K = tonumber(ARGV[2])

local more = maintain(Q, K)
flush(Q)
local pending = redis.call("LLEN", Q.outbox)
if pending > 0 then Q.outboxed = true end
if ARGV[4] and ARGV[4] ~= (Q.over or "") then
  if ARGV[4] == "" then redis.call("HDEL", Q.meta, "over") else redis.call("HSET", Q.meta, "over", ARGV[4]) end
end
local ready, delayed, reserved = sizes(Q)
local bytes = redis.pcall("MEMORY", "USAGE", Q.msg)
if type(bytes) ~= "number" then bytes = 0 end
return {flags(Q), more and 1 or 0, pending, ready + delayed + reserved + Q.pushing, bytes}
