#!/usr/bin/env bash
# Agentry benchmark harness:  ./bench/run.sh
#
# Measures start-up time, idle/loaded memory and HTTP throughput of the Release build,
# with the bare-Kestrel `bench-baseline` verb as the yardstick. See bench/README.md.
#
# Settings (environment):
#   RUNS=3           measured wrk runs per target (interleaved across targets)
#   DURATION=5       seconds per wrk run
#   CONNECTIONS=32   wrk connections
#   THREADS=1        wrk threads
#   WARMUP=2         seconds of discarded load per target before measuring
#   STARTUP_RUNS=5   cold starts measured (fresh SQLite file each, so migrations included)
#   IDLE_SECONDS=3   idle time after start-up before idle RSS is read
#   SKIP_BUILD=1     reuse bench/results/publish instead of publishing again
#   BASE_PORT, SVC_PORT  fixed ports (default: two free ports on 127.0.0.1)
#   RESULTS_DIR      where everything goes (default bench/results)
#
# Output: a markdown report on stdout and in $RESULTS_DIR/latest.md (copied to history/);
# raw wrk output, service logs and data of the last run in $RESULTS_DIR/run/.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/run"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-5}"; DURATION="${DURATION%s}"   # accept "5s" too
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2}"; WARMUP="${WARMUP%s}"
STARTUP_RUNS="${STARTUP_RUNS:-5}"
IDLE_SECONDS="${IDLE_SECONDS:-3}"
STARTUP_TIMEOUT=60   # seconds; a start-up slower than this is a hang, not a measurement

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

# The throwaway service's administrator (its data lives in the run directory only).
ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
for v in RUNS DURATION CONNECTIONS THREADS WARMUP STARTUP_RUNS IDLE_SECONDS; do
    is_uint "${!v}" && [ "${!v}" -ge 1 ] || die "$v must be a positive integer (got '${!v}')"
done
# Load is only ever sent to 127.0.0.1 and for a bounded time.
[ "$DURATION" -le 300 ] && [ "$WARMUP" -le 60 ] || die "DURATION must be <= 300 s and WARMUP <= 60 s"
[ "$CONNECTIONS" -ge "$THREADS" ] || die "CONNECTIONS must be >= THREADS (wrk requirement)"

# Process bookkeeping, probes, wrk runs: shared with bench/tasks.sh.
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# --- 1. build --------------------------------------------------------------------------------
command -v dotnet >/dev/null || die "dotnet not found"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
ensure_wrk
mkdir -p "$RESULTS"
rm -rf "$RUN"; mkdir -p "$RUN/wrk"

publish_release

if [ -n "${BASE_PORT:-}" ] && [ -n "${SVC_PORT:-}" ]; then :; else read -r BASE_PORT SVC_PORT < <(free_ports); fi
probe "$SVC_PORT" /health && die "something already answers on port $SVC_PORT"
probe "$BASE_PORT" /plaintext && die "something already answers on port $BASE_PORT"
launch_env

# --- 2./3. start-up time and idle memory -----------------------------------------------------
STARTUP_MS=(); IDLE_RSS_KB=(); BACKGROUND_CPU=()
for ((i = 1; i <= STARTUP_RUNS; i++)); do
    dir="$RUN/startup-$i"   # fresh working dir: new data/agentry.db, so migrations run every time
    t0=$(now_us)
    start_dll "$dir" "$SVC_PORT" "$RUN/startup-$i.log"
    pid=$LAST_PID
    wait_ready "$pid" "$SVC_PORT" /health "$RUN/startup-$i.log"
    t1=$(now_us)
    STARTUP_MS+=("$(( (t1 - t0) / 1000 ))")
    c0=$(cpu_sample)
    sleep "$IDLE_SECONDS"
    BACKGROUND_CPU+=("$(other_cpu_pct "$c0" "$(cpu_sample)")")
    ensure_alive "$pid" "$RUN/startup-$i.log"
    IDLE_RSS_KB+=("$(rss_kb "$pid")")
    stop_process "$pid"
    log "start-up $i/$STARTUP_RUNS: ${STARTUP_MS[-1]} ms, idle RSS $(( IDLE_RSS_KB[-1] / 1024 )) MB, other CPU load ${BACKGROUND_CPU[-1]}%"
done

# The same for the bare baseline: the floor set by the runtime itself (no DI, no EF, no migrations).
BASE_STARTUP_MS=()
for ((i = 1; i <= STARTUP_RUNS; i++)); do
    t0=$(now_us)
    start_dll "$RUN/baseline-startup" "$BASE_PORT" "$RUN/baseline-startup-$i.log" bench-baseline
    wait_ready "$LAST_PID" "$BASE_PORT" /plaintext "$RUN/baseline-startup-$i.log"
    BASE_STARTUP_MS+=("$(( ($(now_us) - t0) / 1000 ))")
    stop_process "$LAST_PID"
done
log "bare baseline start-up: ${BASE_STARTUP_MS[*]} ms"

