#!/usr/bin/env bash
# Agentry's single test command:  ./scripts/test.sh [extra `dotnet test` args]
#   e.g. ./scripts/test.sh --filter "FullyQualifiedName~Redis"
# Starts the throwaway servers (left running afterwards: restarting costs ~10 s),
# runs the test project and prints, as the very last line:
#   N passed, N failed, N skipped
# Exit code is non-zero if dotnet test failed, any test failed, nothing passed,
# or no TRX result file was produced (e.g. a build error).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PROJECT=tests/Agentry.Tests/Agentry.Tests.csproj
RESULTS_DIR="${AGENTRY_TEST_RESULTS_DIR:-$ROOT/TestResults}"

log() { echo "test: $*" >&2; }
fail_summary() {  # message on stderr, then the summary line last
    log "$*"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
}

# Connection settings go to stderr so stdout stays "test output + summary".
./scripts/services.sh start >&2 || fail_summary "test servers failed to start (see services: lines above)"
eval "$(./scripts/services.sh env)"

# The npm-packaged servers: the MCP reference servers and ChromaDB (scripts/npm-servers.sh).
source "$ROOT/scripts/npm-servers.sh"
if install_mcp_servers; then
    export AGENTRY_TEST_NODE="$(command -v node)"
    export AGENTRY_TEST_MCP_SERVERS="$MCP_DIR/node_modules/@modelcontextprotocol"
elif [ "${CI:-}" = true ]; then
    fail_summary "the MCP reference servers could not be installed"
else
    log "the MCP reference servers could not be installed; the tests that need them will be skipped"
fi

if install_chroma; then
    export AGENTRY_TEST_NODE="$(command -v node)"
    export AGENTRY_TEST_CHROMA="$CHROMA_DIR"
elif [ "${CI:-}" = true ]; then
    fail_summary "the ChromaDB server could not be installed"
else
    log "the ChromaDB server could not be installed; the tests that need it will be skipped"
fi

if install_playwright; then
    export AGENTRY_TEST_NODE="$(command -v node)"
    export AGENTRY_TEST_PLAYWRIGHT="$PLAYWRIGHT_DIR/node_modules/playwright-core"
    export AGENTRY_TEST_CHROMIUM=/usr/bin/chromium
elif [ "${CI:-}" = true ]; then
    fail_summary "playwright-core or chromium could not be installed"
else
    log "playwright-core or chromium could not be installed; the web console's end-to-end tests will be skipped"
fi

# Same behaviour locally and in CI: no telemetry/banners, plain (non-interactive) logger.
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export DOTNET_GENERATE_ASPNET_CERTIFICATE=false
export MSBUILDTERMINALLOGGER=false

[ -f "$PROJECT" ] || fail_summary "test project $PROJECT not found"

# Stale TRX files from an earlier run would be counted otherwise.
mkdir -p "$RESULTS_DIR"
find "$RESULTS_DIR" -name '*.trx' -delete

dotnet test "$PROJECT" -c Release \
    --logger "trx;LogFileName=results.trx" --results-directory "$RESULTS_DIR" "$@"
rc=$?

mapfile -t trx_files < <(find "$RESULTS_DIR" -name '*.trx' | sort)
((${#trx_files[@]} > 0)) || fail_summary "dotnet test produced no TRX file (exit code $rc; build failure?)"

# Sum <ResultSummary><Counters .../> over all TRX files. xunit reports skipped
# tests as notExecuted; error/timeout/aborted outcomes count as failures.
counts="$(python3 - "${trx_files[@]}" <<'PY'
import sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for el in ET.parse(path).iter():
        if el.tag.rsplit('}', 1)[-1] == 'Counters':
            get = lambda name: int(el.get(name, 0))
            passed += get('passed')
            failed += get('failed') + get('error') + get('timeout') + get('aborted')
            skipped += get('notExecuted')
print(passed, failed, skipped)
PY
)" || fail_summary "could not parse ${trx_files[*]}"
read -r passed failed skipped <<<"$counts"

status=0
if ((rc != 0)); then log "dotnet test exited with code $rc"; status=1; fi
if ((failed > 0)); then log "$failed test(s) failed (details in $RESULTS_DIR)"; status=1; fi
if ((passed == 0)); then log "no test passed (empty filter or no tests?)"; status=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
