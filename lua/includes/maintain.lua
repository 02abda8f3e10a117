--[[
  maintain: the bounded, lazy maintenance every state-changing script runs first (when DUE says
  something can be due): lapsed reservations requeued or dead-lettered, due delayed messages
  promoted, expired messages dropped. Afterwards no expired message is left but reserved ones.
]]
-- @include "queue"
-- @include "push"

-- The dead letter queue's name (meta `dlq`, "" = none), read when first needed.
local function dead_letter_queue(Q)
  if not Q.dlq then Q.dlq = redis.call("HGET", Q.keys[META], "dlq") or "" end
  return Q.dlq
end

-- A delivery ended without a delete (reservation lapsed, or released), and counted. The caller
-- has already removed the id from `reserved`. Returns "dead", "expired", "delayed" or "ready".
local function end_delivery(Q, id, deliveries, expire_at, delay)
  local s, k = Q, Q.keys
  s[RESERVED_COUNT] = s[RESERVED_COUNT] + 1  -- a delivery counted as it ends (state.lua LIVE_UNCOUNTED)
  if s[MAX_DELIVERIES] > 0 and deliveries >= s[MAX_DELIVERIES] then
    local dlq = dead_letter_queue(Q)
    if dlq ~= "" then
      local rec = redis.call("HGET", k[MSG], id)
      if rec then
        -- ref makes the transfer idempotent: source queue id, message id, delivery count
        to_outbox(Q, "dlq\t" .. dlq .. "\t" .. queue_id(Q) .. ":" .. id .. ":" .. deliveries .. "\n" .. rec)
      end
    end
    drop_one(Q, id)
    count(Q, "c_dead", 1)
    return "dead"
  end
  if expire_at <= Q.now then
    drop_one(Q, id)
    count(Q, "c_expired", 1)
    return "expired"
  end
  if delay > 0 then
    keep_set_table(Q, DELAYED_TABLE, DELAYED)
    redis.call("ZADD", k[DELAYED], Q.now + delay, id)
    index_expiry(Q, expire_at, id)
    due_by(Q, math.min(Q.now + delay, expire_at))
    return "delayed"
  end
  requeue(Q, id, expire_at)
  return "ready"
end

-- Behind the front region the FIFO's own order resumes (see FRONT): expire what waits at index
-- FRONT as sweep_head does at the head. What is expired there becomes a ghost in place and joins
-- the front region (it is popped when it reaches the head), so the next look goes further.
local function sweep_behind_front(Q, K)
  local s, k = Q, Q.keys
  for _ = 1, K do
    local id = redis.call("LINDEX", k[READY], string.format("%d", s[FRONT]))
    if not id then return false end
    local rec = redis.call("HGET", k[MSG], id)
    if rec then
      local expire_s = rec_expire(rec)
      if expire_s > Q.now_s then
        Q.head_expire = math.min(Q.head_expire, tonumber(expire_s))
        return false
      end
      drop_one(Q, id)
      count(Q, "c_expired", 1)
      s[GHOSTS] = s[GHOSTS] + 1
    end
    s[FRONT] = s[FRONT] + 1
  end
  return true
end

-- Pops ghosts and expired messages off the head of `ready` (at most K). Appends and prepends
-- still pending (Q.append, Q.prepend) are unexpired, so they never matter here.
local function sweep_head(Q, K)
  local s, k = Q, Q.keys
  for _ = 1, K do
    local id = redis.call("LINDEX", k[READY], "0")
    if not id then
      Q.emptied = true
      return false
    end
    local rec = redis.call("HGET", k[MSG], id)
    if rec then
      local expire_s = rec_expire(rec)
      if expire_s > Q.now_s then
        Q.head_expire = tonumber(expire_s)
        return s[FRONT] > 0 and sweep_behind_front(Q, K)
      end
      redis.call("LPOP", k[READY])
      drop_one(Q, id)
      count(Q, "c_expired", 1)
    else
      redis.call("LPOP", k[READY])
      s[GHOSTS] = s[GHOSTS] - 1
    end
    popped(Q, 1)
  end
  return true
end

