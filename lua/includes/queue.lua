--[[
  queue: a queue opened by a script, its FIFO, and what the script leaves to write at the end.
  Every key arrives in KEYS, in the order engine/keys.py QueueKeys.core gives them (the slot
  names below).

  Data model of one queue (all keys share the queue's hash tag):
    meta      hash  `q` (includes/state.lua), id, created, updated, text settings, rare counters
    ready     list  ids in FIFO order. Deleting a ready message leaves its id in the list as a
                    "ghost" (no record); GHOSTS counts them, so ready = LLEN - GHOSTS.
    delayed   zset  id -> due ms              reserved  zset  id -> deadline ms
    expiry    zset  id -> expire-at ms, only for messages the FIFO order cannot expire (below)
                    (and TABLE_MEMBER at +inf in all three: below)
    msg, dlv  hash  records and delivery states (includes/record.lua)
    outbox    list  work for other queues (another slot): dead letters, alert and error-queue
                    messages, moved by the engine after the script
    push, pstatus   push-queue deliveries (includes/push.lua)

  Maintenance only when something can be due: DUE is a moment before which maintain() has
  nothing to do: no score in reserved, delayed or expiry is below it, nor the expire time of the
  head of `ready` (in-order messages behind the head expire no sooner), and no ghost waits at
  the head as the pass left it. Every script that adds to those sets or to `ready`, or makes a
  ghost, lowers it (due_by); a full maintenance pass sets it afresh. 0: unknown, maintain. Takes
  before DUE can still bring a ghost further back to the head (lowering DUE for that would
  make every steady reserve write its state): takes skip it, backlog() looks past it.

  Expiry without an index entry per message: XTAIL is the largest expire-at appended "in order"
  to `ready` since the list was last empty. A message appended with expire-at >= XTAIL is in
  order and needs no index; one appended below it (requeued, or posted with a shorter
  expires_in) is registered in `expiry`. Every delayed message is registered in `expiry` too.
  So when the head of `ready` is alive and unexpired, every in-order message behind it is
  unexpired as well, and the only expired messages left are in `expiry`.

  Requeue to the front (TO_FRONT, IronMQ v3): a lapsed or released message is pushed at the head
  of `ready` instead of appended. FRONT counts the ids at the head that got there so (or became
  ghosts there); each of them is registered in `expiry`, because the in-order messages behind
  them may expire sooner. The FIFO's own order, and the claim above, resume at index FRONT.

  Hash tables and skip lists only: Redis keeps a small hash or sorted set as a listpack, which a
  lookup, insert or removal by member scans. `msg` and `dlv` are looked up by id on every call,
  `reserved` is written by every reserve and delete (an insert into a listpack of a hundred
  reservations cost ~28k instructions, callgrind), `delayed` and `expiry` by every delay (~25k a
  delayed put with a hundred waiting). So each gets a member too long for a listpack, which Redis
  then never converts back, and which never leaves: TABLE_FIELD (includes/record.lua) in the
  hashes, TABLE_MEMBER in the sorted sets, at +inf, so never due, never counted (sizes() and
  engine/keys.py MESSAGE_SCORES count below +inf), never an id. `msg`, `dlv` and `reserved` get
  theirs at the queue's first put (flag TABLES), `delayed` and `expiry` at their own first use
  (DELAYED_TABLE, EXPIRY_TABLE: a skip list takes ~1 KB, and most queues use neither); a clear
  resets the flags. They only spare the check: a clear by an older FerryMQ (a rolling upgrade)
  leaves them set with the members gone, which costs speed until the next clear, not counts.
]]
-- @include "clock"
-- @include "record"
-- @include "state"
-- @include "alerts"

local META, READY, DELAYED, RESERVED, EXPIRY, MSG, DLV, OUTBOX, PUSH, PSTATUS = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10

-- ready, delayed, reserved. The sorted sets are counted below +inf, not by ZCARD minus the flag
-- TABLES: a clear by a FerryMQ from before the flag (a rolling upgrade) unlinks the member and
-- keeps the flag, and the counts would stay one short.
local function sizes(Q)
  local k = Q.keys
  return redis.call("LLEN", k[READY]) - Q[GHOSTS], redis.call("ZCOUNT", k[DELAYED], "-inf", "(+inf"),
    redis.call("ZCOUNT", k[RESERVED], "-inf", "(+inf")
end

-- ready + delayed + reserved (alerts never apply to push queues, so pushes are not counted).
local function queue_size(Q)
  local ready, delayed, reserved = sizes(Q)
  return ready + delayed + reserved
end

-- A state from before LIVE_UNCOUNTED (includes/state.lua), whose RESERVED_COUNT counted each
-- delivery as it was made: the live ones come off it, readers adding them from now on. Written at
-- once, whatever the script does next: an idle queue's polls write nothing, and would otherwise
-- keep sending reserve after reserve_ready's FULL.
local function uncount_live(Q)
  Q[RESERVED_COUNT] = Q[RESERVED_COUNT] - redis.call("ZCOUNT", Q.keys[RESERVED], "-inf", "(+inf")
  set_flag(Q, LIVE_UNCOUNTED, true)
  Q.raw = pack_state(Q)
  redis.call("HSET", Q.keys[META], "q", Q.raw)
end

-- Hash tables and skip lists (above) once per incarnation of the queue, by its first put: a clear
-- or a drop unlinks them and resets the flags.
local function keep_tables(Q)
  if has_flag(Q, TABLES) then return end
  local k = Q.keys
  redis.call("HSET", k[MSG], TABLE_FIELD, TABLE_MEMBER)
  redis.call("HSET", k[DLV], TABLE_FIELD, TABLE_MEMBER)
  redis.call("ZADD", k[RESERVED], "+inf", TABLE_MEMBER)
  set_flag(Q, TABLES, true)
end

-- The same for `delayed` (DELAYED_TABLE, DELAYED) or `expiry` (EXPIRY_TABLE, EXPIRY), before
-- anything is first added to it.
local function keep_set_table(Q, flag, slot)
  if has_flag(Q, flag) then return end
  redis.call("ZADD", Q.keys[slot], "+inf", TABLE_MEMBER)
  set_flag(Q, flag, true)
end

-- Redis's sampled estimate of the memory of the records of a queue holding `held` messages; 0
-- where MEMORY USAGE is unavailable, or when `msg` holds no record (TABLE_FIELD at most). With
-- none held, `msg` may still keep the records of delivered push messages (until they expire).
local function stored_bytes(k, held)
  if held == 0 then
    local fields = redis.call("HLEN", k[MSG])
    if fields == 0 or fields == 1 and redis.call("HEXISTS", k[MSG], TABLE_FIELD) == 1 then return 0 end
  end
  local bytes = redis.pcall("MEMORY", "USAGE", k[MSG])
  return type(bytes) == "number" and bytes or 0
end

-- Opens the queue (one HGET). Q holds its state in its array part (Q[TIMEOUT], Q[DUE]...: the
-- slots of includes/state.lua), written back by flush() if a helper changed it, and what the
-- call needs beside. Q.exists is false for a missing queue. `common`: the caller is a common
-- case's script, which declared only some of the keys and leaves a queue with alerts (the size
-- they watch is not read) and a queue of an older FerryMQ (nil: not opened, nothing written) to
-- its verb's full script.
local function open_queue(KEYS, now, now_s, common)
  local raw = redis.call("HGET", KEYS[META], "q")
  if not raw and common and redis.call("EXISTS", KEYS[META]) == 1 then return nil end
  local struct, Q = struct_library(), nil
  if raw and struct then  -- one table: the named fields, then the slots (the constructor's last item)
    Q = {keys = KEYS, now = now, now_s = now_s, raw = raw, exists = true, struct.unpack(STATE_FORMAT, raw)}
  else
    local state = read_state(KEYS[META], raw)
    Q = state or new_state()
    Q.keys, Q.now, Q.now_s, Q.raw, Q.exists = KEYS, now, now_s, raw, state ~= nil
  end
  if Q.exists and not has_flag(Q, LIVE_UNCOUNTED) then
    if common then return nil end
    uncount_live(Q)
  end
  Q.ghosts0 = Q[GHOSTS]
  if Q.exists and not common and has_flag(Q, HAS_ALERTS) then Q.size0 = queue_size(Q) end
  return Q
end

-- The queue's id (read when first needed: most calls never are).
local function queue_id(Q)
  if not Q.id then Q.id = redis.call("HGET", Q.keys[META], "id") or "" end
  return Q.id
end

-- Something may need maintenance at `ms`: lowers DUE (written at the next flush).
local function due_by(Q, ms)
  if ms < Q[DUE] then Q[DUE] = ms end
end

-- A counter of the rarer events (its own meta field, "c_<name>"; flush adds them up).
local function count(Q, field, n)
  if n == 0 then return end
  Q.counts = Q.counts or {}
  Q.counts[field] = (Q.counts[field] or 0) + n
end

local function index_expiry(Q, expire_at, id)
  keep_set_table(Q, EXPIRY_TABLE, EXPIRY)
  redis.call("ZADD", Q.keys[EXPIRY], expire_at, id)
  Q[INDEXED] = 1
end

-- Appends to the end of the FIFO (at the next flush). Returns true when the message is in
-- expiry order (needs no `expiry` entry); otherwise registers it in `expiry`.
local function append_ready(Q, id, expire_at)
  local append = Q.append
  if not append then
    append = {}
    Q.append = append
  end
  append[#append + 1] = id
  if not Q.append_min or expire_at < Q.append_min then Q.append_min = expire_at end
  due_by(Q, expire_at)
  if expire_at >= Q[XTAIL] then
    Q[XTAIL] = expire_at
    return true
  end
  index_expiry(Q, expire_at, id)
  return false
end

-- A message whose delivery ended goes back to the FIFO: appended, or pushed at the head on a queue
-- that requeues to the front (at the next flush). A message at the front is registered in
-- `expiry` (see FRONT above). Returns true when it needs no `expiry` entry.
local function requeue(Q, id, expire_at)
  if not has_flag(Q, TO_FRONT) then return append_ready(Q, id, expire_at) end
  Q.prepend = Q.prepend or {}
  Q.prepend[#Q.prepend + 1] = id
  index_expiry(Q, expire_at, id)
  due_by(Q, expire_at)
  return false
end

-- n ids were popped off the head of `ready`: the front region shrinks first. (Set Q.emptied
-- where a pop found the list empty: flush then resets what an empty list restarts.)
local function popped(Q, n)
  if Q[FRONT] > 0 then Q[FRONT] = math.max(0, Q[FRONT] - n) end
end

-- Removes messages for good (records, delivery states, expiry entries). Callers remove the ids
-- from ready/delayed/reserved themselves (or count them as ghosts).
-- `undelivered`: the caller read their delivery states and there are none, so none to delete.
local function drop(Q, ids, undelivered)
  if #ids == 0 then return end
  redis.call("HDEL", Q.keys[MSG], unpack(ids))
  if not undelivered then redis.call("HDEL", Q.keys[DLV], unpack(ids)) end
  if Q[INDEXED] ~= 0 then redis.call("ZREM", Q.keys[EXPIRY], unpack(ids)) end
end

-- drop() of one message: no table built to be unpacked (~1k instructions each, callgrind).
-- `undelivered`: the caller read its delivery state and there is none, so none to delete.
local function drop_one(Q, id, undelivered)
  redis.call("HDEL", Q.keys[MSG], id)
  if not undelivered then redis.call("HDEL", Q.keys[DLV], id) end
  if Q[INDEXED] ~= 0 then redis.call("ZREM", Q.keys[EXPIRY], id) end
end

-- A reference unique to one outbox entry: the target queue remembers it, so moving the entry
-- twice (a crash between the move and its removal) stores it once. A per-queue sequence keeps
-- two entries of the same millisecond apart.
local function outbox_ref(Q, kind, id)
  return queue_id(Q) .. ":" .. kind .. ":" .. id .. ":" .. redis.call("HINCRBY", Q.keys[META], "outbox_seq", 1)
end

local function to_outbox(Q, entry)
  redis.call("RPUSH", Q.keys[OUTBOX], entry)
  Q.outboxed = true
end


-- Posts the alerts a change of the watched size from `before` to `after` fires (`stored`: meta
-- `alerts`, `alerts_fired`), through the outbox; their last firings are kept in `alerts_fired`.
local function post_alerts(Q, stored, before, after)
  local fired = stored[2] and cjson.decode(stored[2]) or {}
  local firing = alerts_crossed(cjson.decode(stored[1]), fired, before, after, Q.now)
  for _, alert in ipairs(firing) do
    local payload = cjson.encode({id = alert.id, type = alert.type, dir = alert.dir,
      trigger = alert.trigger, size = after, at = Q.now})
    to_outbox(Q, "alert\t" .. alert.queue .. "\t" .. outbox_ref(Q, "alert", alert.id) .. "\n" .. payload)
  end
  if #firing > 0 then redis.call("HSET", Q.keys[META], "alerts_fired", cjson.encode(fired)) end
end

-- A partitioned queue's alerts watch the sum of its partitions' sizes, decided in one place,
-- partition 0, so nothing fires twice. Every partition has the alerts (so HAS_ALERTS); a partition
-- i >= 1 (meta `alerts_part` = i) does not evaluate them: each change of its size numbers a report
-- (its own meta `alerts_seq`, which only grows) and leaves it in its outbox ("size" entries);
-- the engine applies it on partition 0 (lua/alert_size-10.lua). Partition 0 keeps each
-- partition's last size in meta `alert_sizes` (JSON: partition -> {seq, size}; its own, seq 0,
-- written by its own scripts), applies only a report newer than the one it has (so a report
-- applied twice or late changes nothing), and fires on the sum's crossing. Until every partition
-- reported (after alerts are set or partitions added, the engine asks each for its size) there
-- is no sum to cross from: nothing fires.
local ALERT_FIELDS = {"alerts", "alerts_fired", "alerts_part", "parts", "alert_sizes"}

-- Partitions of a queue, from partition 0's meta `parts` ("P|tag1|tag2...", engine/core.py).
local function span_of(parts)
  if not parts then return 1 end
  local _, bars = string.gsub(parts, "|", "")
  return bars + 1
end

-- The sum of `span` partitions' sizes, or nil while one has not reported.
local function sum_of(sizes, span)
  local sum = 0
  for i = 0, span - 1 do
    local entry = sizes[tostring(i)]
    if not entry then return nil end
    sum = sum + entry[2]
  end
  return sum
end

-- On partition 0 (`stored`: ALERT_FIELDS): partition `part` has `size` (report `seq`; 0 for
-- partition 0's own); fires on the crossing of the sum.
local function apply_size(Q, stored, part, seq, size)
  local sizes = stored[5] and cjson.decode(stored[5]) or {}
  local known = sizes[part]
  if seq > 0 and known and known[1] >= seq then return end
  local span = span_of(stored[4])
  local before = sum_of(sizes, span)
  sizes[part] = {seq, size}
  redis.call("HSET", Q.keys[META], "alert_sizes", cjson.encode(sizes))
  local after = sum_of(sizes, span)
  if before and after and before ~= after then post_alerts(Q, stored, before, after) end
end

-- On partition i >= 1: its size, numbered, for partition 0 (through the outbox).
local function report_size(Q, part, size)
  local seq = redis.call("HINCRBY", Q.keys[META], "alerts_seq", 1)
  to_outbox(Q, "size\t\t\n" .. part .. " " .. seq .. " " .. size)
end

-- Where the alerts of a queue of size `size` are decided (`stored`: ALERT_FIELDS): this
-- partition reports it or applies it as partition 0 (true), or the queue has one partition (false).
local function partitioned_size(Q, stored, size)
  if stored[3] then
    report_size(Q, stored[3], size)
    return true
  end
  if span_of(stored[4]) > 1 then
    apply_size(Q, stored, "0", 0, size)
    return true
  end
  return false
end

-- Evaluates the alerts on the size change this call made, in the same script: no crossing is
-- missed or doubled whatever runs concurrently. The alert message goes through the outbox.
local function fire_alerts(Q)
  local after = queue_size(Q)
  local before = Q.size0
  Q.size0 = after
  if before == after then return end
  local stored = redis.call("HMGET", Q.keys[META], unpack(ALERT_FIELDS))
  if not stored[1] or partitioned_size(Q, stored, after) then return end
  post_alerts(Q, stored, before, after)
end

-- Writes the appends and prepends to `ready` the helpers deferred, and announces them on
-- Q.channel when the caller set one. Returns the list's length if it wrote, else nil.
local function flush_ready(Q)
  local k = Q.keys
  local added, length = 0, nil
  if Q.append then
    added = #Q.append
    length = redis.call("RPUSH", k[READY], unpack(Q.append))
    Q.append = nil
  end
  if Q.prepend then
    length = redis.call("LPUSH", k[READY], unpack(Q.prepend))
    Q[FRONT] = Q[FRONT] + #Q.prepend
    added = added + #Q.prepend
    Q.prepend = nil
  end
  if added > 0 and Q.channel then
    redis.call("PUBLISH", Q.channel, added == 1 and "1" or string.format("%d", added))  -- no format for the usual one
  end
  return length
end

-- Writes what the helpers deferred: `ready` (flush_ready), the state, the rarer counters; then
-- fires alerts the size change crossed.
local function flush(Q)
  local k, s = Q.keys, Q
  local length = flush_ready(Q)
  if Q.emptied and not length then length = 0 end
  if length == 0 then
    s[GHOSTS], s[XTAIL], s[FRONT] = 0, 0, 0  -- an empty list restarts the expiry order and heals any drift
  end
  if s[GHOSTS] > Q.ghosts0 then due_by(Q, Q.now) end  -- a ghost may be at the head: sweep it
  if not Q.exists then return end
  local packed = pack_state(s)
  if packed ~= Q.raw then
    redis.call("HSET", k[META], "q", packed)
    Q.raw = packed
  end
  if Q.counts then
    for field, n in pairs(Q.counts) do redis.call("HINCRBY", k[META], field, n) end
    Q.counts = nil
  end
  if Q.size0 then fire_alerts(Q) end
end

-- Ghosts the oldest message is looked for past (oldest_enqueued); more read 0, unknown.
local OLDEST_PAST_GHOSTS = 16

-- The enqueue time of the first message of the FIFO, past the ghosts before it (a take with no
-- maintenance due leaves a ghost at the head once it took what came before: see DUE above), a
-- few at most; 0 if unknown. With no ghost in the FIFO, one LINDEX and one HGET, as before.
local function oldest_enqueued(Q)
  for i = 0, math.min(math.max(Q[GHOSTS], 0), OLDEST_PAST_GHOSTS) do  -- (a count drifted below 0: the head)
    local id = redis.call("LINDEX", Q.keys[READY], i)
    if not id then return 0 end
    local rec = redis.call("HGET", Q.keys[MSG], id)
    if rec then return tonumber(rec_enqueued(rec)) end
  end
  return 0
end

-- Backlog figures for metrics: counts, stored bytes (Redis's sampled estimate of the records'
-- memory; 0 where MEMORY USAGE is unavailable) and the enqueue time of the oldest message in the
-- FIFO (0 if unknown). Best effort, as Cloudflare's metrics are.
local function backlog(Q)
  local ready, delayed, reserved = sizes(Q)
  local bytes = stored_bytes(Q.keys, ready + delayed + reserved + Q[PUSHING])
  return {ready, delayed, reserved, bytes, oldest_enqueued(Q)}
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
