--[[
  delete_reserve: a consumer's loop in one call. Delete the message it finished, under the
  reservation it holds; then, if it was deleted, reserve up to n more in FIFO order (BullMQ's
  moveToFinished hands out the next job the same way: a round trip per message, not two).
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
  ARGV[4] n (1..100): messages to reserve after the deletes
  ARGV[5] reservation timeout ms for these messages ("0" = each message's own)
  ARGV[6] token: the new reservation id, random per call
  ARGV[7] id of the message to delete
  ARGV[8] its reservation id ("" = delete it whatever its state)
  Returns: {flags, now, next_at, status, messages...}
           status: of the delete: 1 done, 0 no such message, -1 reservation id not current
           messages: id, record, deliveries per message, as reserve's; none unless the delete
           was done and delivery is not paused
           next_at: ms, -1 = nothing pending; only when nothing was taken
           flags: 1 = outbox work pending, 2 = queue does not exist (nothing done), 8 = delivery
           is paused (the deletes done, nothing reserved)
  Errors:  none (a status per delete instead)
]]
-- @include "held"
-- @include "take"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
local reply = {0, now, -1}
if not Q.exists then
  reply[1], reply[4] = flags(Q), 0
  return reply
end
Q.channel = ARGV[3]
if now >= Q[DUE] then
  maintain(Q, ARGV[2], false) -- the take below pops (and checks) the head itself
  flush_ready(Q)
end

local paused = has_flag(Q, PAUSED)
if delete_held(Q, {ARGV[7]}, {ARGV[8]}, reply) == 1 and not paused then
  if take(Q, reply, tonumber(ARGV[4]), ARGV[2], ARGV[5], ARGV[6], false) == 0 then
    reply[3] = next_at(Q)
  end
end
flush(Q)
reply[1] = flags(Q) + (paused and 8 or 0)
return reply
