#!/usr/bin/env bash
# What rate limits kept in Redis cost a cached read:  ./bench/ratelimit.sh
#
# One node on SQLite with Redis as its cache per target; reads/s of GET /api/v1/agents/{id} with an API key (the key's
# bucket and its workspace's bucket are both drawn from), wrk at CONNECTIONS connections for DURATION s, RUNS runs
# interleaved across the targets after WARMUP s of reads each:
#   baseline    the bare Kestrel endpoint (`agentry bench-baseline`, GET /json): one process doing nothing
#   off         Agentry:RateLimits:Enabled=false
#   redis       limits on, buckets in Redis (this build: tokens taken a batch at a time)
#   redis@REF   the same, built from git REF, when COMPARE_REF is set (e.g. COMPARE_REF=HEAD~1 for the build before a change)
# The buckets are large enough never to refuse, so only their cost is measured.
#
# Settings (environment): RUNS=3 DURATION=10 CONNECTIONS=32 WARMUP=30 COMPARE_REF= SKIP_BUILD=0
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/ratelimit-run"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS=1
WARMUP="${WARMUP:-30}"
COMPARE_REF="${COMPARE_REF:-}"
STARTUP_TIMEOUT=60

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

for v in RUNS DURATION CONNECTIONS WARMUP; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v must be a positive integer (got '${!v}')"
done
[ "$DURATION" -le 300 ] && [ "$WARMUP" -le 600 ] || die "DURATION must be <= 300 s and WARMUP <= 600 s"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

ensure_wrk
"$ROOT/scripts/services.sh" start >/dev/null 2>&1 || die "the servers did not start (scripts/services.sh start)"
eval "$("$ROOT/scripts/services.sh" env)"
mkdir -p "$RESULTS"
rm -rf "$RUN"; mkdir -p "$RUN/wrk"
publish_release

# The build of COMPARE_REF, from a worktree of this checkout (removed again on exit).
COMPARE_PUBLISH=""
if [ -n "$COMPARE_REF" ]; then
    commit=$(git -C "$ROOT" rev-parse --verify "$COMPARE_REF^{commit}") || die "COMPARE_REF '$COMPARE_REF' is not a commit"
    worktree="$RESULTS/compare-src"
    git -C "$ROOT" worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"
    git -C "$ROOT" worktree add --detach "$worktree" "$commit" >/dev/null 2>&1 || die "could not check out $COMPARE_REF"
    trap 'cleanup; git -C "$ROOT" worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT
    COMPARE_PUBLISH="$RESULTS/publish-compare"
    log "publishing $COMPARE_REF ($(git -C "$ROOT" rev-parse --short "$commit"))"
    rm -rf "$COMPARE_PUBLISH"
    dotnet publish "$worktree/src/Agentry" -c Release -r linux-x64 --self-contained false -o "$COMPARE_PUBLISH" \
        --artifacts-path "$RESULTS/artifacts-compare" --disable-build-servers -nologo >"$RESULTS/publish-compare.log" 2>&1 \
        || { tail -n 30 "$RESULTS/publish-compare.log" >&2; die "publish of $COMPARE_REF failed"; }
fi

read -r -a PORTS < <(free_ports 4)   # the baseline and up to three nodes

launch_env
start_dll "$RUN/baseline" "${PORTS[0]}" "$RUN/baseline.log" bench-baseline
wait_ready "$LAST_PID" "${PORTS[0]}" /plaintext "$RUN/baseline.log"

TARGETS=(off redis)
[ -n "$COMPARE_PUBLISH" ] && TARGETS+=("redis@$COMPARE_REF")
declare -A URL KEY_OF READS
i=1
for target in "${TARGETS[@]}"; do
    port="${PORTS[$i]}"; i=$((i + 1))
    app="$PUBLISH"; [[ "$target" == redis@* ]] && app="$COMPARE_PUBLISH"
    enabled=true; [ "$target" = off ] && enabled=false
    launch_env Agentry__Cache__Redis="$AGENTRY_TEST_REDIS" Agentry__Cache__InstanceName="bench-ratelimit-$RANDOM$RANDOM" \
        Agentry__RateLimits__Enabled="$enabled"
    PUBLISH="$app" start_dll "$RUN/$target" "$port" "$RUN/$target.log"
    wait_ready "$LAST_PID" "$port" /health/ready "$RUN/$target.log"
    SVC="http://127.0.0.1:$port"
    bench_workspace "http://127.0.0.1:${PORTS[0]}/hook" '["agents:read"]'
    KEY_OF[$target]="$BENCH_API_KEY"
    URL[$target]="$SVC/api/v1/agents/$BENCH_AGENT"
    run_wrk "$target-warmup" "${URL[$target]}" lua/apikey.lua "$WARMUP" "$RUN/wrk/$target-warmup.txt"
done

BASELINE=()
for ((r = 1; r <= RUNS; r++)); do
    run_wrk baseline "http://127.0.0.1:${PORTS[0]}/json" "" "$DURATION" "$RUN/wrk/baseline-$r.txt"
    read -r rps _ _ _ < <(parse_wrk "$RUN/wrk/baseline-$r.txt")
    BASELINE+=("$rps")
    line="run $r: baseline $rps"
    for target in "${TARGETS[@]}"; do
        export BENCH_API_KEY="${KEY_OF[$target]}"
        run_wrk "$target" "${URL[$target]}" lua/apikey.lua "$DURATION" "$RUN/wrk/$target-$r.txt"
        read -r reads p99 bad errors < <(parse_wrk "$RUN/wrk/$target-$r.txt")
        [ "$bad" = 0 ] && [ "$errors" = 0 ] || die "$target got $bad non-2xx answers and $errors socket errors ($RUN/wrk/$target-$r.txt)"
        READS[$target]+="$reads "
        line+=", $target $reads (p99 $p99 ms)"
    done
    log "$line req/s"
done

base=$(median "${BASELINE[@]}")
{
    echo "# Rate limits in Redis ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) cores)"
    echo
    echo "Medians of $RUNS interleaved runs after ${WARMUP} s of warm-up each. GET /api/v1/agents/{id} with an API key,"
    echo "$CONNECTIONS connections, ${DURATION} s; one node on SQLite with Redis as its cache."
    echo "Baseline, same runs: the bare Kestrel endpoint, $(printf '%.0f' "$base") req/s (runs: ${BASELINE[*]})."
    echo
    echo "| rate limits | reads/s | / baseline | / limits off |"
    echo "|---|---:|---:|---:|"
    # shellcheck disable=SC2086
    off=$(median ${READS[off]})
    for target in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        reads=$(median ${READS[$target]})
        printf '| %s | %.0f | %.2f | %.2f |\n' "$target" "$reads" "$(python3 -c "print($reads / $base)")" "$(python3 -c "print($reads / $off)")"
    done
    echo
    echo "Per run: $(for t in "${TARGETS[@]}"; do printf '%s [%s]; ' "$t" "${READS[$t]% }"; done)"
} | tee "$RESULTS/ratelimit-latest.md"
