--[[
  state: a queue's settings, its bookkeeping and its busiest counters, as numbers packed in one
  meta field, `q` (struct: little-endian doubles, every value a whole number below 2^53). Opening
  a queue is one HGET and one struct.unpack into an array; saving it, one struct.pack and one
  HSET. The same values as fields of their own cost a lookup in the meta hash each, and a text
  conversion each way.

  Slots (engine/core.py STATE_FIELDS names them in the same order; a test compares them):
    TIMEOUT, DELAY, EXPIRES_IN   the defaults of a message put with none (ms)
    MAX_DELIVERIES, RETRY_DELAY  delivery policy (0 = unlimited; retry delay ms)
    FLAGS                        PAUSED, PUSH_QUEUE, HAS_ALERTS, TO_FRONT (requeue at the head),
                                 OVER_QUOTA (the sweeper's mark; meta `over` says which quota),
                                 LIVE_UNCOUNTED (below),
                                 TABLES, DELAYED_TABLE, EXPIRY_TABLE (the tables' members are
                                 in place: includes/queue.lua keep_tables)
    ID_MS, ID_SFX                the last message id: its ms and its counter within that ms
    GHOSTS, XTAIL, FRONT, DUE    bookkeeping of `ready` and of maintenance (includes/queue.lua)
    PUSHING                      push-queue messages with deliveries pending
    INDEXED                      1 while `expiry` may hold entries (0: drops skip it)
    TOTAL, RESERVED_COUNT, DELETED_COUNT   counters: puts, deliveries, deletes. Under the flag
                                 LIVE_UNCOUNTED (every queue once a script has opened it since
                                 stop 31), RESERVED_COUNT counts the deliveries whose reservation
                                 has ended (deleted, released, lapsed, cleared) and those deleted
                                 as they were taken; readers add the live reservations, the
                                 members of `reserved` (engine/core.py deliveries). So a reserve
                                 changes no slot, and a steady one writes no state: ~6k of a
                                 single reserve's ~124k instructions (callgrind), and no HSET
                                 to replicate. While an older FerryMQ also serves the queue (a
                                 rolling upgrade), a reservation one version makes and the other
                                 ends is counted twice or not at all, and an older reader leaves
                                 out the live ones.
                                 The common-case delete (delete_reserved) counts its deletes,
                                 each of a reserved message, in meta `c_done` with one HINCRBY
                                 instead: readers add it to both DELETED_COUNT and
                                 RESERVED_COUNT (engine/core.py reported_counters), and a single
                                 delete writes no state (~9k of its ~95k instructions). An older
                                 reader leaves those deletes out.
  Text stays in fields of its own, read only where FLAGS say it matters: dlq, push, alerts,
  alerts_fired, over; and id, created, updated, counters of the rarer events, attributes.

  Queues written before `q` kept these values in fields of their own: the first script to open
  such a queue moves them into `q` (migrate_state), so upgrading needs no downtime.
]]

local TIMEOUT, DELAY, EXPIRES_IN, MAX_DELIVERIES, RETRY_DELAY, FLAGS = 1, 2, 3, 4, 5, 6
local ID_MS, ID_SFX, GHOSTS, XTAIL, FRONT, DUE, PUSHING, INDEXED = 7, 8, 9, 10, 11, 12, 13, 14
local TOTAL, RESERVED_COUNT, DELETED_COUNT = 15, 16, 17
local STATE_SIZE = 17
local STATE_FORMAT = "<ddddddddddddddddd"  -- STATE_SIZE doubles (a literal: a function library's
                                         -- top level runs without the string library)

local PAUSED, PUSH_QUEUE, HAS_ALERTS, TO_FRONT, OVER_QUOTA = 1, 2, 4, 8, 16

-- What a common case's script (put_ready, reserve_ready, delete_reserved) answers, having written
-- nothing, when the queue needs its verb's full script: for a reason of the moment (maintenance
-- due...), or one that lasts (its settings: the engine sends the full script for a while;
-- engine/replies.py FULL).
local FULL, FULL_LASTING = {-1, 0}, {-1, 1}
local TABLES, DELAYED_TABLE, EXPIRY_TABLE = 32, 64, 128
local LIVE_UNCOUNTED = 256

-- Flags by arithmetic (the `bit` library is not everywhere scripts run, fakeredis among them), and
-- VM arithmetic only: a call to math.floor here cost ~4k instructions per put once a flag was set.
local function has_flag(s, mask)
  return s[FLAGS] % (mask + mask) >= mask
end

local function set_flag(s, mask, on)
  if has_flag(s, mask) ~= on then s[FLAGS] = s[FLAGS] + (on and mask or -mask) end
end

