--[[
  record: a message's stored record, and its delivery state.

  msg  hash  id -> the immutable record: a fixed-width header, then the body
             "EEEEEEEEEEEEE|TTTTTTTTT|XXXXXXXXXXXXX|ctype\n" .. body
             enqueued ms (13 digits) | timeout ms (9, zero-padded) | expire ms (13) | ctype
  dlv  hash  id -> "count|token|timeout|expire" once delivered: deliveries so far, the current
             reservation's id and timeout ms, and the record's expire time (so that ending a
             delivery needs no read of the record). Small; rewritten per delivery.
]]
-- @include "clock"

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
