--[[
  configure: create and/or update a queue's settings and attributes, then report it as info does.
  KEYS[1] meta      hash   `q` (settings, counters), text settings, attributes
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
  Returns: {flags, created, (backlog: ready, delayed, reserved, bytes, oldest_at), meta...}
           created: 1 if this call created the queue, else 0
           meta: field, value per field of the meta hash (after the change)
  Errors:  EXISTS (mode create), QUEUE_NOT_FOUND (mode update), BADARG (a push queue with
           alerts: checked here, against the stored settings, so no race can make one),
           CHANGED (a field of the condition is not as the caller read it)
]]
-- @include "maintain"

local now, now_s = now_from(ARGV[1])
local mode = ARGV[4]
local Q = open_queue(KEYS, now, now_s)
local s = Q
if Q.exists and mode == "create" then return redis.error_reply("EXISTS queue already exists") end
if not Q.exists and mode == "update" then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end

for field, expected in pairs(cjson.decode(ARGV[9] or "{}")) do
  local stored = redis.call("HGET", KEYS[META], field)
  if (expected == cjson.null and stored) or (expected ~= cjson.null and stored ~= expected) then
    return redis.error_reply("CHANGED " .. field .. " changed meanwhile")
  end
end

-- Push queues do not support alerts: the change may not leave a queue with both.
local changes = cjson.decode(ARGV[7])
local push, alerts = has_flag(s, PUSH_QUEUE), has_flag(s, HAS_ALERTS)
if changes.push ~= nil then push = changes.push ~= cjson.null end
if changes.alerts ~= nil then alerts = changes.alerts ~= cjson.null end
if push and alerts then
  local field = changes.alerts ~= nil and changes.alerts ~= cjson.null and "alerts" or "push_type"
  return redis.error_reply("BADARG " .. field .. " Push queues do not support alerts.")
end

local was_paused = has_flag(s, PAUSED)
local created = not Q.exists
if created then
  local ms, sfx = string.match(redis.call("GET", KEYS[11]) or "0|-1", "^(%d+)|(-?%d+)$")
  s[ID_MS], s[ID_SFX] = tonumber(ms), tonumber(sfx)
  redis.call("HSET", KEYS[META], "id", ARGV[5], "created", now_s)
  apply_settings(KEYS[META], s, cjson.decode(ARGV[6]))
  Q.exists = true
end
apply_settings(KEYS[META], s, changes)
apply_settings(KEYS[META], s, cjson.decode(ARGV[8]))  -- attributes: text fields ("x:" names)
redis.call("HSET", KEYS[META], "updated", now_s)
if was_paused and not has_flag(s, PAUSED) then
  redis.call("PUBLISH", ARGV[3], redis.call("LLEN", KEYS[READY]))
end
if Q.size0 == nil and has_flag(s, HAS_ALERTS) then Q.size0 = queue_size(Q) end

Q.channel = ARGV[3]
maintain(Q, ARGV[2])
flush(Q)

local figures = backlog(Q)
local reply = {flags(Q), created and 1 or 0, figures[1], figures[2], figures[3], figures[4], figures[5]}
for _, v in ipairs(redis.call("HGETALL", KEYS[META])) do reply[#reply + 1] = v end
return reply
