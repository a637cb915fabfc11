#!/usr/bin/env bash
# QoS 2 into islewatchd over MQTT 3.1.1 and over MQTT 5 (broker.protocol),
# alternating, each round on a fresh broker and a fresh daemon:
#
#  - burst: iw_loadgen --qos 2 --count N --devices 1000 flat out; the
#    daemon's CPU per stored message (/proc/PID/stat) and its peak RSS growth.
#  - slow:  the daemon's store slowed to 3 ms a write (test_slow_write), then
#    M QoS 2 messages of 16 KB published at once (mosquitto_pub -l): its peak
#    RSS growth. Over 3.1.1 Paho holds what the broker sends ahead; over 5
#    the daemon's callback stops the reading (ARCHITECTURE.md, "MQTT 5").
#
# The machine is shared and noisy: compare the protocols within a round, and
# look at every round. Appends the table and the command to bench/RESULTS.md
# unless --no-write.
#
#   bench/protocols.sh [--rounds R] [--count N] [--slow-count M] [--no-write]
#
# IW_BUILD_DIR=dir (default build/release) takes the binaries from another build.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=3 COUNT=40000 SLOW_COUNT=3000 WRITE=1
CMDLINE="bench/protocols.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --count) COUNT=$2; shift 2 ;;
    --slow-count) SLOW_COUNT=$2; shift 2 ;;
    --no-write) WRITE=0; shift ;;
    -h|--help) sed -n 2,18p "$0"; exit 0 ;;
    *) echo "protocols.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bench_init protocols.sh islewatchd bench/iw_loadgen

stored() { curl -s "http://127.0.0.1:$HP/metrics" | awk '/^islewatch_messages_stored_total\{source="water"\}/ {print $2}'; }
HZ=$(getconf CLK_TCK)

# 16 KB payloads for the slow phase, ts one second apart ending now - 1 h.
T0=$(( $(date +%s) * 1000 - 3600000 - SLOW_COUNT * 1000 ))
PAD=$(head -c 16000 /dev/zero | tr '\0' x)
for i in $(seq 0 $((SLOW_COUNT - 1))); do
  printf '{"ts":%d,"tp":%d,"pad":"%s"}\n' $((T0 + i * 1000)) "$i" "$PAD"
done > "$W/slow.txt"

# start PROTOCOL SLOW_MS: a fresh broker (MP) and daemon (D, HP)
start() {
  rm -rf "$W/data" "$W/mosq"
  mkdir -p "$W/mosq"
  MP=$(pick_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 20\n' "$MP" > "$W/mosq/m.conf"
  mosquitto -c "$W/mosq/m.conf" > "$W/mosq/m.log" 2>&1 & MOSQ=$!; PIDS+=($MOSQ)
  for _ in $(seq 100); do port_free "$MP" || break; sleep 0.05; done
  HP=$(pick_port)
  cat > "$W/c.yaml" <<CONF
broker: { url: "mqtt://127.0.0.1:$MP", client_id: "iw-protocols", clean_session: true, protocol: "$1" }
storage: { path: "$W/data"$( [ "$2" != 0 ] && echo ", test_slow_write: ${2}ms, queue_size: 1024" ) }
http: { listen: "127.0.0.1:$HP" }
sources: [ { name: water, topic: "sensors/water/{site}/{device}", qos: 2 } ]
log_level: warn
CONF
  "$B/islewatchd" -c "$W/c.yaml" > "$W/d.log" 2>&1 & D=$!; PIDS+=($D)
  for _ in $(seq 200); do [ -n "$(stored)" ] && break; sleep 0.05; done
  sleep 0.5
}
stop() { kill "$D" "$MOSQ"; wait "$D" "$MOSQ" 2>/dev/null || true; }
wait_stored() {
  local last=-1 still=0 n
  while :; do
    n=$(stored); n=${n:-0}
    [ "$n" -ge "$1" ] && return 0
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; last=$n; fi
    [ $still -ge 150 ] && { echo "protocols.sh: stored only $n of $1" >&2; return 1; }
    sleep 0.2
  done
}

ROWS=""
for r in $(seq "$ROUNDS"); do
  for P in 3.1.1 5; do
    echo "protocols: round $r, MQTT $P, burst ..." >&2
    start "$P" 0
    H0=$(hwm_kb $D); C0=$(cpu_ticks $D)
    "$B/bench/iw_loadgen" --port "$MP" --qos 2 --count "$COUNT" --devices 1000 --client-id lg-p > "$W/lg.out" 2>&1 || true
    wait_stored "$COUNT"
    C1=$(cpu_ticks $D); H1=$(hwm_kb $D)
    stop
    CPU=$(awk -v t=$((C1 - C0)) -v hz="$HZ" -v n="$COUNT" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
    BURST_MB=$(awk -v k=$((H1 - H0)) 'BEGIN { printf "%.1f", k / 1024 }')

    echo "protocols: round $r, MQTT $P, slow store ..." >&2
    start "$P" 3
    S0=$(hwm_kb $D)
    mosquitto_pub -p "$MP" -q 2 -t sensors/water/slow/d01 -l < "$W/slow.txt"
    wait_stored "$SLOW_COUNT"
    S1=$(hwm_kb $D)
    stop
    SLOW_MB=$(awk -v k=$((S1 - S0)) 'BEGIN { printf "%.1f", k / 1024 }')
    ROWS+="| $r | $P | $CPU | $BURST_MB | $SLOW_MB |"$'\n'
    echo "protocols: round $r, MQTT $P: $CPU µs/msg, burst +$BURST_MB MB, slow +$SLOW_MB MB" >&2
  done
done

SLOW_MB_TOTAL=$(( SLOW_COUNT * 16 / 1000 ))
OUT="## $(date -u +%Y-%m-%dT%H:%MZ) — \`$CMDLINE\`

mosquitto $(mosquitto -h 2>/dev/null | awk 'NR==1 {print $3}') on 127.0.0.1, $(nproc) cores. Burst: $COUNT QoS 2 water messages, 1000 devices, flat out. Slow: store writes slowed to 3 ms, $SLOW_COUNT QoS 2 messages of 16 KB (~$SLOW_MB_TOTAL MB) published at once. Growth is the daemon's peak RSS (VmHWM) over the phase.

| round | protocol | burst: islewatchd CPU µs/msg | burst: peak RSS growth MB | slow: peak RSS growth MB |
|---|---|---|---|---|
$ROWS"
printf '%s\n' "$OUT"
[ "$WRITE" = 1 ] && printf '\n%s' "$OUT" >> bench/RESULTS.md
exit 0