-- The state of a new queue: every slot 0 (DUE 0: maintain at the first call, which sets it),
-- ID_SFX -1 (its first id ends in 000000), FLAGS LIVE_UNCOUNTED (no reservation counted yet).
local function new_state()
  local s = {}
  for i = 1, STATE_SIZE do s[i] = 0 end
  s[ID_SFX] = -1
  s[FLAGS] = LIVE_UNCOUNTED
  return s
end

-- Where the struct library is missing (fakeredis), the numbers are kept as text instead: "t",
-- then each number and "|" (engine/core.py reads both).
local STRUCT = nil  -- the struct library, or false where there is none (looked up at the first call)

local function struct_library()
  if STRUCT == nil then STRUCT = rawget(_G, "struct") or false end
  return STRUCT
end

local function unpack_state(raw)
  local struct = struct_library()
  if struct then return {struct.unpack(STATE_FORMAT, raw)} end  -- the last value, the next offset, is not used
  local s = {}
  for number in string.gmatch(raw, "(-?%d+)|") do s[#s + 1] = tonumber(number) end
  return s
end

local function pack_state(s)
  local struct = struct_library()
  if struct then return struct.pack(STATE_FORMAT, unpack(s, 1, STATE_SIZE)) end
  local parts = {"t"}
  for i = 1, STATE_SIZE do parts[i + 1] = string.format("%d|", s[i]) end
  return table.concat(parts)
end

local OLD_NUMBERS = {"timeout", "delay", "expires_in", "max_deliveries", "retry_delay", "id_ms", "id_sfx",
  "ghosts", "xtail", "front", "due", "pushing", "total", "c_reserved", "c_deleted"}
local OLD_SLOTS = {TIMEOUT, DELAY, EXPIRES_IN, MAX_DELIVERIES, RETRY_DELAY, ID_MS, ID_SFX, GHOSTS, XTAIL,
  FRONT, DUE, PUSHING, TOTAL, RESERVED_COUNT, DELETED_COUNT}

-- A queue of an earlier FerryMQ: its fields moved into `q`; nil if the queue does not exist.
local function migrate_state(meta)
  local m = redis.call("HMGET", meta, "id", "paused", "requeue", "push", "alerts", "over", unpack(OLD_NUMBERS))
  if not m[1] then return nil end
  local s = new_state()
  for i, slot in ipairs(OLD_SLOTS) do
    local value = m[6 + i]
    if value then s[slot] = tonumber(value) end
  end
  set_flag(s, PAUSED, m[2] == "1")
  set_flag(s, TO_FRONT, m[3] == "front")
  set_flag(s, PUSH_QUEUE, m[4] ~= false)
  set_flag(s, HAS_ALERTS, m[5] ~= false)
  set_flag(s, OVER_QUOTA, m[6] ~= false and m[6] ~= "")
  set_flag(s, LIVE_UNCOUNTED, false)  -- c_reserved counted the live reservations too: open_queue
  s[INDEXED] = 1
  redis.call("HSET", meta, "q", pack_state(s))
  redis.call("HDEL", meta, "paused", "requeue", unpack(OLD_NUMBERS))
  return s
end

-- The state of the queue whose meta hash is `meta`, given its `q` field (false if missing):
-- nil if the queue does not exist.
local function read_state(meta, raw)
  if raw then return unpack_state(raw) end
  return migrate_state(meta)
end

local SETTING_SLOTS = {timeout = TIMEOUT, delay = DELAY, expires_in = EXPIRES_IN,
  max_deliveries = MAX_DELIVERIES, retry_delay = RETRY_DELAY}
local SETTING_FLAGS = {push = PUSH_QUEUE, alerts = HAS_ALERTS}

-- Applies settings given by meta field name (a decoded JSON object of strings; cjson.null removes
-- one): durations and numbers go to their slots, paused and requeue to FLAGS, text (dlq, push,
-- alerts) to fields of their own, push and alerts also flagged.
local function apply_settings(meta, s, fields)
  local sets, removes = {}, {}
  for field, value in pairs(fields) do
    local slot = SETTING_SLOTS[field]
    if slot then
      s[slot] = value == cjson.null and 0 or tonumber(value)
    elseif field == "paused" then
      set_flag(s, PAUSED, value == "1")
    elseif field == "requeue" then
      set_flag(s, TO_FRONT, value == "front")
    else
      if SETTING_FLAGS[field] then set_flag(s, SETTING_FLAGS[field], value ~= cjson.null) end
      if value == cjson.null then
        removes[#removes + 1] = field
      else
        sets[#sets + 1] = field
        sets[#sets + 1] = value
      end
    end
  end
  if #sets > 0 then redis.call("HSET", meta, unpack(sets)) end
  if #removes > 0 then redis.call("HDEL", meta, unpack(removes)) end
end
