#!/usr/bin/env bash
# Agentry task benchmarks:  ./bench/tasks.sh
#
#   1. submission: POST /api/v1/tasks on PostgreSQL (an api-role node, so nothing runs meanwhile)
#      against pgbench doing one single-row INSERT per transaction on the same server, at the same
#      concurrency, interleaved.
#   2. end to end: E2E_TASKS no-op tasks (webhook agents posting to the bare baseline's POST /hook),
#      submitted in batches of 1,000, until all have succeeded: tasks/s per provider.
#   3. memory (MEMORY=1, about 20 minutes): RSS after MEMORY_TASKS / 10 tasks have run and after all
#      MEMORY_TASKS have run, on the embedded default.
#
# Settings (environment): RUNS=3 DURATION=5 CONNECTIONS=16 WARMUP=2 E2E_TASKS=20000
#   PROVIDERS="sqlite postgres rabbitmq" WORKER_CONCURRENCY=32 MEMORY=0 MEMORY_TASKS=1000000
#   MEMORY_PROVIDER=sqlite PHASES="submit e2e" (MEMORY=1 adds "memory") SKIP_BUILD=0 SUBMIT_WARMUP=30
# Needs the servers of scripts/services.sh (started here if they are not running).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/tasks-run"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-5}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS=1
WARMUP="${WARMUP:-2}"
E2E_TASKS="${E2E_TASKS:-20000}"
PROVIDERS="${PROVIDERS:-sqlite postgres rabbitmq}"
WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-32}"
MEMORY="${MEMORY:-0}"
MEMORY_TASKS="${MEMORY_TASKS:-1000000}"
MEMORY_PROVIDER="${MEMORY_PROVIDER:-sqlite}"
PHASES="${PHASES:-submit e2e}"
SUBMIT_WARMUP="${SUBMIT_WARMUP:-30}"
[ "$MEMORY" = 1 ] && PHASES="$PHASES memory"
phase() { [[ " $PHASES " == *" $1 "* ]]; }
STARTUP_TIMEOUT=60
PG_BIN=/usr/lib/postgresql/15/bin

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

for v in RUNS DURATION CONNECTIONS WARMUP SUBMIT_WARMUP E2E_TASKS WORKER_CONCURRENCY MEMORY_TASKS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v must be a positive integer (got '${!v}')"
done
[ "$DURATION" -le 300 ] || die "DURATION must be <= 300 s"
[ $((E2E_TASKS % 1000)) -eq 0 ] && [ $((MEMORY_TASKS % 1000)) -eq 0 ] || die "E2E_TASKS and MEMORY_TASKS must be multiples of 1000"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

# --- servers and build -------------------------------------------------------------------------
eval "$("$ROOT/scripts/services.sh" start 2>/dev/null)"
PG_PORT=$(sed -E 's/.*Port=([0-9]+).*/\1/' <<<"$AGENTRY_TEST_POSTGRES")
pg() { PGPASSWORD=agentry-test "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U agentry -d "${2:-agentry}" -tA -c "$1"; }
fresh_db() {  # name: drop and create a database owned by the app user
    pg "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
    pg "CREATE DATABASE $1" >/dev/null
}
ensure_wrk
mkdir -p "$RESULTS"
rm -rf "$RUN"; mkdir -p "$RUN/wrk"
publish_release
read -r BASE_PORT SVC_PORT < <(free_ports)
SVC="http://127.0.0.1:$SVC_PORT"

launch_env
start_dll "$RUN/baseline" "$BASE_PORT" "$RUN/baseline.log" bench-baseline
BASE_PID=$LAST_PID
wait_ready "$BASE_PID" "$BASE_PORT" /plaintext "$RUN/baseline.log"

# --- one service node --------------------------------------------------------------------------
provider_settings() {  # provider -> VAR=value lines
    case "$1" in
        sqlite) echo "Agentry__Storage__Provider=sqlite" ;;
        postgres | rabbitmq)
            fresh_db "bench_$1"
            echo "Agentry__Storage__Provider=postgres"
            echo "ConnectionStrings__Agentry=${AGENTRY_TEST_POSTGRES/Database=agentry/Database=bench_$1}"
            if [ "$1" = rabbitmq ]; then
                echo "Agentry__Queue__Provider=rabbitmq"
                echo "Agentry__Queue__RabbitMqUri=$AGENTRY_TEST_RABBITMQ"
            fi ;;
        *) die "unknown provider $1 (sqlite, postgres, rabbitmq)" ;;
    esac
}

