--[[
  push: delivery state of push-queue messages (included after "queue" by the pusher's scripts).

  A status record (JSON in `pstatus`, per message):
    t    "m" multicast (a delivery per subscriber) or "u" unicast (one delivery, tried on each
         subscriber in turn: the first success ends it)
    subs per subscriber: u url, n name (named subscribers only), s status, c last HTTP code (false
         before any), r retries left (multicast), e last error text, k token of the current
         attempt, l lease kind
    r    retries left (unicast), d retry delay ms, q error queue ("" = none), cur unicast's
         current subscriber, done true once no delivery is pending, h transfers the message went
         through (forwards and error queues; absent: none), carried to its error-queue messages
  Statuses: queued (not tried), reserved (being pushed, l = "post"; or answered 202 and waiting
  for its acknowledgement, l = "wait"), retrying, deleted (delivered or acknowledged), error
  (out of retries). A delivery's score in `push` is when something next happens to it: due
  now, a lease running out, a retry.
]]
-- @include "queue"

-- Push-queue messages are a fourth state beside ready, delayed and reserved: never in those sets,
-- they have a status record in `pstatus` (per subscriber: status, last code, retries left) and
-- deliveries in `push` scored by their next event ("<id>|<n>" per subscriber for multicast,
-- "<id>|u" for unicast). PUSHING counts those with deliveries still pending.
local function push_members(id, rec)
  if rec.t == "u" then return {id .. "|u"} end
  local members = {}
  for i = 1, #rec.subs do members[i] = id .. "|" .. i end
  return members
end

local function is_push_message(Q, id)
  if Q.has_pstatus == nil then Q.has_pstatus = redis.call("EXISTS", Q.keys[PSTATUS]) == 1 end
  return Q.has_pstatus and redis.call("HEXISTS", Q.keys[PSTATUS], id) == 1
end

-- The queue's push settings (meta `push`, JSON): {type, subs = {{url, name, headers}...},
-- retries, delay ms, errq}. Read once per call, where needed.
local function push_config(Q)
  if Q.pushcfg == nil then Q.pushcfg = cjson.decode(redis.call("HGET", Q.keys[META], "push") or "null") end
  return Q.pushcfg ~= cjson.null and Q.pushcfg or nil
end

