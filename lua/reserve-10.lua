--[[
  reserve: hand out up to n ready messages in FIFO order, each under a new reservation
  (or delete them as they are handed out, when delete = 1: at-most-once).
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
  ARGV[5] reservation timeout ms for these messages ("0" = each message's own)
  ARGV[6] token: the reservation id, random per call (checks always pair it with a message id)
  ARGV[7] "1" = delete on reserve (absent: "0")
  ARGV[8] "1" = also report the backlog after this reserve (ready, delayed, reserved, bytes,
          oldest enqueue time) (absent: "0")
  Returns: {flags, now, next_at, [backlog: ready, delayed, reserved, bytes, oldest_at],
           messages...}
           next_at: ms, -1 = nothing pending; only when nothing was taken
           backlog: only if ARGV[8] = "1"
           messages: id, record, deliveries per message (a message's deadline is now +
           ARGV[5], or now + the timeout in its record header)
           flags: 1 = outbox work pending, 2 = queue does not exist (nothing returned)
  Errors:  PAUSED (delivery is paused)
]]
-- @include "take"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
if not Q.exists then
  if ARGV[8] == "1" then return {flags(Q), now, -1, 0, 0, 0, 0, 0} end
  return {flags(Q), now, -1}
end
if has_flag(Q, PAUSED) then return redis.error_reply("PAUSED delivery is paused on this queue") end
Q.channel = ARGV[3]
local maintained = now >= Q[DUE]
if maintained then
  maintain(Q, ARGV[2], false) -- the take below pops (and checks) the head itself
  flush_ready(Q)
end

local reply = {0, now, -1}
if ARGV[8] == "1" then
  for i = 4, 8 do reply[i] = -1 end
end
local taken, pops = take(Q, reply, tonumber(ARGV[4]), ARGV[2], ARGV[5], ARGV[6], ARGV[7] == "1")
if taken == 0 then
  reply[3] = next_at(Q)
elseif maintained and now >= Q[DUE] then
  -- The pass above left the head to the take, so not DUE either: a pass with the head now sets
  -- it, or the next calls would find maintenance due and the common case's script
  -- (reserve_ready) would send every one of them here.
  maintain(Q, ARGV[2])
end
-- A poll of an idle queue (nothing due, nothing popped, the FIFO's bookkeeping already that of an
-- empty list) changed nothing: it skips flush(), whose packing of the state alone costs ~7k
-- instructions of the ~85k such a poll costs (callgrind); consumers poll idle queues all day.
if maintained or pops > 0 or Q[GHOSTS] + Q[XTAIL] + Q[FRONT] > 0 then flush(Q) end
reply[1] = flags(Q)
if ARGV[8] == "1" then
  local figures = backlog(Q)
  for i = 1, 5 do reply[3 + i] = figures[i] end
end
return reply
