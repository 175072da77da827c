#!/usr/bin/env bash
# Agentry MCP tool-call benchmark:  ./bench/mcp.sh
#
# The `echo` tool of @modelcontextprotocol/server-everything (stdio), called three ways in one run, interleaved
# round by round (bench/McpBench):
#   direct  the MCP C# SDK's stdio client calling its own server-everything child (the baseline)
#   api     POST /api/v1/tools/everything/echo/call on a published Agentry
#   mcp     tools/call of everything__echo on Agentry's /mcp (the SDK's Streamable HTTP client)
# Reports median and p99 latency per call, the added latency against direct (goal: < 2 ms median) and calls/s; then
# the two HTTP paths again with wrk as the client (WRK_RUNS interleaved runs), whose overhead per call is negligible.
# Agentry runs the registered server as its own supervised child, so both sides talk to the same program.
#
# Settings (environment): ROUNDS=20 CALLS=50 (sequential calls per path per round) WARMUP=5 (seconds)
#   CONCURRENCY=8 THROUGHPUT_SECONDS=5 (throughput phase per path, and each wrk run) WRK_RUNS=3 SKIP_BUILD=0
#   RESULTS_DIR=bench/results
# server-everything is taken from AGENTRY_TEST_MCP_SERVERS (what scripts/test.sh installs), else .mcp-servers/ at the
# checkout's root, where it is installed with npm when missing.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/mcp-run"
THREADS=1
CONNECTIONS=1
STARTUP_TIMEOUT=60
MCP_VERSION=2026.8.31

ROUNDS="${ROUNDS:-20}"
CALLS="${CALLS:-50}"
WARMUP="${WARMUP:-5}"
CONCURRENCY="${CONCURRENCY:-8}"
SECONDS_PER_PATH="${THROUGHPUT_SECONDS:-5}"
WRK_RUNS="${WRK_RUNS:-3}"

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

for v in ROUNDS CALLS WARMUP CONCURRENCY SECONDS_PER_PATH WRK_RUNS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] && [ "$CALLS" -ge 1 ] && [ "$CONCURRENCY" -ge 1 ] || die "ROUNDS, CALLS and CONCURRENCY must be at least 1"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

command -v dotnet >/dev/null || die "dotnet not found"
ensure_wrk
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
NODE="$(command -v node)" || die "node not found (apt-get install -y nodejs npm)"

# --- server-everything ----------------------------------------------------------------------
PACKAGES="${AGENTRY_TEST_MCP_SERVERS:-$ROOT/.mcp-servers/node_modules/@modelcontextprotocol}"
ENTRY="$PACKAGES/server-everything/dist/index.js"
if [ ! -f "$ENTRY" ]; then
    [ -z "${AGENTRY_TEST_MCP_SERVERS:-}" ] || die "AGENTRY_TEST_MCP_SERVERS is set but $ENTRY does not exist"
    command -v npm >/dev/null || die "npm not found (apt-get install -y nodejs npm)"
    log "installing @modelcontextprotocol/server-everything@$MCP_VERSION into $ROOT/.mcp-servers"
    mkdir -p "$ROOT/.mcp-servers"
    [ -f "$ROOT/.mcp-servers/package.json" ] || echo '{"private": true}' >"$ROOT/.mcp-servers/package.json"
    npm install --prefix "$ROOT/.mcp-servers" --no-audit --no-fund --save-exact "@modelcontextprotocol/server-everything@$MCP_VERSION" >&2 \
        || die "npm install failed"
fi

# --- builds ---------------------------------------------------------------------------------
mkdir -p "$RESULTS"
publish_release
build_bench "$BENCH_DIR/McpBench" mcp-bench Agentry.McpBench
MCP_BENCH="$BUILT_DIR"

# --- the service ----------------------------------------------------------------------------
rm -rf "$RUN"; mkdir -p "$RUN"
read -r PORT _ < <(free_ports)
launch_env
start_dll "$RUN/service" "$PORT" "$RUN/service.log"
SVC_PID=$LAST_PID
wait_ready "$SVC_PID" "$PORT" /health "$RUN/service.log"
URL="http://127.0.0.1:$PORT"
log "service on 127.0.0.1:$PORT"

json_field() {  # python expression over the JSON document `d` on stdin
    python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"
}
TOKEN="$(curl -sf "$URL/connect/token" -d grant_type=password -d client_id=agentry-cli \
    --data-urlencode "username=$ADMIN_EMAIL" --data-urlencode "password=$ADMIN_PASSWORD" | json_field 'd["access_token"]')" \
    || die "could not sign in as $ADMIN_EMAIL"
WORKSPACE="$(curl -sf "$URL/api/v1/workspaces?limit=1" -H "Authorization: Bearer $TOKEN" | json_field 'd["items"][0]["id"]')" \
    || die "could not read the default workspace"

# Register server-everything in the workspace. Without the MCP server registry (POST /api/v1/mcp-servers) there is
# nothing to measure: say so rather than measure something else.
REGISTRATION="$(python3 -c 'import json,sys; print(json.dumps({"name": "everything", "transport": "stdio", "command": sys.argv[1], "args": [sys.argv[2], "stdio"]}))' "$NODE" "$ENTRY")"
STATUS="$(curl -s -o "$RUN/registration.json" -w '%{http_code}' "$URL/api/v1/mcp-servers" -H "Authorization: Bearer $TOKEN" \
    -H "Agentry-Workspace: $WORKSPACE" -H 'Content-Type: application/json' -d "$REGISTRATION")"
