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
  Returns: {flags, statuses...}
           statuses: status per item, the deletes then the releases
           status: 1 done, 2 release of a message that was not reserved (no change),
                   0 no such message, -1 reservation id given but not current (no change)
           flags: 1 = outbox work pending, 2 = queue does not exist
  Errors:  none (per-item statuses instead)
]]
-- @include "maintain"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
local s = Q
Q.channel = ARGV[3]
local d, r = tonumber(ARGV[4]), tonumber(ARGV[5])
local reply = {0}
if not Q.exists then
  for _ = 1, d + r do reply[#reply + 1] = 0 end
  reply[1] = flags(Q)
  return reply
end
maintain(Q, ARGV[2])

-- Is a message with this deadline (a `reserved` score, text) and delivery state under the
-- reservation `rid` right now? ("" asks only whether it is reserved at all.) Scores of whole
-- ms print as 13 digits, so they compare with now as text.
local function holds(rid, deadline, state)
  if not deadline then return false end
  if #deadline == 13 then
    if deadline <= now_s then return false end
  elseif tonumber(deadline) <= now then
    return false
  end
  return rid == "" or dlv_token(state) == rid
end

-- Deletes, classified in bulk: a reserved or delayed message is known to exist (its set says
-- where it is), so only the others need a look of their own (ready ones, or unknown ids).
if d > 0 then
  local ids, rids, checked = {}, {}, false
  for i = 1, d do
    ids[i], rids[i] = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
    checked = checked or rids[i] ~= ""
  end
  local deadlines = redis.call("ZMSCORE", KEYS[RESERVED], unpack(ids))
  local states = checked and redis.call("HMGET", KEYS[DLV], unpack(ids)) or {}
  local waiting = nil  -- scores in `delayed`, read only for ids not reserved
  local from_reserved, from_delayed, gone, seen = {}, {}, {}, {}
  for i, id in ipairs(ids) do
    local status
    if seen[id] then
      status = 0 -- a repeated id: the first occurrence already decided it
    elseif rids[i] ~= "" and not holds(rids[i], deadlines[i], states[i]) then
      status = redis.call("HEXISTS", KEYS[MSG], id) == 1 and -1 or 0
    elseif deadlines[i] then
      status = 1
      from_reserved[#from_reserved + 1] = id
    else
      waiting = waiting or redis.call("ZMSCORE", KEYS[DELAYED], unpack(ids))
      if waiting[i] then
        status = 1
        from_delayed[#from_delayed + 1] = id
      else
        local push_message = is_push_message(Q, id)
        status = redis.call("HDEL", KEYS[MSG], id) -- 1 for a ready message: its id becomes a ghost
        if status == 1 then
          gone[#gone + 1] = id
          if push_message then drop_push(Q, id) else s[GHOSTS] = s[GHOSTS] + 1 end
        end
      end
    end
    seen[id] = true
    reply[#reply + 1] = status
  end
  if #from_reserved > 0 then redis.call("ZREM", KEYS[RESERVED], unpack(from_reserved)) end
  if #from_delayed > 0 then redis.call("ZREM", KEYS[DELAYED], unpack(from_delayed)) end
  for _, id in ipairs(from_reserved) do gone[#gone + 1] = id end
  for _, id in ipairs(from_delayed) do gone[#gone + 1] = id end
  drop(Q, gone)
  s[DELETED_COUNT] = s[DELETED_COUNT] + #gone
end

-- Releases: one by one (each may requeue, delay or dead-letter).
local base = 6 + 2 * d
for i = 0, r - 1 do
  local id, rid, delay = ARGV[base + 3 * i], ARGV[base + 3 * i + 1], ARGV[base + 3 * i + 2]
  local status
  if redis.call("HEXISTS", KEYS[MSG], id) == 0 then
    status = 0
  else
    local state = redis.call("HGET", KEYS[DLV], id)
    if holds(rid, redis.call("ZSCORE", KEYS[RESERVED], id), state) then
      local deliveries, _, _, expire_at = parse_dlv(state)
      redis.call("ZREM", KEYS[RESERVED], id)
      end_delivery(Q, id, deliveries, expire_at, delay == "" and s[RETRY_DELAY] or span(delay, now))
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
