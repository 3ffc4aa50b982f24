-- wrk script for memory.sh: every cookie-less GET /.steemgate/status mints
-- a new session with a memo challenge; stop after SESSIONS responses
-- (run with -t1 so the count is global).
local limit = tonumber(os.getenv("SESSIONS") or "100000")
local seen = 0
wrk.path = "/.steemgate/status"

response = function(status, headers, body)
  seen = seen + 1
  if seen >= limit then
    wrk.thread:stop()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
