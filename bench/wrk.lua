-- wrk script for `python -m bench`: one fixed request (from the environment), and a JSON line
-- with the figures the harness reads.
--   WRK_METHOD  GET, POST, ...      WRK_BODY  path of a file holding the request body (optional)
--   WRK_AUTH    Authorization header
wrk.method = os.getenv("WRK_METHOD") or "GET"
wrk.headers["Authorization"] = os.getenv("WRK_AUTH")
wrk.headers["Content-Type"] = "application/json"
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
  local f = assert(io.open(body, "rb"))
  wrk.body = f:read("*a")
  f:close()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "seconds": %.6f, "request_p50_ms": %.3f, "request_p99_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
