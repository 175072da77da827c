# Sourced by scripts/test.sh and scripts/cluster.sh (needs ROOT and a log function): installs the servers that come
# as npm packages into git-ignored directories of the checkout. Each install_* returns non-zero on failure.

# The reference MCP servers the tool tests run (stdio and Streamable HTTP), pinned, in a git-ignored
# directory of the checkout. Debian 12's nodejs (18) is installed when node is missing; some of the
# servers' dependencies declare node >= 20 in "engines" (npm only warns), and they run on 18 for these tests.
MCP_VERSION=2026.8.31
MCP_DIR="$ROOT/.mcp-servers"
ensure_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    [ "$(id -u)" = 0 ] || { log "node/npm missing and not root: cannot install them"; return 1; }
    log "installing Debian's nodejs and npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm >&2; }
}
install_mcp_servers() {
    ensure_node || return 1
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

# A real ChromaDB server for the chroma vector provider's tests: the npm package chromadb carries the server in
# its native binding. Bindings after 1.0.5 need glibc 2.38 (Debian 12 has 2.36), so the binding is pinned by an
# override; it is stripped of its symbols (437 MB -> ~46 MB). The tests start their own server from it.
CHROMA_VERSION=3.5.0
CHROMA_BINDING=1.0.5
CHROMA_DIR="$ROOT/.chroma"
install_chroma() {
    ensure_node || return 1
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

# playwright-core (no browser download) for the web console's end-to-end tests, which drive Debian's chromium.
PLAYWRIGHT_VERSION=1.65.1
PLAYWRIGHT_DIR="$ROOT/.playwright"
install_playwright() {
    ensure_node || return 1
    if [ "$(node -p "require('$PLAYWRIGHT_DIR/node_modules/playwright-core/package.json').version" 2>/dev/null)" != "$PLAYWRIGHT_VERSION" ]; then
        log "installing playwright-core $PLAYWRIGHT_VERSION into $PLAYWRIGHT_DIR"
        mkdir -p "$PLAYWRIGHT_DIR"
        [ -f "$PLAYWRIGHT_DIR/package.json" ] || echo '{"private": true}' >"$PLAYWRIGHT_DIR/package.json"
        npm install --prefix "$PLAYWRIGHT_DIR" --no-audit --no-fund --save-exact "playwright-core@$PLAYWRIGHT_VERSION" >&2 || return 1
    fi
    [ -f "$PLAYWRIGHT_DIR/node_modules/playwright-core/index.mjs" ] && [ -x /usr/bin/chromium ]
}