start_service() {  # name role provider: a fresh node, signed in, with a workspace, a no-op agent and a key
    local name="$1" role="$2" provider="$3" settings=()
    mapfile -t settings < <(provider_settings "$provider")
    launch_env "${settings[@]}" Agentry__Role="$role" Agentry__Queue__Concurrency="$WORKER_CONCURRENCY" \
        Agentry__Egress__AllowedNetworks__0=127.0.0.1/32
    SVC_LOG="$RUN/$name.log"
    start_dll "$RUN/$name" "$SVC_PORT" "$SVC_LOG"
    SVC_PID=$LAST_PID
    wait_ready "$SVC_PID" "$SVC_PORT" /health "$RUN/$name.log"
    bench_workspace "http://127.0.0.1:$BASE_PORT/hook" '["tasks:read","tasks:write"]'
}

succeeded() {  # tasks this node has finished successfully (its own counter since start)
    curl -s "$SVC/metrics" | awk '/^task_attempts_finished_total\{.*outcome="succeeded"/ { n += $NF } END { print n + 0 }'
}

# Submits COUNT tasks in batches of 1,000 and waits until the node has run them all; prints seconds.
# With a hook, calls it as "hook DONE" while waiting (the memory benchmark samples RSS there).
run_tasks() {  # count [hook]
    local count="$1" hook="${2:-}" t0 done=0 batches=$(( $1 / 1000 )) i base
    base=$(succeeded)
    python3 -c "import json,sys; print(json.dumps({'tasks':[{'agentId':sys.argv[1],'input':{'i':i}} for i in range(1000)]}))" "$BENCH_AGENT" >"$RUN/batch.json"
    t0=$(now_us)
    for ((i = 0; i < batches; i++)); do
        api POST /api/v1/tasks/batch "$BENCH_API_KEY" "@$RUN/batch.json" >/dev/null
        [ -z "$hook" ] || "$hook" "$(( $(succeeded) - base ))"
    done
    until [ "$done" -ge "$count" ]; do
        ensure_alive "$SVC_PID" "$SVC_LOG"
        [ $(( $(now_us) - t0 )) -lt $(( 3600 * 1000000 )) ] || die "tasks did not finish within an hour ($done of $count)"
        sleep 0.1
        done=$(( $(succeeded) - base ))
        [ -z "$hook" ] || "$hook" "$done"
    done
    python3 -c "print(($(now_us) - $t0) / 1e6)"
}

# --- 1. submission vs pgbench --------------------------------------------------------------------
SUBMIT=(); PGBENCH=(); E2E=()
if phase submit; then
log "submission: POST /api/v1/tasks vs pgbench, -c$CONNECTIONS, $RUNS interleaved runs"
start_service submit api postgres
fresh_db bench_pgbench
pg "CREATE TABLE bench_insert (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), input jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())" bench_pgbench
echo "INSERT INTO bench_insert (input) VALUES ('{\"n\": 1}');" >"$RUN/insert.sql"
export BENCH_BODY="{\"agentId\":\"$BENCH_AGENT\",\"input\":{\"n\":1},\"runAt\":\"2100-01-01T00:00:00Z\"}"
pgbench() {  # seconds -> tps
    PGPASSWORD=agentry-test "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U agentry -c "$CONNECTIONS" -j 2 -T "$1" -f "$RUN/insert.sql" bench_pgbench 2>&1 \
        | awk '/^tps = / { print $3; exit }'
}
# Tiered compilation keeps promoting this path for tens of seconds (a node in service is long past
# that): the first measured run starts after SUBMIT_WARMUP seconds of load.
run_wrk submit-warmup "$SVC/api/v1/tasks" lua/submit.lua "$SUBMIT_WARMUP" "$RUN/wrk/submit-warmup.txt"
read -r rps _ bad _ < <(parse_wrk "$RUN/wrk/submit-warmup.txt")
[ "$bad" = 0 ] || die "submission warm-up got $bad non-2xx answers (see $RUN/wrk/submit-warmup.txt)"
pgbench "$WARMUP" >/dev/null
for ((r = 1; r <= RUNS; r++)); do
    run_wrk submit "$SVC/api/v1/tasks" lua/submit.lua "$DURATION" "$RUN/wrk/submit-$r.txt"
    read -r rps p99 bad _ < <(parse_wrk "$RUN/wrk/submit-$r.txt")
    [ "$bad" = 0 ] || die "submission got $bad non-2xx answers (see $RUN/wrk/submit-$r.txt)"
    SUBMIT+=("$rps")
    PGBENCH+=("$(pgbench "$DURATION")")
    log "round $r: POST /api/v1/tasks $rps req/s (p99 $p99 ms), pgbench ${PGBENCH[-1]} tps"
