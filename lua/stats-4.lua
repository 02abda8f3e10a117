--[[
  stats: a queue's counts and counters in one atomic read, without maintenance: what the
  registry's stats scrape for metrics, queue by queue in one pipelined round. Atomic because the
  deliveries counter is the state's count of ended reservations plus the live ones
  (includes/state.lua LIVE_UNCOUNTED): read by separate commands, a reservation ending between
  them would show that counter falling, which a monitoring system takes for a reset.
  KEYS[1] ready     list   FIFO of ids (ghosts included: meta `q` counts them)
  KEYS[2] delayed   zset   id -> due ms
  KEYS[3] reserved  zset   id -> deadline ms
  KEYS[4] meta      hash   settings, counters
  ARGV    the meta fields to read
  Returns: {length, delayed, reserved, meta}
           length: of `ready`; delayed, reserved: the sorted sets counted below +inf (not their
           table member, includes/queue.lua); meta: the fields' values, in ARGV's order
  Errors:  none
]]

return {redis.call("LLEN", KEYS[1]), redis.call("ZCOUNT", KEYS[2], "-inf", "(+inf"),
  redis.call("ZCOUNT", KEYS[3], "-inf", "(+inf"), redis.call("HMGET", KEYS[4], unpack(ARGV))}
