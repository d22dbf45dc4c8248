-- wrk script: POST one UINT8 image as an Open Inference Protocol v2 infer
-- request. Environment: KILN_PATH (default /v2/models/mnist/infer),
-- KILN_H, KILN_W, KILN_C (default 28, 28, 1), KILN_BODY (json, the
-- default: the pixels as a JSON array; binary: the binary tensor data
-- extension, a JSON header then the raw bytes).
local h = tonumber(os.getenv("KILN_H") or "28")
local w = tonumber(os.getenv("KILN_W") or "28")
local c = tonumber(os.getenv("KILN_C") or "1")
local mode = os.getenv("KILN_BODY") or "json"
local n = h * w * c
wrk.method = "POST"
wrk.path = os.getenv("KILN_PATH") or "/v2/models/mnist/infer"
if mode == "binary" then
  local bytes = {}
  for i = 1, n do
    bytes[i] = string.char((i * 37) % 256)
  end
  local header = string.format(
    '{"id":"wrk","inputs":[{"name":"input","shape":[1,%d,%d,%d],"datatype":"UINT8","parameters":{"binary_data_size":%d}}]}',
    h, w, c, n)
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
  wrk.body = header .. table.concat(bytes)
elseif mode == "json" then
  local vals = {}
  for i = 1, n do
    vals[i] = tostring((i * 37) % 256)
  end
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format(
    '{"id":"wrk","inputs":[{"name":"input","shape":[1,%d,%d,%d],"datatype":"UINT8","data":[%s]}]}',
    h, w, c, table.concat(vals, ","))
else
  error("KILN_BODY must be json or binary, not " .. mode)
end

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
