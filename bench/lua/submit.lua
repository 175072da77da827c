-- POSTs one task (BENCH_BODY) per request with the API key (BENCH_API_KEY).
local key = os.getenv("BENCH_API_KEY")
local body = os.getenv("BENCH_BODY")
if key == nil or key == "" or body == nil or body == "" then
  error("BENCH_API_KEY and BENCH_BODY must be set")
end
wrk.method = "POST"
wrk.body = body
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
