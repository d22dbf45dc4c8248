-- wrk script: POST one UINT8 image as an Open Inference Protocol v2 JSON
-- infer request. Environment: KILN_PATH (default /v2/models/mnist/infer),
-- KILN_H, KILN_W, KILN_C (default 28, 28, 1).
local h = tonumber(os.getenv("KILN_H") or "28")
local w = tonumber(os.getenv("KILN_W") or "28")
local c = tonumber(os.getenv("KILN_C") or "1")
local vals = {}
for i = 1, h * w * c do
  vals[i] = tostring((i * 37) % 256)
end
wrk.method = "POST"
wrk.path = os.getenv("KILN_PATH") or "/v2/models/mnist/infer"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"id":"wrk","inputs":[{"name":"input","shape":[1,%d,%d,%d],"datatype":"UINT8","data":[%s]}]}',
  h, w, c, table.concat(vals, ","))

-- done prints one machine-readable line after wrk's own report.
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "KILN requests=%d seconds=%.2f rps=%.1f p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
