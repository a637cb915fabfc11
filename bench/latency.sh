#!/usr/bin/env bash
# Publish -> durable latency at a fixed rate, long enough to include RocksDB's
# background work. e2e.sh's latency phase runs at half the raw subscriber's
# rate for 10 s by default; at 20,000 msg/s an L0->L1 compaction comes every
# 10-20 s and a memtable flush every ~2 s, and the tail is made of them
# (bench/RESULTS.md, "where the QoS 1 latency tail comes from"), so a short
# run can miss it. Each round, on one loopback broker:
#
#  1. the raw subscriber (iw_raw_sub) at the rate: publish -> receive, what the
#     broker, the load generator and the machine cost without islewatch;
#  2. a fresh islewatchd (one water source, the daemon's defaults otherwise)
#     at the same rate: its islewatch_ingest_delay_seconds histogram
#     (publish -> durable), its CPU per message, and the memtable flushes and
#     compactions RocksDB ran meanwhile with their CPU (the events in the
#     database's LOG). The raw subscriber's CPU per message beside it is the
#     CPU target's reference at a steady, not saturating, rate.
#
# Quantiles are the upper bound of the histogram bucket they fall in; ts is
# whole milliseconds, truncated at publish, so delays are over-estimated by up
# to 1 ms. Appends the table and the command to bench/RESULTS.md unless
# --no-write.
#
#   bench/latency.sh [--rate R] [--seconds S] [--qos 0|1|2] [--devices N]
#                    [--rounds N] [--tick-us T] [--no-write]
#
# Defaults: 10,000 msg/s (half of what mosquitto delivers to one QoS 1
# subscriber on the project's 2-core machine, the issue's latency target),
# 60 s, QoS 1, 100 devices, 1 round, 1000 us ticks (iw_loadgen --tick-us).
# IW_BUILD_DIR=dir (default build/release) takes the binaries from another build.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RATE=10000 SECONDS_=60 QOS=1 DEVICES=100 ROUNDS=1 TICK=1000 WRITE=1
CMDLINE="bench/latency.sh $*"
num() { [[ "$2" =~ ^[0-9]+$ ]] || { echo "latency.sh: $1 needs a whole number, got '$2'" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) num "$1" "${2:-}"; RATE=$2; shift 2 ;;
    --seconds) num "$1" "${2:-}"; SECONDS_=$2; shift 2 ;;
    --qos) case "${2:-}" in 0|1|2) QOS=$2 ;; *) echo "latency.sh: --qos takes 0, 1 or 2" >&2; exit 2 ;; esac; shift 2 ;;
    --devices) num "$1" "${2:-}"; DEVICES=$2; shift 2 ;;
    --rounds) num "$1" "${2:-}"; ROUNDS=$2; shift 2 ;;
    --tick-us) num "$1" "${2:-}"; TICK=$2; shift 2 ;;
    --no-write) WRITE=0; shift ;;
    -h|--help) sed -n 2,29p "$0"; exit 0 ;;
    *) echo "latency.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
[ "$RATE" -gt 0 ] && [ "$SECONDS_" -gt 0 ] || { echo "latency.sh: --rate and --seconds must be above 0" >&2; exit 2; }
bench_init latency.sh islewatchd bench/iw_loadgen bench/iw_raw_sub
start_broker "$W"
HZ=$(getconf CLK_TCK)
COUNT=$((RATE * SECONDS_))
H=islewatch_ingest_delay_seconds

