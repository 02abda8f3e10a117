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
  Returns: {flags, more (1 = a bound was hit: call again), outbox length}
           flags: 1 = outbox work pending, 2 = queue does not exist
  Errors:  none
]]
-- @include "queue"

local now = now_from(ARGV[1])
local Q = open_queue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], now)
if not Q.exists then return {flags(Q), 0, 0} end
Q.channel = ARGV[3]
local K = tonumber(ARGV[2])

local more = maintain(Q, K)
flush(Q)
local pending = redis.call("LLEN", Q.outbox)
if pending > 0 then Q.outboxed = true end
return {flags(Q), more and 1 or 0, pending}
