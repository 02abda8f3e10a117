--[[
  put: append a batch of messages to a queue (ready at the end of the FIFO, or delayed),
  creating the queue if it does not exist (mode "create"). Runs the bounded maintenance first,
  so messages that became available earlier (lapsed reservations, due delays) queue ahead.
  KEYS[1]  meta      hash   settings, id counter (id_ms, id_sfx), total, xtail
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
  ARGV[5] id for the queue if this call creates it
  ARGV[6] JSON object of the settings a created queue gets (meta field -> string)
  ARGV[7] dedupe window ms
  ARGV[8] "1" = also report the backlog after this put (ready, delayed, reserved, bytes,
          oldest enqueue time), else those five are -1
  ARGV[9] n, then 2 values per message: options, body. Options "" = every queue default, else
          "timeout ms|delay ms|expires_in ms|content type|transfer ref[|hops]" (an empty field =
          default; the delay may be "@ms", an absolute due time; hops: the transfers a forwarded
          or error-queue message went through, kept with it on a push queue)
  Returns: {now, flags, created (0/1), queue id, ready, delayed, reserved, bytes, oldest,
            id1, id2, ...}; "" for a message skipped because its ref was already seen (a
            re-driven transfer). flags: 1 = outbox pending, 4 = push deliveries added
  Errors:  QUEUE_NOT_FOUND (modes "existing", "transfer"; mode "=id" also when the queue has
           another id), QUOTA (the sweeper marked the queue's project over its message or byte
           quota: meta "over" = "<quota> <limit>")
]]
-- @include "queue"

local now = now_from(ARGV[1])
local created = 0
local mode = ARGV[4]
if redis.call("EXISTS", KEYS[1]) == 0 then
  if mode ~= "create" and mode ~= "transfer-create" then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
  local ms, sfx = string.match(redis.call("GET", KEYS[12]) or "0|-1", "^(%d+)|(-?%d+)$")
  local args = {"id", ARGV[5], "created", now, "updated", now, "id_ms", ms, "id_sfx", sfx}
  for field, value in pairs(cjson.decode(ARGV[6])) do
    args[#args + 1] = field
    args[#args + 1] = value
  end
  redis.call("HSET", KEYS[1], unpack(args))
  created = 1
end

local Q = open_queue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], now)
if string.byte(mode) == 61 and mode ~= "=" .. Q.id then -- "=id": deleted and created again
  return redis.error_reply("QUEUE_NOT_FOUND queue not found")
end
-- A queue this call created carries no mark, so nothing was written when this refuses.
if Q.over and mode ~= "transfer" and mode ~= "transfer-create" then return redis.error_reply("QUOTA " .. Q.over) end
Q.channel = ARGV[3]
if Q.xtail > 0 and redis.call("LLEN", Q.ready) == 0 then Q.xtail = 0 end -- empty: restart order
maintain(Q, tonumber(ARGV[2]))

local default_timeout, default_delay = tonumber(Q.timeout_s), tonumber(Q.delay_s)
local default_expires = tonumber(Q.expires_in_s)
local id_ms, id_sfx = tonumber(Q.id_ms_s), tonumber(Q.id_sfx_s)
local now_s, window = Q.now_s, tonumber(ARGV[7])

-- Ids: 13-digit ms + 6-digit counter, fixed width so string order = put order. Never tonumber()
-- an id: Lua numbers are doubles and 19 digits do not fit.
local ms_s = #Q.id_ms_s == 13 and Q.id_ms_s or ms_string(id_ms)
local function next_id()
  if now > id_ms then
    id_ms, id_sfx, ms_s = now, 0, now_s
  else
    id_sfx = id_sfx + 1
    if id_sfx > 999999 then
      id_ms, id_sfx = id_ms + 1, 0
      ms_s = ms_string(id_ms)
    end
  end
  return ms_s .. string.format("%06d", id_sfx)
end

-- The record header of a message with every default, built once per call.
local default_expire_at = now + default_expires
local default_head = now_s .. "|" .. string.format("%09d", default_timeout) .. "|" ..
  ms_string(default_expire_at) .. "|\n"

local function trim_dedupe()
  local old = redis.call("ZRANGEBYSCORE", KEYS[11], "-inf", now - window, "LIMIT", 0, 1000)
  if #old > 0 then redis.call("ZREM", KEYS[11], unpack(old)) end
end

local records, delayed, indexed = {}, {}, {}

-- Appends a (score, member) pair to a ZADD argument list.
local function pair(list, score, member)
  list[#list + 1] = score
  list[#list + 1] = member
end

-- A new message goes to the end of the FIFO, or waits in `delayed` (and in the expiry index);
-- on a push queue it is delivered to the subscribers instead (from its due time), never pulled.
local function place(id, delay, expire_at, hops)
  if Q.pushcfg then
    start_push(Q, id, now + delay, expire_at, hops)
  elseif delay > 0 then
    pair(delayed, now + delay, id)
    pair(indexed, expire_at, id)
    due_by(Q, math.min(now + delay, expire_at))
  else
    append_ready(Q, id, expire_at)
  end
end

local n = tonumber(ARGV[9])
local reply = {now, 0, created, Q.id, -1, -1, -1, -1, -1}
local trimmed = false
for i = 0, n - 1 do
  local opts, body = ARGV[10 + 2 * i], ARGV[11 + 2 * i]
  local id
  if opts == "" then
    id = next_id()
    pair(records, id, default_head .. body)
    place(id, default_delay, default_expire_at)
  else
    local timeout, delay, expires_in, ctype, ref, hops =
      string.match(opts, "^(%d*)|(@?%d*)|(%d*)|([^|]*)|([^|]*)|?(%d*)$")
    local fresh = true
    if ref ~= "" then
      if not trimmed then trim_dedupe(); trimmed = true end
      fresh = redis.call("ZADD", KEYS[11], "NX", now, ref) == 1
    end
    if fresh then
      id = next_id()
      timeout = timeout == "" and default_timeout or tonumber(timeout)
      delay = delay == "" and default_delay or span(delay, now)
      local expire_at = now + (expires_in == "" and default_expires or tonumber(expires_in))
      pair(records, id, now_s .. "|" .. string.format("%09d", timeout) .. "|" ..
        ms_string(expire_at) .. "|" .. ctype .. "\n" .. body)
      place(id, delay, expire_at, tonumber(hops))
    else
      id = ""
    end
  end
  reply[#reply + 1] = id
end

if #records > 0 then
  redis.call("HSET", Q.msg, unpack(records))
  if #delayed > 0 then
    redis.call("ZADD", Q.delayed, unpack(delayed))
    redis.call("ZADD", Q.expiry, unpack(indexed))
    Q.indexed = true
  end
  redis.call("HSET", Q.meta, "id_ms", ms_s, "id_sfx", id_sfx)
  count(Q, "total", #records / 2)
end
flush(Q)
reply[2] = flags(Q)
if ARGV[8] == "1" then
  local figures = backlog(Q)
  for i = 1, 5 do reply[4 + i] = figures[i] end
end
return reply
