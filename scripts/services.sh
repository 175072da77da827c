#!/usr/bin/env bash
# Throwaway PostgreSQL 15, Redis 7 and RabbitMQ servers for Agentry's tests and
# benchmarks. Everything binds to 127.0.0.1 and lives under one directory, so a
# run can be thrown away with `stop` + `rm -rf`.
#
#   scripts/services.sh start    install missing packages, start all, print env
#   scripts/services.sh stop     stop all (tolerates already-stopped servers)
#   scripts/services.sh status   one line per server: up/down (exit 1 if any down)
#   scripts/services.sh env      eval-able `export` lines for the tests
#
# Settings (environment):
#   AGENTRY_SERVICES_DIR           data/log dir   (default /tmp/agentry-services)
#   AGENTRY_PG_PORT                PostgreSQL     (default 55432)
#   AGENTRY_REDIS_PORT             Redis          (default 56379)
#   AGENTRY_RABBITMQ_PORT          RabbitMQ AMQP  (default 55672)
#   AGENTRY_RABBITMQ_DIST_PORT     Erlang dist    (default AMQP port + 10)
#   AGENTRY_SERVICES_TIMEOUT       seconds to wait for each server (default 60)
set -euo pipefail

BASE="${AGENTRY_SERVICES_DIR:-/tmp/agentry-services}"
PG_PORT="${AGENTRY_PG_PORT:-55432}"
REDIS_PORT="${AGENTRY_REDIS_PORT:-56379}"
RMQ_PORT="${AGENTRY_RABBITMQ_PORT:-55672}"
RMQ_DIST_PORT="${AGENTRY_RABBITMQ_DIST_PORT:-$((RMQ_PORT + 10))}"
TIMEOUT="${AGENTRY_SERVICES_TIMEOUT:-60}"

HOST=127.0.0.1
APP_USER=agentry
APP_PASSWORD=agentry-test
PG_ADMIN_PASSWORD=postgres-test
PG_BIN=/usr/lib/postgresql/15/bin   # not /usr/local/bin: that pg_ctl may be a different build
RMQ_BIN=/usr/lib/rabbitmq/bin       # the real scripts, not Debian's su-wrapper in /usr/sbin
# Node name includes the port so that several checkouts with different ports can coexist.
RMQ_NODE="agentry${RMQ_PORT}@localhost"

PG_DIR="$BASE/postgres"
REDIS_DIR="$BASE/redis"
RMQ_DIR="$BASE/rabbitmq"

