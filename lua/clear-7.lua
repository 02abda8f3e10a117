--[[
  clear: remove every message (ready, delayed and reserved); keep the settings, the id counter
  and total_messages. UNLINK frees the data in the background: O(1) here whatever the size.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] ready     list   FIFO of ids
  KEYS[3] delayed   zset   id -> due ms
  KEYS[4] reserved  zset   id -> deadline ms
  KEYS[5] expiry    zset   id -> expire-at ms
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  ARGV    none
  Returns: number of messages removed
  Errors:  QUEUE_NOT_FOUND
]]
local meta = KEYS[1]
if redis.call("EXISTS", meta) == 0 then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
local ghosts = tonumber(redis.call("HGET", meta, "ghosts") or "0")
local removed = redis.call("LLEN", KEYS[2]) - ghosts + redis.call("ZCARD", KEYS[3]) + redis.call("ZCARD", KEYS[4])
redis.call("UNLINK", KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call("HSET", meta, "ghosts", 0, "xtail", 0)
redis.call("HINCRBY", meta, "c_cleared", removed)
return removed