case "$STATUS" in
    201|200) log "registered server-everything ($ENTRY)" ;;
    404) die "POST /api/v1/mcp-servers answered 404: this build has no MCP server registry, so there is no bridged tool to measure" ;;
    *) cat "$RUN/registration.json" >&2; die "registering server-everything failed with HTTP $STATUS" ;;
esac

REPORT="$RUN/report.md"
dotnet "$MCP_BENCH/Agentry.McpBench.dll" --url "$URL" --token "$TOKEN" --workspace "$WORKSPACE" --node "$NODE" --server-entry "$ENTRY" \
    --server everything --rounds "$ROUNDS" --calls "$CALLS" --warmup "$WARMUP" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_PATH" \
    --report "$REPORT" >/dev/null
ensure_alive "$SVC_PID" "$RUN/service.log"

# --- the HTTP paths with wrk -------------------------------------------------------------------
# McpBench's HTTP clients (HttpClient, the SDK's) run on the same two cores as the node and the tool server, and their
# own cost (thread-pool hops, the SDK client's JSON-RPC machinery) lands in the api and mcp figures. wrk (one thread,
# epoll) costs next to nothing per request, so its median minus the direct median is what Agentry adds to a call.
DIRECT_MEDIAN="$(awk -F'|' '$2 ~ /^ direct / { gsub(/ /, "", $3); print $3; exit }' "$REPORT")"
export BENCH_TOKEN="$TOKEN" BENCH_WORKSPACE="$WORKSPACE" BENCH_SERVER=everything
p50_ms() { awk '/Latency Distribution/ { d = 1 } d && $1 == "50%" { v = $2; n = v + 0; sub(/^[0-9.]+/, "", v); print (v == "us" ? n / 1000 : v == "s" ? n * 1000 : n); exit }' "$1"; }
declare -A WRK_P50 WRK_RPS
for ((r = 1; r <= WRK_RUNS; r++)); do
    for path in rest mcp; do
        url="$URL/api/v1/tools/everything/echo/call"; [ "$path" = mcp ] && url="$URL/mcp"
        export BENCH_PATH="$path"
        CONNECTIONS=1 run_wrk "$path" "$url" lua/tool-call.lua "$SECONDS_PER_PATH" "$RUN/wrk-$path-1-$r.txt"
        CONNECTIONS="$CONCURRENCY" run_wrk "$path" "$url" lua/tool-call.lua "$SECONDS_PER_PATH" "$RUN/wrk-$path-$CONCURRENCY-$r.txt"
        for f in "$RUN/wrk-$path-1-$r.txt" "$RUN/wrk-$path-$CONCURRENCY-$r.txt"; do
            read -r _ _ bad errors < <(parse_wrk "$f")
            wrong="$(awk '/^Wrong answers:/ { print $3 }' "$f")"
            [ "$bad" = 0 ] && [ "$errors" = 0 ] && [ "$wrong" = 0 ] || die "wrk $path: $bad non-2xx, $errors socket errors, $wrong wrong answers ($f)"
        done
        WRK_P50[$path]+="$(p50_ms "$RUN/wrk-$path-1-$r.txt") "
        WRK_RPS[$path]+="$(parse_wrk "$RUN/wrk-$path-$CONCURRENCY-$r.txt" | cut -d' ' -f1) "
    done
done
{
    echo
    echo "With wrk as the HTTP client ($WRK_RUNS interleaved runs of ${SECONDS_PER_PATH} s per path; medians of the runs' medians):"
    echo
    echo "| path | median, ms | added vs direct ($DIRECT_MEDIAN ms), ms | calls/s, $CONCURRENCY connections |"
    echo "|---|---:|---:|---:|"
    for path in rest mcp; do
        # shellcheck disable=SC2086
        m=$(median ${WRK_P50[$path]})
        # shellcheck disable=SC2086
        printf '| %s | %.3f | %+.3f | %.0f |\n' "$path" "$m" "$(python3 -c "print($m - $DIRECT_MEDIAN)")" "$(median ${WRK_RPS[$path]})"
    done
    for path in rest mcp; do
        # shellcheck disable=SC2086
        added=$(python3 -c "print(round($(median ${WRK_P50[$path]}) - $DIRECT_MEDIAN, 3))")
        echo "- $path (wrk): added median latency $added ms — $(python3 -c "print('PASS' if $added < 2 else 'FAIL')") (per run: ${WRK_P50[$path]% } ms)"
    done
} >>"$REPORT"
{
    echo "# Agentry MCP tool-call benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs; server-everything $("$NODE" -p "require('$PACKAGES/server-everything/package.json').version") on node $("$NODE" --version), tool \`echo\`."
    echo
    cat "$REPORT"
} | tee "$RESULTS/mcp-latest.md"
mkdir -p "$RESULTS/history"
cp "$RESULTS/mcp-latest.md" "$RESULTS/history/mcp-$(date -u +%Y%m%d-%H%M%S).md"
