-- Sends the bearer token that run.sh obtained (BENCH_TOKEN) with every request.
local token = os.getenv("BENCH_TOKEN")
if token == nil or token == "" then
  error("BENCH_TOKEN is not set")
end
wrk.headers["Authorization"] = "Bearer " .. token
