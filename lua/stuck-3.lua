--[[
  stuck: outbox entries that cannot be moved to their target queue (a transfer that failed for a
  reason retrying will not fix). "aside" takes one out of the outbox into the stuck list, where
  an operator sees it (`ferrymq queues info`, /metrics), instead of it staying at the head of the
  outbox for ever; "retry" puts every stuck entry back at the end of the outbox (once the cause
  is fixed), to be moved again. "drop" removes one for good: an error-queue message past the
  transfer hop limit (a loop), counted in c_hops_dropped.
  KEYS[1] meta    hash  `stuck` (entries in the stuck list), `stuck_reason`; counters c_set_aside,
                        c_hops_dropped
  KEYS[2] outbox  list  entries waiting to be moved
  KEYS[3] stuck   list  entries set aside, oldest first (the outbox entry as it was)
  ARGV[1] "aside", "retry" or "drop"
  ARGV[2] aside, drop: the entry, as read from the outbox
  ARGV[3] aside: why it cannot be moved (one line)
  ARGV[4] aside: most entries the stuck list keeps (the oldest go first)
  Returns: aside, drop: 1 if done, 0 if it was no longer in the outbox (another process moved it);
           retry: how many entries went back to the outbox
  Errors:  none
]]
local exists = redis.call("EXISTS", KEYS[1]) == 1

if ARGV[1] == "retry" then
  local n = redis.call("LLEN", KEYS[3])  -- at most ARGV[4] of the asides
  for _ = 1, n do redis.call("LMOVE", KEYS[3], KEYS[2], "LEFT", "RIGHT") end
  if exists then redis.call("HDEL", KEYS[1], "stuck", "stuck_reason") end
  return n
end

if redis.call("LREM", KEYS[2], 1, ARGV[2]) == 0 then return 0 end
if ARGV[1] == "drop" then
  if exists then redis.call("HINCRBY", KEYS[1], "c_hops_dropped", 1) end
  return 1
end
redis.call("RPUSH", KEYS[3], ARGV[2])
redis.call("LTRIM", KEYS[3], -tonumber(ARGV[4]), -1)
if exists then  -- else a queue deleted meanwhile: its stuck list goes with its next deletion
  redis.call("HSET", KEYS[1], "stuck", redis.call("LLEN", KEYS[3]), "stuck_reason", ARGV[3])
  redis.call("HINCRBY", KEYS[1], "c_set_aside", 1)
end
return 1
