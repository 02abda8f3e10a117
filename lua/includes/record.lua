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

-- A record's timeout as text is 9 digits, zero-padded. A queue has few distinct timeouts, so
-- their conversions are remembered for the life of the loaded library (a string.format or a
-- tonumber costs ~2k instructions, each put and reserve made one): pure functions of their
-- argument, so nothing depends on what a process remembers. Forgotten past MEMO_LIMIT entries.
local MEMO_LIMIT = 1000
local timeout_texts, timeout_numbers, memo_size = {}, {}, 0

local function remember(text, ms)
  if memo_size >= MEMO_LIMIT then
    timeout_texts, timeout_numbers, memo_size = {}, {}, 0
  end
  timeout_texts[ms], timeout_numbers[text], memo_size = text, ms, memo_size + 1
end

-- ms (a whole number) -> its 9-digit text
local function timeout_text(ms)
  local text = timeout_texts[ms]
  if not text then
    text = string.format("%09d", ms)
    remember(text, ms)
  end
  return text
end

-- 9-digit text -> ms
local function timeout_number(text)
  local ms = timeout_numbers[text]
  if not ms then
    ms = tonumber(text)
    remember(text, ms)
  end
  return ms
end

-- A message's options, as put's callers send them: "timeout ms|delay ms|expires_in ms|content
-- type|transfer ref[|hops]" (an empty field = the queue's default; the delay may be "@ms").
local MESSAGE_OPTIONS = "^(%d*)|(@?%d*)|(%d*)|([^|]*)|([^|]*)|?(%d*)$"

-- The record of a message put at `now` (text: now_s) with these options (numbers, and ctype text).
local function new_record(now_s, timeout, expire_at, ctype, body)
  return now_s .. "|" .. timeout_text(timeout) .. "|" .. ms_string(expire_at) .. "|" .. ctype .. "\n" .. body
end

-- The header of a record with no content type, which the puts build once a call for the
-- messages that take every default (the record is this .. body).
local function default_head(now_s, timeout, expire_at)
  return new_record(now_s, timeout, expire_at, "", "")
end

-- Ids: 13-digit ms + 6-digit counter, fixed width so string order = put order. Never tonumber()
-- an id: Lua numbers are doubles and 19 digits do not fit. The id after the last one (its ms and
-- counter, and the ms as text), for a message put at `now`: returns the new id's three, and the id.
local function next_id(now, now_s, id_ms, id_sfx, ms_s)
  if now > id_ms then
    return now, 0, now_s, now_s .. "000000"  -- most puts are their ms's first: no format
  end
  id_sfx = id_sfx + 1
  if id_sfx > 999999 then
    id_ms, id_sfx = id_ms + 1, 0
    ms_s = ms_string(id_ms)
  end
  return id_ms, id_sfx, ms_s, ms_s .. string.format("%06d", id_sfx)
end

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

-- The delivery state written for a delivery (all four as text): the inverse of dlv_fields.
local function dlv_state(count, token, timeout, expire)
  return count .. "|" .. token .. "|" .. timeout .. "|" .. expire
end

-- The count, as text, of the delivery that follows state `s` ("1" for none).
local function next_delivery(s)
  return s and tostring(tonumber(string.match(s, "^(%d+)")) + 1) or "1"
end

-- The reservation id of a delivery state (nil for none): one capture, no conversions.
local function dlv_token(s)
  return s and string.match(s, "^%d+|([^|]*)|")
end
