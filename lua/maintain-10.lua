--[[
  maintain: the sweeper's pass over one queue nobody may be reading: requeue lapsed reservations
  (dead-lettering those out of deliveries), promote due delayed messages, drop expired ones.
  Writes nothing when there is nothing to do.
  KEYS[1] meta      hash   `q`; `over` (the quota mark's text)
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
  Returns: {flags, more, outbox, messages, bytes}
           more: 1 = a bound was hit: call again; outbox: its length
           messages: ready + delayed + reserved + being pushed
           bytes: MEMORY USAGE of the records; 0 where unavailable
           flags: 1 = outbox work pending, 2 = queue does not exist
  Errors:  none
]]
-- @include "maintain"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
local s = Q
if not Q.exists then return {flags(Q), 0, 0, 0, 0} end
Q.channel = ARGV[3]

local more = maintain(Q, ARGV[2])
local mark = ARGV[4]
if mark then
  local over = mark ~= ""
  if over ~= has_flag(s, OVER_QUOTA) or over and redis.call("HGET", KEYS[META], "over") ~= mark then
    set_flag(s, OVER_QUOTA, over)
    if over then redis.call("HSET", KEYS[META], "over", mark) else redis.call("HDEL", KEYS[META], "over") end
  end
end
flush(Q)
local pending = redis.call("LLEN", KEYS[OUTBOX])
if pending > 0 then Q.outboxed = true end
local ready, delayed, reserved = sizes(Q)
local held = ready + delayed + reserved + s[PUSHING]
return {flags(Q), more and 1 or 0, pending, held, stored_bytes(KEYS, held)}
