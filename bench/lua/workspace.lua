-- Sends the bearer token (BENCH_TOKEN) and names the workspace (BENCH_WORKSPACE) with every request.
local token = os.getenv("BENCH_TOKEN")
local workspace = os.getenv("BENCH_WORKSPACE")
if token == nil or token == "" or workspace == nil or workspace == "" then
  error("BENCH_TOKEN and BENCH_WORKSPACE must be set")
end
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Agentry-Workspace"] = workspace
