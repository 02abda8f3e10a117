--[[
  delete_reserved: settle's common case on half of its keys: deletes messages under the
  reservations their callers hold (no releases, every delete with its reservation id), as settle
  does, in a queue with no maintenance due and no alerts. Otherwise it writes nothing and answers
  FULL, and the engine sends settle (lua/settle-10.lua), which handles every case. Redis charges
  a script call ~1.3k instructions per key it declares.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] reserved  zset   id -> deadline ms
  KEYS[3] msg       hash   id -> record
  KEYS[4] dlv       hash   id -> delivery state
  KEYS[5] expiry    zset   id -> expire-at ms
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] the reservation id of every delete, between bars ("|<rid>|"; the rid without a bar
          and not 9 bytes long, or the check is not exact: see includes/held.lua); "" where
          they differ; "*" for one delete under whatever reservation the message is (settle's
          rid "": when it is not reserved, it may be ready or delayed, and this answers FULL)
  ARGV[3..] the message ids (distinct); where ARGV[2] is "", 2 values per delete: message id,
          and its reservation id between bars, or "*" for a delete under whatever reservation
          (single deletes merged: engine/coalesce.py). Their count is not sent (#ARGV costs less than
          an argument); a batch from one reserve shares its reservation id, sent once (an
          argument costs Redis ~1.2k instructions)
  Returns: {flags, statuses...}: settle's reply
           statuses: status per delete
           status: 1 deleted, 0 no such message, -1 reservation id not current (no change),
           -2 not reserved, under "*" in a pair: nothing done (settle decides)
           flags: 0; or -1 (then only lasting): FULL, nothing written: send settle. lasting:
           1 if the reason lasts (the queue's settings: the engine sends settle for a while),
           else 0
  Errors:  none (per-item statuses instead)
]]
-- @include "held"

local now, now_s = now_from(ARGV[1])
local keys = {KEYS[1], nil, nil, KEYS[2], KEYS[5], KEYS[3], KEYS[4]}  -- by the slots of includes/queue.lua
local Q = open_queue(keys, now, now_s, true)
if not Q or not Q.exists or now >= Q[DUE] then return FULL end  -- (not Q: an older FerryMQ's queue)
if has_flag(Q, HAS_ALERTS) then return FULL_LASTING end

local shared, reply, done = ARGV[2] ~= "" and ARGV[2] or nil, {0}, 0
local n = shared and #ARGV - 2 or (#ARGV - 2) / 2
if shared == "*" then
  if not delete_if_reserved(Q, ARGV[3], reply) then return FULL end
  done = 1
elseif n == 1 then  -- no tables of ids: a table costs ~1-3k instructions with its garbage collection
  done = delete_current(Q, ARGV[3], shared or ARGV[4], reply)
else
  local ids = {}
  if shared then
    for i = 1, n do ids[i] = ARGV[2 + i] end
  else
    for i = 1, n do ids[i] = ARGV[1 + 2 * i] end
  end
  done = delete_current_many(Q, ids, shared, ARGV, reply)
end
-- Every message deleted here was reserved: a delete and an ended delivery each, counted in meta
-- `c_done` (includes/state.lua). Nothing else of the state changed on this path, so it is not
-- written (flush: packing `q` and its HSET cost ~16k instructions of a single delete, the HINCRBY
-- ~7k, callgrind).
if done > 0 then redis.call("HINCRBY", KEYS[1], "c_done", done) end
reply[1] = flags(Q)
return reply
