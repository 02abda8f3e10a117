--[[
  queue: helpers shared by the scripts that change message state. Included (never run alone)
  by `-- @include "queue"`; every key arrives through open_queue(), built from the caller's KEYS.

  Data model of one queue (all keys share the queue's hash tag):
    meta      hash  settings (times in ms), counters, id; `ghosts`, `xtail` and `front` below
    ready     list  ids in FIFO order. Deleting a ready message leaves its id in the list as a
                    "ghost" (no record); `ghosts` counts them, so ready = LLEN - ghosts.
    delayed   zset  id -> due ms              reserved  zset  id -> deadline ms
    expiry    zset  id -> expire-at ms, only for messages the FIFO order cannot expire (below)
    msg       hash  id -> immutable record: a fixed-width header, then the body
                    "EEEEEEEEEEEEE|TTTTTTTTT|XXXXXXXXXXXXX|ctype\n" .. body
                    enqueued ms (13 digits) | timeout ms (9, zero-padded) | expire ms (13) | ctype
                    Fixed widths let scripts read fields with string.sub and compare times as
                    strings, which costs a fraction of pattern matching and number conversion.
    dlv       hash  id -> "count|token|timeout|expire" once delivered (small; rewritten per delivery)
    outbox    list  dead letters waiting to be moved to their target queue (another slot)

  Maintenance only when something can be due: meta `due` (13-digit ms) is a moment before which
  maintain() has nothing to do: no score in reserved, delayed or expiry is below it, nor the
  expire time of the head of `ready` (in-order messages behind the head expire no sooner), and
  no ghost waits at the head. Every script that adds to those sets or to `ready`, or makes a
  ghost, lowers it (due_by); a full maintenance pass sets it afresh. Absent = unknown: maintain.

  Expiry without an index entry per message: `xtail` is the largest expire-at appended "in
  order" to `ready` since the list was last empty. A message appended with expire-at >= xtail is
  in order and needs no index; one appended below it (requeued, or posted with a shorter
  expires_in) is registered in `expiry`. Every delayed message is registered in `expiry` too.
  So when the head of `ready` is alive and unexpired, every in-order message behind it is
  unexpired as well, and the only expired messages left are in `expiry`. sweep_head() pops
  expired and ghost ids from the head; expire_indexed() handles the index.

  Requeue to the front (setting `requeue` = "front", IronMQ v3): a lapsed or released message is
  pushed at the head of `ready` instead of appended. meta `front` counts the ids at the head that
  got there so (or became ghosts there); each of them is registered in `expiry`, because the
  in-order messages behind them may expire sooner. The FIFO's own order, and the claim above,
  resume at index `front`: sweep_head() looks there too (sweep_behind_front), and an expired
  message found there becomes a ghost that joins the front ids. Every pop from the head lowers
  `front` (popped). Queues that requeue at the end never have a front region.
]]

local function now_from(arg)
  if arg ~= "" then return tonumber(arg) end
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Times as 13-digit strings (ms since the epoch, good until the year 2286).
local function ms_string(ms)
  return string.format("%013d", ms)
end

local NEVER = 9999999999999  -- `due` when nothing is pending at all

-- A duration argument: "123" is 123 ms from now; "@1700000000000" is until that moment (never
-- negative). Absolute times let callers schedule without reading a clock of their own.
local function span(arg, now)
  if string.sub(arg, 1, 1) == "@" then return math.max(0, tonumber(string.sub(arg, 2)) - now) end
  return tonumber(arg)
end

-- Record header fields (see the layout above).
local function rec_timeout(rec) return string.sub(rec, 15, 23) end
local function rec_expire(rec) return string.sub(rec, 25, 37) end

-- ready + delayed + reserved (alerts never apply to push queues, so pushes are not counted).
local function queue_size(Q)
  return redis.call("LLEN", Q.ready) - Q.ghosts + redis.call("ZCARD", Q.delayed) + redis.call("ZCARD", Q.reserved)
end

-- Opens the queue: reads its settings in one call. Q.exists is false for a missing queue.
-- Q.pushcfg (push queues) and Q.alerts (queues with alerts) are decoded only where set.
-- Settings only some verbs use stay strings (max_deliveries, retry_delay and put's defaults): each
-- tonumber costs about as much as a Redis command here, and most calls never look at them.
local function open_queue(meta, ready, delayed, reserved, expiry, msg, dlv, outbox, push, pstatus, now)
  local m = redis.call("HMGET", meta, "id", "max_deliveries", "dlq", "retry_delay", "paused",
    "ghosts", "xtail", "timeout", "delay", "expires_in", "id_ms", "id_sfx", "push", "alerts",
    "pushing", "alerts_fired", "due", "over", "requeue", "front")
  local due = m[17] and tonumber(m[17]) or nil
  local ghosts, xtail, pushing = tonumber(m[6] or "0"), tonumber(m[7] or "0"), tonumber(m[15] or "0")
  local front = tonumber(m[20] or "0")
  local Q = {
    meta = meta, ready = ready, delayed = delayed, reserved = reserved, expiry = expiry,
    msg = msg, dlv = dlv, outbox = outbox, push = push, pstatus = pstatus,
    now = now, now_s = ms_string(now),
    exists = m[1] ~= false, id = m[1] or "",
    maxd_s = m[2] or "0", dlq = m[3] or "", retry_delay_s = m[4] or "0",
    paused = m[5] == "1",
    ghosts = ghosts, xtail = xtail, ghosts0 = ghosts, xtail0 = xtail,
    timeout_s = m[8] or "0", delay_s = m[9] or "0", expires_in_s = m[10] or "0",
    id_ms_s = m[11] or "0", id_sfx_s = m[12] or "-1",
    pushcfg = m[13] and cjson.decode(m[13]) or nil,   -- {type, subs = {url...}, retries, delay ms, errq}
    alerts = m[14] and cjson.decode(m[14]) or nil,    -- {{id, type, trigger, queue, dir, snooze}...}
    pushing = pushing, pushing0 = pushing,            -- push-queue messages with deliveries pending
    fired = m[16] and cjson.decode(m[16]) or {},      -- alert id -> ms it last fired
    due = due, due0 = due,                            -- see `due` above; nil = unknown
    over = m[18] or nil,  -- "<quota> <limit>": the sweeper found the project over it (put refuses)
    to_front = m[19] == "front",                      -- requeue at the head (see `front` above)
    front = front, front0 = front,
    prepend = nil,        -- ids to push at the head of `ready` at the next flush (made when needed)
    indexed = nil,        -- does `expiry` exist? (looked up once, when first needed)
    append = {},          -- ids to append to `ready` at the next flush, in order
    counts = {},          -- counter field -> increment
    outboxed = false,
  }
  if Q.alerts then Q.size0 = queue_size(Q) end
  return Q
end

-- Something may need maintenance at `ms`: lowers Q.due (written at the next flush).
local function due_by(Q, ms)
  if Q.due and ms < Q.due then Q.due = ms end
end

local function count(Q, field, n)
  Q.counts[field] = (Q.counts[field] or 0) + n
end

-- "count|token|timeout|expire" -> count (number), token, timeout (number), expire (number)
local function parse_dlv(s)
  if not s then return 0, "", 0, 0 end
  local c, tok, to, exp = string.match(s, "^(%d+)|([^|]*)|(%d+)|(%d+)")
  return tonumber(c), tok, tonumber(to), tonumber(exp)
end

-- Appends to the end of the FIFO (at the next flush). Returns true when the message is in
-- expiry order (needs no `expiry` entry); otherwise registers it in `expiry`.
local function append_ready(Q, id, expire_at)
  Q.append[#Q.append + 1] = id
  if not Q.append_min or expire_at < Q.append_min then Q.append_min = expire_at end
  due_by(Q, expire_at)
  if expire_at >= Q.xtail then
    Q.xtail = expire_at
    return true
  end
  redis.call("ZADD", Q.expiry, expire_at, id)
  Q.indexed = true
  return false
end

-- A message whose delivery ended goes back to the FIFO: appended, or pushed at the head on a queue
-- that requeues to the front (at the next flush). A message at the front is registered in
-- `expiry` (see `front` above). Returns true when it needs no `expiry` entry.
local function requeue(Q, id, expire_at)
  if not Q.to_front then return append_ready(Q, id, expire_at) end
  Q.prepend = Q.prepend or {}
  Q.prepend[#Q.prepend + 1] = id
  redis.call("ZADD", Q.expiry, expire_at, id)
  Q.indexed = true
  due_by(Q, expire_at)
  return false
end

-- n ids were popped off the head of `ready`: the front region shrinks first.
local function popped(Q, n)
  if Q.front > 0 then Q.front = math.max(0, Q.front - n) end
end

-- Push-queue messages are a fourth state beside ready, delayed and reserved: never in those sets,
-- they have a status record in `pstatus` (per subscriber: status, last code, retries left) and
-- deliveries in `push` scored by their next event ("<id>|<n>" per subscriber for multicast,
-- "<id>|u" for unicast). Q.pushing counts those with deliveries still pending.
local function push_members(id, rec)
  if rec.t == "u" then return {id .. "|u"} end
  local members = {}
  for i = 1, #rec.subs do members[i] = id .. "|" .. i end
  return members
end

local function is_push_message(Q, id)
  if Q.has_pstatus == nil then Q.has_pstatus = redis.call("EXISTS", Q.pstatus) == 1 end
  return Q.has_pstatus and redis.call("HEXISTS", Q.pstatus, id) == 1
end

-- A message posted to a push queue: a status record per subscriber (the list as it is now) and
-- deliveries due at `due`. Registered in the expiry index (it is in no FIFO). `hops` (nil for a
-- client's put): the transfers it went through, kept as `h` (see includes/push.lua).
local function start_push(Q, id, due, expire_at, hops)
  local cfg = Q.pushcfg
  local subs = {}
  for i, sub in ipairs(cfg.subs) do
    subs[i] = {u = sub.url, n = sub.name, s = "queued", c = false, r = cfg.retries}
  end
  local rec = {t = cfg.type == "unicast" and "u" or "m", subs = subs, r = cfg.retries, d = cfg.delay,
    q = cfg.errq or "", cur = 1}
  if hops and hops > 0 then rec.h = hops end
  redis.call("HSET", Q.pstatus, id, cjson.encode(rec))
  local args = {}
  for _, member in ipairs(push_members(id, rec)) do
    args[#args + 1] = due
    args[#args + 1] = member
  end
  redis.call("ZADD", Q.push, unpack(args))
  redis.call("ZADD", Q.expiry, expire_at, id)
  due_by(Q, expire_at)
  Q.indexed, Q.has_pstatus, Q.pushed = true, true, true
  Q.pushing = Q.pushing + 1
end

-- Forgets a push message's status and pending deliveries (the caller removes its record).
local function drop_push(Q, id)
  local raw = redis.call("HGET", Q.pstatus, id)
  if not raw then return end
  local rec = cjson.decode(raw)
  redis.call("ZREM", Q.push, unpack(push_members(id, rec)))
  redis.call("HDEL", Q.pstatus, id)
  if not rec.done then Q.pushing = Q.pushing - 1 end
end

-- A reference unique to one outbox entry: the target queue remembers it, so moving the entry
-- twice (a crash between the move and its removal) stores it once. A per-queue sequence keeps
-- two entries of the same millisecond apart.
local function outbox_ref(Q, kind, id)
  return Q.id .. ":" .. kind .. ":" .. id .. ":" .. redis.call("HINCRBY", Q.meta, "outbox_seq", 1)
end

-- Removes messages for good (records, delivery state, expiry entries). Callers remove the ids
-- from ready/delayed/reserved themselves (or count them as ghosts).
local function drop(Q, ids)
  if #ids == 0 then return end
  redis.call("HDEL", Q.msg, unpack(ids))
  redis.call("HDEL", Q.dlv, unpack(ids))
  if Q.indexed == nil then Q.indexed = redis.call("EXISTS", Q.expiry) == 1 end
  if Q.indexed then redis.call("ZREM", Q.expiry, unpack(ids)) end
end

-- A delivery ended without a delete (reservation lapsed, or released). The caller has already
-- removed the id from `reserved`. Returns "dead", "expired", "delayed" or "ready".
local function end_delivery(Q, id, deliveries, expire_at, delay)
  local maxd = tonumber(Q.maxd_s)
  if maxd > 0 and deliveries >= maxd then
    if Q.dlq ~= "" then
      local rec = redis.call("HGET", Q.msg, id)
      if rec then
        -- ref makes the transfer idempotent: source queue id, message id, delivery count
        redis.call("RPUSH", Q.outbox, "dlq\t" .. Q.dlq .. "\t" .. Q.id .. ":" .. id .. ":" ..
          deliveries .. "\n" .. rec)
        Q.outboxed = true
      end
    end
    drop(Q, {id})
    count(Q, "c_dead", 1)
    return "dead"
  end
  if expire_at <= Q.now then
    drop(Q, {id})
    count(Q, "c_expired", 1)
    return "expired"
  end
  if delay > 0 then
    redis.call("ZADD", Q.delayed, Q.now + delay, id)
    redis.call("ZADD", Q.expiry, expire_at, id)
    due_by(Q, math.min(Q.now + delay, expire_at))
    Q.indexed = true
    return "delayed"
  end
  requeue(Q, id, expire_at)
  return "ready"
end

-- Behind the front region the FIFO's own order resumes (see `front` above): expire what waits at
-- index `front` as sweep_head does at the head. What is expired there becomes a ghost in place and
-- joins the front region (it is popped when it reaches the head), so the next look goes further.
local function sweep_behind_front(Q, K)
  for _ = 1, K do
    local id = redis.call("LINDEX", Q.ready, Q.front)
    if not id then return false end
    local rec = redis.call("HGET", Q.msg, id)
    if rec then
      local expire_s = rec_expire(rec)
      if expire_s > Q.now_s then
        Q.head_expire = math.min(Q.head_expire, tonumber(expire_s))
        return false
      end
      drop(Q, {id})
      count(Q, "c_expired", 1)
      Q.ghosts = Q.ghosts + 1
    end
    Q.front = Q.front + 1
  end
  return true
end

-- Pops ghosts and expired messages off the head of `ready` (at most K). Appends and prepends
-- still pending (Q.append, Q.prepend) are unexpired, so they never matter here.
local function sweep_head(Q, K)
  for _ = 1, K do
    local id = redis.call("LINDEX", Q.ready, 0)
    if not id then return false end
    local rec = redis.call("HGET", Q.msg, id)
    if rec then
      local expire_s = rec_expire(rec)
      if expire_s > Q.now_s then
        Q.head_expire = tonumber(expire_s)
        return Q.front > 0 and sweep_behind_front(Q, K)
      end
      redis.call("LPOP", Q.ready)
      drop(Q, {id})
      count(Q, "c_expired", 1)
    else
      redis.call("LPOP", Q.ready)
      Q.ghosts = Q.ghosts - 1
    end
    popped(Q, 1)
  end
  return true
end

-- After a full pass: the earliest moment maintenance may find work again (see `due` above).
local function next_due(Q)
  local t = math.min(Q.head_expire or NEVER, Q.append_min or NEVER)
  for _, key in ipairs({Q.reserved, Q.delayed, Q.expiry}) do
    local first = redis.call("ZRANGE", key, "0", "0", "WITHSCORES")
    if first[2] then t = math.min(t, tonumber(first[2])) end
  end
  return t
end

-- Lazy maintenance, each step bounded by K: requeue lapsed reservations (or dead-letter them)
-- and promote due delayed messages, merged by the time each became available so the FIFO stays
-- in availability order; drop indexed expired messages; pop expired ones off the head (skipped
-- with head = false by reserve, which pops the head itself). Afterwards no expired message is
-- left but reserved ones. Returns true if a step hit K.
local function maintain(Q, K, head)
  if Q.due and Q.now < Q.due then return false end
  -- Strings, not Lua numbers, go to Redis: redis.call prints each number with "%.17g".
  local now_s, K_s = Q.now_s, string.format("%d", K)
  local lapsed = redis.call("ZRANGEBYSCORE", Q.reserved, "-inf", now_s, "WITHSCORES", "LIMIT", "0", K_s)
  local due = redis.call("ZRANGEBYSCORE", Q.delayed, "-inf", now_s, "WITHSCORES", "LIMIT", "0", K_s)
  local more = #lapsed == 2 * K or #due == 2 * K
  local states, exps, delivered = {}, {}, nil
  if #lapsed > 0 then
    local ids = {}
    for i = 1, #lapsed, 2 do ids[#ids + 1] = lapsed[i] end
    redis.call("ZREM", Q.reserved, unpack(ids))
    states = redis.call("HMGET", Q.dlv, unpack(ids))
  end
  if #due > 0 then
    local ids = {}
    for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
    redis.call("ZREM", Q.delayed, unpack(ids))
    exps = redis.call("ZMSCORE", Q.expiry, unpack(ids))
    -- delivered before: a release with a delay, which requeues like any other release
    if Q.to_front then delivered = redis.call("HMGET", Q.dlv, unpack(ids)) end
  end
  local i, j, gone, ordered = 1, 1, {}, {}
  while i <= #lapsed or j <= #due do
    if j > #due or (i <= #lapsed and tonumber(lapsed[i + 1]) <= tonumber(due[j + 1])) then
      local deliveries, _, _, expire_at = parse_dlv(states[(i + 1) / 2])
      end_delivery(Q, lapsed[i], deliveries, expire_at, tonumber(Q.retry_delay_s))
      i = i + 2
    else
      local id, expire_at = due[j], tonumber(exps[(j + 1) / 2] or "0")
      if expire_at <= Q.now then
        gone[#gone + 1] = id
      elseif delivered and delivered[(j + 1) / 2] then
        requeue(Q, id, expire_at)
      elseif append_ready(Q, id, expire_at) then
        ordered[#ordered + 1] = id -- in expiry order now: its index entry is not needed
      end
      j = j + 2
    end
  end
  drop(Q, gone)
  count(Q, "c_expired", #gone)
  if #ordered > 0 then redis.call("ZREM", Q.expiry, unpack(ordered)) end

  local expired = redis.call("ZRANGEBYSCORE", Q.expiry, "-inf", now_s, "LIMIT", "0", K_s)
  if #expired > 0 then
    more = more or #expired == K
    redis.call("ZREM", Q.expiry, unpack(expired))
    local in_reserved = redis.call("ZMSCORE", Q.reserved, unpack(expired))
    local in_delayed = redis.call("ZMSCORE", Q.delayed, unpack(expired))
    local gone = {}
    for i, id in ipairs(expired) do
      if in_reserved[i] then
        -- dropped when its reservation ends (end_delivery sees the expire time)
      elseif in_delayed[i] then
        redis.call("ZREM", Q.delayed, id)
        gone[#gone + 1] = id
      elseif is_push_message(Q, id) then
        drop_push(Q, id)
        gone[#gone + 1] = id
      elseif redis.call("HEXISTS", Q.msg, id) == 1 then
        Q.ghosts = Q.ghosts + 1     -- its id stays in `ready` until popped
        gone[#gone + 1] = id
      end
    end
    drop(Q, gone)
    count(Q, "c_expired", #gone)
  end
  if head ~= false and sweep_head(Q, K) then more = true end
  if more then
    Q.due = Q.now   -- work left: the next call maintains again
  elseif head ~= false then
    Q.due = next_due(Q)
  end
  return more
end

-- Does a change of size from `before` to `after` fire the alert? Fixed: the trigger is crossed
-- in the alert's direction (asc: from below to at-or-above; desc: from above to at-or-below).
-- Progressive: some multiple of the trigger (N >= 1) is crossed so; for desc, 0 never fires.
local function crosses(alert, before, after)
  local t = alert.trigger
  if alert.type == "fixed" then
    if alert.dir == "asc" then return before < t and after >= t end
    return before > t and after <= t
  end
  if alert.dir == "asc" then return (math.floor(before / t) + 1) * t <= after end
  local below = math.ceil(before / t) - 1  -- the highest multiple under `before`
  return below >= 1 and below * t >= after
end

-- Evaluates the alerts on the size change this call made, in the same script: no crossing is
-- missed or doubled whatever runs concurrently. A firing inside an alert's snooze window is
-- dropped. The alert message goes through the outbox (its target is another queue).
local function fire_alerts(Q)
  local after = queue_size(Q)
  local before = Q.size0
  Q.size0 = after
  if before == after then return end
  for _, alert in ipairs(Q.alerts) do
    local last = Q.fired[alert.id]
    if crosses(alert, before, after) and (not last or Q.now - last >= alert.snooze * 1000) then
      Q.fired[alert.id] = Q.now
      Q.fired_changed = true
      local payload = cjson.encode({id = alert.id, type = alert.type, dir = alert.dir,
        trigger = alert.trigger, size = after, at = Q.now})
      redis.call("RPUSH", Q.outbox, "alert\t" .. alert.queue .. "\t" .. outbox_ref(Q, "alert", alert.id) ..
        "\n" .. payload)
      Q.outboxed = true
    end
  end
  if Q.fired_changed then redis.call("HSET", Q.meta, "alerts_fired", cjson.encode(Q.fired)) end
end

-- Writes what the helpers deferred: appends to `ready` (announced on Q.channel when the caller
-- set one), ghosts/xtail, pushing, counters; then fires alerts the size change crossed.
local function flush(Q)
  local added = #Q.append
  if added > 0 then
    redis.call("RPUSH", Q.ready, unpack(Q.append))
    Q.append = {}
  end
  if Q.prepend then
    redis.call("LPUSH", Q.ready, unpack(Q.prepend))
    Q.front = Q.front + #Q.prepend
    added = added + #Q.prepend
    Q.prepend = nil
  end
  if added > 0 and Q.channel then redis.call("PUBLISH", Q.channel, added) end
  if redis.call("LLEN", Q.ready) == 0 then
    Q.ghosts, Q.xtail, Q.front = 0, 0, 0   -- an empty list restarts the expiry order and heals any drift
  end
  if Q.ghosts > Q.ghosts0 then due_by(Q, Q.now) end  -- a ghost may be at the head: sweep it
  local sets = {}
  if Q.ghosts ~= Q.ghosts0 or Q.xtail ~= Q.xtail0 then
    sets[1], sets[2], sets[3], sets[4] = "ghosts", Q.ghosts, "xtail", string.format("%d", Q.xtail)
    Q.ghosts0, Q.xtail0 = Q.ghosts, Q.xtail
  end
  if Q.front ~= Q.front0 then
    sets[#sets + 1], sets[#sets + 2] = "front", Q.front
    Q.front0 = Q.front
  end
  if Q.pushing ~= Q.pushing0 then
    sets[#sets + 1], sets[#sets + 2] = "pushing", Q.pushing
    Q.pushing0 = Q.pushing
  end
  if Q.due and Q.due ~= Q.due0 then
    sets[#sets + 1], sets[#sets + 2] = "due", ms_string(Q.due)
    Q.due0 = Q.due
  end
  if Q.exists and #sets > 0 then redis.call("HSET", Q.meta, unpack(sets)) end
  for field, n in pairs(Q.counts) do
    if n ~= 0 and Q.exists then redis.call("HINCRBY", Q.meta, field, n) end
  end
  Q.counts = {}
  if Q.alerts and Q.exists then fire_alerts(Q) end
end

-- ready + delayed + reserved, after maintenance.
local function sizes(Q)
  return redis.call("LLEN", Q.ready) - Q.ghosts, redis.call("ZCARD", Q.delayed),
    redis.call("ZCARD", Q.reserved)
end

-- Backlog figures for metrics: counts, stored bytes (Redis's sampled estimate of the records'
-- memory; 0 where MEMORY USAGE is unavailable) and the enqueue time of the message at the head
-- of the FIFO (0 if unknown). Best effort, as Cloudflare's metrics are.
local function backlog(Q)
  local ready, delayed, reserved = sizes(Q)
  local bytes = redis.pcall("MEMORY", "USAGE", Q.msg)
  if type(bytes) ~= "number" then bytes = 0 end
  local oldest = 0
  local head = redis.call("LINDEX", Q.ready, 0)
  local rec = head and redis.call("HGET", Q.msg, head)
  if rec then oldest = tonumber(string.sub(rec, 1, 13)) end
  return {ready, delayed, reserved, bytes, oldest}
end

-- Earliest future moment something may become ready (a delayed message due, a reservation
-- lapsing), or -1. Long-poll waiters sleep until then at the latest.
local function next_at(Q)
  local t = -1
  for _, key in ipairs({Q.delayed, Q.reserved}) do
    local head = redis.call("ZRANGE", key, 0, 0, "WITHSCORES")
    if head[2] then
      local s = tonumber(head[2])
      if t < 0 or s < t then t = s end
    end
  end
  return t
end

-- Flag bits every maintaining script returns: outbox work pending, queue missing, push
-- deliveries added (the caller lists the queue where pushers look for work).
local function flags(Q)
  local f = 0
  if Q.outboxed then f = f + 1 end
  if not Q.exists then f = f + 2 end
  if Q.pushed then f = f + 4 end
  return f
end
