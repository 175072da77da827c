#!/usr/bin/env bash
# Shared by the benchmark scripts (sourced): process bookkeeping, readiness probes, wrk runs and
# their parsing, the Release publish. Expects log/die, ROOT, RESULTS, PUBLISH, BENCH_DIR, THREADS, CONNECTIONS, STARTUP_TIMEOUT,
# ADMIN_EMAIL and ADMIN_PASSWORD to be set by the caller.

# --- processes we start; all of them are stopped on exit, Ctrl-C or failure -------------------
PIDS=()

stop_process() {  # pid: SIGTERM, wait up to 10 s for a graceful stop, then SIGKILL
    local pid="$1" i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_process "$p"; done
}
trap cleanup EXIT
# Background jobs of a script ignore SIGINT, so Ctrl-C reaches only us (and curl/sleep in the
# foreground); exiting runs the EXIT trap, which stops the servers and a running wrk.
trap 'log "interrupted"; exit 130' INT
trap 'exit 143' TERM

# --- helpers ---------------------------------------------------------------------------------

ensure_wrk() {
    command -v wrk >/dev/null && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "wrk not found; installing it with apt-get"
    $sudo apt-get install -y wrk >/dev/null 2>&1 \
        || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; } \
        || die "could not install wrk (apt-get install -y wrk)"
}

free_ports() {  # [count]: that many (default two) distinct free TCP ports on 127.0.0.1 (held together so they differ)
    python3 - "${1:-2}" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# One HTTP GET with bash's /dev/tcp: no process is spawned per attempt, so polling every ~5 ms
# measures the service, not curl's own start-up. Succeeds on a 200 status line.
probe() {  # port path
    local line=""
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3 2>/dev/null || { exec 3<&-; return 1; }
    read -r -t 2 line <&3 || true
    exec 3<&-
    [[ "$line" == "HTTP/1."?" 200"* ]]
}

now_us() { local t="$EPOCHREALTIME"; echo "${t/./}"; }   # wall clock in microseconds, no fork

# CPU counters in clock ticks: "machine-busy machine-total ours", where ours is the CPU time of
# the processes we started. Sampled around idle waits, (busy - ours) / total is how much CPU
# something else (a build, the tests) was using meanwhile.
cpu_sample() {
    local ours=0 p t
    for p in "${PIDS[@]}"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) && ours=$((ours + t))
    done
    awk -v ours="$ours" '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t, ours; exit }' /proc/stat
}
other_cpu_pct() {  # sample-before sample-after -> percent of all CPUs used by other processes
    local b0 t0 o0 b1 t1 o1 pct
    read -r b0 t0 o0 <<<"$1"; read -r b1 t1 o1 <<<"$2"
    pct=$(( t1 > t0 ? 100 * ((b1 - b0) - (o1 - o0)) / (t1 - t0) : 0 ))
    echo $(( pct < 0 ? 0 : pct ))
}

rss_kb() {  # pid -> VmRSS in kB (resident memory of the whole .NET process)
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

ensure_alive() {  # pid logfile: die with the exit status if the process has ended meanwhile
    kill -0 "$1" 2>/dev/null && return 0
    local rc=0
    wait "$1" 2>/dev/null || rc=$?
    forget_pid "$1"
    tail -n 20 "$2" >&2 || true
    # 143/137 with an empty log: someone else sent SIGTERM/SIGKILL (e.g. a `pkill -f Agentry`).
    die "process $1 ended unexpectedly, exit status $rc (143 = SIGTERM, 137 = SIGKILL); log: $2"
}

# Environment of every launched process. Inherited Agentry__*/ConnectionStrings__* variables are
# dropped so a shell set up for something else (Postgres, Redis) does not change what is measured;
# extra VAR=value arguments (a provider's settings) come last and win.
launch_env() {
    local unset=() v
    for v in $(compgen -e); do
        case "$v" in Agentry__*|ConnectionStrings__*|ASPNETCORE_URLS|DOTNET_URLS) unset+=(-u "$v") ;; esac
    done
    LAUNCH_ENV=(env "${unset[@]}"
        ASPNETCORE_ENVIRONMENT=Production DOTNET_ENVIRONMENT=Production
        Logging__LogLevel__Default=Warning
        Agentry__Bootstrap__AdminEmail="$ADMIN_EMAIL" Agentry__Bootstrap__AdminPassword="$ADMIN_PASSWORD"
        # One principal drives all the load: the limiter stays in the path (its cost is measured) but
        # with buckets large enough never to refuse.
        Agentry__RateLimits__Api__PermitsPerPeriod=1000000 Agentry__RateLimits__Api__Period=00:00:00.1 Agentry__RateLimits__Api__Burst=1000000
        Agentry__RateLimits__Workspace__PermitsPerPeriod=1000000 Agentry__RateLimits__Workspace__Period=00:00:00.1 Agentry__RateLimits__Workspace__Burst=1000000
        "$@")
}

