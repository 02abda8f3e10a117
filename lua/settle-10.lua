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
-- @include "held"

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

if d > 0 then
  local ids, rids = {}, {}
  for i = 1, d do ids[i], rids[i] = ARGV[4 + 2 * i], ARGV[5 + 2 * i] end
  delete_held(Q, ids, rids, reply)
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
    if holds(Q, rid, redis.call("ZSCORE", KEYS[RESERVED], id), state) then
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
