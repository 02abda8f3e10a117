--[[
  take: the head of the queue handed out, under a new reservation or deleted as it goes
  (at-most-once), and when it found nothing, the moment to look again. What `reserve` and
  `delete_reserve` share.
]]
-- @include "maintain"

-- take()'s reserve of what it popped, for one message: single reads and writes and no tables to
-- unpack (a single-message reserve is the most common call). Appends id, record, deliveries.
-- A reserve writes the state of a first delivery with HSETNX, which answers whether there was
-- one: the HGET that would have told is made only for a redelivery (~4k instructions, callgrind).
-- Returns whether it changed a slot of the queue's state (Q[...]), for take_one.
local function reserve_one(Q, reply, id, rec, expire_s, timeout, token, delete)
  local k = Q.keys
  local deliveries, changed = "1", delete
  if delete then
    local state = redis.call("HGET", k[DLV], id)
    deliveries = next_delivery(state)
    drop_one(Q, id, not state)  -- a first delivery has no state to delete: one call fewer
    Q[DELETED_COUNT] = Q[DELETED_COUNT] + 1
    Q[RESERVED_COUNT] = Q[RESERVED_COUNT] + 1  -- a delivery that ended as it was made
  else
    local own = timeout ~= "0" and timeout_text(tonumber(timeout)) or string.sub(rec, 15, 23)  -- rec_timeout, inline
    local at = Q.now + timeout_number(own)
    if at < Q[DUE] then  -- due_by, inline
      Q[DUE], changed = at, true
    end
    redis.call("ZADD", k[RESERVED], ms_string(at), id)
    if redis.call("HSETNX", k[DLV], id, dlv_state(deliveries, token, own, expire_s)) == 0 then
      deliveries = next_delivery(redis.call("HGET", k[DLV], id))
      redis.call("HSET", k[DLV], id, dlv_state(deliveries, token, own, expire_s))
    end
  end
  local r = #reply
  reply[r + 1], reply[r + 2], reply[r + 3] = id, rec, deliveries
  return changed
end