LAST_PID=""
start_dll() {  # workdir port logfile [verb] -> LAST_PID; runs `dotnet Agentry.dll` in workdir
    local workdir="$1" port="$2" logfile="$3"; shift 3
    mkdir -p "$workdir"
    # `exec` so $! is the dotnet process itself (its /proc status is the app's memory).
    ( cd "$workdir" && exec "${LAUNCH_ENV[@]}" dotnet "$PUBLISH/Agentry.dll" "$@" --urls "http://127.0.0.1:$port" ) \
        >"$logfile" 2>&1 </dev/null &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

wait_ready() {  # pid port path logfile: poll until 200; die if the process exits or hangs
    local pid="$1" port="$2" path="$3" logfile="$4" deadline
    deadline=$(( $(now_us) + STARTUP_TIMEOUT * 1000000 ))
    until probe "$port" "$path"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "process $pid exited before answering $path (log: $logfile)"
        fi
        [ "$(now_us)" -lt "$deadline" ] || { tail -n 30 "$logfile" >&2; die "no 200 from $path within ${STARTUP_TIMEOUT}s"; }
        sleep 0.005
    done
}

# wrk output -> "rps p99_ms non2xx socket_errors". wrk prints latencies as 850.00us, 1.23ms, 1.02s, 1.50m.
parse_wrk() {
    awk '
        function ms(v,   n, u) {
            n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000
            if (u == "ms") return n
            if (u == "s")  return n * 1000
            if (u == "m")  return n * 60000
            if (u == "h")  return n * 3600000
            return "nan"
        }
        /^Requests\/sec:/            { rps = $2 }
        /Latency Distribution/      { dist = 1 }
        dist && $1 == "99%"         { p99 = ms($2); dist = 0 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/            { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        END { printf "%s %s %d %d\n", (rps == "" ? "nan" : rps), (p99 == "" ? "nan" : p99), bad, err }
    ' "$1"
}

run_wrk() {  # name url script seconds outfile
    local name="$1" url="$2" script="$3" seconds="$4" out="$5" args=()
    [ -n "$script" ] && args+=(-s "$BENCH_DIR/$script")
    # wrk catches SIGINT and exits 0 with partial results, which would hide Ctrl-C from bash.
    # In the background it ignores SIGINT instead, and `wait` returns at once when we get one.
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency "${args[@]}" "$url" >"$out" 2>&1 </dev/null &
    local pid=$! rc=0
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_pid "$pid"
    [ "$rc" -eq 0 ] || { cat "$out" >&2; die "wrk failed for $name ($url)"; }
}


# The Release build every benchmark measures, in $PUBLISH (SKIP_BUILD=1 reuses the last one). Own
# artifacts path: intermediate files do not collide with a build running in src/ meanwhile. Published
# for the platform, hence ReadyToRun, as a deployment is.
publish_release() {
    if [ "${SKIP_BUILD:-0}" = "1" ] && [ -f "$PUBLISH/Agentry.dll" ]; then
        log "SKIP_BUILD=1: reusing $PUBLISH"
        return
    fi
    log "publishing Release build"
    mkdir -p "$RESULTS"
    rm -rf "$PUBLISH"
    dotnet publish "$ROOT/src/Agentry" -c Release -r linux-x64 --self-contained false -o "$PUBLISH" --artifacts-path "$RESULTS/artifacts" \
        --disable-build-servers -nologo >"$RESULTS/publish.log" 2>&1 \
        || { tail -n 30 "$RESULTS/publish.log" >&2; die "publish failed (log: $RESULTS/publish.log)"; }
}

# A benchmark's own console project (bench/ChatBench, bench/McpBench) built into $RESULTS/NAME, with its own artifacts path;
# SKIP_BUILD=1 reuses the last build.
build_bench() {  # project-dir name assembly-name -> the output directory in BUILT_DIR
    local project="$1" name="$2" assembly="$3"
    BUILT_DIR="$RESULTS/$name"
    if [ "${SKIP_BUILD:-0}" = "1" ] && [ -f "$BUILT_DIR/$assembly.dll" ]; then
        return
    fi
    log "building ${project#"$ROOT/"}"
    dotnet build "$project" -c Release -o "$BUILT_DIR" --artifacts-path "$RESULTS/artifacts-$name" \
        --disable-build-servers -nologo >"$RESULTS/$name-build.log" 2>&1 \
        || { tail -n 30 "$RESULTS/$name-build.log" >&2; die "build failed (log: $RESULTS/$name-build.log)"; }
}

# The tiny llama.cpp model the tests write (bench/ChatBench), as provider `local` (model `local/tiny`, one thread) in the
# environment of the next start_dll. Sets CHAT_BENCH (the built bench) and MODEL (run-dir/tiny.gguf).
tiny_model_env() {  # run-dir
    build_bench "$BENCH_DIR/ChatBench" chat-bench Agentry.Bench
    CHAT_BENCH="$BUILT_DIR"
    MODEL="$1/tiny.gguf"
    dotnet "$CHAT_BENCH/Agentry.Bench.dll" write-model "$MODEL"
    launch_env \
        Agentry__Llm__Providers__0__Name=local Agentry__Llm__Providers__0__Kind=llamacpp \
        Agentry__Llm__Providers__0__Path="$MODEL" Agentry__Llm__Providers__0__Threads=1
}

# --- the API, for the scripts that drive a node or a cluster at $SVC -----------------------------------------------
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

api() {  # method path bearer body [workspace] -> body of a 2xx, or die
    local resp
    resp=$(curl -sS -w '\n%{http_code}' -X "$1" -H 'Content-Type: application/json' -H "Authorization: Bearer $3" \
        ${5:+-H "Agentry-Workspace: $5"} --data-binary "$4" "$SVC$2") || die "$1 $2 failed"
    [[ "${resp##*$'\n'}" == 2* ]] || die "$1 $2 answered ${resp##*$'\n'}: ${resp%$'\n'*}"
    echo "${resp%$'\n'*}"
}

# Signs in at $SVC as the bench administrator and makes a workspace, a webhook agent posting to HOOK-URL and an API key
# with SCOPES (a JSON array); sets and exports BENCH_AGENT and BENCH_API_KEY (the wrk scripts read them).
bench_workspace() {  # hook-url scopes-json
    local token ws
    token=$(curl -sS -X POST "$SVC/connect/token" -d grant_type=password -d client_id=agentry-cli \
        --data-urlencode "username=$ADMIN_EMAIL" --data-urlencode "password=$ADMIN_PASSWORD" | json access_token) || die "could not sign in at $SVC"
    ws=$(api POST /api/v1/workspaces "$token" '{"name":"Bench","slug":"bench"}' | json id)
    BENCH_AGENT=$(api POST /api/v1/agents "$token" "{\"name\":\"noop\",\"kind\":\"webhook\",\"webhook\":{\"url\":\"$1\"}}" "$ws" | json id)
    BENCH_API_KEY=$(api POST "/api/v1/workspaces/$ws/api-keys" "$token" "{\"name\":\"bench\",\"scopes\":$2}" | json key)
    export BENCH_AGENT BENCH_API_KEY
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