-- A message posted to a push queue: a status record per subscriber (the list as it is now) and
-- deliveries due at `due`. Registered in the expiry index (it is in no FIFO). `hops` (nil for a
-- client's put): the transfers it went through, kept as `h`.
local function start_push(Q, id, due, expire_at, hops)
  local cfg = push_config(Q)
  local subs = {}
  for i, sub in ipairs(cfg.subs) do
    subs[i] = {u = sub.url, n = sub.name, s = "queued", c = false, r = cfg.retries}
  end
  local rec = {t = cfg.type == "unicast" and "u" or "m", subs = subs, r = cfg.retries, d = cfg.delay,
    q = cfg.errq or "", cur = 1}
  if hops and hops > 0 then rec.h = hops end
  redis.call("HSET", Q.keys[PSTATUS], id, cjson.encode(rec))
  local args = {}
  for _, member in ipairs(push_members(id, rec)) do
    args[#args + 1] = due
    args[#args + 1] = member
  end
  redis.call("ZADD", Q.keys[PUSH], unpack(args))
  index_expiry(Q, expire_at, id)
  due_by(Q, expire_at)
  Q.has_pstatus, Q.pushed = true, true
  Q[PUSHING] = Q[PUSHING] + 1
end

-- Forgets a push message's status and pending deliveries (the caller removes its record).
local function drop_push(Q, id)
  local raw = redis.call("HGET", Q.keys[PSTATUS], id)
  if not raw then return end
  local rec = cjson.decode(raw)
  redis.call("ZREM", Q.keys[PUSH], unpack(push_members(id, rec)))
  redis.call("HDEL", Q.keys[PSTATUS], id)
  if not rec.done then Q[PUSHING] = Q[PUSHING] - 1 end
end

local function load_push(Q, id)
  local raw = redis.call("HGET", Q.keys[PSTATUS], id)
  return raw and cjson.decode(raw)
end

local function save_push(Q, id, rec)
  redis.call("HSET", Q.keys[PSTATUS], id, cjson.encode(rec))
end

-- "<id>|<n>" or "<id>|u" -> id, subscriber index (unicast: the current one), member
local function parse_member(member, rec)
  local id, which = string.match(member, "^(%d+)|(%w+)$")
  if which == "u" then return id, rec and rec.cur or 1 end
  return id, tonumber(which)
end

local function member_of(id, rec, index)
  return rec.t == "u" and id .. "|u" or id .. "|" .. index
end

-- Subscriber message id (Iron-Subscriber-Message-Id): the message id and a two-digit index.
local function subscriber_id(id, index)
  return id .. string.format("%02d", index)
end

-- No delivery of the message pending any more: it stays readable (status deleted) until it expires.
local function push_finished(Q, id, rec)
  if not rec.done then
    rec.done = true
    Q[PUSHING] = Q[PUSHING] - 1
  end
end

local function all_final(rec)
  for _, sub in ipairs(rec.subs) do
    if sub.s ~= "deleted" and sub.s ~= "error" then return false end
  end
  return true
end

-- The body of the message in the error queue: the union of the v1 and v3 shapes.
local function error_queue_message(Q, id, rec, failed)
  if rec.q == "" then return end
  local record = redis.call("HGET", Q.keys[MSG], id)
  if not record then return end
  local body = string.sub(record, string.find(record, "\n", 1, true) + 1)
  local subscribers = {}
  for i, sub in ipairs(failed) do
    subscribers[i] = {url = sub.u, code = sub.c or cjson.null, msg = sub.e or ""}
  end
  local last = failed[#failed]
  local doc = cjson.encode({source_msg_id = id, body = body, headers = cjson.decode("{}"),
    code = last.c or cjson.null, msg = last.e or "", subscribers = subscribers})
  to_outbox(Q, "errq\t" .. rec.q .. "\t" .. outbox_ref(Q, "errq", id) .. "\t" .. ((rec.h or 0) + 1) .. "\n" .. doc)
end

-- A subscriber took the message (2xx but 202, or the acknowledgement of a 202).
local function push_delivered(Q, id, rec, index, code)
  local sub = rec.subs[index]
  sub.s, sub.c, sub.e, sub.l = "deleted", code, nil, nil
  count(Q, "c_push_delivered", 1)
  redis.call("ZREM", Q.keys[PUSH], member_of(id, rec, index))
  if rec.t == "u" or all_final(rec) then push_finished(Q, id, rec) end
end

-- An attempt failed (an error code, a timeout, no acknowledgement in time). Multicast: this
-- subscriber retries after the delay, or ends in error. Unicast: the next subscriber is tried at
-- once; after a round where all failed, a new round starts after the delay, or all end in error.
local function push_failed(Q, id, rec, index, code, text)
  local sub = rec.subs[index]
  sub.c, sub.e, sub.l, sub.k = code, text, nil, nil
  count(Q, "c_push_failed", 1)
  local member = member_of(id, rec, index)
  if rec.t == "m" then
    if sub.r > 0 then
      sub.r, sub.s = sub.r - 1, "retrying"
      redis.call("ZADD", Q.keys[PUSH], Q.now + rec.d, member)
      return
    end
    sub.s = "error"
    count(Q, "c_push_errors", 1)
    redis.call("ZREM", Q.keys[PUSH], member)
    error_queue_message(Q, id, rec, {sub})
    if all_final(rec) then push_finished(Q, id, rec) end
    return
  end
  sub.s = "retrying"
  if index < #rec.subs then
    rec.cur = index + 1
    redis.call("ZADD", Q.keys[PUSH], Q.now, member)
  elseif rec.r > 0 then
    rec.r, rec.cur = rec.r - 1, 1
    redis.call("ZADD", Q.keys[PUSH], Q.now + rec.d, member)
  else
    for _, each in ipairs(rec.subs) do each.s = "error" end
    count(Q, "c_push_errors", 1)
    redis.call("ZREM", Q.keys[PUSH], member)
    error_queue_message(Q, id, rec, rec.subs)
    push_finished(Q, id, rec)
  end
end

-- The pusher dropped this delivery: a forward past the transfer hop limit (a forwarding loop).
-- Final: no retry, and no error-queue message (it would go round the loop too).
local function push_dropped(Q, id, rec, index, text)
  local sub = rec.subs[index]
  sub.s, sub.c, sub.e, sub.l, sub.k = "error", false, text, nil, nil
  count(Q, "c_hops_dropped", 1)
  redis.call("ZREM", Q.keys[PUSH], member_of(id, rec, index))
  if rec.t == "u" or all_final(rec) then push_finished(Q, id, rec) end
end
