#!/usr/bin/env bash
# Installs and runs a real Keystone and masakari-api (from PyPI) on 127.0.0.1 for the
# end-to-end tests, plus a Nova stand-in and, on request, masakari-engine with RabbitMQ.
#
# Commands:
#   install            create the venv from e2e/constraints.txt (skipped when up to date)
#   start              start Keystone, the Nova stand-in and masakari-api (no engine);
#                      a stack that is already running is stopped first
#   stop               stop every process this script started, by PID
#   status             show the state file and which recorded processes are alive
#   restart-masakari   stop and start masakari-api only, keeping its database
#   stop-masakari      stop masakari-api only; the other services keep running
#   start-masakari     start masakari-api again after stop-masakari (same as restart-masakari)
#   restart-keystone   stop and start Keystone only (picks up E2E_TOKEN_EXPIRATION)
#   set-maintenance true|false HOST...
#                      set on_maintenance of hosts in masakari's database directly
#   start-engine       start RabbitMQ and masakari-engine, and switch masakari-api to them;
#                      exits 3 when RabbitMQ cannot be installed or started
#
# Environment (all optional):
#   E2E_HOME                    state, logs, snapshot and default venv (default <repo>/.e2e)
#   E2E_VENV                    venv path (default $E2E_HOME/venv); may lie outside the clone
#   E2E_SNAPSHOT_DIR            snapshot of the provisioned stack (default $E2E_HOME/snapshot);
#                               may lie outside the clone
#   E2E_PYTHON                  interpreter for the venv, CPython >= 3.11 (default python3.11,
#                               else python3)
#   E2E_KEYSTONE_PORT, E2E_MASAKARI_PORT, E2E_NOVA_PORT
#                               fixed ports (default: the ports of the last run when free,
#                               else any free port)
#   E2E_RABBIT_PORT, E2E_RABBIT_DIST_PORT, E2E_EPMD_PORT
#                               RabbitMQ ports (default: any free port)
#   E2E_HOSTS                   comma-separated host names registered in the segment
#                               (default compute-0,...,compute-31)
#   E2E_SEGMENT_NAME            failover segment name (default segment-1)
#   E2E_TOKEN_EXPIRATION        Keystone token lifetime in seconds (default 3600)
#   E2E_NOTIFICATION_DELAY_MAX  masakari-api random delay before storing a notification,
#                               in seconds (default 0; masakari's own default is 5)
#   E2E_START_TIMEOUT           seconds to wait for each service (default 60)
#
# The state file $E2E_HOME/stack.env holds KEY=VALUE lines with every URL, port,
# credential and PID; tests find it through MASAKARI_E2E_STACK.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$E2E_DIR")
E2E_HOME=${E2E_HOME:-$REPO_DIR/.e2e}
E2E_VENV=${E2E_VENV:-$E2E_HOME/venv}
STATE_FILE=$E2E_HOME/stack.env
SNAPSHOT_DIR=${E2E_SNAPSHOT_DIR:-$E2E_HOME/snapshot}
LOG_DIR=$E2E_HOME/logs
E2E_HOSTS=${E2E_HOSTS:-$(seq -s, -f 'compute-%g' 0 31)}
E2E_SEGMENT_NAME=${E2E_SEGMENT_NAME:-segment-1}
# The restart commands keep the running value unless the caller sets one.
TOKEN_EXPIRATION_REQUESTED=${E2E_TOKEN_EXPIRATION:-}
NOTIFICATION_DELAY_MAX_REQUESTED=${E2E_NOTIFICATION_DELAY_MAX:-}
E2E_TOKEN_EXPIRATION=${E2E_TOKEN_EXPIRATION:-3600}
E2E_NOTIFICATION_DELAY_MAX=${E2E_NOTIFICATION_DELAY_MAX:-0}
E2E_START_TIMEOUT=${E2E_START_TIMEOUT:-60}
PYTHON=$E2E_VENV/bin/python
PROVISION=$E2E_DIR/provision.py
RABBIT_UNAVAILABLE=3

# Keep loopback traffic away from any proxy configured in the environment.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY=$no_proxy

