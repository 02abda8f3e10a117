--[[
  subscribe: store an event subscription (create or replace), a new one only within the
  project's subscription quota.
  KEYS[1] subscriptions  hash  subscription id -> JSON
  KEYS[2] limits         hash  quota name -> the project's own limit
  ARGV[1] subscription id
  ARGV[2] its JSON
  ARGV[3] the engine's subscription quota (when the project has none of its own)
  Returns: 1 created, 0 replaced
  Errors:  QUOTA (subscriptions)
]]
if redis.call("HEXISTS", KEYS[1], ARGV[1]) == 1 then
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
  return 0
end
local limit = redis.call("HGET", KEYS[2], "subscriptions") or ARGV[3]
if redis.call("HLEN", KEYS[1]) >= tonumber(limit) then
  return redis.error_reply("QUOTA subscriptions " .. limit)
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return 1
