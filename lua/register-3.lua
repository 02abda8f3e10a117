--[[
  register: list a queue in its project's registry (idempotent).
  KEYS[1] queues    zset   queue name, score 0 (so ordered by name)
  KEYS[2] names     hash   queue name -> queue id
  KEYS[3] ids       hash   queue id -> queue name
  ARGV[1] queue name
  ARGV[2] queue id
  Returns: 1
  Errors:  none
]]
redis.call("ZADD", KEYS[1], 0, ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
redis.call("HSET", KEYS[3], ARGV[2], ARGV[1])
return 1
