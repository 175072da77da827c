#!/usr/bin/env bash
# Agentry cluster benchmark:  ./bench/cluster.sh
#
# The topology of scripts/cluster.sh (PostgreSQL, Redis, RabbitMQ, ChromaDB, nginx in front of the API nodes) with
# 1 API node + 1 worker and with 2 + 2, started afresh for each run, the two interleaved RUNS times. Through nginx:
#   tasks/s   E2E_TASKS webhook tasks (posting to the bare baseline's POST /hook), submitted in batches of 1,000,
#             from the first submission until the workers have run them all
#   reads/s   GET /api/v1/agents/{id} with an API key (a cached read) under wrk, DURATION s at CONNECTIONS connections
#   memory    each node's resident memory after both measurements
# Baseline, same run: wrk against the bare Kestrel endpoint (`agentry bench-baseline`, GET /json) at the same
# concurrency: what one process on this machine serves when it does nothing.
#
# Before measuring, each cluster runs WARMUP_TASKS tasks and READ_WARMUP seconds of reads: tiered compilation needs many
# calls per node, and two API nodes each see half of the warm-up.
#
# Settings (environment): RUNS=3 DURATION=10 CONNECTIONS=32 E2E_TASKS=5000 WARMUP_TASKS=3000 READ_WARMUP=60
#   WORKER_CONCURRENCY=32 SKIP_BUILD=0
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/cluster-run"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS=1
E2E_TASKS="${E2E_TASKS:-5000}"
WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-32}"
WARMUP_TASKS="${WARMUP_TASKS:-3000}"
READ_WARMUP="${READ_WARMUP:-60}"
STARTUP_TIMEOUT=60
TOPOLOGIES=("1 1" "2 2")

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

for v in RUNS DURATION CONNECTIONS E2E_TASKS WARMUP_TASKS READ_WARMUP WORKER_CONCURRENCY; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v must be a positive integer (got '${!v}')"
done
[ "$DURATION" -le 300 ] || die "DURATION must be <= 300 s"
[ $((E2E_TASKS % 1000)) -eq 0 ] && [ $((WARMUP_TASKS % 1000)) -eq 0 ] || die "E2E_TASKS and WARMUP_TASKS must be multiples of 1000"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

ensure_wrk
"$ROOT/scripts/services.sh" start >/dev/null 2>&1 || die "the servers did not start (scripts/services.sh start)"
mkdir -p "$RESULTS"
rm -rf "$RUN"; mkdir -p "$RUN/wrk"
publish_release
read -r BASE_PORT _ < <(free_ports)
launch_env
start_dll "$RUN/baseline" "$BASE_PORT" "$RUN/baseline.log" bench-baseline
BASE_PID=$LAST_PID
wait_ready "$BASE_PID" "$BASE_PORT" /plaintext "$RUN/baseline.log"

# Six consecutive free ports: nginx, four nodes, ChromaDB.
cluster_port() {
    python3 - <<'EOF'
import random, socket
for _ in range(200):
    first = random.randint(20000, 32000)
    socks = []
    try:
        for p in range(first, first + 6):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(first); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
EOF
}

cluster() {  # command: scripts/cluster.sh with this run's settings
    "${LAUNCH_ENV[@]}" AGENTRY_CLUSTER_DIR="$CLUSTER_DIR" AGENTRY_CLUSTER_PORT="$CLUSTER_PORT" AGENTRY_CLUSTER_APP="$PUBLISH" \
        AGENTRY_CLUSTER_APIS="$APIS" AGENTRY_CLUSTER_WORKERS="$WORKERS" Agentry__Queue__Concurrency="$WORKER_CONCURRENCY" Agentry__Egress__AllowedNetworks__0=127.0.0.1/32 \
        "$ROOT/scripts/cluster.sh" "$@"
}

succeeded() {  # tasks the workers have finished successfully (their own counters)
    local n=0 w
    for ((w = 1; w <= WORKERS; w++)); do
        n=$((n + $(curl -s "http://127.0.0.1:$((CLUSTER_PORT + 2 + w))/metrics" \
            | awk '/^task_attempts_finished_total\{.*outcome="succeeded"/ { n += $NF } END { printf "%d", n }')))
    done
    echo "$n"
}

run_tasks() {  # count -> seconds from the first submission until all have succeeded
    local count="$1" t0 i base
    base=$(succeeded)
    python3 -c "import json,sys; print(json.dumps({'tasks':[{'agentId':sys.argv[1],'input':{'i':i}} for i in range(1000)]}))" "$AGENT" >"$RUN/batch.json"
    t0=$(now_us)
    for ((i = 0; i < count / 1000; i++)); do
        api POST /api/v1/tasks/batch "$KEY" "@$RUN/batch.json" >/dev/null
    done
    until [ $(( $(succeeded) - base )) -ge "$count" ]; do
        [ $(( $(now_us) - t0 )) -lt $(( 1800 * 1000000 )) ] || die "tasks did not finish within 30 minutes"
        sleep 0.1
    done
    python3 -c "print(($(now_us) - $t0) / 1e6)"
}

