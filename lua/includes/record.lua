--[[
  record: a message's stored record, and its delivery state.

  msg  hash  id -> the immutable record: a fixed-width header, then the body
             "EEEEEEEEEEEEE|TTTTTTTTT|XXXXXXXXXXXXX|ctype\n" .. body
             enqueued ms (13 digits) | timeout ms (9, zero-padded) | expire ms (13) | ctype
  dlv  hash  id -> "count|token|timeout|expire" once delivered: deliveries so far, the current
             reservation's id and timeout ms, and the record's expire time (so that ending a
             delivery needs no read of the record). Small; rewritten per delivery.
  Each also holds the field "" (TABLE_FIELD), never a message id: see below.
]]
-- @include "clock"

-- `msg` and `dlv` are read and written by id on every call. Redis stores a hash of up to
-- hash-max-listpack-entries fields (512 by default) whose values are all short
-- (hash-max-listpack-value, 64 bytes) as a listpack, where finding a field means scanning it: a
-- few hundred messages in flight made each HMGET or HSET of `dlv` cost tens of thousands of
-- instructions (callgrind), and small bodies do the same to `msg`. A single longer value turns the
-- hash into a hash table for good (Redis never converts it back, and an RDB load keeps it one),
-- so both hashes get this field at the first put into a queue (and again after a clear unlinks
-- them: includes/queue.lua keep_tables). It also keeps them from ever emptying, so they stay
-- tables. Its name is empty: message ids never are (the engine refuses them).
local TABLE_FIELD = ""
-- Its value, and the member that does the same for the sorted sets (includes/queue.lua): 65 bytes,
-- one more than the listpack limits' defaults; the first byte is never in a message id (ids are
-- str, so UTF-8).
local TABLE_MEMBER = "\255----------------------------------------------------------------"

local function rec_enqueued(rec) return string.sub(rec, 1, 13) end
local function rec_timeout(rec) return string.sub(rec, 15, 23) end
local function rec_expire(rec) return string.sub(rec, 25, 37) end

-- "count|token|timeout|expire" -> its four fields as text (nil for none or a malformed state)
local function dlv_fields(s)
  return string.match(s or "", "^(%d+)|([^|]*)|(%d+)|(%d+)")
end

-- "count|token|timeout|expire" -> count (number), token, timeout (number), expire (number)
local function parse_dlv(s)
  if not s then return 0, "", 0, 0 end
  local c, tok, to, exp = dlv_fields(s)
  return tonumber(c), tok, tonumber(to), tonumber(exp)
end

-- The reservation id of a delivery state (nil for none): one capture, no conversions.
local function dlv_token(s)
  return s and string.match(s, "^%d+|([^|]*)|")
end
