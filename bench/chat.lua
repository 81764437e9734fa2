-- wrk script for the warden load harness (bench/run.sh).
--
-- Every request is the same: POST /v1/chat/completions with a small JSON chat
-- body and Content-Type: application/json. The Authorization header value is
-- read from the environment (WRK_AUTH), so one script serves every target:
-- run.sh passes the upstream key for the direct and nginx targets and a
-- warden API key for warden.
--
-- done() prints one machine-readable line that run.sh parses:
--   WRK_RESULT requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N
--              max_us=N non2xx=N connect=N read=N write=N timeout=N
-- "non2xx" is wrk's count of responses with a status >= 400 (what the text
-- output calls "Non-2xx or 3xx responses").

local auth = os.getenv("WRK_AUTH")
if auth == nil or auth == "" then
  io.stderr:write("chat.lua: WRK_AUTH is not set\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = auth
-- The body is bench/chat-body.json, which bench/openload sends too.
local body_file = os.getenv("WRK_BODY_FILE")
if body_file == nil or body_file == "" then
  io.stderr:write("chat.lua: WRK_BODY_FILE is not set\n")
  os.exit(2)
end
local f = assert(io.open(body_file, "rb"))
wrk.body = f:read("*a")
f:close()

-- Fixed offered load (run.sh RATE=N): every connection waits WRK_CONNS*1000/
-- WRK_RATE ms after each response before its next request, so the targets
-- are compared at about the same request rate rather than each at its own
-- saturation, where p99 mostly measures queueing. wrk's delay has 1 ms
-- granularity and the wait follows the response, so the achieved rate is a
-- little below WRK_RATE; run.sh prints the rate each target achieved.
local rate = tonumber(os.getenv("WRK_RATE") or "")
local conns = tonumber(os.getenv("WRK_CONNS") or "")
if rate ~= nil and rate > 0 and conns ~= nil then
  local gap = math.floor(conns * 1000 / rate)
  function delay()
    return gap
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