log() { printf 'stack.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v start="$1" -v end="$EPOCHREALTIME" 'BEGIN { printf "%.1f", end - start }'; }

# ---------------------------------------------------------------- install

install_stamp() {
    local python=$1
    {
        cat "$E2E_DIR/constraints.txt"
        "$python" -c 'import sys; print(sys.version)'
        echo "keystone==30.0.0 masakari==22.0.0 gunicorn"
    } | sha256sum | cut -d' ' -f1
}

find_python() {
    local candidate
    for candidate in ${E2E_PYTHON:-} python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
    # NOTE: e2e/constraints.txt was generated on CPython 3.11; other versions may need
    # other pins.
    die "no CPython >= 3.11 found (keystone 30 and masakari 22 need it); set E2E_PYTHON"
}

cmd_install() {
    local started python stamp
    started=$(now)
    python=$(find_python)
    stamp=$(install_stamp "$python")
    if [[ -f $E2E_VENV/.e2e-stamp && $(cat "$E2E_VENV/.e2e-stamp") == "$stamp" ]]; then
        log "venv $E2E_VENV is up to date"
        return
    fi
    log "creating venv $E2E_VENV with $python"
    rm -rf "$E2E_VENV"
    "$python" -m venv "$E2E_VENV"
    "$E2E_VENV/bin/pip" install --quiet --disable-pip-version-check \
        -c "$E2E_DIR/constraints.txt" pip
    "$E2E_VENV/bin/pip" install --quiet --disable-pip-version-check \
        -c "$E2E_DIR/constraints.txt" keystone==30.0.0 masakari==22.0.0 gunicorn
    echo "$stamp" >"$E2E_VENV/.e2e-stamp"
    log "installed in $(elapsed "$started") s"
}

require_venv() {
    [[ -f $E2E_VENV/.e2e-stamp ]] || die "venv $E2E_VENV is missing; run e2e/stack.sh install"
}

# ---------------------------------------------------------------- processes

# Starts a command in its own session so stop can end it with all its children, and
# prints its PID. Output goes to $LOG_DIR/NAME.log.
spawn() {
    local name=$1
    shift
    setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $!
}

# True while PID runs. A zombie counts as stopped, because an earlier invocation started
# the process and its new parent may reap it late.
alive() {
    local stat
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Stops the process group led by PID, which spawn created. Waits up to 10 s, then kills.
# Leaves PID alone when its command line no longer names the service, because after a
# reboot the recorded PID may belong to another program.
terminate() {
    local name=$1 pid=${2:-} i started marker
    alive "$pid" || return 0
    case $name in
    keystone) marker=keystone_wsgi ;;
    nova) marker=nova_standin.py ;;
    rabbitmq) marker=rabbitmq-server ;;
    *) marker=$name ;;
    esac
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"; then
        log "pid $pid is no longer $name; leaving it alone"
        return 0
    fi
    started=$(now)
    if [[ $(ps -o pgid= -p "$pid" | tr -d ' ') == "$pid" ]]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    for i in $(seq 100); do
        alive "$pid" || { log "stopped $name (pid $pid) in $(elapsed "$started") s"; return 0; }
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    log "killed $name (pid $pid) after 10 s"
}

wait_http() {
    local name=$1 url=$2 pid=$3
    if ! "$PYTHON" "$PROVISION" wait-http "$url" "$E2E_START_TIMEOUT" "$pid"; then
        log "$name did not become ready; last lines of $LOG_DIR/$name.log:"
        tail -n 30 "$LOG_DIR/$name.log" >&2 || true
        exit 1
    fi
}

require_port_free() {
    local name=$1 port=$2
    "$PYTHON" "$PROVISION" port-free "$port" ||
        die "port $port on 127.0.0.1 (for $name) is already in use; free it or set another port"
}

# Prints the port to use: the configured one, else the previous one when still free,
# else any free port.
choose_port() {
    local configured=$1 previous=$2
    if [[ -n $configured ]]; then
        echo "$configured"
    elif [[ -n $previous ]] && "$PYTHON" "$PROVISION" port-free "$previous"; then
        echo "$previous"
    else
        "$PYTHON" "$PROVISION" free-port
    fi
}

# ---------------------------------------------------------------- state file

