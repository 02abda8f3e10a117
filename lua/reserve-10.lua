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
  ARGV[7] "1" = delete on reserve
  ARGV[8] "1" = also report the backlog after this reserve (ready, delayed, reserved, bytes,
          oldest enqueue time)
  Returns: {flags, now, next_at, [backlog: ready, delayed, reserved, bytes, oldest_at],
           messages...}
           next_at: ms, -1 = nothing pending; only when nothing was taken
           backlog: only if ARGV[8] = "1"
           messages: id, record, deliveries per message (a message's deadline is now +
           ARGV[5], or now + the timeout in its record header)
           flags: 1 = outbox work pending, 2 = queue does not exist (nothing returned)
  Errors:  PAUSED (delivery is paused)
]]
-- @include "maintain"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
if not Q.exists then
  if ARGV[8] == "1" then return {flags(Q), now, -1, 0, 0, 0, 0, 0} end
  return {flags(Q), now, -1}
end
if has_flag(Q, PAUSED) then return redis.error_reply("PAUSED delivery is paused on this queue") end
Q.channel = ARGV[3]
if now >= Q[DUE] then
  maintain(Q, ARGV[2], false) -- the take below pops (and checks) the head itself
  flush_ready(Q)
end

-- Take: pop n from the head; ghosts and expired messages met on the way are skipped, and K more
-- pops are allowed for them (at most n + K in all).
local n, token, delete = tonumber(ARGV[4]), ARGV[6], ARGV[7] == "1"
local ids, recs, exps, skipped = {}, {}, {}, nil
local pops, budget, want = 0, n, ARGV[4]
repeat
  local taken = redis.call("LPOP", KEYS[READY], want)
  if not taken then
    Q.emptied = true
    break
  end
  pops = pops + #taken
  if #taken < tonumber(want) then Q.emptied = true end
  local records = redis.call("HMGET", KEYS[MSG], unpack(taken))
  for i = 1, #taken do
    local rec = records[i]
    local expire_s = rec and string.sub(rec, 25, 37)  -- rec_expire, inline: this loop is the hot path
    if rec and expire_s > now_s then
      local m = #ids + 1
      ids[m], recs[m], exps[m] = taken[i], rec, expire_s
    else
      if budget == n then budget = n + tonumber(ARGV[2]) end
      if rec then
        skipped = skipped or {}
        skipped[#skipped + 1] = taken[i]
      else
        Q[GHOSTS] = Q[GHOSTS] - 1
      end
    end
  end
  want = string.format("%d", math.min(n - #ids, budget - pops))
until Q.emptied or #ids >= n or pops >= budget
popped(Q, pops)
if skipped then
  drop(Q, skipped)
  count(Q, "c_expired", #skipped)
end

-- Reserve what was taken: deadline and delivery state per message (a batch mostly shares one
-- timeout: its conversions are cached).
local reply = {0, now, -1}
if ARGV[8] == "1" then
  for i = 4, 8 do reply[i] = -1 end
end
if #ids > 0 then
  local override = ARGV[5] ~= "0" and string.format("%09d", tonumber(ARGV[5])) or nil
  local states = redis.call("HMGET", KEYS[DLV], unpack(ids))
  local zargs, hargs, deadlines = {}, {}, {}
  local r = #reply
  for i = 1, #ids do
    local id, rec = ids[i], recs[i]
    local deliveries = "1"
    if states[i] then deliveries = tostring(tonumber(string.match(states[i], "^(%d+)")) + 1) end
    local timeout = override or string.sub(rec, 15, 23)  -- rec_timeout, inline
    local deadline = deadlines[timeout]
    if not deadline then
      local at = now + tonumber(timeout)
      deadline = ms_string(at)
      deadlines[timeout] = deadline
      if at < Q[DUE] and not delete then Q[DUE] = at end  -- due_by, inline
    end
    zargs[2 * i - 1], zargs[2 * i] = deadline, id
    hargs[2 * i - 1], hargs[2 * i] = id, deliveries .. "|" .. token .. "|" .. timeout .. "|" .. exps[i]
    reply[r + 1], reply[r + 2], reply[r + 3] = id, rec, deliveries
    r = r + 3
  end
  if delete then
    drop(Q, ids)
    Q[DELETED_COUNT] = Q[DELETED_COUNT] + #ids
  else
    redis.call("ZADD", KEYS[RESERVED], unpack(zargs))
    redis.call("HSET", KEYS[DLV], unpack(hargs))
  end
  Q[RESERVED_COUNT] = Q[RESERVED_COUNT] + #ids
else
  reply[3] = next_at(Q)
end
flush(Q)
reply[1] = flags(Q)
if ARGV[8] == "1" then
  local figures = backlog(Q)
  for i = 1, 5 do reply[3 + i] = figures[i] end
end
return reply
