-- Sends the API key that run.sh created (BENCH_API_KEY) with every request.
local key = os.getenv("BENCH_API_KEY")
if key == nil or key == "" then
  error("BENCH_API_KEY is not set")
end
wrk.headers["Authorization"] = "Bearer " .. key