# Reads KEY=VALUE lines into shell variables prefixed with S_.
load_state() {
    local file=$1 key value
    [[ -f $file ]] || return 0
    while IFS='=' read -r key value; do
        [[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
        printf -v "S_$key" '%s' "$value"
    done <"$file"
}

# Writes or replaces KEY=VALUE pairs in the state file atomically.
set_state() {
    local tmp=$STATE_FILE.tmp pair key
    touch "$STATE_FILE"
    cp "$STATE_FILE" "$tmp"
    for pair in "$@"; do
        key=${pair%%=*}
        grep -v "^$key=" "$tmp" >"$tmp.2" || true
        echo "$pair" >>"$tmp.2"
        mv "$tmp.2" "$tmp"
    done
    mv "$tmp" "$STATE_FILE"
}

# ---------------------------------------------------------------- configuration

write_keystone_conf() {
    cat >"$RUN_DIR/keystone.conf" <<EOF
[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///$RUN_DIR/keystone.db

[fernet_tokens]
key_repository = $RUN_DIR/fernet-keys

[credential]
key_repository = $RUN_DIR/credential-keys

[identity]
password_hash_rounds = 4

[token]
expiration = $E2E_TOKEN_EXPIRATION
EOF
}

# Writes masakari.conf; $1 is the oslo.messaging transport URL.
write_masakari_conf() {
    local transport_url=$1
    cat >"$RUN_DIR/masakari.conf" <<EOF
[DEFAULT]
host = masakari-e2e
use_stderr = true
auth_strategy = keystone
transport_url = $transport_url
masakari_api_listen = 127.0.0.1
masakari_api_listen_port = $MASAKARI_PORT
masakari_api_workers = 1
notification_delay_max = $E2E_NOTIFICATION_DELAY_MAX
wait_period_after_service_update = 1
# masakari-engine retries notifications left new (sent before it ran) or in error; the
# defaults of 60 s and 120 s would let such a retry land in a later test.
retry_notification_new_status_interval = 5
process_unfinished_notifications_interval = 5
nova_catalog_admin_info = compute:nova:publicURL
os_privileged_user_name = masakari
os_privileged_user_password = $MASAKARI_PASSWORD
os_privileged_user_tenant = service
os_privileged_user_auth_url = $KEYSTONE_URL/v3
os_user_domain_name = Default
os_project_domain_name = Default

[wsgi]
api_paste_config = $E2E_VENV/etc/masakari/api-paste.ini

[database]
connection = sqlite:///$RUN_DIR/masakari.db

[taskflow]
connection = sqlite:///$RUN_DIR/taskflow.db

[oslo_concurrency]
lock_path = $RUN_DIR/locks

[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL/v3
auth_url = $KEYSTONE_URL/v3
auth_type = password
username = masakari
password = $MASAKARI_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
EOF
}

# ---------------------------------------------------------------- services

launch_keystone() {
    require_port_free keystone "$KEYSTONE_PORT"
    KEYSTONE_PID=$(OS_KEYSTONE_CONFIG_FILES=$RUN_DIR/keystone.conf PYTHONPATH=$E2E_DIR \
        spawn keystone "$E2E_VENV/bin/gunicorn" --no-control-socket --workers 2 \
        --bind "127.0.0.1:$KEYSTONE_PORT" --chdir "$RUN_DIR" keystone_wsgi:application)
}

launch_nova() {
    require_port_free nova "$NOVA_PORT"
    NOVA_PID=$(spawn nova "$PYTHON" "$E2E_DIR/nova_standin.py" "$NOVA_PORT" "$E2E_HOSTS")
}

launch_masakari() {
    require_port_free masakari-api "$MASAKARI_PORT"
    MASAKARI_PID=$(spawn masakari-api "$E2E_VENV/bin/masakari-api" \
        --config-file "$RUN_DIR/masakari.conf")
}

keystone_manage() {
    "$E2E_VENV/bin/keystone-manage" --config-file "$RUN_DIR/keystone.conf" "$@" \
        >>"$LOG_DIR/keystone-manage.log" 2>&1 ||
        die "keystone-manage $1 failed; see $LOG_DIR/keystone-manage.log"
}

# Provisions an empty stack: databases, keys, Keystone records, segment and hosts. Leaves
# all three services running and sets the identifiers in shell variables.
provision_cold() {
    ADMIN_PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')
    MASAKARI_PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')
    write_keystone_conf
    mkdir -p "$RUN_DIR/fernet-keys" "$RUN_DIR/credential-keys"
    keystone_manage db_sync
    keystone_manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    keystone_manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    keystone_manage bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
        --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$KEYSTONE_URL/v3" \
        --bootstrap-internal-url "$KEYSTONE_URL/v3" \
        --bootstrap-public-url "$KEYSTONE_URL/v3"
    launch_keystone
    launch_nova
    wait_http keystone "$KEYSTONE_URL/v3" "$KEYSTONE_PID"
    wait_http nova "$NOVA_URL/" "$NOVA_PID"

    local ids
    ids=$(E2E_KEYSTONE_URL=$KEYSTONE_URL E2E_ADMIN_PASSWORD=$ADMIN_PASSWORD \
        E2E_MASAKARI_PASSWORD=$MASAKARI_PASSWORD E2E_MASAKARI_ENDPOINT=$MASAKARI_ENDPOINT_TEMPLATE \
        E2E_NOVA_ENDPOINT=$NOVA_URL/v2.1 "$PYTHON" "$PROVISION" keystone)
    eval "$ids"

    write_masakari_conf fake://
    "$E2E_VENV/bin/masakari-manage" --config-file "$RUN_DIR/masakari.conf" db sync \
        >>"$LOG_DIR/masakari-manage.log" 2>&1 ||
        die "masakari-manage db sync failed; see $LOG_DIR/masakari-manage.log"
    launch_masakari
    wait_http masakari-api "$MASAKARI_URL/" "$MASAKARI_PID"
    ids=$(E2E_KEYSTONE_URL=$KEYSTONE_URL E2E_ADMIN_PASSWORD=$ADMIN_PASSWORD \
        E2E_MASAKARI_URL=$MASAKARI_URL E2E_SEGMENT_NAME=$E2E_SEGMENT_NAME E2E_HOSTS=$E2E_HOSTS \
        "$PYTHON" "$PROVISION" masakari)
    eval "$ids"
}

# Identifiers that provisioning creates and a warm start reuses from the snapshot.
SNAPSHOT_KEYS=(ADMIN_PASSWORD MASAKARI_PASSWORD ADMIN_PROJECT_ID SERVICE_PROJECT_ID
    MASAKARI_USER_ID APP_CRED_ID APP_CRED_SECRET SEGMENT_UUID KEYSTONE_PORT MASAKARI_PORT NOVA_PORT)

# Digest of everything that shapes the provisioned databases. Ports are not part of it:
# a warm start on other ports rewrites the catalog endpoints.
snapshot_key() {
    {
        cat "$E2E_DIR/constraints.txt" "$E2E_DIR/stack.sh" "$E2E_DIR/provision.py"
        echo "$E2E_HOSTS $E2E_SEGMENT_NAME"
        cat "$E2E_VENV/.e2e-stamp"
    } | sha256sum | cut -d' ' -f1
}

save_snapshot() {
    local tmp=$SNAPSHOT_DIR.tmp db key
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for db in keystone masakari taskflow; do
        "$PYTHON" "$PROVISION" backup "$RUN_DIR/$db.db" "$tmp/$db.db"
    done
    cp -a "$RUN_DIR/fernet-keys" "$RUN_DIR/credential-keys" "$tmp/"
    for key in "${SNAPSHOT_KEYS[@]}"; do
        echo "$key=${!key}"
    done >"$tmp/ids.env"
    echo "$1" >"$tmp/key"
    rm -rf "$SNAPSHOT_DIR"
    mv "$tmp" "$SNAPSHOT_DIR"
}

# Copies the snapshot into the run directory and starts the services on it.
start_from_snapshot() {
    cp -a "$SNAPSHOT_DIR"/*.db "$SNAPSHOT_DIR/fernet-keys" "$SNAPSHOT_DIR/credential-keys" "$RUN_DIR/"
    write_keystone_conf
    write_masakari_conf fake://
    launch_keystone
    launch_nova
    launch_masakari
    wait_http keystone "$KEYSTONE_URL/v3" "$KEYSTONE_PID"
    if [[ $KEYSTONE_PORT != "$S_KEYSTONE_PORT" || $MASAKARI_PORT != "$S_MASAKARI_PORT" ||
        $NOVA_PORT != "$S_NOVA_PORT" ]]; then
        log "ports differ from the snapshot; updating the catalog endpoints"
        E2E_KEYSTONE_URL=$KEYSTONE_URL E2E_ADMIN_PASSWORD=$ADMIN_PASSWORD \
            E2E_MASAKARI_ENDPOINT=$MASAKARI_ENDPOINT_TEMPLATE E2E_NOVA_ENDPOINT=$NOVA_URL/v2.1 \
            "$PYTHON" "$PROVISION" endpoints
    fi
    wait_http nova "$NOVA_URL/" "$NOVA_PID"
    wait_http masakari-api "$MASAKARI_URL/" "$MASAKARI_PID"
}

set_urls() {
    KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT
    MASAKARI_URL=http://127.0.0.1:$MASAKARI_PORT
    NOVA_URL=http://127.0.0.1:$NOVA_PORT
    MASAKARI_ENDPOINT_TEMPLATE="$MASAKARI_URL/v1/%(tenant_id)s"
}

write_full_state() {
    local tmp=$STATE_FILE.tmp
    cat >"$tmp" <<EOF
E2E_HOME=$E2E_HOME
E2E_VENV=$E2E_VENV
RUN_DIR=$RUN_DIR
LOG_DIR=$LOG_DIR
KEYSTONE_PORT=$KEYSTONE_PORT
KEYSTONE_URL=$KEYSTONE_URL
KEYSTONE_AUTH_URL=$KEYSTONE_URL/v3
MASAKARI_PORT=$MASAKARI_PORT
MASAKARI_URL=$MASAKARI_URL
MASAKARI_ENDPOINT=$MASAKARI_URL/v1/$SERVICE_PROJECT_ID
NOVA_PORT=$NOVA_PORT
NOVA_URL=$NOVA_URL/v2.1
REGION_NAME=RegionOne
USER_DOMAIN_NAME=Default
PROJECT_DOMAIN_NAME=Default
ADMIN_USERNAME=admin
ADMIN_PASSWORD=$ADMIN_PASSWORD
ADMIN_PROJECT_NAME=admin
ADMIN_PROJECT_ID=$ADMIN_PROJECT_ID
MASAKARI_USERNAME=masakari
MASAKARI_PASSWORD=$MASAKARI_PASSWORD
MASAKARI_USER_ID=$MASAKARI_USER_ID
SERVICE_PROJECT_NAME=service
SERVICE_PROJECT_ID=$SERVICE_PROJECT_ID
APP_CRED_ID=$APP_CRED_ID
APP_CRED_SECRET=$APP_CRED_SECRET
SEGMENT_NAME=$E2E_SEGMENT_NAME
SEGMENT_UUID=$SEGMENT_UUID
HOSTS=$E2E_HOSTS
TOKEN_EXPIRATION=$E2E_TOKEN_EXPIRATION
NOTIFICATION_DELAY_MAX=$E2E_NOTIFICATION_DELAY_MAX
TRANSPORT_URL=fake://
ENGINE=0
KEYSTONE_PID=$KEYSTONE_PID
NOVA_PID=$NOVA_PID
MASAKARI_PID=$MASAKARI_PID
EOF
    mv "$tmp" "$STATE_FILE"
}

# ---------------------------------------------------------------- commands

cmd_start() {
    local started key name var
    started=$(now)
    require_venv
    if [[ -f $STATE_FILE ]]; then
        cmd_stop
    fi
    mkdir -p "$E2E_HOME" "$LOG_DIR"
    rm -f "$LOG_DIR"/*.log "$E2E_HOME/host-claims"
    RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/masakari-e2e.XXXXXX")
    mkdir -p "$RUN_DIR/locks"

    key=$(snapshot_key)
    if [[ -f $SNAPSHOT_DIR/key && $(cat "$SNAPSHOT_DIR/key") == "$key" ]]; then
        load_state "$SNAPSHOT_DIR/ids.env"
    fi
    KEYSTONE_PORT=$(choose_port "${E2E_KEYSTONE_PORT:-}" "${S_KEYSTONE_PORT:-}")
    MASAKARI_PORT=$(choose_port "${E2E_MASAKARI_PORT:-}" "${S_MASAKARI_PORT:-}")
    NOVA_PORT=$(choose_port "${E2E_NOVA_PORT:-}" "${S_NOVA_PORT:-}")
    [[ $KEYSTONE_PORT != "$MASAKARI_PORT" && $KEYSTONE_PORT != "$NOVA_PORT" &&
        $MASAKARI_PORT != "$NOVA_PORT" ]] ||
        die "ports must differ: keystone $KEYSTONE_PORT, masakari-api $MASAKARI_PORT, nova $NOVA_PORT"
    set_urls

    # Record the run directory first so a later stop can clean up after a failed start.
    echo "RUN_DIR=$RUN_DIR" >"$STATE_FILE"
    trap on_start_failure EXIT

    if [[ -n ${S_APP_CRED_ID:-} ]]; then
        for name in "${SNAPSHOT_KEYS[@]}"; do
            [[ $name == *_PORT ]] && continue
            var=S_$name
            printf -v "$name" '%s' "${!var}"
        done
        log "warm start from snapshot (keystone $KEYSTONE_PORT, masakari-api $MASAKARI_PORT, nova $NOVA_PORT)"
        start_from_snapshot
    else
        log "cold start (keystone $KEYSTONE_PORT, masakari-api $MASAKARI_PORT, nova $NOVA_PORT)"
        provision_cold
        save_snapshot "$key"
    fi
    write_full_state
    trap - EXIT
    log "stack ready in $(elapsed "$started") s; state in $STATE_FILE"
}

on_start_failure() {
    local rc=$?
    [[ $rc -eq 0 ]] && return
    log "start failed; stopping what was started"
    terminate masakari-api "${MASAKARI_PID:-}"
    terminate nova "${NOVA_PID:-}"
    terminate keystone "${KEYSTONE_PID:-}"
    rm -f "$STATE_FILE"
    if [[ -n ${RUN_DIR:-} && $RUN_DIR == */masakari-e2e.* ]]; then
        rm -rf "$RUN_DIR"
    fi
    exit "$rc"
}

cmd_stop() {
    if [[ ! -f $STATE_FILE ]]; then
        log "no stack recorded in $STATE_FILE"
        return 0
    fi
    load_state "$STATE_FILE"
    terminate masakari-engine "${S_ENGINE_PID:-}"
    terminate masakari-api "${S_MASAKARI_PID:-}"
    terminate rabbitmq "${S_RABBIT_PID:-}"
    if [[ -n ${S_EPMD_PORT:-} ]] && command -v epmd >/dev/null; then
        ERL_EPMD_PORT=$S_EPMD_PORT epmd -kill >/dev/null 2>&1 || true
    fi
    terminate nova "${S_NOVA_PID:-}"
    terminate keystone "${S_KEYSTONE_PID:-}"
    if [[ -n ${S_RUN_DIR:-} && $S_RUN_DIR == */masakari-e2e.* ]]; then
        rm -rf "$S_RUN_DIR"
    fi
    rm -f "$STATE_FILE"
    unset "${!S_@}"
}

cmd_status() {
    local name pid rc=0
    if [[ ! -f $STATE_FILE ]]; then
        log "not running (no $STATE_FILE)"
        return 1
    fi
    load_state "$STATE_FILE"
    for name in KEYSTONE NOVA MASAKARI RABBIT ENGINE; do
        pid=S_${name}_PID
        pid=${!pid:-}
        [[ -n $pid ]] || continue
        if alive "$pid"; then
            echo "$name pid $pid running"
        else
            echo "$name pid $pid not running"
            rc=1
        fi
    done
    echo "state file: $STATE_FILE"
    return $rc
}

# Loads the running stack's state into the variables the start functions use.
load_running_stack() {
    [[ -f $STATE_FILE ]] || die "no stack running; run e2e/stack.sh start"
    load_state "$STATE_FILE"
    [[ -n ${S_MASAKARI_PID:-} ]] || die "the stack in $STATE_FILE did not finish starting"
    RUN_DIR=$S_RUN_DIR
    KEYSTONE_PORT=$S_KEYSTONE_PORT
    MASAKARI_PORT=$S_MASAKARI_PORT
    NOVA_PORT=$S_NOVA_PORT
    MASAKARI_PASSWORD=$S_MASAKARI_PASSWORD
    E2E_TOKEN_EXPIRATION=${TOKEN_EXPIRATION_REQUESTED:-$S_TOKEN_EXPIRATION}
    E2E_NOTIFICATION_DELAY_MAX=${NOTIFICATION_DELAY_MAX_REQUESTED:-$S_NOTIFICATION_DELAY_MAX}
    set_urls
}

# Replaces masakari-api with one using transport URL $1.
relaunch_masakari() {
    terminate masakari-api "${S_MASAKARI_PID:-}"
    write_masakari_conf "$1"
    launch_masakari
    wait_http masakari-api "$MASAKARI_URL/" "$MASAKARI_PID"
    set_state "MASAKARI_PID=$MASAKARI_PID" "NOTIFICATION_DELAY_MAX=$E2E_NOTIFICATION_DELAY_MAX" \
        "TRANSPORT_URL=$1"
}

cmd_restart_masakari() {
    local started
    started=$(now)
    require_venv
    load_running_stack
    relaunch_masakari "$S_TRANSPORT_URL"
    log "masakari-api restarted in $(elapsed "$started") s"
}

cmd_stop_masakari() {
    require_venv
    load_running_stack
    terminate masakari-api "${S_MASAKARI_PID:-}"
    log "masakari-api stopped"
}

cmd_restart_keystone() {
    local started
    started=$(now)
    require_venv
    load_running_stack
    terminate keystone "${S_KEYSTONE_PID:-}"
    write_keystone_conf
    launch_keystone
    wait_http keystone "$KEYSTONE_URL/v3" "$KEYSTONE_PID"
    set_state "KEYSTONE_PID=$KEYSTONE_PID" "TOKEN_EXPIRATION=$E2E_TOKEN_EXPIRATION"
    log "keystone restarted in $(elapsed "$started") s"
}

cmd_set_maintenance() {
    require_venv
    load_running_stack
    [[ $# -ge 2 ]] || die "usage: e2e/stack.sh set-maintenance true|false HOST..."
    "$PYTHON" "$PROVISION" maintenance "$RUN_DIR/masakari.db" "$@"
}

# ---------------------------------------------------------------- engine

RABBIT_BIN=/usr/lib/rabbitmq/bin
RABBIT_NODENAME=masakari-e2e@localhost

# Installs Debian's rabbitmq-server when it is missing. Returns non-zero with the reason
# on stderr when that is not possible.
ensure_rabbitmq() {
    [[ -x $RABBIT_BIN/rabbitmq-server ]] && return 0
    if [[ $(id -u) != 0 ]]; then
        log "rabbitmq-server is not installed and installing it needs root"
        return 1
    fi
    command -v apt-get >/dev/null || { log "rabbitmq-server is not installed and apt-get is missing"; return 1; }
    log "installing rabbitmq-server with apt-get"
    # Keep the package from starting a system-wide broker listening on every interface.
    local policy_created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    local rc=0
    {
        apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server
    } >>"$LOG_DIR/apt-get.log" 2>&1 || rc=$?
    [[ $policy_created == 1 ]] && rm -f /usr/sbin/policy-rc.d
    if [[ $rc != 0 || ! -x $RABBIT_BIN/rabbitmq-server ]]; then
        log "apt-get install rabbitmq-server failed (exit $rc); last lines of $LOG_DIR/apt-get.log:"
        tail -n 5 "$LOG_DIR/apt-get.log" >&2 || true
        return 1
    fi
}

# Environment for the loopback RabbitMQ node and its own epmd; used by the server and by
# rabbitmqctl alike.
rabbit_env() {
    export HOME=$RUN_DIR/rabbitmq
    export RABBITMQ_NODENAME=$RABBIT_NODENAME
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT=$RABBIT_PORT
    export RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT
    export RABBITMQ_MNESIA_BASE=$RUN_DIR/rabbitmq/mnesia
    export RABBITMQ_LOG_BASE=$RUN_DIR/rabbitmq/log
    export RABBITMQ_CONFIG_FILE=$RUN_DIR/rabbitmq/rabbitmq
    export RABBITMQ_ENABLED_PLUGINS_FILE=$RUN_DIR/rabbitmq/enabled_plugins
    export RABBITMQ_PID_FILE=$RUN_DIR/rabbitmq/rabbitmq.pid
    export ERL_EPMD_ADDRESS=127.0.0.1
    export ERL_EPMD_PORT=$EPMD_PORT
    # Erlang distribution listens on every interface unless configured otherwise.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

start_rabbitmq() {
    RABBIT_PORT=$(choose_port "${E2E_RABBIT_PORT:-}" "")
    RABBIT_DIST_PORT=$(choose_port "${E2E_RABBIT_DIST_PORT:-}" "")
    EPMD_PORT=$(choose_port "${E2E_EPMD_PORT:-}" "")
    require_port_free rabbitmq "$RABBIT_PORT"
    require_port_free "rabbitmq distribution" "$RABBIT_DIST_PORT"
    require_port_free epmd "$EPMD_PORT"
    mkdir -p "$RUN_DIR/rabbitmq/mnesia" "$RUN_DIR/rabbitmq/log"
    printf '[].\n' >"$RUN_DIR/rabbitmq/enabled_plugins"
    printf 'loopback_users.guest = true\nlisteners.tcp.default = 127.0.0.1:%s\n' "$RABBIT_PORT" \
        >"$RUN_DIR/rabbitmq/rabbitmq.conf"
    # Recorded before the wait so that stop finds the broker even when startup fails.
    RABBIT_PID=$(rabbit_env && spawn rabbitmq "$RABBIT_BIN/rabbitmq-server")
    set_state "RABBIT_PID=$RABBIT_PID" "RABBIT_PORT=$RABBIT_PORT" \
        "RABBIT_DIST_PORT=$RABBIT_DIST_PORT" "EPMD_PORT=$EPMD_PORT"
    local deadline=$((SECONDS + E2E_START_TIMEOUT))
    until (rabbit_env && "$RABBIT_BIN/rabbitmqctl" -q await_startup --timeout 5 \
        >>"$LOG_DIR/rabbitmqctl.log" 2>&1); do
        if ! alive "$RABBIT_PID" || ((SECONDS >= deadline)); then
            log "rabbitmq did not start within $E2E_START_TIMEOUT s; last lines of its log:"
            tail -n 20 "$LOG_DIR/rabbitmq.log" "$RUN_DIR/rabbitmq/log/$RABBIT_NODENAME.log" >&2 || true
            return 1
        fi
        sleep 1
    done
}

wait_engine_consumer() {
    local deadline=$((SECONDS + E2E_START_TIMEOUT)) count
    while ((SECONDS < deadline)); do
        alive "$ENGINE_PID" || die "masakari-engine exited; see $LOG_DIR/masakari-engine.log"
        count=$(rabbit_env && "$PYTHON" "$PROVISION" consumers "$RABBIT_BIN/rabbitmqctl" ha_engine)
        [[ $count -gt 0 ]] && return 0
        sleep 0.5
    done
    die "queue ha_engine has no consumer after $E2E_START_TIMEOUT s; see $LOG_DIR/masakari-engine.log"
}

cmd_start_engine() {
    local started transport_url
    started=$(now)
    require_venv
    load_running_stack
    if [[ ${S_ENGINE:-0} == 1 ]] && alive "${S_ENGINE_PID:-}"; then
        log "masakari-engine is already running (pid $S_ENGINE_PID)"
        return 0
    fi
    mkdir -p "$LOG_DIR"
    ensure_rabbitmq || { log "cannot run masakari-engine without RabbitMQ"; exit $RABBIT_UNAVAILABLE; }
    start_rabbitmq || exit $RABBIT_UNAVAILABLE
    transport_url=rabbit://guest:guest@127.0.0.1:$RABBIT_PORT/
    relaunch_masakari "$transport_url"
    ENGINE_PID=$(spawn masakari-engine "$E2E_VENV/bin/masakari-engine" \
        --config-file "$RUN_DIR/masakari.conf")
    set_state "ENGINE_PID=$ENGINE_PID"
    wait_engine_consumer
    set_state "ENGINE=1"
    log "masakari-engine ready in $(elapsed "$started") s (rabbitmq on 127.0.0.1:$RABBIT_PORT)"
}

# ---------------------------------------------------------------- main

main() {
    local command=${1:-}
    case $command in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart-masakari | start-masakari) cmd_restart_masakari ;;
    stop-masakari) cmd_stop_masakari ;;
    restart-keystone) cmd_restart_keystone ;;
    set-maintenance) shift && cmd_set_maintenance "$@" ;;
    start-engine) cmd_start_engine ;;
    *)
        echo "usage: e2e/stack.sh install|start|stop|status|restart-masakari|stop-masakari|start-masakari|restart-keystone|set-maintenance|start-engine" >&2
        exit 2
        ;;
    esac
}

main "$@"