declare -A TASKS READS MEMORY
BASELINE=()
for ((r = 1; r <= RUNS; r++)); do
    run_wrk baseline "http://127.0.0.1:$BASE_PORT/json" "" "$DURATION" "$RUN/wrk/baseline-$r.txt"
    read -r rps _ _ _ < <(parse_wrk "$RUN/wrk/baseline-$r.txt")
    BASELINE+=("$rps")
    for topology in "${TOPOLOGIES[@]}"; do
        read -r APIS WORKERS <<<"$topology"
        name="${APIS}+${WORKERS}"
        CLUSTER_DIR="$RUN/cluster-$APIS-$WORKERS-$r"
        CLUSTER_PORT=$(cluster_port)
        CLUSTER="http://127.0.0.1:$CLUSTER_PORT"
        SVC="$CLUSTER"   # what api() talks to
        cluster start >/dev/null 2>"$RUN/cluster-$APIS-$WORKERS-$r.log" || { tail -n 20 "$RUN/cluster-$APIS-$WORKERS-$r.log" >&2; die "the $name cluster did not start"; }
        bench_workspace "http://127.0.0.1:$BASE_PORT/hook" '["tasks:read","tasks:write","agents:read"]'
        AGENT="$BENCH_AGENT" KEY="$BENCH_API_KEY"

        run_tasks "$WARMUP_TASKS" >/dev/null   # warm-up: JIT (tiered compilation wants many calls per node), pools, queues
        seconds=$(run_tasks "$E2E_TASKS")
        TASKS[$name]+="$(python3 -c "print(round($E2E_TASKS / $seconds, 1))") "
        run_wrk "reads-warmup" "$CLUSTER/api/v1/agents/$AGENT" lua/apikey.lua "$READ_WARMUP" "$RUN/wrk/reads-warmup.txt"
        run_wrk "reads" "$CLUSTER/api/v1/agents/$AGENT" lua/apikey.lua "$DURATION" "$RUN/wrk/reads-$APIS-$WORKERS-$r.txt"
        read -r reads p99 bad errors < <(parse_wrk "$RUN/wrk/reads-$APIS-$WORKERS-$r.txt")
        [ "$bad" = 0 ] && [ "$errors" = 0 ] || die "reads got $bad non-2xx answers and $errors socket errors ($RUN/wrk/reads-$APIS-$WORKERS-$r.txt)"
        READS[$name]+="$reads "
        for node in api-1 api-2 worker-1 worker-2; do
            [ -f "$CLUSTER_DIR/$node.pid" ] || continue
            MEMORY[$name-${node%-*}]+="$(( $(rss_kb "$(cat "$CLUSTER_DIR/$node.pid")") / 1024 )) "
        done
        log "run $r, $name: $E2E_TASKS tasks in $seconds s; reads $reads req/s (p99 $p99 ms); baseline $rps req/s"
        cluster stop >/dev/null 2>&1
    done
done

# --- report ------------------------------------------------------------------------------------------
base=$(median "${BASELINE[@]}")
{
    echo "# Cluster benchmark ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores)"
    echo
    echo "Medians of $RUNS runs; each run starts both topologies afresh. Through nginx; $E2E_TASKS webhook tasks per run;"
    echo "reads are GET /api/v1/agents/{id} with an API key, $CONNECTIONS connections, ${DURATION} s."
    echo "Baseline, same runs: the bare Kestrel endpoint, $(printf '%.0f' "$base") req/s (runs: ${BASELINE[*]})."
    echo
    echo "| nodes (API + worker) | tasks/s | cached reads/s | reads / baseline | API node MB | worker MB |"
    echo "|---|---:|---:|---:|---:|---:|"
    for topology in "${TOPOLOGIES[@]}"; do
        read -r a w <<<"$topology"
        name="$a+$w"
        # shellcheck disable=SC2086
        reads=$(median ${READS[$name]})
        # shellcheck disable=SC2086
        printf '| %s | %s | %.0f | %.2f | %s | %s |\n' "$name" "$(median ${TASKS[$name]})" "$reads" "$(python3 -c "print($reads / $base)")" \
            "$(median ${MEMORY[$name-api]})" "$(median ${MEMORY[$name-worker]})"
    done
    echo
    echo "Per run: $(for t in "${TOPOLOGIES[@]}"; do read -r a w <<<"$t"; printf '%s tasks/s [%s] reads/s [%s]; ' "$a+$w" "${TASKS[$a+$w]% }" "${READS[$a+$w]% }"; done)"
} | tee "$RESULTS/cluster-latest.md"