done
stop_process "$SVC_PID"
fi

# --- 2. end to end -------------------------------------------------------------------------------
phase e2e || PROVIDERS=""
for provider in $PROVIDERS; do
    times=()
    for ((r = 1; r <= RUNS; r++)); do
        start_service "service-$provider-$r" all "$provider"
        run_tasks 1000 >/dev/null   # warm-up: JIT, pools, connections
        seconds=$(run_tasks "$E2E_TASKS")
        times+=("$seconds")
        log "$provider round $r: $E2E_TASKS tasks in $seconds s"
        stop_process "$SVC_PID"
    done
    E2E+=("$provider:${times[*]}")
done

# --- 3. memory -----------------------------------------------------------------------------------
MEM_EARLY=""; MEM_LATE=""
# run_tasks runs in a subshell ($(…)), so the early sample goes through a file.
sample_memory() {  # done: RSS once a tenth has run
    if [ ! -s "$RUN/memory-early" ] && [ "$1" -ge $((MEMORY_TASKS / 10)) ]; then
        rss_kb "$SVC_PID" >"$RUN/memory-early"
        log "memory: $1 tasks run, RSS $(( $(cat "$RUN/memory-early") / 1024 )) MB"
    fi
}
if phase memory; then
    start_service "service-memory" all "$MEMORY_PROVIDER"
    seconds=$(run_tasks "$MEMORY_TASKS" sample_memory)
    MEM_LATE=$(rss_kb "$SVC_PID")
    MEM_EARLY=$(cat "$RUN/memory-early")
    log "memory: $MEMORY_TASKS tasks run in $seconds s, RSS $((MEM_LATE / 1024)) MB"
    stop_process "$SVC_PID"
fi

# --- report --------------------------------------------------------------------------------------
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
REPORT="$RESULTS/tasks-latest.md"
python3 - >"$REPORT" <<EOF
import statistics as st
from datetime import datetime, timezone
submit = [float(x) for x in "${SUBMIT[*]}".split()]
pgb = [float(x) for x in "${PGBENCH[*]}".split()]
print("# Agentry task benchmarks")
print()
print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit $COMMIT, $(nproc) CPUs, $RUNS interleaved runs (median shown).")
print()
if submit: print(f"- Submission, \`POST /api/v1/tasks\` on PostgreSQL (wrk -c$CONNECTIONS, ${DURATION}s): **{st.median(submit):,.0f} req/s**; "
      f"pgbench one-row INSERT per transaction, -c$CONNECTIONS: {st.median(pgb):,.0f} tps; ratio **{st.median(submit) / st.median(pgb):.2f}** (goal ≥ 0.5)")
if submit: print(f"  (runs: {', '.join(f'{s:,.0f}' for s in submit)} vs {', '.join(f'{p:,.0f}' for p in pgb)})")
print()
EOF
python3 - "${E2E[@]}" >>"$REPORT" <<EOF
import statistics as st, sys
if len(sys.argv) > 1:
    print("| provider | $E2E_TASKS no-op tasks, submit → all succeeded (runs) | tasks/s (median) |")
    print("|---|---:|---:|")
for entry in sys.argv[1:]:
    name, times = entry.split(":", 1)
    t = [float(x) for x in times.split()]
    print(f"| {name} | {st.median(t):.1f} s ({', '.join(f'{x:.1f}' for x in t)}) | **{$E2E_TASKS / st.median(t):,.0f}** |")
if "$MEM_LATE":
    early, late = int("${MEM_EARLY:-0}") / 1024, int("$MEM_LATE") / 1024
    print()
    print(f"- Memory, $MEMORY_PROVIDER: RSS {early:.0f} MB after {$MEMORY_TASKS // 10:,} tasks, {late:.0f} MB after {$MEMORY_TASKS:,} "
          f"({100 * (late - early) / early:+.1f}%, goal within 10%)")
EOF
mkdir -p "$RESULTS/history"
cp "$REPORT" "$RESULTS/history/tasks-$(date -u +%Y%m%dT%H%M%SZ).md"
cat "$REPORT"
