--[[
  clock: the moment a script runs at, and times as text.
  Times are ms since the epoch. As text they are 13 digits (until the year 2286), so two times
  compare as strings the way they compare as numbers: scripts compare record fields and scores
  as text, which costs a fraction of converting them (tonumber and string.format each cost about
  what a Redis command does inside a script).
]]

local NEVER = 9999999999999  -- a moment after every other

-- now as a number and as 13-digit text: from ARGV (an injected clock: tests) or Redis TIME (one
-- clock for every FerryMQ process). TIME answers seconds and microseconds as text; the ms are the
-- first three of the six microsecond digits.
local function now_from(arg)
  if arg ~= "" then
    local now = tonumber(arg)
    return now, #arg == 13 and arg or string.format("%013d", now)  -- already 13 digits: the engine's
  end
  local t = redis.call("TIME")
  local now_s = t[1] .. string.sub("00000" .. t[2], -6, -4)
  return tonumber(now_s), now_s
end

local function ms_string(ms)
  return string.format("%013d", ms)
end

-- A duration argument: "123" is 123 ms from now; "@1700000000000" is until that moment (never
-- negative). Absolute times let callers schedule without reading a clock of their own.
local function span(arg, now)
  if string.sub(arg, 1, 1) == "@" then return math.max(0, tonumber(string.sub(arg, 2)) - now) end
  return tonumber(arg)
end
