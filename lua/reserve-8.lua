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
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] K: bound on maintenance and on skipped (ghost or expired) ids
  ARGV[3] pub/sub channel told how many messages became ready
  ARGV[4] n (1..100)
  ARGV[5] reservation timeout ms for these messages ("0" = each message's own)
  ARGV[6] token: reservation id prefix, random per call; message i gets token .. i
  ARGV[7] "1" = delete on reserve
  Returns: {now, next_at (ms, -1 = nothing pending; only when nothing was taken), flags,
            then per message: id, record, deliveries, reservation id, timeout ms, deadline ms}
           flags: 1 = outbox work pending, 2 = queue does not exist (nothing returned)
  Errors:  PAUSED (delivery is paused)
]]
-- @include "queue"

local now = now_from(ARGV[1])
local Q = open_queue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], now)
Q.channel = ARGV[3]
if not Q.exists then return {now, -1, flags(Q)} end
if Q.paused then return redis.error_reply("PAUSED delivery is paused on this queue") end

local K, n, timeout, token = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local delete = ARGV[7] == "1"

maintain(Q, K, false) -- the take below pops (and checks) the head itself
flush(Q)

-- Take: pop from the head, skipping ghosts and expired messages (at most n + K pops).
local ids, recs, timeouts, expires = {}, {}, {}, {}
local budget, skipped = n + K, {}
while #ids < n and budget > 0 do
  local popped = redis.call("LPOP", Q.ready, math.min(n - #ids, budget))
  if not popped then break end
  budget = budget - #popped
  local records = redis.call("HMGET", Q.msg, unpack(popped))
  for i, id in ipairs(popped) do
    local rec = records[i]
    if not rec then
      Q.ghosts = Q.ghosts - 1
    else
      local _, to, exp = parse_head(rec)
      if tonumber(exp) <= now then
        skipped[#skipped + 1] = id
      else
        local j = #ids + 1
        ids[j], recs[j], timeouts[j], expires[j] = id, rec, tonumber(to), exp
      end
    end
  end
end
drop(Q, skipped)
count(Q, "c_expired", #skipped)

local reply = {now, -1, 0}
if #ids > 0 then
  local states = redis.call("HMGET", Q.dlv, unpack(ids))
  local zargs, hargs = {}, {}
  for i, id in ipairs(ids) do
    local deliveries = parse_dlv(states[i]) + 1
    local eff = timeout > 0 and timeout or timeouts[i]
    local deadline = now + eff
    local rid = token .. i
    zargs[#zargs + 1] = deadline
    zargs[#zargs + 1] = id
    hargs[#hargs + 1] = id
    hargs[#hargs + 1] = deliveries .. "|" .. rid .. "|" .. eff .. "|" .. expires[i]
    for _, v in ipairs({id, recs[i], deliveries, rid, eff, deadline}) do reply[#reply + 1] = v end
  end
  if delete then
    drop(Q, ids)
    count(Q, "c_deleted", #ids)
  else
    redis.call("ZADD", Q.reserved, unpack(zargs))
    redis.call("HSET", Q.dlv, unpack(hargs))
  end
  count(Q, "c_reserved", #ids)
else
  reply[2] = next_at(Q)
end
flush(Q)
reply[3] = flags(Q)
return reply
