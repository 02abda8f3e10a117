--[[
  configure: create and/or update a queue's settings and attributes, then report it as info does.
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
  KEYS[11] idfloor   string last id of a deleted incarnation ("ms|sfx"); a new one continues after it
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] K: maintenance bound
  ARGV[3] pub/sub channel (told when delivery resumes, so paused long polls wake)
  ARGV[4] mode: "create" (fail if it exists), "update" (fail if missing) or "upsert"
  ARGV[5] id for the queue if this call creates it
  ARGV[6] JSON object: every setting a new queue starts with (meta field -> string)
  ARGV[7] JSON object: settings to change (meta field -> string)
  ARGV[8] JSON object: attributes to set ("x:" fields; null removes one)
  ARGV[9] JSON object: meta fields as the caller read them (null: absent), for a read-modify-write;
          if one has changed since, nothing is written ("{}" or absent: no condition)
  Returns: {flags, created (0/1), ready, delayed, reserved, bytes, oldest, meta field, value, ...}
  Errors:  EXISTS (mode create), QUEUE_NOT_FOUND (mode update), BADARG (a push queue with
           alerts: checked here, against the stored settings, so no race can make one),
           CHANGED (a field of the condition is not as the caller read it)
]]
-- @include "queue"

local now = now_from(ARGV[1])
local mode = ARGV[4]
local exists = redis.call("EXISTS", KEYS[1]) == 1
if exists and mode == "create" then return redis.error_reply("EXISTS queue already exists") end
if not exists and mode == "update" then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end

for field, expected in pairs(cjson.decode(ARGV[9] or "{}")) do
  local stored = redis.call("HGET", KEYS[1], field)
  if (expected == cjson.null and stored) or (expected ~= cjson.null and stored ~= expected) then
    return redis.error_reply("CHANGED " .. field .. " changed meanwhile")
  end
end

local function hset_json(json)
  local args = {}
  for field, value in pairs(cjson.decode(json)) do
    if value == cjson.null then
      redis.call("HDEL", KEYS[1], field)
    else
      args[#args + 1] = field
      args[#args + 1] = value
    end
  end
  if #args > 0 then redis.call("HSET", KEYS[1], unpack(args)) end
end

-- Push queues do not support alerts: the change may not leave a queue with both.
local changes = cjson.decode(ARGV[7])
local stored = redis.call("HMGET", KEYS[1], "push", "alerts")
local push, alerts = stored[1], stored[2]
if changes.push ~= nil then push = changes.push ~= cjson.null and changes.push or false end
if changes.alerts ~= nil then alerts = changes.alerts ~= cjson.null and changes.alerts or false end
if push and alerts then
  local field = changes.alerts ~= nil and changes.alerts ~= cjson.null and "alerts" or "push_type"
  return redis.error_reply("BADARG " .. field .. " Push queues do not support alerts.")
end

local was_paused = redis.call("HGET", KEYS[1], "paused") == "1"
if not exists then
  local ms, sfx = string.match(redis.call("GET", KEYS[11]) or "0|-1", "^(%d+)|(-?%d+)$")
  redis.call("HSET", KEYS[1], "id", ARGV[5], "created", now, "id_ms", ms, "id_sfx", sfx)
  hset_json(ARGV[6])
end
hset_json(ARGV[7])
hset_json(ARGV[8])
redis.call("HSET", KEYS[1], "updated", now)
if was_paused and redis.call("HGET", KEYS[1], "paused") ~= "1" then
  redis.call("PUBLISH", ARGV[3], redis.call("LLEN", KEYS[2]))
end

local Q = open_queue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], now)
Q.channel = ARGV[3]
local K = tonumber(ARGV[2])
maintain(Q, K)
flush(Q)

local figures = backlog(Q)
local reply = {flags(Q), exists and 0 or 1, figures[1], figures[2], figures[3], figures[4], figures[5]}
for _, v in ipairs(redis.call("HGETALL", Q.meta)) do reply[#reply + 1] = v end
return reply
