--[[
  put: append a batch of messages to a queue (ready at the end of the FIFO, or delayed),
  creating the queue if it does not exist (mode "create"). Runs the bounded maintenance first,
  so messages that became available earlier (lapsed reservations, due delays) queue ahead.
  KEYS[1]  meta      hash   `q` (settings, the last id, counters), id, created
  KEYS[2]  ready     list   FIFO of ids
  KEYS[3]  delayed   zset   id -> due ms
  KEYS[4]  reserved  zset   id -> deadline ms
  KEYS[5]  expiry    zset   id -> expire-at ms
  KEYS[6]  msg       hash   id -> record "enq|timeout|expire|ctype\n" .. body
  KEYS[7]  dlv       hash   id -> delivery state
  KEYS[8]  outbox    list   dead letters to move
  KEYS[9]  push      zset   delivery ("<id>|<n>", or "<id>|u" for unicast) -> next event ms
  KEYS[10] pstatus   hash   message id -> push status record (JSON) of a push-queue message
  KEYS[11] dedupe    zset   transfer reference -> ms (only used when a message carries a ref)
  KEYS[12] idfloor   string last id of a deleted incarnation ("ms|sfx"); a new one continues after it
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] K: maintenance bound
  ARGV[3] pub/sub channel told how many messages became ready
  ARGV[4] mode: "existing" (a client's put; refused while the queue is marked over a quota),
          "create" (the same, creating the queue if missing: the caller admitted it), "transfer"
          and "transfer-create" (the same for a move between queues: never refused by the mark),
          or "=" followed by a queue id: "existing", and only into that incarnation of the queue
          (callers that know it by id)
  ARGV[5] "1" = also report the backlog after this put (ready, delayed, reserved, bytes, oldest
          enqueue time)
  ARGV[6] n, then 2 values per message: options, body. Options "" = every queue default, else
          "timeout ms|delay ms|expires_in ms|content type|transfer ref[|hops]" (an empty field =
          default; the delay may be "@ms", an absolute due time; hops: the transfers a forwarded
          or error-queue message went through, kept with it on a push queue)
  then, in the create modes: the id for the queue if this call creates it, and a JSON object of
          the settings it gets (meta field -> string)
  then, in the transfer modes: the dedupe window ms (how long a ref is remembered)
  Returns: {flags, now, created, queue_id, [backlog: ready, delayed, reserved, bytes, oldest_at],
           ids...}
           created: 1 if this call created the queue (queue_id: its id), else 0 (queue_id "")
           backlog: only if ARGV[5] = "1"
           ids: id per message; "" for a message skipped because its ref was already seen (a
           re-driven transfer)
           flags: 1 = outbox pending, 4 = push deliveries added
  Errors:  QUEUE_NOT_FOUND (modes "existing", "transfer"; mode "=id" also when the queue has
           another id), QUOTA (the sweeper marked the queue's project over its message or byte
           quota: meta "over" = "<quota> <limit>")
]]
-- @include "maintain"
-- @include "push"

local now, now_s = now_from(ARGV[1])
local mode, n = ARGV[4], tonumber(ARGV[6])
local tail = 7 + 2 * n  -- the arguments after the messages
local creating = mode == "create" or mode == "transfer-create"
local transfer = mode == "transfer" or creating and mode ~= "create"
local Q = open_queue(KEYS, now, now_s)
local s = Q
local created = ""
if not Q.exists then
  if not creating then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
  local ms, sfx = string.match(redis.call("GET", KEYS[12]) or "0|-1", "^(%d+)|(-?%d+)$")
  s[ID_MS], s[ID_SFX] = tonumber(ms), tonumber(sfx)
  created = ARGV[tail]
  redis.call("HSET", KEYS[META], "id", created, "created", now_s, "updated", now_s)
  apply_settings(KEYS[META], s, cjson.decode(ARGV[tail + 1]))
  Q.exists, Q.id = true, created
elseif string.byte(mode) == 61 and mode ~= "=" .. queue_id(Q) then -- "=id": deleted and created again
  return redis.error_reply("QUEUE_NOT_FOUND queue not found")
elseif has_flag(s, OVER_QUOTA) and not transfer then
  return redis.error_reply("QUOTA " .. (redis.call("HGET", KEYS[META], "over") or "over a quota"))