# --- 4. throughput -----------------------------------------------------------------------------
# Both servers run side by side but are driven one at a time; the idle one costs next to nothing.
start_dll "$RUN/baseline" "$BASE_PORT" "$RUN/baseline.log" bench-baseline
BASE_PID=$LAST_PID
start_dll "$RUN/service" "$SVC_PORT" "$RUN/service.log"
SVC_PID=$LAST_PID
wait_ready "$BASE_PID" "$BASE_PORT" /plaintext "$RUN/baseline.log"
wait_ready "$SVC_PID" "$SVC_PORT" /health "$RUN/service.log"

# Sign in as the bootstrap administrator; authenticated targets send the token (lua/auth.lua).
SVC="http://127.0.0.1:$SVC_PORT"
token_json=$(curl -sS -X POST "$SVC/connect/token" -d grant_type=password -d client_id=agentry-cli \
    --data-urlencode "username=$ADMIN_EMAIL" --data-urlencode "password=$ADMIN_PASSWORD") || die "could not sign in"
BENCH_TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$token_json") \
    || die "sign-in answered: $token_json"
export BENCH_TOKEN

# Seed data for the read endpoints: 20 workspaces (plus the default one), so a limit=20 page is full.
WS_ID=""
for ((i = 1; i <= 20; i++)); do
    body=$(printf '{"name":"Bench %02d","slug":"bench-%02d"}' "$i" "$i")
    resp=$(curl -sS -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $BENCH_TOKEN" \
        -d "$body" "$SVC/api/v1/workspaces") \
        || die "could not create a workspace"
    [ "${resp##*$'\n'}" = "201" ] || die "POST /api/v1/workspaces answered ${resp##*$'\n'}: ${resp%$'\n'*}"
    [ -n "$WS_ID" ] || WS_ID=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "${resp%$'\n'*}")
done

# An API key for that workspace (lua/apikey.lua sends it).
resp=$(curl -sS -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $BENCH_TOKEN" \
    -d '{"name":"bench","scopes":["agents:read"]}' "$SVC/api/v1/workspaces/$WS_ID/api-keys") || die "could not create an API key"
[ "${resp##*$'\n'}" = "201" ] || die "POST .../api-keys answered ${resp##*$'\n'}: ${resp%$'\n'*}"
BENCH_API_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "${resp%$'\n'*}")
export BENCH_API_KEY

# 20 agents in that workspace for the agents list (lua/workspace.lua names the workspace).
export BENCH_WORKSPACE="$WS_ID"
for ((i = 1; i <= 20; i++)); do
    body=$(printf '{"name":"bench-agent-%02d","kind":"webhook","webhook":{"url":"https://hooks.example/%02d"}}' "$i" "$i")
    resp=$(curl -sS -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -H "Authorization: Bearer $BENCH_TOKEN" \
        -H "Agentry-Workspace: $WS_ID" -d "$body" "$SVC/api/v1/agents") || die "could not create an agent"
    [ "${resp##*$'\n'}" = "201" ] || die "POST /api/v1/agents answered ${resp##*$'\n'}: ${resp%$'\n'*}"
done

# The targets, in the order they are driven. One entry: "name|url|optional wrk lua script".
# The script path is relative to bench/ (e.g. lua/auth.lua setting an Authorization header; a
# script can read secrets with os.getenv). Add authenticated endpoints here.
# baseline-json must stay: every ratio is relative to it.
TARGETS=(
    "baseline-json|http://127.0.0.1:$BASE_PORT/json|"
    "baseline-plaintext|http://127.0.0.1:$BASE_PORT/plaintext|"
    "health|$SVC/health|"
    "me-jwt|$SVC/api/v1/me|lua/auth.lua"
    "me-apikey|$SVC/api/v1/me|lua/apikey.lua"
    "workspace-get|$SVC/api/v1/workspaces/$WS_ID|lua/auth.lua"
    "workspace-list|$SVC/api/v1/workspaces?limit=20|lua/auth.lua"
    "agents-list|$SVC/api/v1/agents?limit=20|lua/workspace.lua"
)