# share_le FILE BOUND: the share (%) of observed delays <= BOUND seconds.
share_le() { awk -v h="^${H}_bucket" -v b="$2" '$0 ~ h && index($0, "le=\"" b "\"") { n=$2 } $1 == "'$H'_count" { c=$2 }
                END { if (c > 0) printf "%.1f", n / c * 100; else print "n/a" }' "$1"; }
# worst FILE: the upper bound of the highest non-empty bucket.
worst() { awk -v h="^${H}_bucket" '$0 ~ h { match($0, /le="[^"]+"/); le=substr($0, RSTART+4, RLENGTH-5); if ($2 > last) w=le; last=$2 }
               END { print (w == "") ? "n/a" : w }' "$1"; }
# rocks_events LOG EVENT: how many EVENT lines the RocksDB LOG holds, and for
# compactions their CPU in s ("N" or "N / CPU s").
rocks_events() { { grep -o "\"event\": \"$2\".*" "$1" 2>/dev/null || true; } | awk '
  { n++; if (match($0, /"compaction_time_cpu_micros": [0-9]+/)) cpu += substr($0, RSTART + 30, RLENGTH - 30) }
  END { if (cpu > 0) printf "%d / %.1f s", n, cpu / 1e6; else printf "%d", n }'; }

ROWS=""
for r in $(seq "$ROUNDS"); do
  sync
  echo "latency: round $r: raw subscriber, $COUNT QoS $QOS messages at $RATE msg/s ..." >&2
  $B/bench/iw_raw_sub --port $MP --qos $QOS --count $COUNT --topic 'sensors/#' --idle 20 > "$W/raw$r.out" 2>&1 & RAW=$!; PIDS+=($RAW)
  for _ in $(seq 200); do grep -q ready "$W/raw$r.out" && break; sleep 0.05; done
  $B/bench/iw_loadgen --port $MP --qos $QOS --count $COUNT --devices $DEVICES --rate $RATE \
    --ts-now --tick-us $TICK --client-id lg-r$r > "$W/lgr$r.out" 2>&1 || echo "latency.sh: the load generator failed (raw subscriber): $(tail -2 "$W/lgr$r.out")" >&2
  wait $RAW || echo "latency.sh: the raw subscriber received $(result "$W/raw$r.out" count) of $COUNT" >&2
  R50=$(result "$W/raw$r.out" lat_p50_ms); R99=$(result "$W/raw$r.out" lat_p99_ms)

  echo "latency: round $r: islewatchd, $COUNT QoS $QOS messages at $RATE msg/s ..." >&2
  HP=$(pick_port)
  cat > "$W/cfg$r.yaml" <<CONF
broker: { url: "mqtt://127.0.0.1:$MP", client_id: "iw-latency-$r", clean_session: true }
storage: { path: "$W/data$r" }
http: { listen: "127.0.0.1:$HP" }
sources: [ { name: water, topic: "sensors/water/{site}/{device}", qos: $QOS } ]
log_level: warn
CONF
  $B/islewatchd -c "$W/cfg$r.yaml" > "$W/d$r.log" 2>&1 & D=$!; PIDS+=($D)
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$HP/metrics" > /dev/null && break; sleep 0.05; done
  sleep 0.5
  C0=$(cpu_ticks $D)
  $B/bench/iw_loadgen --port $MP --qos $QOS --count $COUNT --devices $DEVICES --rate $RATE \
    --ts-now --tick-us $TICK --client-id lg-l$r > "$W/lgl$r.out" 2>&1 || echo "latency.sh: the load generator failed (islewatchd): $(tail -2 "$W/lgl$r.out")" >&2
  # Until every delivered message is durable (QoS 0 may lose some: stop
  # after 5 s without progress).
  last=-1 still=0
  while :; do
    curl -s "http://127.0.0.1:$HP/metrics" > "$W/m$r.txt"
    n=$(metric "$W/m$r.txt" "${H}_count"); n=${n:-0}
    [ "$n" -ge "$COUNT" ] && break
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; last=$n; fi
    [ $still -ge 50 ] && { echo "latency.sh: round $r: $n of $COUNT delays observed" >&2; break; }
    sleep 0.1
  done
  C1=$(cpu_ticks $D)
  kill -TERM $D; wait $D || true
  M="$W/m$r.txt"
  OBS=$(metric "$M" "${H}_count"); OBS=${OBS:-0}
  MEAN=$(awk -v s="$(metric "$M" "${H}_sum")" -v c="$OBS" 'BEGIN { if (c > 0) printf "%.1f", s / c * 1000; else print "n/a" }')
  CPU=$(awk -v t=$((C1 - C0)) -v hz=$HZ -v n="$OBS" 'BEGIN { if (n > 0) printf "%.1f", t / hz / n * 1e6; else print "n/a" }')
  ROW="| $r | $(result "$W/lgl$r.out" rate) | ≤ ${R50:-n/a} / ≤ ${R99:-n/a} | $OBS | ≤ $(ms "$(quantile "$M" 0.5 $H)") / ≤ $(ms "$(quantile "$M" 0.99 $H)") | $(share_le "$M" 0.005) | $MEAN | ≤ $(ms "$(worst "$M")") | ≤ $(ms "$(quantile "$M" 0.99)") | $(result "$W/raw$r.out" cpu_us_per_msg) / $CPU | $(rocks_events "$W/data$r/LOG" flush_finished) | $(rocks_events "$W/data$r/LOG" compaction_finished) |"
  echo "latency: $ROW" >&2
  ROWS+="$ROW"$'\n'
  rm -rf "$W/data$r"
done

TABLE="| round | published msg/s | raw publish→receive p50 / p99 (ms) | delays observed | publish→durable p50 / p99 (ms) | ≤ 5 ms (%) | mean (ms) | worst bucket (ms) | store write p99 (ms) | CPU µs/msg, raw subscriber / islewatchd | memtable flushes | compactions / their CPU |
|---|---|---|---|---|---|---|---|---|---|---|---|
$ROWS"
echo "$TABLE"
if [ "$WRITE" = 1 ]; then
  {
    echo
    echo "## $(date -u +%Y-%m-%dT%H:%MZ) — \`$CMDLINE\`"
    echo
    echo "mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/mosquitto version //p' | head -1) on 127.0.0.1, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))."
    echo "$COUNT QoS $QOS water messages per phase from $DEVICES devices at $RATE msg/s (\`iw_loadgen --ts-now --tick-us $TICK\`), first into the raw subscriber, then into a fresh islewatchd; quantiles are bucket upper bounds, over-estimated by up to 1 ms (ts is whole ms)."
    echo
    echo "$TABLE"
  } >> bench/RESULTS.md
fi