end
-- The create modes send the new queue's id and settings whether it exists or not: what comes
-- after them (a transfer's dedupe window) is read past them either way. (Reading it at their
-- place, a transfer creating a queue another had just created failed on a nil window.)
if creating then tail = tail + 2 end
Q.channel = ARGV[3]
maintain(Q, ARGV[2])

local default_timeout, default_delay, default_expires = s[TIMEOUT], s[DELAY], s[EXPIRES_IN]
local push_queue, window = has_flag(s, PUSH_QUEUE), transfer and tonumber(ARGV[tail])

local id_ms, id_sfx = s[ID_MS], s[ID_SFX]  -- the last id (includes/record.lua next_id)
local ms_s = now > id_ms and now_s or ms_string(id_ms)

-- The record header of a message with every default, built once per call.
local default_expire_at = now + default_expires
local head = default_head(now_s, default_timeout, default_expire_at)

local records, delayed, indexed, trimmed = {}, nil, nil, false
-- Built with room for one id, the usual put: growing a table past its size rehashes it (~2k).
local reply = {0, now, created == "" and 0 or 1, created, n > 0 and "" or nil}
local ids_at = 4  -- reply[ids_at + 1 ...]: the ids
if ARGV[5] == "1" then
  for i = 5, 9 do reply[i] = -1 end
  ids_at = 9
end
for i = 0, n - 1 do
  local opts, body = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  local delay, expire_at, record, hops = default_delay, default_expire_at, nil, nil
  if opts ~= "" then
    local timeout, delay_s, expires_in, ctype, ref, hops_s =
      string.match(opts, MESSAGE_OPTIONS)
    if ref ~= "" then  -- a transfer: stored once whatever re-drives it within the window
      if not trimmed then
        trimmed = true
        local old = redis.call("ZRANGEBYSCORE", KEYS[11], "-inf", now - window, "LIMIT", 0, 1000)
        if #old > 0 then redis.call("ZREM", KEYS[11], unpack(old)) end
      end
      if redis.call("ZADD", KEYS[11], "NX", now_s, ref) == 0 then opts = nil end
    end
    if opts then
      if delay_s ~= "" then delay = span(delay_s, now) end
      if expires_in ~= "" then expire_at = now + tonumber(expires_in) end
      record = new_record(now_s, timeout == "" and default_timeout or tonumber(timeout), expire_at, ctype, body)
      hops = tonumber(hops_s)
    end
  end
  local id = ""
  if opts then
    id_ms, id_sfx, ms_s, id = next_id(now, now_s, id_ms, id_sfx, ms_s)
    records[#records + 1], records[#records + 2] = id, record or head .. body
    -- To the end of the FIFO, or waiting in `delayed` (and in the expiry index); on a push
    -- queue it is delivered to the subscribers instead (from its due time), never pulled.
    if push_queue then
      start_push(Q, id, now + delay, expire_at, hops)
    elseif delay > 0 then
      delayed, indexed = delayed or {}, indexed or {}
      delayed[#delayed + 1], delayed[#delayed + 2] = now + delay, id
      indexed[#indexed + 1], indexed[#indexed + 2] = expire_at, id
      due_by(Q, math.min(now + delay, expire_at))
    else
      append_ready(Q, id, expire_at)
    end
  end
  reply[ids_at + 1 + i] = id
end

if #records > 0 then
  keep_tables(Q)
  redis.call("HSET", KEYS[MSG], unpack(records))
  if delayed then
    keep_set_table(Q, DELAYED_TABLE, DELAYED)
    redis.call("ZADD", KEYS[DELAYED], unpack(delayed))
    keep_set_table(Q, EXPIRY_TABLE, EXPIRY)
    redis.call("ZADD", KEYS[EXPIRY], unpack(indexed))
    s[INDEXED] = 1
  end
  s[ID_MS], s[ID_SFX] = id_ms, id_sfx
  s[TOTAL] = s[TOTAL] + #records / 2
end
flush(Q)
reply[1] = flags(Q)
if ARGV[5] == "1" then
  local figures = backlog(Q)
  for i = 1, 5 do reply[4 + i] = figures[i] end
end
return reply
