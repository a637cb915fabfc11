#!/usr/bin/env bash
# islewatch quickstart: installs what is needed, builds a release, and runs the
# whole chain on loopback until Ctrl-C:
#   mosquitto (127.0.0.1:1883, or a free port if 1883 is taken)
#   -> islewatchd with config/islewatch.yaml (a copy in run/quickstart/ whose
#      broker url, storage path and HTTP port point into this run)
#   <- islewatch-sim, which plays the water and air stations and the cameras.
# Usage: ./deploy/quickstart.sh [SIMULATOR OPTIONS]   (e.g. --speed 10; see
#        build/release/islewatch-sim --help)
# Everything it writes is under run/quickstart/ (logs, data, configs).
# Ctrl-C (or SIGTERM, or closing the terminal) stops the three processes it
# started, by PID, and nothing else.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${QUICKSTART_BUILD_DIR:-$ROOT/build/release}   # overridable for testing the script
RUN=$ROOT/run/quickstart
SIM_ARGS=("$@")
PIDS=()        # started processes, in start order
NAMES=()
LOGS=()

if [ -t 1 ]; then B=$'\033[1m'; R=$'\033[0m'; else B=; R=; fi
# A closed terminal (or pipe) must not stop the cleanup half-way: never fail.
say() { printf '%squickstart:%s %s\n' "$B" "$R" "$*" 2>/dev/null || true; }
die() { printf '%squickstart: error:%s %s\n' "$B" "$R" "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints $1 if it is free, else the first free port in $2..$2+99.
pick_port() {
    local p
    if ! port_busy "$1"; then echo "$1"; return 0; fi
    for ((p = $2; p < $2 + 100; p++)); do
        if ! port_busy "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

show_log() {
    say "last lines of $1:"
    tail -n 25 "$1" 2>/dev/null | sed 's/^/    /' || true
}

# Stops what this script started, newest first, so the simulator stops before
# the daemon and the daemon (which drains its queues) before the broker.
cleanup() {
    local i pid n
    trap - INT TERM HUP EXIT
    trap '' PIPE        # the terminal or the pipe we print to may be gone
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[$i]}
        kill -0 "$pid" 2>/dev/null || continue
        say "stopping ${NAMES[$i]} (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        n=0
        while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 150 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "${NAMES[$i]} did not stop within 15 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    rm -f "$RUN/pids"
}
on_signal() { echo 2>/dev/null || true; say "stopping"; cleanup; exit 0; }

# start NAME LOG COMMAND...: runs COMMAND in its own session, so that the
# terminal's Ctrl-C reaches only this script, which then stops it in order.
# They inherit fd 9, the run's lock: processes a killed (kill -9) script left
# behind still hold it, and the next run says so instead of starting beside them.
start() {
    local name=$1 log=$2
    shift 2
    setsid "$@" >"$log" 2>&1 </dev/null &
    PIDS+=("$!")
    NAMES+=("$name")
    LOGS+=("$log")
    echo "$! $name" >>"$RUN/pids"
}

# Fails (with the log) if the process started as number $1 has exited.
check_alive() {
    if ! kill -0 "${PIDS[$1]}" 2>/dev/null; then
        local rc=0
        wait "${PIDS[$1]}" 2>/dev/null || rc=$?
        say "${NAMES[$1]} (pid ${PIDS[$1]}) exited with status $rc"
        show_log "${LOGS[$1]}"
        return 1
    fi
}

# ---- 1. dependencies and build ----------------------------------------------
say "checking packages (deploy/install-deps.sh)"
./deploy/install-deps.sh
say "building a release in ${BUILD#"$ROOT"/}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DISLEWATCH_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)" --target islewatchd islewatch islewatch-sim
SIM=$BUILD/server/sim/islewatch-sim
for bin in "$BUILD/islewatchd" "$BUILD/islewatch" "$SIM"; do
    [ -x "$bin" ] || die "the build did not produce $bin"
done

# ---- 2. the run directory ---------------------------------------------------
mkdir -p "$RUN/data"
exec 9>"$RUN/.lock"
flock -n 9 || die "another quickstart is running on $RUN (it holds $RUN/.lock); stop it first \
(Ctrl-C in its terminal; if its script was killed, end the processes listed in $RUN/pids)"
rm -f "$RUN/pids"

[ -f config/islewatch.yaml ] || die "config/islewatch.yaml is missing"
MQTT_PORT=$(pick_port 1883 18830) || die "127.0.0.1:1883 and 18830..18929 are all taken"
HTTP_PORT=$(pick_port 8080 18080) || die "127.0.0.1:8080 and 18080..18179 are all taken"
[ "$MQTT_PORT" = 1883 ] || say "127.0.0.1:1883 is taken; the broker listens on $MQTT_PORT"
[ "$HTTP_PORT" = 8080 ] || say "127.0.0.1:8080 is taken; the HTTP API listens on $HTTP_PORT"

cat >"$RUN/mosquitto.conf" <<EOF
# Written by deploy/quickstart.sh: a loopback-only broker for this run.
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
# mosquitto drops messages for a subscriber past 1000 queued by default; the
# daemon stops reading under load (backpressure), so let the broker hold them.
max_queued_messages 0
log_dest stderr
log_type error
log_type warning
log_type notice
# Run as whoever runs the script (as root mosquitto would switch to its own user).
user $(id -un)
EOF

# The copy of the config: same rules and sources, with this run's broker,
# storage and HTTP addresses. Only the keys' first occurrence inside their
# top-level section (broker:, storage:, http:) is rewritten.
CONF=$RUN/islewatch.yaml
# A token of this run's own, so that ack and silences work (config/islewatch.yaml
# names none, and without one every state change gets 401).
TOKEN=$RUN/http.token
(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN" && echo >>"$TOKEN") ||
    die "cannot write $TOKEN"
awk -v url="mqtt://127.0.0.1:$MQTT_PORT" -v path="$RUN/data" -v listen="127.0.0.1:$HTTP_PORT" -v token="$TOKEN" '
    /^[^ #][^:]*:/ { section = $0; sub(/:.*/, "", section) }
    section == "broker"  && !u && /^[ ]+url:/    { sub(/url:[ ]*[^ #]+/, "url: " url); u = 1 }
    section == "storage" && !p && /^[ ]+path:/   { sub(/path:[ ]*[^ #]+/, "path: " path); p = 1 }
    section == "http"    && !l && /^[ ]+listen:/ { sub(/listen:[ ]*[^ #]+/, "listen: " listen); l = 1
                                                   print; print "  token_file: " token; next }
    { print }
    END { if (!u || !p || !l) exit 3 }
' config/islewatch.yaml >"$CONF" ||
    die "config/islewatch.yaml has no broker.url, storage.path or http.listen line in block style; cannot write $CONF"
{
    grep -q "url: mqtt://127.0.0.1:$MQTT_PORT" "$CONF" &&
    grep -q "path: $RUN/data" "$CONF" &&
    grep -q "listen: 127.0.0.1:$HTTP_PORT" "$CONF" &&
    grep -q "token_file: $TOKEN" "$CONF"
} || die "rewriting the broker url, storage path and HTTP address into $CONF failed"
say "config: $CONF (a copy of config/islewatch.yaml)"
"$BUILD/islewatch" check "$CONF" || die "$CONF is not valid (see above)"

# HUP: the terminal was closed (or the SSH session dropped).
trap on_signal INT TERM HUP
trap cleanup EXIT

# ---- 3. broker, daemon, simulator -------------------------------------------
say "starting mosquitto on 127.0.0.1:$MQTT_PORT (log: run/quickstart/mosquitto.log)"
start mosquitto "$RUN/mosquitto.log" mosquitto -c "$RUN/mosquitto.conf"
for ((n = 0; ; n++)); do
    check_alive 0 || die "mosquitto did not start"
    port_busy "$MQTT_PORT" && break
    [ "$n" -lt 100 ] || { show_log "$RUN/mosquitto.log"; die "mosquitto does not accept connections on $MQTT_PORT after 10 s"; }
    sleep 0.1
done

say "starting islewatchd (log: run/quickstart/islewatchd.log)"
start islewatchd "$RUN/islewatchd.log" "$BUILD/islewatchd" -c "$CONF"
for ((n = 0; ; n++)); do
    check_alive 1 || die "islewatchd did not start"
    curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null && break
    if [ "$n" -ge 300 ]; then
        say "warning: islewatchd is running but not ready after 30 s; see run/quickstart/islewatchd.log"
        break
    fi
    sleep 0.1
done

say "starting islewatch-sim${SIM_ARGS[*]:+ ${SIM_ARGS[*]}} (log: run/quickstart/sim.log)"
start islewatch-sim "$RUN/sim.log" "$SIM" --port "$MQTT_PORT" --interval 5 --heartbeat 10 "${SIM_ARGS[@]}"

cat <<EOF

${B}islewatch is running.${R} Alerts begin within a few minutes (a sewage discharge
at dongtan/w01, a camera tamper at hengsha/c01, a silent camera at chongming/c03,
the never-seen camera dongtan/c09). In another terminal:

  mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t 'alerts/#' -v          # alerts as published
  $BUILD/islewatch tail --config $CONF      # live alerts, one line each
  $BUILD/islewatch series --db $RUN/data    # stored series
  $BUILD/islewatch query 'water/dongtan/w01/nh3_n' --from -15m --to now --url http://127.0.0.1:$HTTP_PORT
  $BUILD/islewatch alerts --url http://127.0.0.1:$HTTP_PORT                # alert history
  $BUILD/islewatch ack ID --by me --config $CONF   # acknowledge a firing alert (ID: alerts --active)
  curl http://127.0.0.1:$HTTP_PORT/metrics
  dashboard: http://127.0.0.1:$HTTP_PORT/
  mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t 'sensors/#' -t 'cameras/#' -v   # raw device traffic
  tail -f $RUN/islewatchd.log

Simulator progress follows. Press Ctrl-C to stop mosquitto, islewatchd and the simulator.

EOF

# ---- 4. watch: relay the simulator's log, stop when anything dies -----------
shown=0
while :; do
    for i in "${!PIDS[@]}"; do
        check_alive "$i" || die "${NAMES[$i]} stopped unexpectedly; stopping the others"
    done
    total=$(wc -l <"$RUN/sim.log")
    if [ "$total" -gt "$shown" ]; then
        tail -n "+$((shown + 1))" "$RUN/sim.log" | head -n "$((total - shown))" | sed 's/^/  /'
        shown=$total
    fi
    sleep 1
done