-- take() of one message, the most common call, with no table built unless it skips an expired
-- message: a table costs ~1-3k instructions with its share of the garbage collection (callgrind).
-- Its third result is true when it took the head and changed no slot of the state (Q[...]): no
-- ghost or expired message skipped, none requeued at the front (FRONT), not deleted as taken,
-- the moment of the next maintenance (DUE) not lowered. The caller then need not write the state
-- back: packing it to find that out was ~9.5k of a reserve's ~110k instructions (callgrind).
local function take_one(Q, reply, K, timeout, token, delete)
  local k, now_s, front = Q.keys, Q.now_s, Q[FRONT]  -- FRONT as opened: popped() counts it down
  local pops, budget, skipped = 0, 1, nil
  local id, rec, expire_s
  repeat
    id = redis.call("LPOP", k[READY])
    if not id then
      Q.emptied = true
      break
    end
    pops = pops + 1
    rec = redis.call("HGET", k[MSG], id)
    expire_s = rec and string.sub(rec, 25, 37)  -- rec_expire, inline
    if rec and expire_s > now_s then break end
    if budget == 1 then budget = 1 + tonumber(K) end
    if rec then
      skipped = skipped or {}
      skipped[#skipped + 1] = id
    else
      Q[GHOSTS] = Q[GHOSTS] - 1
    end
    id = nil
  until pops >= budget
  popped(Q, pops)
  if skipped then
    drop(Q, skipped)
    count(Q, "c_expired", #skipped)
  end
  if not id then return 0, pops end
  local changed = reserve_one(Q, reply, id, rec, expire_s, timeout, token, delete)
  return 1, pops, pops == 1 and front == 0 and not changed and not skipped
end

-- Pops up to n from the head; ghosts and expired messages met on the way are skipped, and K
-- more pops are allowed for them (at most n + K in all). Each message taken is reserved until
-- now + `timeout` (ms as text, "0" = the message's own) with delivery state `token`, or deleted
-- (`delete`), and appended to `reply` as id, record, deliveries. With `width`, `token` is one
-- token per message, each `width` bytes: the i-th message taken is under the i-th (single
-- reserves merged into one call: engine/coalesce.py). Returns how many were taken, and how many
-- ids it popped (ghosts and expired ones too).
local function take(Q, reply, n, K, timeout, token, delete, width)
  if n == 1 then return take_one(Q, reply, K, timeout, token, delete) end
  local k, now, now_s = Q.keys, Q.now, Q.now_s
  local ids, recs, exps, skipped = {}, {}, {}, nil
  local pops, budget, want = 0, n, n
  repeat
    -- LPOP with a count answers an array, even of one: a table's worth more than a plain LPOP
    -- (~3k instructions, callgrind), which a single-message reserve makes most.
    local taken
    if want == 1 then
      taken = redis.call("LPOP", k[READY])
      if taken then taken = {taken} end
    else
      taken = redis.call("LPOP", k[READY], string.format("%d", want))
    end
    if not taken then
      Q.emptied = true
      break
    end
    pops = pops + #taken
    if #taken < want then Q.emptied = true end
    local records = #taken == 1 and {redis.call("HGET", k[MSG], taken[1])} or redis.call("HMGET", k[MSG], unpack(taken))
    for i = 1, #taken do
      local rec = records[i]
      local expire_s = rec and string.sub(rec, 25, 37)  -- rec_expire, inline: this loop is the hot path
      if rec and expire_s > now_s then
        local m = #ids + 1
        ids[m], recs[m], exps[m] = taken[i], rec, expire_s
      else
        if budget == n then budget = n + tonumber(K) end
        if rec then
          skipped = skipped or {}
          skipped[#skipped + 1] = taken[i]
        else
          Q[GHOSTS] = Q[GHOSTS] - 1
        end
      end
    end
    want = math.min(n - #ids, budget - pops)
  until Q.emptied or #ids >= n or pops >= budget
  popped(Q, pops)
  if skipped then
    drop(Q, skipped)
    count(Q, "c_expired", #skipped)
  end
  if #ids == 0 then return 0, pops end
  if #ids == 1 then
    reserve_one(Q, reply, ids[1], recs[1], exps[1], timeout, width and string.sub(token, 1, width) or token, delete)
    return 1, pops
  end

  -- Reserve what was taken: deadline and delivery state per message (a batch mostly shares one
  -- timeout: its conversions are cached). A take that deletes builds neither (~4k instructions a
  -- message of a GET of 100 with delete, callgrind).
  local override = timeout ~= "0" and timeout_text(tonumber(timeout)) or nil
  local states = redis.call("HMGET", k[DLV], unpack(ids))
  local zargs, hargs, deadlines = {}, {}, {}
  local r, delivered = #reply, false
  for i = 1, #ids do
    local id, rec = ids[i], recs[i]
    local deliveries = "1"  -- next_delivery and dlv_state, inline: a call each per message cost ~0.6k a message
    if states[i] then
      deliveries = tostring(tonumber(string.match(states[i], "^(%d+)")) + 1)
      delivered = true
    end
    if not delete then
      local own = override or string.sub(rec, 15, 23)  -- rec_timeout, inline
      local deadline = deadlines[own]
      if not deadline then
        local at = now + timeout_number(own)
        deadline = ms_string(at)
        deadlines[own] = deadline
        if at < Q[DUE] then Q[DUE] = at end  -- due_by, inline
      end
      zargs[2 * i - 1], zargs[2 * i] = deadline, id
      local mine = width and string.sub(token, width * (i - 1) + 1, width * i) or token
      hargs[2 * i - 1], hargs[2 * i] = id, deliveries .. "|" .. mine .. "|" .. own .. "|" .. exps[i]
    end
    reply[r + 1], reply[r + 2], reply[r + 3] = id, rec, deliveries
    r = r + 3
  end
  if delete then
    drop(Q, ids, not delivered)  -- first deliveries have no states to delete: one call fewer
    Q[DELETED_COUNT] = Q[DELETED_COUNT] + #ids
    Q[RESERVED_COUNT] = Q[RESERVED_COUNT] + #ids  -- deliveries that ended as they were made
  else  -- live reservations: counted when they end (includes/state.lua LIVE_UNCOUNTED)
    redis.call("ZADD", k[RESERVED], unpack(zargs))
    redis.call("HSET", k[DLV], unpack(hargs))
  end
  return #ids, pops
end

-- Earliest future moment something may become ready (a delayed message due, a reservation
-- lapsing), or -1: for a take that found nothing, whose long poll sleeps until then at the latest.
-- DUE answers while it is ahead, with no Redis call: maintenance's next moment is never later than
-- the first delayed due or deadline (it also counts expiries, which only wake a waiter early, for
-- one more look). A passed DUE on a queue the take emptied is recomputed first (the reserve's
-- maintenance leaves it, the head being the take's to check), so the polls after it answer from it.
-- Two ZRANGEs were a quarter of a reserve on an empty queue (~32k instructions of ~127k,
-- callgrind), and a polling consumer makes that call all day.
local function next_at(Q)
  if Q[DUE] <= Q.now and Q.emptied then Q[DUE] = next_due(Q) end
  if Q[DUE] > Q.now then return Q[DUE] < NEVER and Q[DUE] or -1 end
  local t = -1
  for _, key in ipairs({Q.keys[DELAYED], Q.keys[RESERVED]}) do
    local head = redis.call("ZRANGE", key, 0, 0, "WITHSCORES")
    local s = tonumber(head[2] or NEVER)  -- TABLE_MEMBER's +inf when nothing else is there
    if s < NEVER and (t < 0 or s < t) then t = s end
  end
  return t
end
