--[[
  settle: a batch of deletes and releases (IronMQ delete / delete many / release, Cloudflare ack
  with retries). Each item is checked before it is changed; one bad item never aborts the others.
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
  ARGV[4] number of deletes d, ARGV[5] number of releases r
  then d pairs:   id, reservation id ("" = delete whatever its state)
  then r triples: id, reservation id ("" = no check), delay ms ("" = the queue's retry delay;
                  "@ms" = until that moment)
  Returns: {flags, status per delete..., status per release...}
           status: 1 done, 2 release of a message that was not reserved (no change),
                   0 no such message, -1 reservation id given but not current (no change)
           flags: 1 = outbox work pending, 2 = queue does not exist
  Errors:  none (per-item statuses instead)
]]
-- @include "queue"

local now = now_from(ARGV[1])
local Q = open_queue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], now)
Q.channel = ARGV[3]
local d, r = tonumber(ARGV[4]), tonumber(ARGV[5])
local reply = {0}
if not Q.exists then
  for _ = 1, d + r do reply[#reply + 1] = 0 end
  reply[1] = flags(Q)
  return reply
end
maintain(Q, tonumber(ARGV[2]))

-- Is `id` under the reservation `rid` right now? ("" asks only whether it is reserved at all)
local function holds(rid, deadline, state)
  if not deadline or tonumber(deadline) <= now then return false end
  if rid == "" then return true end
  local _, token = parse_dlv(state)
  return token == rid
end

-- Deletes, classified in bulk: a reserved or delayed message is known to exist (its set says
-- where it is), so only the others need a look of their own (ready ones, or unknown ids).
if d > 0 then
  local ids, rids, checked = {}, {}, false
  for i = 1, d do
    ids[i], rids[i] = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
    checked = checked or rids[i] ~= ""
  end
  local deadlines = redis.call("ZMSCORE", Q.reserved, unpack(ids))
  local waiting = redis.call("ZMSCORE", Q.delayed, unpack(ids))
  local states = checked and redis.call("HMGET", Q.dlv, unpack(ids)) or {}
  local from_reserved, from_delayed, gone, seen = {}, {}, {}, {}
  for i, id in ipairs(ids) do
    local status
    if seen[id] then
      status = 0 -- a repeated id: the first occurrence already decided it
    elseif rids[i] ~= "" and not holds(rids[i], deadlines[i], states[i]) then
      status = redis.call("HEXISTS", Q.msg, id) == 1 and -1 or 0
    elseif deadlines[i] then
      status = 1
      from_reserved[#from_reserved + 1] = id
    elseif waiting[i] then
      status = 1
      from_delayed[#from_delayed + 1] = id
    else
      local push_message = is_push_message(Q, id)
      status = redis.call("HDEL", Q.msg, id) -- 1 for a ready message: its id becomes a ghost
      if status == 1 then
        gone[#gone + 1] = id
        if push_message then drop_push(Q, id) else Q.ghosts = Q.ghosts + 1 end
      end
    end
    seen[id] = true
    reply[#reply + 1] = status
  end
  if #from_reserved > 0 then redis.call("ZREM", Q.reserved, unpack(from_reserved)) end
  if #from_delayed > 0 then redis.call("ZREM", Q.delayed, unpack(from_delayed)) end
  for _, id in ipairs(from_reserved) do gone[#gone + 1] = id end
  for _, id in ipairs(from_delayed) do gone[#gone + 1] = id end
  drop(Q, gone)
  count(Q, "c_deleted", #gone)
end

-- Releases: one by one (each may requeue, delay or dead-letter).
local base = 6 + 2 * d
for i = 0, r - 1 do
  local id, rid, delay = ARGV[base + 3 * i], ARGV[base + 3 * i + 1], ARGV[base + 3 * i + 2]
  local status
  if redis.call("HEXISTS", Q.msg, id) == 0 then
    status = 0
  else
    local state = redis.call("HGET", Q.dlv, id)
    if holds(rid, redis.call("ZSCORE", Q.reserved, id), state) then
      local deliveries, _, _, expire_at = parse_dlv(state)
      redis.call("ZREM", Q.reserved, id)
      end_delivery(Q, id, deliveries, expire_at, delay == "" and tonumber(Q.retry_delay_s) or span(delay, now))
      status = 1
    elseif rid == "" then
      status = 2
    else
      status = -1
    end
  end
  reply[#reply + 1] = status
end

flush(Q)
reply[1] = flags(Q)
return reply
