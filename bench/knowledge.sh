#!/usr/bin/env bash
# Agentry knowledge benchmark:  ./bench/knowledge.sh
#
# Two measurements in one run (bench/KnowledgeBench):
#   index   the embedded vector index as the service runs it (UsearchVectorIndex) on VECTORS random unit 384-d vectors:
#           build rate, recall@10 of QUERIES random queries against exact brute-force cosine search (goal ≥ 0.95 at the
#           configured expansion), p50/p99 query latency, for several search expansions
#   ingest  chunks/s of end-to-end ingestion through a published service (upload DOCUMENTS text documents, until every one
#           is ready) against the raw chunks/s of the same in-process MiniLM generator on the same chunks (goal ≥ 0.8)
#
# Settings (environment): VECTORS=100000 QUERIES=1000 INDEX_BATCH=10000 (vectors per upsert) RUNS=3
#   DOCUMENTS=40 PARAGRAPHS=60 (per document) PHASES="index ingest" SKIP_BUILD=0 RESULTS_DIR=bench/results
#   CONNECTIVITY / EXPANSION_SEARCH override the index settings (default: Agentry:Knowledge's defaults)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${RESULTS_DIR:-$BENCH_DIR/results}"
PUBLISH="$RESULTS/publish"
RUN="$RESULTS/knowledge-run"
THREADS=1
CONNECTIONS=1
STARTUP_TIMEOUT=60

VECTORS="${VECTORS:-100000}"
QUERIES="${QUERIES:-1000}"
INDEX_BATCH="${INDEX_BATCH:-10000}"
RUNS="${RUNS:-3}"
DOCUMENTS="${DOCUMENTS:-40}"
PARAGRAPHS="${PARAGRAPHS:-60}"
PHASES="${PHASES:-index ingest}"

log() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

ADMIN_EMAIL="bench@agentry.local"
ADMIN_PASSWORD="bench-password-$RANDOM$RANDOM"

for v in VECTORS QUERIES INDEX_BATCH RUNS DOCUMENTS PARAGRAPHS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "$v must be a positive integer (got '${!v}')"
done
[ "$QUERIES" -le "$VECTORS" ] || die "QUERIES must not exceed VECTORS"
INDEX_ARGS=()
[ -z "${CONNECTIVITY:-}" ] || INDEX_ARGS+=(--connectivity "$CONNECTIVITY")
[ -z "${EXPANSION_SEARCH:-}" ] || INDEX_ARGS+=(--expansion-search "$EXPANSION_SEARCH")

# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

command -v dotnet >/dev/null || die "dotnet not found"

mkdir -p "$RESULTS"
rm -rf "$RUN"; mkdir -p "$RUN"
build_bench "$BENCH_DIR/KnowledgeBench" knowledge-bench Agentry.KnowledgeBench
KNOWLEDGE_BENCH="$BUILT_DIR"

if [[ " $PHASES " == *" index "* ]]; then
    log "index: $VECTORS vectors, $QUERIES queries, $RUNS runs per setting"
    dotnet "$KNOWLEDGE_BENCH/Agentry.KnowledgeBench.dll" index --vectors "$VECTORS" --queries "$QUERIES" --batch "$INDEX_BATCH" \
        --runs "$RUNS" "${INDEX_ARGS[@]}" --report "$RUN/index.md" >/dev/null
fi

if [[ " $PHASES " == *" ingest "* ]]; then
    publish_release
    read -r PORT _ < <(free_ports)
    launch_env Agentry__Knowledge__IndexDirectory="$RUN/service/vectors"
    start_dll "$RUN/service" "$PORT" "$RUN/service.log"
    SVC_PID=$LAST_PID
    wait_ready "$SVC_PID" "$PORT" /health "$RUN/service.log"
    log "ingest: service on 127.0.0.1:$PORT; $DOCUMENTS documents of $PARAGRAPHS paragraphs, $RUNS runs"
    dotnet "$KNOWLEDGE_BENCH/Agentry.KnowledgeBench.dll" ingest --url "http://127.0.0.1:$PORT" --email "$ADMIN_EMAIL" --password "$ADMIN_PASSWORD" \
        --documents "$DOCUMENTS" --paragraphs "$PARAGRAPHS" --runs "$RUNS" --report "$RUN/ingest.md" >/dev/null
    ensure_alive "$SVC_PID" "$RUN/service.log"
    stop_process "$SVC_PID"
fi

{
    echo "# Agentry knowledge benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPUs."
    for part in index ingest; do
        if [ -f "$RUN/$part.md" ]; then echo; cat "$RUN/$part.md"; fi
    done
} | tee "$RESULTS/knowledge-latest.md"
mkdir -p "$RESULTS/history"
cp "$RESULTS/knowledge-latest.md" "$RESULTS/history/knowledge-$(date -u +%Y%m%d-%H%M%S).md"
