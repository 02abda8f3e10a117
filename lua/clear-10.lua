--[[
  clear: remove every message (ready, delayed, reserved, and push deliveries not yet made); keep
  the settings, the id counter and total_messages. UNLINK frees the data in the background: O(1)
  here whatever the size. Alerts see the fall in size like any other change.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] ready     list   FIFO of ids
  KEYS[3] delayed   zset   id -> due ms
  KEYS[4] reserved  zset   id -> deadline ms
  KEYS[5] expiry    zset   id -> expire-at ms
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  KEYS[8] outbox    list   (kept: dead letters already decided still reach their queue)
  KEYS[9] push      zset   delivery ("<id>|<n>", or "<id>|u" for unicast) -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record (JSON) of a push-queue message
  ARGV[1] now_ms ("" = Redis TIME)
  Returns: {flags, removed}
           removed: how many messages were removed
  Errors:  QUEUE_NOT_FOUND
]]
-- @include "queue"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
local s = Q
if not Q.exists then return redis.error_reply("QUEUE_NOT_FOUND queue not found") end
local ready, delayed, reserved = sizes(Q)
local removed = ready + delayed + reserved + s[PUSHING]
s[RESERVED_COUNT] = s[RESERVED_COUNT] + reserved  -- their deliveries end here (state.lua LIVE_UNCOUNTED)
redis.call("UNLINK", KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[9], KEYS[10])
s[GHOSTS], s[XTAIL], s[FRONT], s[PUSHING], s[INDEXED], s[DUE] = 0, 0, 0, 0, 0, NEVER
for _, flag in ipairs({TABLES, DELAYED_TABLE, EXPIRY_TABLE}) do set_flag(s, flag, false) end
count(Q, "c_cleared", removed)
flush(Q)
return {flags(Q), removed}
