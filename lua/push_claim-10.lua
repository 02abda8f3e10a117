--[[
  push_claim: hand the pusher calling it the push deliveries that are due, each under a lease
  (several pushers on several machines never push the same delivery at once; a pusher that dies
  loses nothing: its lease runs out and the delivery is due again). A 202 whose acknowledgement
  did not come in time counts here as a failed attempt.
  KEYS[1] meta      hash   settings (push configuration), counters
  KEYS[2] ready     list   (maintenance only)
  KEYS[3] delayed   zset   (maintenance only)
  KEYS[4] reserved  zset   (maintenance only)
  KEYS[5] expiry    zset   id -> expire-at ms
  KEYS[6] msg       hash   id -> record
  KEYS[7] dlv       hash   id -> delivery state
  KEYS[8] outbox    list   error-queue messages to move
  KEYS[9] push      zset   delivery -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] n: most deliveries to claim
  ARGV[3] lease ms (the push request's timeout and a margin)
  ARGV[4] token: random per call; a delivery's token is token .. its two-digit subscriber index
  Returns: {flags, now, next_at, active, deliveries...}
           next_at: the earliest event still pending, -1 if none
           active: 1 = a push queue or deliveries pending
           deliveries: member, message_id, subscriber_id, url, token, record, headers, hops, name
           per delivery (headers: the subscriber's, JSON; hops: transfers the message went
           through; name: the subscriber's, "" = unnamed)
  Errors:  none
]]
-- @include "push"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
if not Q.exists then return {flags(Q), now, -1, 0} end
local n, lease, token = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

-- The headers of the configured subscriber a status entry is for: found by name (IronMQ v3 names
-- its subscribers, and two may share a url), else by url.
local function headers_of(entry)
  for _, sub in ipairs(push_config(Q) and push_config(Q).subs or {}) do
    if (entry.n and sub.name == entry.n) or (not entry.n and sub.url == entry.u) then
      return sub.headers and cjson.encode(sub.headers) or "{}"
    end
  end
  return "{}"
end

local reply = {0, now, -1, 0}
local due = redis.call("ZRANGEBYSCORE", KEYS[PUSH], "-inf", now, "LIMIT", 0, n)
for _, member in ipairs(due) do
  local id = string.match(member, "^(%d+)|")
  local rec = load_push(Q, id)
  local record = rec and redis.call("HGET", KEYS[MSG], id)
  if not record then
    redis.call("ZREM", KEYS[PUSH], member)  -- its message is gone
  elseif rec_expire(record) <= now_s then
    drop_push(Q, id)
    drop_one(Q, id)
    count(Q, "c_expired", 1)
  else
    local _, index = parse_member(member, rec)
    local sub = rec.subs[index]
    if sub.s == "reserved" and sub.l == "wait" then
      push_failed(Q, id, rec, index, 202, "no acknowledgement before the message timeout")
      _, index = parse_member(member, rec)
      sub = rec.subs[index]
    end
    local score = redis.call("ZSCORE", KEYS[PUSH], member)
    if score and tonumber(score) <= now then
      sub.s, sub.l, sub.k = "reserved", "post", token .. string.format("%02d", index)
      redis.call("ZADD", KEYS[PUSH], now + lease, member)
      for _, v in ipairs({member, id, subscriber_id(id, index), sub.u, sub.k, record, headers_of(sub),
                          rec.h or 0, sub.n or ""}) do
        reply[#reply + 1] = v
      end
    end
    save_push(Q, id, rec)
  end
end
flush(Q)

local head = redis.call("ZRANGE", KEYS[PUSH], 0, 0, "WITHSCORES")
reply[1] = flags(Q)
if head[2] then reply[3] = tonumber(head[2]) end
reply[4] = (has_flag(Q, PUSH_QUEUE) or head[2]) and 1 or 0
return reply
