--[[
  alert_size: the sizes the alerts of a partitioned queue watch (includes/queue.lua, above
  fire_alerts: partition 0 sums its partitions' sizes and decides every firing).
  KEYS[1] meta      hash   `q`, alerts, alerts_fired, alerts_part, parts, alert_sizes, alerts_seq
  KEYS[2] ready     list   FIFO of ids
  KEYS[3] delayed   zset   id -> due ms
  KEYS[4] reserved  zset   id -> deadline ms
  KEYS[5] expiry    zset   id -> expire-at ms
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  KEYS[8] outbox    list   size reports (partitions 1...), alert messages (partition 0)
  KEYS[9] push      zset   delivery ("<id>|<n>", or "<id>|u" for unicast) -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record (JSON) of a push-queue message
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] "report": a partition states its size as it is now (partition 0 applies it, a
          partition i >= 1 reports it); the engine asks every partition once their alerts are set
          "apply": on partition 0, a partition's report "<partition> <seq> <size>" (ARGV[3])
  ARGV[3] the report (mode "apply")
  Returns: flags (includes/queue.lua flags(): 1 = outbox entries to move, 2 = no such queue)
  Errors:  BADARG (a malformed report)
]]
-- @include "queue"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
if not Q.exists then return flags(Q) end
local stored = redis.call("HMGET", KEYS[META], unpack(ALERT_FIELDS))
if not stored[1] then return flags(Q) end  -- its alerts were removed meanwhile
if ARGV[2] == "report" then
  partitioned_size(Q, stored, queue_size(Q))
else
  local part, seq, size = string.match(ARGV[3] or "", "^(%d+) (%d+) (%d+)$")
  if not part then return redis.error_reply("BADARG report a malformed size report") end
  apply_size(Q, stored, part, tonumber(seq), tonumber(size))
end
return flags(Q)