log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Run a command as a service user when we are root (postgres refuses to run as
# root; rabbitmq's Erlang cookie lives in the rabbitmq user's home).
as_user() {
    local user="$1"; shift
    if is_root; then runuser -u "$user" -- "$@"; else "$@"; fi
}

owned_dir() {  # owned_dir USER DIR...: create dirs owned by USER
    local user="$1"; shift
    mkdir -p "$@"
    if is_root; then chown "$user:" "$@"; fi
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# wait_for NAME CHECK-FUNCTION: poll until the check passes or TIMEOUT expires.
wait_for() {
    local name="$1" check="$2" deadline=$((SECONDS + TIMEOUT))
    until "$check"; do
        if ((SECONDS >= deadline)); then
            die "$name did not come up within ${TIMEOUT}s (logs under $BASE; port taken by another program?)"
        fi
        sleep 0.5
    done
}

# ---------------------------------------------------------------- packages

install_missing() {
    local missing=()
    [ -x "$PG_BIN/postgres" ] || missing+=(postgresql)
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
    [ -x "$RMQ_BIN/rabbitmq-server" ] || missing+=(rabbitmq-server)
    command -v wrk >/dev/null || missing+=(wrk)
    # The load balancer of scripts/cluster.sh (its own instance; Debian's default site is never started here).
    [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    # The browser the web console's end-to-end tests drive (headless, through playwright-core from npm).
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    ((${#missing[@]} == 0)) && return 0
    is_root || die "missing packages (${missing[*]}); run as root or install them"
    log "installing ${missing[*]} (apt-get, log in /tmp/agentry-apt.log)"
    # Debian's postinst scripts try to start the services; without systemd
    # that is denied and harmless. We start our own instances below.
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
        >/tmp/agentry-apt.log 2>&1 \
        || { tail -n 30 /tmp/agentry-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
}

# ---------------------------------------------------------------- PostgreSQL

pg_ctl() { as_user postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }

pg_psql() {  # pg_psql USER PASSWORD DB SQL
    PGPASSWORD="$2" PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h "$HOST" -p "$PG_PORT" -U "$1" -d "$3" -tA -c "$4"
}

pg_up() { [ "$(pg_psql "$APP_USER" "$APP_PASSWORD" "$APP_USER" 'select 1' 2>/dev/null)" = 1 ]; }
pg_admin_up() { [ "$(pg_psql postgres "$PG_ADMIN_PASSWORD" postgres 'select 1' 2>/dev/null)" = 1 ]; }

pg_start() {
    local t0=$SECONDS
    if pg_up; then log "postgres already running on $HOST:$PG_PORT"; return; fi
    if [ -d "$PG_DIR/data" ] && pg_ctl status >/dev/null 2>&1; then
        log "postgres process exists but does not answer yet; waiting"
    else
        port_busy "$PG_PORT" && die "postgres: port $PG_PORT is in use by something else"
        [ -e "$PG_DIR" ] && log "postgres: removing stale $PG_DIR"
        rm -rf "$PG_DIR"
        owned_dir postgres "$PG_DIR" "$PG_DIR/data" "$PG_DIR/socket"
        log "postgres: initdb in $PG_DIR/data"
        printf '%s\n' "$PG_ADMIN_PASSWORD" >"$PG_DIR/pwfile"
        is_root && chown postgres: "$PG_DIR/pwfile"
        as_user postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A scram-sha-256 \
            --pwfile="$PG_DIR/pwfile" -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
            || { cat "$PG_DIR/initdb.log" >&2; die "postgres: initdb failed"; }
        rm -f "$PG_DIR/pwfile"
        # Settings go into the config file so a plain `pg_ctl start` reuses them.
        # fsync stays on: benchmarks compare against pgbench on this server.
        cat >>"$PG_DIR/data/postgresql.conf" <<EOF

# --- agentry throwaway settings ---
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/socket'
max_connections = 300
EOF
        log "postgres: starting on $HOST:$PG_PORT"
        pg_ctl -l "$PG_DIR/postgres.log" -w -t "$TIMEOUT" start >/dev/null \
            || { tail -n 20 "$PG_DIR/postgres.log" >&2 || true; die "postgres did not start"; }
    fi
    wait_for postgres pg_admin_up
    # Idempotent, so it also repairs a running cluster that lost the role.
    pg_psql postgres "$PG_ADMIN_PASSWORD" postgres "
        DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER') THEN
            CREATE ROLE $APP_USER LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
          END IF;
        END \$\$;" >/dev/null
    if [ -z "$(pg_psql postgres "$PG_ADMIN_PASSWORD" postgres \
            "select 1 from pg_database where datname = '$APP_USER'")" ]; then
        pg_psql postgres "$PG_ADMIN_PASSWORD" postgres "CREATE DATABASE $APP_USER OWNER $APP_USER" >/dev/null
    fi
    wait_for postgres pg_up
    log "postgres up on $HOST:$PG_PORT ($((SECONDS - t0))s)"
}

pg_stop() {
    if [ -d "$PG_DIR/data" ] && pg_ctl status >/dev/null 2>&1; then
        log "postgres: stopping"
        pg_ctl -m fast -w -t "$TIMEOUT" stop >/dev/null
    else
        log "postgres: not running"
    fi
}

# ---------------------------------------------------------------- Redis

redis_cli() { redis-cli -h "$HOST" -p "$REDIS_PORT" "$@"; }
redis_up() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }
redis_down() { ! redis_up; }

redis_start() {
    local t0=$SECONDS
    if redis_up; then log "redis already running on $HOST:$REDIS_PORT"; return; fi
    port_busy "$REDIS_PORT" && die "redis: port $REDIS_PORT is in use by something else"
    [ -e "$REDIS_DIR" ] && log "redis: removing stale $REDIS_DIR"
    rm -rf "$REDIS_DIR"
    mkdir -p "$REDIS_DIR"
    log "redis: starting on $HOST:$REDIS_PORT"
    # No persistence: it is a cache/pub-sub for tests, and saving would skew benchmarks.
    redis-server --daemonize yes --port "$REDIS_PORT" --bind "$HOST" --save '' --appendonly no \
        --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
        || die "redis did not start"
    wait_for redis redis_up
    log "redis up on $HOST:$REDIS_PORT ($((SECONDS - t0))s)"
}

redis_stop() {
    if redis_up; then
        log "redis: stopping"
        redis_cli shutdown nosave >/dev/null 2>&1 || true
        local deadline=$((SECONDS + TIMEOUT))
        while redis_up && ((SECONDS < deadline)); do sleep 0.2; done
    else
        log "redis: not running"
    fi
}

# ---------------------------------------------------------------- RabbitMQ

# Everything RabbitMQ (and the Erlang tools it spawns) reads from the environment.
rmq_env() {
    export RABBITMQ_NODENAME="$RMQ_NODE"
    export RABBITMQ_NODE_IP_ADDRESS="$HOST"
    export RABBITMQ_NODE_PORT="$RMQ_PORT"
    export RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
    export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$RMQ_DIR/log"
    # Own (empty) plugin list: a globally enabled management plugin would bind 0.0.0.0.
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
    # Keep epmd and Erlang distribution (server and CLI) on loopback too.
    export ERL_EPMD_ADDRESS="$HOST"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

# As root, run as the rabbitmq user: its home (/var/lib/rabbitmq) holds the
# Erlang cookie that the package created, shared by server and rabbitmqctl.
rmq_user() { if is_root; then echo rabbitmq; else id -un; fi; }
rmqctl() { (rmq_env; cd "$BASE"; as_user "$(rmq_user)" "$RMQ_BIN/rabbitmqctl" -n "$RMQ_NODE" "$@"); }

# Probe the AMQP port first: any rabbitmqctl call starts epmd as a side effect.
rmq_up() { port_busy "$RMQ_PORT" && rmqctl -q await_startup --timeout 2 >/dev/null 2>&1; }
rmq_user_ok() { rmqctl -q authenticate_user "$APP_USER" "$APP_PASSWORD" >/dev/null 2>&1; }

# RabbitMQ boots slowest, so it is launched first and awaited after the others.
rmq_launch() {
    RMQ_T0=$SECONDS
    RMQ_STATE=started
    # AMQP port open: presumably our node, rmq_await checks it (cheaper than pinging twice).
    if port_busy "$RMQ_PORT"; then RMQ_STATE=running; return; fi
    if port_busy "$RMQ_DIST_PORT"; then
        # Our node still booting from an earlier start? Then just wait for it.
        rmqctl -q ping >/dev/null 2>&1 \
            || die "rabbitmq: dist port $RMQ_DIST_PORT is in use by something else"
        RMQ_STATE=booting
        return
    fi
    [ -e "$RMQ_DIR" ] && log "rabbitmq: removing stale $RMQ_DIR"
    rm -rf "$RMQ_DIR"
    owned_dir "$(rmq_user)" "$RMQ_DIR" "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
    echo '[].' >"$RMQ_DIR/enabled_plugins"
    # Creating the test user at boot saves several slow rabbitmqctl calls.
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
default_user = $APP_USER
default_pass = $APP_PASSWORD
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
EOF
    log "rabbitmq: starting node $RMQ_NODE on $HOST:$RMQ_PORT (dist $RMQ_DIST_PORT)"
    (rmq_env; cd "$RMQ_DIR"; as_user "$(rmq_user)" "$RMQ_BIN/rabbitmq-server" -detached) \
        >"$RMQ_DIR/startup.log" 2>&1 \
        || { cat "$RMQ_DIR/startup.log" >&2; die "rabbitmq did not start"; }
}

rmq_await() {
    # await_startup exits 69 until the node is reachable, so poll it.
    wait_for rabbitmq rmq_up
    if ! rmq_user_ok; then
        # Only for a running node that lost the user; a fresh node has it from rabbitmq.conf.
        log "rabbitmq: (re)creating user $APP_USER"
        rmqctl -q delete_user "$APP_USER" >/dev/null 2>&1 || true
        rmqctl -q add_user "$APP_USER" "$APP_PASSWORD" >/dev/null
        rmqctl -q set_permissions -p / "$APP_USER" '.*' '.*' '.*' >/dev/null
        rmq_user_ok || die "rabbitmq: user $APP_USER cannot authenticate"
    fi
    if [ "$RMQ_STATE" = running ]; then
        log "rabbitmq already running on $HOST:$RMQ_PORT"
    else
        log "rabbitmq up on $HOST:$RMQ_PORT ($((SECONDS - RMQ_T0))s)"
    fi
}

rmq_stop() {
    if { port_busy "$RMQ_PORT" || port_busy "$RMQ_DIST_PORT"; } && rmqctl -q ping >/dev/null 2>&1; then
        log "rabbitmq: stopping node $RMQ_NODE"
        rmqctl -q stop >/dev/null 2>&1 || true
    else
        log "rabbitmq: not running"
    fi
    # epmd outlives the node; it refuses -kill while other nodes are registered.
    if command -v epmd >/dev/null && epmd -names >/dev/null 2>&1; then
        epmd -kill >/dev/null 2>&1 && log "epmd: stopped" || log "epmd: left running (other nodes registered)"
    fi
}

# ---------------------------------------------------------------- commands

cmd_env() {
    local redis_bin
    redis_bin="$(command -v redis-server || echo /usr/bin/redis-server)"
    cat <<EOF
export AGENTRY_TEST_POSTGRES='Host=$HOST;Port=$PG_PORT;Username=$APP_USER;Password=$APP_PASSWORD;Database=$APP_USER'
export AGENTRY_TEST_POSTGRES_ADMIN='Host=$HOST;Port=$PG_PORT;Username=postgres;Password=$PG_ADMIN_PASSWORD;Database=postgres'
export AGENTRY_TEST_REDIS='$HOST:$REDIS_PORT'
export AGENTRY_TEST_RABBITMQ='amqp://$APP_USER:$APP_PASSWORD@$HOST:$RMQ_PORT/'
export AGENTRY_REDIS_SERVER_BIN='$redis_bin'
export AGENTRY_RABBITMQ_BIN='$RMQ_BIN'
export AGENTRY_POSTGRES_BIN='$PG_BIN'
EOF
}

cmd_start() {
    install_missing
    mkdir -p "$BASE"
    chmod 755 "$BASE"   # postgres and rabbitmq users must reach their subdirs
    # Serialise concurrent starts (e.g. two test runs at once). -o: the daemons
    # we spawn must not inherit the lock's file descriptor.
    exec flock -o "$BASE/.lock" "$(readlink -f "$0")" __start-locked
}

cmd_start_locked() {
    local t0=$SECONDS
    rmq_launch
    pg_start
    redis_start
    rmq_await
    log "all servers up (${TIMEOUT}s limit each, took $((SECONDS - t0))s)"
    cmd_env
}

cmd_stop() {
    pg_stop
    redis_stop
    rmq_stop
}

cmd_status() {
    local rc=0
    if pg_up; then echo "postgres  up    $HOST:$PG_PORT"; else echo "postgres  down  $HOST:$PG_PORT"; rc=1; fi
    if redis_up; then echo "redis     up    $HOST:$REDIS_PORT"; else echo "redis     down  $HOST:$REDIS_PORT"; rc=1; fi
    if rmq_up; then echo "rabbitmq  up    $HOST:$RMQ_PORT"; else echo "rabbitmq  down  $HOST:$RMQ_PORT"; rc=1; fi
    return $rc
}

case "${1:-}" in
    start) cmd_start ;;
    __start-locked) cmd_start_locked ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
