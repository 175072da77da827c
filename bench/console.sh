#!/usr/bin/env bash
# Agentry web console benchmark:  ./bench/console.sh
#
# Chromium (headless, Debian's package, driven by playwright-core) loads console pages cold — a new browser context
# each time, signed in, empty cache — and reads from the page itself:
#   first render   first-contentful-paint (the page's heading and skeleton)
#   interactive    the page's own mark `console:<page>:interactive`, set when its first data is on screen and its
#                  controls work
#   weight         bytes transferred for the document, its modules and styles, and the API calls it makes
# Pages: overview and chat, with some data in the workspace (tasks, a conversation). Baseline in the same run: the
# same browser's first paint of the bare Kestrel endpoint (`agentry bench-baseline`, GET /plaintext).
#
# Settings (environment): RUNS=7 SKIP_BUILD=0 RESULTS_DIR=bench/results
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/console-run"
THREADS=1
CONNECTIONS=1
STARTUP_TIMEOUT=60
RUNS="${RUNS:-7}"

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 100 ] || die "RUNS must be between 1 and 100 (got '$RUNS')"

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
# shellcheck source=scripts/npm-servers.sh
source "$ROOT/scripts/npm-servers.sh"

command -v dotnet >/dev/null || die "dotnet not found"
if [ ! -x /usr/bin/chromium ]; then
    [ "$(id -u)" = 0 ] || die "chromium is missing; install Debian's chromium package"
    log "installing Debian's chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || die "apt-get install chromium failed"
fi
install_playwright || die "playwright-core could not be installed"

publish_release
rm -rf "$RUN"; mkdir -p "$RUN"
tiny_model_env "$RUN"
read -r PORT BASE_PORT < <(free_ports)
start_dll "$RUN/service" "$PORT" "$RUN/service.log"
SVC_PID=$LAST_PID
start_dll "$RUN/baseline" "$BASE_PORT" "$RUN/baseline.log" bench-baseline
BASE_PID=$LAST_PID
wait_ready "$SVC_PID" "$PORT" /health "$RUN/service.log"
wait_ready "$BASE_PID" "$BASE_PORT" /plaintext "$RUN/baseline.log"
log "service on 127.0.0.1:$PORT, baseline on 127.0.0.1:$BASE_PORT; $RUNS cold loads per page"

REPORT="$RUN/report.md"
AGENTRY_PLAYWRIGHT="$PLAYWRIGHT_DIR/node_modules/playwright-core" AGENTRY_CHROMIUM=/usr/bin/chromium \
    node "$BENCH_DIR/console/measure.mjs" --url "http://127.0.0.1:$PORT" --baseline "http://127.0.0.1:$BASE_PORT/plaintext" \
    --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" --runs "$RUNS" >"$REPORT"
ensure_alive "$SVC_PID" "$RUN/service.log"
{
    echo "# Agentry web console benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs, $(/usr/bin/chromium --version 2>/dev/null | head -1 | cut -d' ' -f1-2) headless; medians of $RUNS cold loads."
    echo
    cat "$REPORT"
} | tee "$RESULTS/console-latest.md"
mkdir -p "$RESULTS/history"
cp "$RESULTS/console-latest.md" "$RESULTS/history/console-$(date -u +%Y%m%d-%H%M%S).md"
