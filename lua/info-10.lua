--[[
  info: a queue's settings and exact counts, after bounded maintenance (so expired messages and
  lapsed reservations are not counted).
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
  Returns: {flags, created, (backlog: ready, delayed, reserved, bytes, oldest_at), meta...}
           created: always 0 (configure's reply: both share one decoder); the backlog as
           includes/queue.lua backlog() gives it
           meta: field, value per field of the meta hash
  Errors:  QUEUE_NOT_FOUND
]]
-- @include "maintain"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
if not Q.exists then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
Q.channel = ARGV[3]

maintain(Q, ARGV[2])
flush(Q)

local figures = backlog(Q)
local reply = {flags(Q), 0, figures[1], figures[2], figures[3], figures[4], figures[5]}
for _, v in ipairs(redis.call("HGETALL", KEYS[META])) do reply[#reply + 1] = v end
return reply
