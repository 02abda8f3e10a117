--[[
  unregister: remove a queue from its project's registry, but only the incarnation with this id:
  if the name was re-created meanwhile (it has another id), its listing stays.
  KEYS[1] queues    zset   queue name, score 0
  KEYS[2] names     hash   queue name -> queue id
  KEYS[3] ids       hash   queue id -> queue name
  ARGV[1] queue name
  ARGV[2] queue id
  Returns: 1 if the name was unlisted, 0 if it belongs to a newer incarnation (or was not listed)
  Errors:  none
]]
redis.call("HDEL", KEYS[3], ARGV[2])
if redis.call("HGET", KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call("HDEL", KEYS[2], ARGV[1])
redis.call("ZREM", KEYS[1], ARGV[1])
return 1
