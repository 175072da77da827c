-- One tool call per request, checked: BENCH_PATH "rest" posts to /api/v1/tools/{server}/echo/call, "mcp" sends a
-- JSON-RPC tools/call to /mcp. Every answer must carry the echoed text; done() prints how many did not.
local token, workspace, server = os.getenv("BENCH_TOKEN"), os.getenv("BENCH_WORKSPACE"), os.getenv("BENCH_SERVER")
local path = os.getenv("BENCH_PATH")
if not token or not workspace or not server or (path ~= "rest" and path ~= "mcp") then
  error("BENCH_TOKEN, BENCH_WORKSPACE, BENCH_SERVER and BENCH_PATH (rest or mcp) must be set")
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Agentry-Workspace"] = workspace
wrk.headers["Content-Type"] = "application/json"
if path == "rest" then
  wrk.body = '{"arguments":{"message":"hello from wrk"}}'
else
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. server .. '__echo","arguments":{"message":"hello from wrk"}}}'
end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) wrong = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "Echo: hello from wrk", 1, true) or string.find(body, '"isError":true', 1, true) then
    wrong = wrong + 1
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("wrong") end
  io.write(string.format("Wrong answers: %d\n", total))
end
