--[[
  drop: delete a queue and all its data. UNLINK frees the data in the background: O(1) here
  whatever the size. The registry entry (another slot) is removed by a separate call. Leaves
  only an expiring id floor, so a queue created again under this name never reuses an id.
  KEYS[1] meta      hash   `q` (the last id issued), id
  KEYS[2] ready     list   FIFO of ids
  KEYS[3] delayed   zset   id -> due ms
  KEYS[4] reserved  zset   id -> deadline ms
  KEYS[5] expiry    zset   id -> expire-at ms
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  KEYS[8] outbox    list   dead letters not yet moved
  KEYS[9] push      zset   delivery ("<id>|<n>", or "<id>|u" for unicast) -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record (JSON) of a push-queue message
  KEYS[11] dedupe    zset   transfer references
  KEYS[12] idfloor  string set to the last message id issued ("ms|sfx"), expiring after ARGV[1]
  KEYS[13] stuck    list   transfers set aside (outbox entries that could not be moved)
  ARGV[1] ms the id floor is kept (longer than any clock step back we tolerate)
  Returns: the id the queue had
  Errors:  QUEUE_NOT_FOUND
]]
-- @include "state"

local m = redis.call("HMGET", KEYS[1], "id", "q")
if not m[1] then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
local s = read_state(KEYS[1], m[2])
redis.call("SET", KEYS[12], string.format("%d|%d", s[ID_MS], s[ID_SFX]), "PX", ARGV[1])
redis.call("UNLINK", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11],
  KEYS[13])
return m[1]
