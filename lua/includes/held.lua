--[[
  held: deletes checked against the reservations their callers hold. What `settle` and
  `delete_reserve` share.
]]
-- @include "maintain"

-- delete_current_many's status for a delete under whatever reservation ("*") of a message that
-- is not reserved: nothing done, settle decides.
local UNDECIDED = -2

-- Is a message with this deadline (a `reserved` score, text) and delivery state under the
-- reservation `rid` right now? ("" asks only whether it is reserved at all.) Scores of whole
-- ms print as 13 digits, so they compare with now as text.
local function holds(Q, rid, deadline, state)
  if not deadline then return false end
  if #deadline == 13 then
    if deadline <= Q.now_s then return false end
  elseif tonumber(deadline) <= Q.now then
    return false
  end
  return rid == "" or dlv_token(state) == rid
end

-- Deletes `ids`, each if its caller holds reservation `rids[i]` ("" = whatever its state),
-- appending a status per id to `reply`: 1 done, 0 no such message, -1 reservation not current.
-- Classified in bulk: a reserved or delayed message is known to exist (its set says where it
-- is), so only the others need a look of their own (ready ones, or unknown ids). Returns how many
-- were deleted.
local function delete_held(Q, ids, rids, reply)
  local k = Q.keys
  local checked = false
  for i = 1, #ids do checked = checked or rids[i] ~= "" end
  local deadlines, states
  if #ids == 1 then  -- the single reads answer a value, not an array (a table less each)
    deadlines = {redis.call("ZSCORE", k[RESERVED], ids[1])}
    states = checked and {redis.call("HGET", k[DLV], ids[1])} or {}
  else
    deadlines = redis.call("ZMSCORE", k[RESERVED], unpack(ids))
    states = checked and redis.call("HMGET", k[DLV], unpack(ids)) or {}
  end
  local waiting = nil  -- scores in `delayed`, read only for ids not reserved
  local from_reserved, from_delayed, gone, seen = {}, {}, {}, {}
  for i, id in ipairs(ids) do
    local status
    if seen[id] then
      status = 0 -- a repeated id: the first occurrence already decided it
    elseif rids[i] ~= "" and not holds(Q, rids[i], deadlines[i], states[i]) then
      status = redis.call("HEXISTS", k[MSG], id) == 1 and -1 or 0
    elseif deadlines[i] then
      status = 1
      from_reserved[#from_reserved + 1] = id
    else
      waiting = waiting or redis.call("ZMSCORE", k[DELAYED], unpack(ids))
      if waiting[i] then
        status = 1
        from_delayed[#from_delayed + 1] = id
      else
        local push_message = is_push_message(Q, id)
        status = redis.call("HDEL", k[MSG], id) -- 1 for a ready message: its id becomes a ghost
        if status == 1 then
          gone[#gone + 1] = id
          if push_message then drop_push(Q, id) else Q[GHOSTS] = Q[GHOSTS] + 1 end
        end
      end
    end
    seen[id] = true
    reply[#reply + 1] = status
  end
  if #from_reserved > 0 then redis.call("ZREM", k[RESERVED], unpack(from_reserved)) end
  if #from_delayed > 0 then redis.call("ZREM", k[DELAYED], unpack(from_delayed)) end
  for _, id in ipairs(from_reserved) do gone[#gone + 1] = id end
  for _, id in ipairs(from_delayed) do gone[#gone + 1] = id end
  drop(Q, gone)
  Q[DELETED_COUNT] = Q[DELETED_COUNT] + #gone
  Q[RESERVED_COUNT] = Q[RESERVED_COUNT] + #from_reserved  -- deliveries ended (state.lua LIVE_UNCOUNTED)
  return #gone
end

-- delete_held for one message under whatever reservation it is (rid ""), in a queue with no
-- maintenance due: reserved if the ZREM removes it, and then deleted (status 1 appended to
-- `reply`, true returned). False, with nothing written, where it is not reserved: ready, delayed
-- or gone, which need keys this case does not declare (delete_held decides those). No delivery
-- state is read: ~30k instructions less than settle's delete of one (callgrind). Also the end
-- of delete_current, once the reservation id is checked.
-- These deletes of reserved messages leave the state's counters alone: the caller counts them in
-- meta `c_done` (state.lua), and so writes no state.
local function delete_if_reserved(Q, id, reply)
  if redis.call("ZREM", Q.keys[RESERVED], id) == 0 then return false end
  drop_one(Q, id)
  reply[#reply + 1] = 1
  return true
end

-- delete_held for one message under a reservation, in a queue with no maintenance due (now
-- before DUE): every member of `reserved` is then under a current reservation, its deadline being
-- at or after DUE (includes/queue.lua), so the ZREM's answer says whether it was reserved and no
-- ZSCORE reads the deadline first (~5k instructions of a single delete, callgrind). `mark` is the
-- reservation id between bars, "|<rid>|". A plain find of it (~1.4k instructions less than
-- capturing the token) is exact only for a rid without a bar and not 9 bytes long: in a delivery
-- state, "count|token|timeout|expire", the token is then the one field it can meet (count has
-- no bar before it, expire none after it, and the timeout is 9 digits). The engine checks that
-- (verbs/messages.py _marked_deletes: 16 characters, no bar); this script cannot.
-- Appends the status to `reply`; returns how many were deleted.
local function delete_current(Q, id, mark, reply)
  local state = redis.call("HGET", Q.keys[DLV], id)
  if state and string.find(state, mark, 1, true) and delete_if_reserved(Q, id, reply) then return 1 end
  reply[#reply + 1] = redis.call("HEXISTS", Q.keys[MSG], id) == 1 and -1 or 0
  return 0
end

-- delete_current for a batch of distinct ids, each under the reservation whose mark (as above)
-- is `shared`, or where that is nil, args[2 + 2 * i] (delete_reserved's ARGV, read in place
-- rather than copied to a table), in a queue with no maintenance due: a member of `reserved` is
-- then under a current reservation, so the token and a ZREM's answer decide each id, as in
-- delete_current, with a status per id appended to `reply` as delete_held gives it. A mark "*"
-- (a delete under whatever reservation, merged with others: engine/coalesce.py) is
-- delete_if_reserved's case: deleted if reserved, else status UNDECIDED and nothing written for
-- it (ready, delayed or gone: settle decides, with the keys this script lacks). One ZREM per
-- id costs less than reading the deadlines first: a ZMSCORE answers each score as text, ~5k
-- instructions a message of a delete of 100, against ~3k for a ZREM call; delete_held's
-- bookkeeping cost ~8k more (callgrind). The engine sends repeated ids to settle, so no table
-- remembers the ids seen (~0.6k a message). Returns how many were deleted.
local function delete_current_many(Q, ids, shared, args, reply)
  local k = Q.keys
  local states = redis.call("HMGET", k[DLV], unpack(ids))
  local gone, r = {}, #reply
  for i = 1, #ids do
    local id, state, status = ids[i], states[i], 0
    -- (A "*" is never found in a state: its token is the engine's hex. Looked at only after the
    -- find, the common case pays nothing for it: a first test of it cost ~0.4k a message.)
    if state and string.find(state, shared or args[2 + 2 * i], 1, true)
        and redis.call("ZREM", k[RESERVED], id) == 1 then
      gone[#gone + 1] = id
      status = 1
    elseif not shared and args[2 + 2 * i] == "*" then
      status = UNDECIDED
      if redis.call("ZREM", k[RESERVED], id) == 1 then
        gone[#gone + 1] = id
        status = 1
      end
    elseif redis.call("HEXISTS", k[MSG], id) == 1 then
      status = -1
    end
    reply[r + i] = status
  end
  drop(Q, gone)
  return #gone
end
