--[[
  admit: let a queue's name into its project's registry before the queue is created, within the
  project's queue quota, and not while the project is over its message or byte quota (a new
  queue would not carry the sweeper's mark yet). Listed names count, so concurrent creations
  never pass the quota together.
  KEYS[1] queues    zset   queue name, score 0
  KEYS[2] limits    hash   quota name -> the project's own limit
  KEYS[3] usage     hash   the sweeper's sums; "over" = "<quota> <limit>" while over one
  ARGV[1] queue name
  ARGV[2] the engine's queue quota (when the project has none of its own)
  Returns: 1 admitted (listed now), 0 already listed
  Errors:  QUOTA (queues, or the quota the project is over)
]]
if redis.call("ZSCORE", KEYS[1], ARGV[1]) then return 0 end
local over = redis.call("HGET", KEYS[3], "over")
if over and over ~= "" then return redis.error_reply("QUOTA " .. over) end
local limit = redis.call("HGET", KEYS[2], "queues") or ARGV[2]
if redis.call("ZCARD", KEYS[1]) >= tonumber(limit) then
  return redis.error_reply("QUOTA queues " .. limit)
end
redis.call("ZADD", KEYS[1], 0, ARGV[1])
return 1
