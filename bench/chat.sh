#!/usr/bin/env bash
# Agentry chat benchmark:  ./bench/chat.sh
#
# Time to first token and tokens/s of a streamed reply from the tiny llama.cpp model the tests write, along
# three paths measured in one run, interleaved round by round:
#   direct        the llama.cpp chat client called in-process (bench/ChatBench), the baseline
#   conversation  POST /api/v1/conversations/{id}/messages, Server-Sent Events
#   openai        POST /v1/chat/completions, stream: true
# The service and the direct client run the same GGUF file with one thread each. Goal: the service adds
# < 5 ms to the time to first token (median) and keeps ≥ 0.95 of the direct tokens/s.
#
# Settings (environment): ROUNDS=30 WARMUP=20 (seconds of unmeasured rounds first) SKIP_BUILD=0 RESULTS_DIR=bench/results
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/chat-run"
THREADS=1
CONNECTIONS=1
STARTUP_TIMEOUT=60

ROUNDS="${ROUNDS:-30}"
WARMUP="${WARMUP:-20}"

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

for v in ROUNDS WARMUP; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 1000 ] && [ "$WARMUP" -le 300 ] || die "ROUNDS must be between 1 and 1000, WARMUP at most 300"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

command -v dotnet >/dev/null || die "dotnet not found"
command -v curl >/dev/null || die "curl not found"

publish_release
rm -rf "$RUN"; mkdir -p "$RUN"
tiny_model_env "$RUN"
read -r PORT _ < <(free_ports)
start_dll "$RUN/service" "$PORT" "$RUN/service.log"
SVC_PID=$LAST_PID
wait_ready "$SVC_PID" "$PORT" /health "$RUN/service.log"
log "service on 127.0.0.1:$PORT; ${WARMUP} s of warm-up, then $ROUNDS rounds per path"

REPORT="$RUN/report.md"
dotnet "$CHAT_BENCH/Agentry.Bench.dll" measure --url "http://127.0.0.1:$PORT" --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" \
    --model-path "$MODEL" --rounds "$ROUNDS" --warmup "$WARMUP" --report "$REPORT" >/dev/null
ensure_alive "$SVC_PID" "$RUN/service.log"
{
    echo "# Agentry chat benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs; tiny llama.cpp model (tests' GGUF writer), one thread."
    echo
    cat "$REPORT"
} | tee "$RESULTS/chat-latest.md"
mkdir -p "$RESULTS/history"
cp "$RESULTS/chat-latest.md" "$RESULTS/history/chat-$(date -u +%Y%m%d-%H%M%S).md"