-- After a full pass: the earliest moment maintenance may find work again (see DUE). An `expiry`
-- holding no message clears INDEXED, so drops skip it until something is registered there again.
-- (TABLE_MEMBER, at +inf, is the first of a set that holds nothing else.)
local function next_due(Q)
  local k = Q.keys
  local t = math.min(Q.head_expire or NEVER, Q.append_min or NEVER)
  for _, key in ipairs({k[RESERVED], k[DELAYED], k[EXPIRY]}) do
    local first = tonumber(redis.call("ZRANGE", key, "0", "0", "WITHSCORES")[2] or NEVER)
    if first < NEVER then
      t = math.min(t, first)
    elseif key == k[EXPIRY] then
      Q[INDEXED] = 0
    end
  end
  return t
end

-- Lazy maintenance, each step bounded by K: requeue lapsed reservations (or dead-letter them)
-- and promote due delayed messages, merged by the time each became available so the FIFO stays
-- in availability order; drop indexed expired messages; pop expired ones off the head (skipped
-- with head = false by reserve, which pops the head itself). K_s: the bound, as text (ARGV).
-- Returns true if a step hit K.
local function maintain(Q, K_s, head)
  local s, k = Q, Q.keys
  if Q.now < s[DUE] then return false end
  -- Strings, not Lua numbers, go to Redis: redis.call prints each number with "%.17g".
  local now_s, K = Q.now_s, tonumber(K_s)
  local lapsed = redis.call("ZRANGEBYSCORE", k[RESERVED], "-inf", now_s, "WITHSCORES", "LIMIT", "0", K_s)
  local due = redis.call("ZRANGEBYSCORE", k[DELAYED], "-inf", now_s, "WITHSCORES", "LIMIT", "0", K_s)
  local more = #lapsed == 2 * K or #due == 2 * K
  local states, exps, delivered = {}, {}, nil
  if #lapsed > 0 then
    local ids = {}
    for i = 1, #lapsed, 2 do ids[#ids + 1] = lapsed[i] end
    redis.call("ZREM", k[RESERVED], unpack(ids))
    states = redis.call("HMGET", k[DLV], unpack(ids))
  end
  if #due > 0 then
    local ids = {}
    for i = 1, #due, 2 do ids[#ids + 1] = due[i] end
    redis.call("ZREM", k[DELAYED], unpack(ids))
    exps = redis.call("ZMSCORE", k[EXPIRY], unpack(ids))
    -- delivered before: a release with a delay, which requeues like any other release
    if has_flag(s, TO_FRONT) then delivered = redis.call("HMGET", k[DLV], unpack(ids)) end
  end
  local i, j, gone, ordered = 1, 1, {}, {}
  while i <= #lapsed or j <= #due do
    if j > #due or (i <= #lapsed and tonumber(lapsed[i + 1]) <= tonumber(due[j + 1])) then
      local deliveries, _, _, expire_at = parse_dlv(states[(i + 1) / 2])
      end_delivery(Q, lapsed[i], deliveries, expire_at, s[RETRY_DELAY])
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
  if #ordered > 0 then redis.call("ZREM", k[EXPIRY], unpack(ordered)) end

  local expired = s[INDEXED] ~= 0 and redis.call("ZRANGEBYSCORE", k[EXPIRY], "-inf", now_s, "LIMIT", "0", K_s) or {}
  if #expired > 0 then
    more = more or #expired == K
    redis.call("ZREM", k[EXPIRY], unpack(expired))
    local in_reserved = redis.call("ZMSCORE", k[RESERVED], unpack(expired))
    local in_delayed = redis.call("ZMSCORE", k[DELAYED], unpack(expired))
    gone = {}
    for n, id in ipairs(expired) do
      if in_reserved[n] then
        -- dropped when its reservation ends (end_delivery sees the expire time)
      elseif in_delayed[n] then
        redis.call("ZREM", k[DELAYED], id)
        gone[#gone + 1] = id
      elseif is_push_message(Q, id) then
        drop_push(Q, id)
        gone[#gone + 1] = id
      elseif redis.call("HEXISTS", k[MSG], id) == 1 then
        s[GHOSTS] = s[GHOSTS] + 1     -- its id stays in `ready` until popped
        gone[#gone + 1] = id
      end
    end
    drop(Q, gone)
    count(Q, "c_expired", #gone)
  end
  if head ~= false and sweep_head(Q, K) then more = true end
  if more then
    s[DUE] = Q.now   -- work left: the next call maintains again
  elseif head ~= false then
    s[DUE] = next_due(Q)
  end
  return more
end
