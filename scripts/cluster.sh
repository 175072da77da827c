#!/usr/bin/env bash
# Agentry as a cluster on one machine, for trying the scaled-out topology and for the cluster tests:
# PostgreSQL, Redis and RabbitMQ (scripts/services.sh), a ChromaDB server, 2 API nodes, 2 worker nodes, and nginx
# balancing the API nodes on one port. Everything binds to 127.0.0.1 and lives under one directory.
#
#   scripts/cluster.sh start          start whatever is not running yet (so it also brings back a killed node)
#   scripts/cluster.sh stop           stop the nodes, nginx and ChromaDB (and the servers, if this script started them)
#   scripts/cluster.sh status         one line per part: up/down (exit 1 if any is down)
#   scripts/cluster.sh kill NODE      SIGKILL one node (api-1, api-2, worker-1, worker-2): a crash, for tests
#   scripts/cluster.sh env            eval-able export lines: the balancer's URL, each node's URL, the admin login
#
# Settings (environment):
#   AGENTRY_CLUSTER_DIR        data, logs, pid files   (default /tmp/agentry-cluster)
#   AGENTRY_CLUSTER_PORT       nginx; the nodes take the next four ports and ChromaDB the fifth (default 8800)
#   AGENTRY_CLUSTER_APP        a directory with a built Agentry.dll (default: published into the cluster directory)
#   AGENTRY_CLUSTER_DATABASE   the PostgreSQL database (default agentry_cluster_PORT; made anew for a new directory)
#   AGENTRY_CLUSTER_APIS       API nodes, 1 or 2 (default 2); AGENTRY_CLUSTER_WORKERS: worker nodes, 1 or 2 (default 2)
#   Agentry__*                 any other Agentry setting is passed on to every node (e.g. model providers)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${AGENTRY_CLUSTER_DIR:-/tmp/agentry-cluster}"
PORT="${AGENTRY_CLUSTER_PORT:-8800}"
DATABASE="${AGENTRY_CLUSTER_DATABASE:-agentry_cluster_$PORT}"
HOST=127.0.0.1
APIS="${AGENTRY_CLUSTER_APIS:-2}"
WORKERS="${AGENTRY_CLUSTER_WORKERS:-2}"
[[ "$APIS" =~ ^[12]$ && "$WORKERS" =~ ^[12]$ ]] || { echo "cluster: AGENTRY_CLUSTER_APIS and AGENTRY_CLUSTER_WORKERS must be 1 or 2" >&2; exit 2; }
NODES=(api-1 worker-1)
((APIS == 2)) && NODES+=(api-2)
((WORKERS == 2)) && NODES+=(worker-2)
CHROMA_PORT=$((PORT + 5))
TIMEOUT=90

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: ERROR: $*" >&2; exit 1; }

