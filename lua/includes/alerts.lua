--[[
  alerts: which of a queue's alerts a change of its size fires (the queue's scripts decide it
  in the same call that changes the size, so no crossing is missed or doubled; includes/queue.lua
  fire_alerts posts them). Pure: no Redis calls.
  An alert (meta `alerts`, JSON): {id, type = fixed|progressive, trigger, queue, dir = asc|desc,
  snooze (s)}; meta `alerts_fired`: alert id -> ms it last fired.
]]

-- Does a change of size from `before` to `after` fire the alert? Fixed: the trigger is crossed
-- in the alert's direction (asc: from below to at-or-above; desc: from above to at-or-below).
-- Progressive: some multiple of the trigger (N >= 1) is crossed so; for desc, 0 never fires.
local function crosses(alert, before, after)
  local t = alert.trigger
  if alert.type == "fixed" then
    if alert.dir == "asc" then return before < t and after >= t end
    return before > t and after <= t
  end
  if alert.dir == "asc" then return (math.floor(before / t) + 1) * t <= after end
  local below = math.ceil(before / t) - 1  -- the highest multiple under `before`
  return below >= 1 and below * t >= after
end

-- The alerts the change fires (a firing inside an alert's snooze window is dropped); `fired`
-- is updated with them.
local function alerts_crossed(alerts, fired, before, after, now)
  local firing = {}
  for _, alert in ipairs(alerts) do
    local last = fired[alert.id]
    if crosses(alert, before, after) and (not last or now - last >= alert.snooze * 1000) then
      fired[alert.id] = now
      firing[#firing + 1] = alert
    end
  end
  return firing
end
