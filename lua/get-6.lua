--[[
  get: one message by id, with its state. Changes nothing.
  KEYS[1] meta      hash   (existence of the queue)
  KEYS[2] delayed   zset   id -> due ms
  KEYS[3] reserved  zset   id -> deadline ms
  KEYS[4] msg       hash   id -> record
  KEYS[5] dlv       hash   id -> delivery state
  KEYS[6] pstatus   hash   id -> push status record (push-queue messages)
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] message id
  Returns: {record, status, state, time}
           status: "ready"|"delayed"|"reserved"|"pushing"|"pushed" ("pushing": a push-queue
           message with deliveries pending); state: the delivery state or ""
           time: the deadline of a reservation, the due time of a delayed message, else 0
  Errors:  QUEUE_NOT_FOUND, NOT_FOUND (also for a message past its expiry)
]]
-- @include "record"
-- An expired message is reported gone from the record's own expire time; removing it is left to
-- the maintaining scripts, so get never writes.

local now, now_s = now_from(ARGV[1])
local id = ARGV[2]

if redis.call("EXISTS", KEYS[1]) == 0 then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
local rec = redis.call("HGET", KEYS[4], id)
if not rec then return redis.error_reply("NOT_FOUND message not found") end
if rec_expire(rec) <= now_s then return redis.error_reply("NOT_FOUND message expired") end

local push = redis.call("HGET", KEYS[6], id)
if push then return {rec, cjson.decode(push).done and "pushed" or "pushing", "", 0} end
local state = redis.call("HGET", KEYS[5], id) or ""
local deadline = redis.call("ZSCORE", KEYS[3], id)
if deadline and tonumber(deadline) > now then
  return {rec, "reserved", state, tonumber(deadline)}
end
local due = redis.call("ZSCORE", KEYS[2], id)
if due and tonumber(due) > now then return {rec, "delayed", state, tonumber(due)} end
return {rec, "ready", state, 0}