node_port() {  # node_port NODE
    case "$1" in api-1) echo $((PORT + 1)) ;; api-2) echo $((PORT + 2)) ;; worker-1) echo $((PORT + 3)) ;; worker-2) echo $((PORT + 4)) ;;
        *) die "unknown node '$1' (nodes: ${NODES[*]})" ;; esac
}
node_role() { echo "${1%-*}"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

wait_for() {  # wait_for NAME URL
    local deadline=$((SECONDS + TIMEOUT))
    until http_ok "$2"; do
        ((SECONDS < deadline)) || die "$1 did not answer $2 within ${TIMEOUT}s (log: $DIR/$1.log)"
        sleep 0.5
    done
}

# A value of an Npgsql connection string: conn_get KEY CONNECTION-STRING.
conn_get() { tr ';' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# ---------------------------------------------------------------- servers

start_servers() {
    if ! "$ROOT/scripts/services.sh" status >/dev/null 2>&1; then
        touch "$DIR/started-services"
    fi
    "$ROOT/scripts/services.sh" start >/dev/null
    eval "$("$ROOT/scripts/services.sh" env)"
    local admin="$AGENTRY_TEST_POSTGRES_ADMIN" owner
    owner="$(conn_get Username "$AGENTRY_TEST_POSTGRES")"
    local psql=(env PGPASSWORD="$(conn_get Password "$admin")" "$AGENTRY_POSTGRES_BIN/psql" -X -q -tA -v ON_ERROR_STOP=1
        -h "$(conn_get Host "$admin")" -p "$(conn_get Port "$admin")" -U "$(conn_get Username "$admin")" -d postgres)
    # A new cluster directory is a new cluster: a database left by an earlier one (another admin, other keys) goes.
    if [ ! -f "$DIR/database" ]; then
        "${psql[@]}" -c "drop database if exists \"$DATABASE\" with (force)" >/dev/null
        "${psql[@]}" -c "create database \"$DATABASE\" owner \"$owner\"" >/dev/null
        echo "$DATABASE" >"$DIR/database"
    fi
}

start_chroma() {
    pid_alive "$DIR/chroma.pid" && return 0
    source "$ROOT/scripts/npm-servers.sh"
    install_chroma || die "ChromaDB could not be installed"
    mkdir -p "$DIR/chroma"
    setsid node "$CHROMA_DIR/node_modules/chromadb/dist/cli.mjs" run --path "$DIR/chroma" --host "$HOST" --port "$CHROMA_PORT" \
        >"$DIR/chroma.log" 2>&1 </dev/null &
    echo $! >"$DIR/chroma.pid"
    wait_for chroma "http://$HOST:$CHROMA_PORT/api/v2/heartbeat"
}

# ---------------------------------------------------------------- nodes

app_dir() {
    if [ -n "${AGENTRY_CLUSTER_APP:-}" ]; then
        [ -f "$AGENTRY_CLUSTER_APP/Agentry.dll" ] || die "AGENTRY_CLUSTER_APP has no Agentry.dll"
        echo "$AGENTRY_CLUSTER_APP"
        return
    fi
    if [ ! -f "$DIR/app/Agentry.dll" ]; then
        log "publishing Agentry into $DIR/app"
        dotnet publish "$ROOT/src/Agentry" -c Release -o "$DIR/app" --nologo -v quiet >"$DIR/publish.log" 2>&1 \
            || { tail -n 30 "$DIR/publish.log" >&2; die "dotnet publish failed"; }
    fi
    echo "$DIR/app"
}

# The settings every node shares; the role and the port are the node's own. Needs the servers' settings (start_servers).
node_env() {
    local pg="$AGENTRY_TEST_POSTGRES" own
    own="$(conn_get Database "$pg")"
    cat <<EOF
ASPNETCORE_ENVIRONMENT=Production
AGENTRY_SECRETS_DIR=$DIR/secrets
Agentry__Storage__Provider=postgres
ConnectionStrings__Agentry=${pg/Database=$own/Database=$DATABASE}
Agentry__Cache__Redis=$AGENTRY_TEST_REDIS
Agentry__Cache__InstanceName=cluster-$(cat "$DIR/database")-$(stat -c %Y "$DIR/database")
Agentry__Queue__Provider=rabbitmq
Agentry__Queue__RabbitMqUri=$AGENTRY_TEST_RABBITMQ
Agentry__Queue__RabbitMqQueue=agentry.cluster$PORT
Agentry__Knowledge__Chroma__Url=http://$HOST:$CHROMA_PORT
Agentry__Hosting__TrustedProxies__0=$HOST
Agentry__Tokens__Issuer=http://$HOST:$PORT/
$(for ((i = 1; i <= APIS; i++)); do echo "Agentry__Kong__Nodes__$((i - 1))=$HOST:$((PORT + i))"; done)
Logging__LogLevel__Microsoft.EntityFrameworkCore.Database.Command=Warning
Agentry__Bootstrap__AdminEmail=$ADMIN_EMAIL
Agentry__Bootstrap__AdminPassword=$ADMIN_PASSWORD
EOF
}

admin_login() {
    ADMIN_EMAIL="${Agentry__Bootstrap__AdminEmail:-}"
    ADMIN_PASSWORD="${Agentry__Bootstrap__AdminPassword:-}"
    if [ -z "$ADMIN_EMAIL" ]; then
        [ -f "$DIR/admin" ] || printf 'admin@cluster.local\n%s\n' "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >"$DIR/admin"
        ADMIN_EMAIL="$(sed -n 1p "$DIR/admin")"
        ADMIN_PASSWORD="$(sed -n 2p "$DIR/admin")"
    fi
}

start_node() {  # start_node NODE APP-DIR
    local node="$1" app="$2" port
    port="$(node_port "$node")"
    pid_alive "$DIR/$node.pid" && return 0
    local settings=()
    mapfile -t settings < <(node_env)
    # setsid: a node is a process group of its own, so a kill reaches only it.
    env "${settings[@]}" Agentry__Role="$(node_role "$node")" \
        setsid dotnet "$app/Agentry.dll" --urls "http://$HOST:$port" >>"$DIR/$node.log" 2>&1 </dev/null &
    echo $! >"$DIR/$node.pid"
}

start_nginx() {
    pid_alive "$DIR/nginx/nginx.pid" && return 0
    mkdir -p "$DIR/nginx/temp"
    local user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    cat >"$DIR/nginx/nginx.conf" <<EOF
# Written by scripts/cluster.sh: the API nodes behind one port.
$user
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $DIR/nginx/temp/body;
    proxy_temp_path $DIR/nginx/temp/proxy;
    fastcgi_temp_path $DIR/nginx/temp/fastcgi;
    uwsgi_temp_path $DIR/nginx/temp/uwsgi;
    scgi_temp_path $DIR/nginx/temp/scgi;
    upstream agentry {
        # A node that refuses is passed over for 5 s; /health/ready is what an active checker (Kong) would ask.
$(for ((i = 1; i <= APIS; i++)); do echo "        server $HOST:$((PORT + i)) max_fails=1 fail_timeout=5s;"; done)
        keepalive 64;
    }
    map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
    server {
        listen $HOST:$PORT;
        client_max_body_size 21m;
        location / {
            proxy_pass http://agentry;
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            # Replies and event streams flow as they are written.
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 3600s;
            proxy_connect_timeout 2s;
            # A request that never reached a node (refused, reset before sending) goes to the other one.
            proxy_next_upstream error timeout;
        }
    }
}
EOF
    /usr/sbin/nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" \
        || die "nginx did not start (see $DIR/nginx/error.log)"
}

# ---------------------------------------------------------------- commands

cmd_start() {
    mkdir -p "$DIR/secrets"
    start_servers
    [ -x /usr/sbin/nginx ] || die "nginx is missing (scripts/services.sh start installs it as root)"
    admin_login
    local app
    app="$(app_dir)"
    start_chroma
    # Migrations run once, before any node starts; the first API node bootstraps the admin before the rest start.
    if [ ! -f "$DIR/migrated" ] || [ "$DIR/migrated" -ot "$app/Agentry.dll" ]; then
        local settings=()
        mapfile -t settings < <(node_env)
        env "${settings[@]}" dotnet "$app/Agentry.dll" migrate >>"$DIR/migrate.log" 2>&1 \
            || { tail -n 20 "$DIR/migrate.log" >&2; die "migrations failed"; }
        touch "$DIR/migrated"
    fi
    start_node api-1 "$app"
    wait_for api-1 "http://$HOST:$((PORT + 1))/health/ready"
    for node in "${NODES[@]:1}"; do
        start_node "$node" "$app"
    done
    for node in "${NODES[@]:1}"; do
        wait_for "$node" "http://$HOST:$(node_port "$node")/health/ready"
    done
    start_nginx
    wait_for nginx "http://$HOST:$PORT/health/ready"
    log "up: http://$HOST:$PORT ($(for node in "${NODES[@]}"; do printf '%s :%s, ' "$node" "$(node_port "$node")"; done)chroma :$CHROMA_PORT)"
    cmd_env
}

stop_pid() {  # stop_pid NAME PID-FILE: SIGTERM, then SIGKILL after 30 s
    local file="$2"
    pid_alive "$file" || { rm -f "$file"; return 0; }
    local pid
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$1 did not stop within 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

cmd_stop() {
    [ -d "$DIR" ] || return 0
    if pid_alive "$DIR/nginx/nginx.pid"; then
        /usr/sbin/nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" -s quit 2>/dev/null || true
    fi
    for node in api-1 api-2 worker-1 worker-2; do
        stop_pid "$node" "$DIR/$node.pid" &
    done
    wait
    stop_pid chroma "$DIR/chroma.pid"
    stop_pid nginx "$DIR/nginx/nginx.pid"
    if [ -f "$DIR/started-services" ]; then
        "$ROOT/scripts/services.sh" stop
        rm -f "$DIR/started-services"
    fi
}

cmd_kill() {
    local node="$1"
    node_port "$node" >/dev/null
    pid_alive "$DIR/$node.pid" || die "$node is not running"
    kill -KILL "$(cat "$DIR/$node.pid")"
    rm -f "$DIR/$node.pid"
    log "killed $node"
}

cmd_status() {
    local rc=0
    line() {  # line NAME PID-FILE URL
        if pid_alive "$2" && http_ok "$3"; then echo "$1 up    $3"; else echo "$1 down  $3"; rc=1; fi
    }
    for node in "${NODES[@]}"; do
        line "$(printf '%-9s' "$node")" "$DIR/$node.pid" "http://$HOST:$(node_port "$node")/health/ready"
    done
    line "chroma   " "$DIR/chroma.pid" "http://$HOST:$CHROMA_PORT/api/v2/heartbeat"
    line "nginx    " "$DIR/nginx/nginx.pid" "http://$HOST:$PORT/health/ready"
    return $rc
}

cmd_env() {
    admin_login
    cat <<EOF
export AGENTRY_CLUSTER_URL='http://$HOST:$PORT'
export AGENTRY_CLUSTER_API_1='http://$HOST:$((PORT + 1))'
export AGENTRY_CLUSTER_API_2='http://$HOST:$((PORT + 2))'
export AGENTRY_CLUSTER_WORKER_1='http://$HOST:$((PORT + 3))'
export AGENTRY_CLUSTER_WORKER_2='http://$HOST:$((PORT + 4))'
export AGENTRY_CLUSTER_ADMIN_EMAIL='$ADMIN_EMAIL'
export AGENTRY_CLUSTER_ADMIN_PASSWORD='$ADMIN_PASSWORD'
EOF
}

mkdir -p "$DIR"
case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill) [ $# = 2 ] || die "usage: $0 kill NODE"; cmd_kill "$2" ;;
    env) cmd_env ;;
    *) echo "usage: $0 start|stop|status|kill NODE|env" >&2; exit 2 ;;
esac