# A target that answers 404 or 500 would still produce a (meaningless) req/s figure; refuse it.
for t in "${TARGETS[@]}"; do
    IFS='|' read -r name url script <<<"$t"
    [ -z "$script" ] || [ -f "$BENCH_DIR/$script" ] || die "$name: wrk script $script not found in bench/"
    if [ -z "$script" ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url") || true
        [ "$code" = "200" ] || die "$name: GET $url answered $code, not 200"
    fi
done

for t in "${TARGETS[@]}"; do
    IFS='|' read -r name url script <<<"$t"
    log "warm-up ${WARMUP}s: $name"
    run_wrk "$name" "$url" "$script" "$WARMUP" "$RUN/wrk/$name-warmup.txt"
    # Also catches targets driven by a Lua script, which the curl check above skips.
    read -r rps _ bad _ < <(parse_wrk "$RUN/wrk/$name-warmup.txt")
    [ "$rps" != "nan" ] && [ "$bad" = "0" ] \
        || die "$name: warm-up got $bad non-2xx/3xx answers (see $RUN/wrk/$name-warmup.txt)"
done

# One more look at the machine while both servers sit idle, right before the measured runs.
c0=$(cpu_sample); sleep 1; BACKGROUND_CPU+=("$(other_cpu_pct "$c0" "$(cpu_sample)")")

# Interleaved rounds (all targets, then again) so slow drift of the machine hits every target alike.
RAW="$RUN/wrk.tsv"
: >"$RAW"
for ((r = 1; r <= RUNS; r++)); do
    for t in "${TARGETS[@]}"; do
        IFS='|' read -r name url script <<<"$t"
        out="$RUN/wrk/$name-$r.txt"
        run_wrk "$name" "$url" "$script" "$DURATION" "$out"
        read -r rps p99 bad err < <(parse_wrk "$out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$r" "$rps" "$p99" "$bad" "$err" >>"$RAW"
        log "round $r/$RUNS $name: $rps req/s, p99 $p99 ms$([ "$bad$err" = "00" ] || echo ", non-2xx $bad, socket errors $err")"
    done
done

ensure_alive "$SVC_PID" "$RUN/service.log"
ensure_alive "$BASE_PID" "$RUN/baseline.log"
LOADED_RSS_KB=$(rss_kb "$SVC_PID")
BASE_RSS_KB=$(rss_kb "$BASE_PID")

# --- 5. report ---------------------------------------------------------------------------------
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
[ -z "$(git -C "$ROOT" status --porcelain -- src 2>/dev/null)" ] || COMMIT="$COMMIT (+ uncommitted changes in src/)"

REPORT="$RESULTS/latest.md"
python3 - "$RAW" >"$REPORT" <<EOF
import statistics as st, sys
from datetime import datetime, timezone

startup = [int(x) for x in "${STARTUP_MS[*]}".split()]
base_startup = [int(x) for x in "${BASE_STARTUP_MS[*]}".split()]
background = [int(x) for x in "${BACKGROUND_CPU[*]}".split()]
idle = [int(x) / 1024 for x in "${IDLE_RSS_KB[*]}".split()]
loaded, base_rss = int("$LOADED_RSS_KB") / 1024, int("$BASE_RSS_KB") / 1024

rows = {}
for line in open(sys.argv[1]):
    name, _, rps, p99, bad, err = line.rstrip("\n").split("\t")
    r = rows.setdefault(name, {"rps": [], "p99": [], "bad": 0, "err": 0})
    r["rps"].append(float(rps)); r["p99"].append(float(p99))
    r["bad"] += int(bad); r["err"] += int(err)

med = {n: st.median(r["rps"]) for n, r in rows.items()}
p99 = {n: st.median(r["p99"]) for n, r in rows.items()}
json_base = med["baseline-json"]
plain_base = med.get("baseline-plaintext")

def verdict(ok): return "PASS" if ok else "**FAIL**"

print("# Agentry benchmark")
print()
print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit $COMMIT, $(nproc) CPUs; "
      f"wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $RUNS interleaved runs per target (median shown), "
      f"${WARMUP}s warm-up.")
print()
print("| target | req/s (median) | ratio vs bare JSON | p99 ms (median) |")
print("|---|---:|---:|---:|")
for name, r in rows.items():
    note = ""
    if r["bad"] or r["err"]:
        note = f" ⚠ non-2xx {r['bad']}, socket errors {r['err']}"
    print(f"| {name}{note} | {med[name]:,.0f} | {med[name] / json_base:.2f} | {p99[name]:.2f} |")
print()
print(f"- Start-up to first 200 from /health (fresh SQLite, migrations included), {len(startup)} runs: "
      f"median **{st.median(startup):.0f} ms** (min {min(startup)}, max {max(startup)}) — goal < 2000 ms: "
      f"{verdict(st.median(startup) < 2000)}; bare baseline verb: {st.median(base_startup):.0f} ms")
print(f"- RSS idle (${IDLE_SECONDS}s after start-up): median **{st.median(idle):.0f} MB** "
      f"(min {min(idle):.0f}, max {max(idle):.0f}) — goal < 150 MB: {verdict(st.median(idle) < 150)}")
print(f"- RSS after the load runs: service **{loaded:.0f} MB**, bare baseline {base_rss:.0f} MB")
if "health" in med:
    # The goal is stated against the bare JSON endpoint (the baseline of every API figure); the
    # plaintext ratio is shown too, since /health answers plain text.
    line = (f"- /health vs bare Kestrel: **{med['health'] / json_base:.2f}** of /json"
            f" — goal ≥ 0.9: {verdict(med['health'] / json_base >= 0.9)}; p99 {p99['health']:.2f} ms")
    if plain_base:
        line += f"; {med['health'] / plain_base:.2f} of /plaintext"
    print(line)
if max(background) > 10:
    print(f"- ⚠ Other processes used up to {max(background)}% of the CPUs during the idle samples "
          f"(median {st.median(background):.0f}%): the machine was busy, figures are not comparable.")
EOF

mkdir -p "$RESULTS/history"
cp "$REPORT" "$RESULTS/history/$(date -u +%Y%m%dT%H%M%SZ).md"
cat "$REPORT"
log "report: $REPORT; raw wrk output and logs: $RUN/"
