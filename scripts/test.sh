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

# The reference MCP servers the tool tests run (stdio and Streamable HTTP), pinned, in a git-ignored
# directory of the checkout. Debian 12's nodejs (18) is installed when node is missing; some of the
# servers' dependencies declare node >= 20 in "engines" (npm only warns), and they run on 18 for these tests.
MCP_VERSION=2026.8.31
MCP_DIR="$ROOT/.mcp-servers"
install_mcp_servers() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        [ "$(id -u)" = 0 ] || { log "node/npm missing and not root: cannot install them"; return 1; }
        log "installing Debian's nodejs and npm"
        DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2; } || return 1
    fi
    local have
    have="$(node -p "require('$MCP_DIR/node_modules/@modelcontextprotocol/server-everything/package.json').version" 2>/dev/null || true)"
    if [ "$have" != "$MCP_VERSION" ] || [ ! -f "$MCP_DIR/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js" ]; then
        log "installing MCP reference servers $MCP_VERSION into $MCP_DIR"
        mkdir -p "$MCP_DIR"
        [ -f "$MCP_DIR/package.json" ] || echo '{"private": true}' >"$MCP_DIR/package.json"
        npm install --prefix "$MCP_DIR" --no-audit --no-fund --save-exact \
            "@modelcontextprotocol/server-everything@$MCP_VERSION" "@modelcontextprotocol/server-filesystem@$MCP_VERSION" >&2 || return 1
    fi
}
if install_mcp_servers; then
    export AGENTRY_TEST_NODE="$(command -v node)"
    export AGENTRY_TEST_MCP_SERVERS="$MCP_DIR/node_modules/@modelcontextprotocol"
elif [ "${CI:-}" = true ]; then
    fail_summary "the MCP reference servers could not be installed"
else
    log "the MCP reference servers could not be installed; the tests that need them will be skipped"
fi

# A real ChromaDB server for the chroma vector provider's tests: the npm package chromadb carries the server in
# its native binding. Bindings after 1.0.5 need glibc 2.38 (Debian 12 has 2.36), so the binding is pinned by an
# override; it is stripped of its symbols (437 MB -> ~46 MB). The tests start their own server from it.
CHROMA_VERSION=3.5.0
CHROMA_BINDING=1.0.5
CHROMA_DIR="$ROOT/.chroma"
install_chroma() {
    command -v node >/dev/null && command -v npm >/dev/null || { log "node/npm missing: cannot install chromadb"; return 1; }
    local binding="$CHROMA_DIR/node_modules/chromadb-js-bindings-linux-x64-gnu"
    if [ "$(node -p "require('$CHROMA_DIR/node_modules/chromadb/package.json').version" 2>/dev/null)" != "$CHROMA_VERSION" ] \
        || [ "$(node -p "require('$binding/package.json').version" 2>/dev/null)" != "$CHROMA_BINDING" ]; then
        log "installing chromadb $CHROMA_VERSION (server binding $CHROMA_BINDING) into $CHROMA_DIR"
        mkdir -p "$CHROMA_DIR"
        printf '{\n  "private": true,\n  "overrides": { "chromadb-js-bindings-linux-x64-gnu": "%s" }\n}\n' "$CHROMA_BINDING" >"$CHROMA_DIR/package.json"
        npm install --prefix "$CHROMA_DIR" --no-audit --no-fund --save-exact "chromadb@$CHROMA_VERSION" >&2 || return 1
    fi
    if command -v strip >/dev/null; then
        for lib in "$binding"/*.node; do
            [ "$(stat -c %s "$lib")" -gt 100000000 ] && { strip "$lib" || return 1; }
        done
    fi
    [ -f "$CHROMA_DIR/node_modules/chromadb/dist/cli.mjs" ]
}
if install_chroma; then
    export AGENTRY_TEST_NODE="$(command -v node)"
    export AGENTRY_TEST_CHROMA="$CHROMA_DIR"
elif [ "${CI:-}" = true ]; then
    fail_summary "the ChromaDB server could not be installed"
else
    log "the ChromaDB server could not be installed; the tests that need it will be skipped"
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
