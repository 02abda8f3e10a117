--[[
  push_report: the outcome of a push, from the pusher that holds the delivery's lease.
  2xx but 202: delivered. 202: reserved until acknowledged (DELETE of the subscriber message)
  or until the message's timeout, then retried. Anything else (0 = no answer: a timeout or a
  connection error): a failed attempt (see includes/push.lua push_failed). Negative: the pusher
  dropped it (a forward past the hop limit): final, counted in c_hops_dropped.
  KEYS[1] meta      hash   settings, counters
  KEYS[2] ready     list   (maintenance only)
  KEYS[3] delayed   zset   (maintenance only)
  KEYS[4] reserved  zset   (maintenance only)
  KEYS[5] expiry    zset   (unused here)
  KEYS[6] msg       hash   id -> record (for the 202 wait and error-queue messages)
  KEYS[7] dlv       hash   (unused here)
  KEYS[8] outbox    list   error-queue messages to move
  KEYS[9] push      zset   delivery -> next event ms
  KEYS[10] pstatus  hash   message id -> push status record
  ARGV[1] now_ms ("" = Redis TIME)
  ARGV[2] delivery (member of `push`)
  ARGV[3] token the claim gave
  ARGV[4] HTTP status code (0 = no answer, negative = dropped)
  ARGV[5] error text ("" for a success)
  Returns: {flags, applied, next_at}
           applied: 1; 0 when the lease was lost meanwhile (the report changes nothing)
           next_at: when the queue's next push event is due (ms; -1: none), so pushers look
           again then
  Errors:  none
]]
-- @include "push"

local now, now_s = now_from(ARGV[1])
local Q = open_queue(KEYS, now, now_s)
local member, token, code, text = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local id = string.match(member, "^(%d+)|")
local rec = id and load_push(Q, id)
if not rec then return {flags(Q), 0, -1} end
local _, index = parse_member(member, rec)
local sub = rec.subs[index]
if not sub or sub.s ~= "reserved" or sub.l ~= "post" or sub.k ~= token then return {flags(Q), 0, -1} end

if code >= 200 and code < 300 and code ~= 202 then
  push_delivered(Q, id, rec, index, code)
elseif code == 202 then
  local record = redis.call("HGET", KEYS[MSG], id)
  local timeout = record and tonumber(rec_timeout(record)) or 60000
  sub.l, sub.c = "wait", 202
  redis.call("ZADD", KEYS[PUSH], now + timeout, member)
elseif code < 0 then
  push_dropped(Q, id, rec, index, text)
else
  push_failed(Q, id, rec, index, code > 0 and code or false, text)
end
save_push(Q, id, rec)
flush(Q)
local next_event = redis.call("ZRANGE", KEYS[PUSH], 0, 0, "WITHSCORES")[2]
return {flags(Q), 1, next_event and tonumber(next_event) or -1}
