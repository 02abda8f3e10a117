-- wrk script for `python -m bench`: the requests of one step (from the environment), and a JSON
-- line with the figures the harness reads.
--   WRK_METHOD  GET, POST, ...      WRK_BODY  path of a file holding the request body (optional)
--   WRK_AUTH    Authorization header
--   WRK_FLOW    fixed (default): the same request again and again; or a consumer loop, whose
--               every batch taken is acknowledged by a later request on whichever connection
--               is free next (wrk runs one Lua state per thread, so the harness uses one thread):
--                 ironmq-consume      GET ?n=100, then DELETE {"ids": [...]} of what came back
--                 cloudflare-consume  POST /pull of 100, then POST /ack of their leases
--               The path given to wrk is the queue's messages path, without a query. Ids are
--               found by pattern in the server's compact JSON (orjson: no spaces). Pulls and
--               acks are timed together: the latency figures are of the mix.
wrk.method = os.getenv("WRK_METHOD") or "GET"
wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
wrk.headers["Content-Type"] = "application/json"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  local f = assert(io.open(body, "rb"))
  wrk.body = f:read("*a")
  f:close()
end

local FLOWS = {
  ["ironmq-consume"] = {
    take = function() return wrk.format("GET", wrk.path .. "?n=100") end,
    field = '"id":"([^"]+)"',
    ack = function(ids)
      return wrk.format("DELETE", wrk.path, nil, '{"ids":["' .. table.concat(ids, '","') .. '"]}')
    end,
  },
  ["cloudflare-consume"] = {
    take = function()
      return wrk.format("POST", wrk.path .. "/pull", nil, '{"batch_size":100,"visibility_timeout_ms":60000}')
    end,
    field = '"lease_id":"([^"]+)"',
    ack = function(ids)
      return wrk.format("POST", wrk.path .. "/ack", nil,
        '{"acks":[{"lease_id":"' .. table.concat(ids, '"},{"lease_id":"') .. '"}],"retries":[]}')
    end,
  },
}

local flow = FLOWS[os.getenv("WRK_FLOW") or "fixed"]
if flow then
  local acks = {}  -- requests that acknowledge a batch taken, first taken first

  request = function()
    if #acks > 0 then return table.remove(acks, 1) end
    return flow.take()
  end

  response = function(status, headers, text)
    local ids = {}
    for id in string.gmatch(text, flow.field) do ids[#ids + 1] = id end
    if #ids > 0 then acks[#acks + 1] = flow.ack(ids) end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "seconds": %.6f, "request_p50_ms": %.3f, "request_p99_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
