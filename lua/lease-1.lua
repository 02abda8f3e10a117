--[[
  lease: take or renew a named lease (e.g. "the sweeper runs here"), held until it expires.
  KEYS[1] lease     string  the holder's token
  ARGV[1] holder token
  ARGV[2] ttl ms
  Returns: 1 if the caller holds the lease now (taken or renewed), 0 if someone else does
  Errors:  none
]]
local holder = redis.call("GET", KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
return 1
