--[[
  reserve_ready: reserve's common case on seven of its ten keys. Hands out up to n ready messages
  in FIFO order under a new reservation (or deletes them as they go, when delete = 1), as reserve
  does, from a queue with no maintenance due, no alerts, not a push queue. Otherwise it writes
  nothing and answers FULL, and the engine sends reserve (lua/reserve-10.lua), which handles
  every case. Redis charges a script call ~1.3k instructions per key it declares (callgrind,
  bench/RESULTS.md), but the keys in the slots of includes/queue.lua cost less than a table
  putting them there (~3.4k): so `delayed`, unused here, is declared too.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] ready     list   FIFO of ids
  KEYS[3] delayed   zset   (not used)
  KEYS[4] reserved  zset   id -> deadline ms
  KEYS[5] expiry    zset   id -> expire-at ms (an expired or deleted message leaves it)
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] K: bound on skipped (ghost or expired) ids
  ARGV[3] token: the reservation id, random per call
  ARGV[4] n (1..100; absent: 1)
  ARGV[5] reservation timeout ms for these messages ("0" = each message's own; absent: "0")
  ARGV[6] "1" = delete on reserve (absent: "0")
  ARGV[7] absent: ARGV[3] is the token of every message; else n single-message reserves merged
          into this call (engine/coalesce.py): ARGV[3] is their n tokens, each ARGV[7] bytes long,
          the i-th message taken under the i-th
  Trailing arguments at their defaults are not sent: each costs the call ~1.2k instructions.
  Returns: {flags, now, next_at, [backlog: ready, delayed, reserved, bytes, oldest_at],
           messages...}: reserve's reply (never a backlog)
           messages: id, record, deliveries per message
           flags: 2 = queue does not exist (nothing returned); or -1 (then only lasting): FULL,
           nothing written: send reserve. lasting: 1 if the reason lasts (the queue's settings:
           the engine sends reserve for a while), else 0
  Errors:  PAUSED (delivery is paused)
]]
-- @include "take"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s, true)
if not Q then return FULL end  -- a queue of an older FerryMQ: reserve moves its state into `q`
if not Q.exists then return {flags(Q), now, -1} end
if has_flag(Q, HAS_ALERTS) or has_flag(Q, PUSH_QUEUE) then return FULL_LASTING end
if now >= Q[DUE] then return FULL end
if has_flag(Q, PAUSED) then return redis.error_reply("PAUSED delivery is paused on this queue") end

local reply = {0, now, -1}
local n = ARGV[4] and tonumber(ARGV[4]) or 1
local width = ARGV[7] and tonumber(ARGV[7])
local taken, pops, unchanged = take(Q, reply, n, ARGV[2], ARGV[5] or "0", ARGV[3], ARGV[6] == "1", width)
if taken == 0 then reply[3] = next_at(Q) end
-- A steady reserve of one changes no slot of the state (take_one says so), and a poll that
-- changed nothing writes nothing either.
if not unchanged and (taken > 0 or pops > 0 or Q[GHOSTS] + Q[XTAIL] + Q[FRONT] > 0) then flush(Q) end
reply[1] = flags(Q)
return reply
