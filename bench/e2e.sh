#!/usr/bin/env bash
# End-to-end benchmark (issue: pipeline). In ONE run on ONE broker, for each
# QoS: (a) a raw counting Paho subscriber, (b) islewatchd storing everything,
# both fed by the same load generator at full speed. Prints the ratio (b)/(a),
# the daemon's CPU per message against the raw subscriber's, its peak RSS, its
# store-write latency quantiles, and disk bytes per point, with the whole
# machine's CPU per message and busy cores in each phase (broker, load
# generator and subscriber: on a small machine they share the cores, which
# bounds the ratio; the table's note says how). Then, for each
# QoS, a latency phase: iw_loadgen --ts-now at half the raw subscriber's rate
# (measured above, same run) for --lat-seconds, first into the raw subscriber
# (its publish -> receive p50/p99, in the same buckets: what the broker, the
# load generator and the machine cost on their own), then, with the same
# settings, into a fresh islewatchd (the p50/p99 of its
# islewatch_ingest_delay_seconds histogram, publish -> durable). Appends the
# table and the exact command to bench/RESULTS.md.
#
# --rss-series N adds an overload phase: N series (N/8 water devices, 10
# messages each) published at QoS 1 over 4 connections, faster than
# islewatchd stores them, and its peak RSS against the issue's bound
# (64 MB + 0.5 KB per series). --qos "" runs that phase alone.
# --rss-slow-write MS slows each of the daemon's store writes by MS ms in that
# phase (its test_slow_write knob), so the publisher outruns it ~10x or more
# on a machine where it cannot otherwise (the issue's burst is 10x). The
# phase samples VmRSS every 0.5 s and prints it at 25/50/75/100 % stored:
# flat once the queues are full means no growth after the first quarter.
#
# --ts-step MS sets iw_loadgen's step between a device's timestamps in the
# throughput phases (default 1000; 60000 is one sample per minute per device,
# where each message closes a minute of each of its series).
#
# --lat-tick-us T: the latency phase's load generator wakes every T us and
# publishes what came due (iw_loadgen --tick-us; default 1000, 0 sleeps
# before every message). At 20,000 msg/s a wake-up per message cost the
# load generator 24 us of CPU per message against 14 with ticks, taken
# from the broker and the subscriber it measures.
#
# --protocol 5 has islewatchd connect over MQTT 5 (broker.protocol; default
# 3.1.1). The raw subscriber stays on 3.1.1.
#
# --connections N has islewatchd open N broker connections on one shared
# subscription (broker.connections; default 1): N receive threads. The raw
# subscriber keeps one connection.
#
# --raw-paho-trace-errors sets the raw subscriber's Paho trace level to
# errors only, as islewatchd sets its own (server/mqtt_client.c); by default
# the raw subscriber keeps Paho's default level, as the issue's reference did.
#
#   bench/e2e.sh [--count N] [--devices N] [--qos "0 1 2"] [--lat-seconds S]
#                [--ts-step MS] [--rss-series N] [--rss-slow-write MS] [--no-write]
#                [--protocol 3.1.1|5] [--lat-tick-us T] [--connections N]
#                [--raw-paho-trace-errors]
#
# IW_BUILD_DIR=dir (default build/release) takes the binaries from another build.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

COUNT=100000 DEVICES=100 QOSES="0 1 2" WRITE=1 LAT_SECONDS=10 RSS_SERIES=0 RSS_SLOW=0 TS_STEP=1000 PROTOCOL=3.1.1 LAT_TICK=1000 RAW_OPTS="" CONNS=1
CMDLINE="bench/e2e.sh"
for a in "$@"; do case "$a" in ''|*' '*) CMDLINE+=" \"$a\"" ;; *) CMDLINE+=" $a" ;; esac; done
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --qos) QOSES=$2; shift 2 ;;
    --lat-seconds) LAT_SECONDS=$2; shift 2 ;;
    --rss-series) RSS_SERIES=$2; shift 2 ;;
    --ts-step) TS_STEP=$2; shift 2 ;;
    --rss-slow-write) RSS_SLOW=$2; shift 2 ;;
    --protocol) PROTOCOL=$2; shift 2 ;;
    --lat-tick-us) LAT_TICK=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --raw-paho-trace-errors) RAW_OPTS="--paho-trace-errors"; shift ;;
    --no-write) WRITE=0; shift ;;
    -h|--help) sed -n 2,54p "$0"; exit 0 ;;
    *) echo "e2e.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

B=${IW_BUILD_DIR:-build/release}
if [ ! -x $B/islewatchd ] || [ ! -x $B/bench/iw_loadgen ] || [ ! -x $B/bench/iw_raw_sub ]; then
  cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DISLEWATCH_BUILD_TESTS=OFF -DISLEWATCH_BUILD_BENCH=ON >/dev/null
  cmake --build $B -j"$(nproc)" >/dev/null
fi

bench_init e2e.sh islewatchd bench/iw_loadgen bench/iw_raw_sub
chmod 777 "$W"

start_broker "$W"

busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }   # all cores, not idle or iowait
stored() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^islewatch_messages_stored_total\{source="water"\}/ {print $2}'; }

# Poll the daemon at $HP every $2 s until it has stored $1 messages; after $3
# polls without progress say so (naming the phase, $4) and return 1. Sets n.
wait_stored() {
  local last=-1 still=0
  while :; do
    n=$(stored $HP); n=${n:-0}
    [ "$n" -ge "$1" ] && return 0
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; last=$n; fi
    [ $still -ge "$3" ] && { echo "e2e.sh: islewatchd stored only $n of $1 in $4" >&2; return 1; }
    sleep "$2"
  done
}

# A fresh islewatchd on the broker, one water source at QoS $1, files named
# after $2, each store write slowed by $3 ms if given and not 0; sets HP (its
# HTTP port) and D (its pid) once its metrics answer.
start_daemon() {
  HP=$(pick_port)
  cat > "$W/cfg$2.yaml" <<CONF
broker: { url: "mqtt://127.0.0.1:$MP", client_id: "iw-bench-$2", clean_session: true, protocol: "$PROTOCOL", connections: $CONNS }
storage: { path: "$W/data$2"$( [ "${3:-0}" != 0 ] && echo ", test_slow_write: ${3}ms" ) }
http: { listen: "127.0.0.1:$HP" }
sources: [ { name: water, topic: "sensors/water/{site}/{device}", qos: $1 } ]
log_level: warn
CONF
  $B/islewatchd -c "$W/cfg$2.yaml" > "$W/d$2.log" 2>&1 & D=$!; PIDS+=($D)
  for _ in $(seq 200); do [ -n "$(stored $HP)" ] && break; sleep 0.05; done
  sleep 0.5
}

HZ=$(getconf CLK_TCK)
declare -A ROW RAWRATE
for Q in $QOSES; do
  echo "e2e: QoS $Q: raw subscriber ..." >&2
  # (a) raw subscriber
  $B/bench/iw_raw_sub --port $MP --qos $Q --count $COUNT --topic 'sensors/#' --idle 20 $RAW_OPTS > "$W/raw$Q.out" 2>&1 & RAW=$!; PIDS+=($RAW)
  for _ in $(seq 200); do grep -q ready "$W/raw$Q.out" && break; sleep 0.05; done
  BR0=$(cpu_ticks $MOSQ); M0=$(busy_ticks); TS=$(date +%s.%N)
  $B/bench/iw_loadgen --port $MP --qos $Q --count $COUNT --devices $DEVICES --ts-step $TS_STEP --client-id lg-a$Q > "$W/lga$Q.out" 2>&1 || true
  wait $RAW || true
  BR1=$(cpu_ticks $MOSQ); M1=$(busy_ticks); TM=$(date +%s.%N)
  RAW_MACH=$(awk -v m=$((M1 - M0)) -v hz=$HZ -v a=$TS -v b=$TM 'BEGIN { printf "%.2f", m / hz / (b - a) }')
  RAW_RATE=$(result "$W/raw$Q.out" rate); RAW_CPU=$(result "$W/raw$Q.out" cpu_us_per_msg)
  # The whole machine's CPU per message in this phase: broker + load generator + subscriber.
  RAW_ALL=$(awk -v b=$((BR1 - BR0)) -v hz=$HZ -v l="$(result "$W/lga$Q.out" cpu_s)" -v s="$RAW_CPU" -v n=$COUNT \
            'BEGIN { printf "%.1f", (b / hz + l) / n * 1e6 + s }')
  RAW_CORES=$(awk -v a=$RAW_ALL -v r=$RAW_RATE 'BEGIN { printf "%.2f", a * r / 1e6 }')

  echo "e2e: QoS $Q: islewatchd ..." >&2
  # (b) islewatchd
  start_daemon "$Q" "$Q"
  C0=$(cpu_ticks $D); BR0=$(cpu_ticks $MOSQ); M0=$(busy_ticks); TS=$(date +%s.%N)
  $B/bench/iw_loadgen --port $MP --qos $Q --count $COUNT --devices $DEVICES --ts-step $TS_STEP --client-id lg-b$Q > "$W/lgb$Q.out" 2>&1 &
  LG=$!; PIDS+=($LG)
  # Polling costs CPU (curl, awk) that the raw phase does not pay: poll every
  # 20 ms only until the first message is stored (T0, N0), then every 0.5 s;
  # T1 is the daemon's own islewatch_last_stored_timestamp_seconds.
  T0=""; T1=""; last=-1; still=0
  while :; do
    a=$(date +%s.%N); n=$(stored $HP); n=${n:-0}; n=${n%.*}; b=$(date +%s.%N)
    if [ -z "$T0" ]; then
      [ "$n" -gt 0 ] && { T0=$(awk -v a=$a -v b=$b 'BEGIN { printf "%.6f", (a + b) / 2 }'); N0=$n; still=0; continue; }
      still=$((still + 1)); [ $still -ge 1000 ] && { T0=$TS; N0=0; break; }   # ~30 s, nothing stored
      sleep 0.02; continue
    fi
    if [ "$n" -ge "$COUNT" ]; then
      M1=$(busy_ticks); TM=$(date +%s.%N)
      T1=$(curl -s "http://127.0.0.1:$HP/metrics" | awk '/^islewatch_last_stored_timestamp_seconds\{source="water"\}/ { print $2 }')
      break
    fi
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; last=$n; fi
    [ $still -ge 40 ] && break                 # 20 s without progress
    # The last 5 %: poll every 20 ms again, so the /proc/stat window ends close to the last store.
    if [ $((n * 20)) -ge $((COUNT * 19)) ]; then sleep 0.02; else sleep 0.5; fi
  done
  wait $LG || true
  C1=$(cpu_ticks $D); RSS=$(hwm_kb $D); BR1=$(cpu_ticks $MOSQ)
  if [ -z "$T1" ]; then
    echo "e2e.sh: islewatchd stored only $(stored $HP) of $COUNT at QoS $Q" >&2
    M1=$(busy_ticks); TM=$(date +%s.%N); T1=$TM
  fi
  curl -s "http://127.0.0.1:$HP/metrics" > "$W/metrics$Q.txt"
  kill -TERM $D; wait $D || true
  DISK=$(du -sb "$W/data$Q" | cut -f1)
  ISW_RATE=$(awk -v n=$COUNT -v n0=$N0 -v a=$T0 -v b=$T1 'BEGIN { printf "%.1f", (n - n0) / (b - a) }')
  ISW_CPU=$(awk -v c=$((C1 - C0)) -v hz=$HZ -v n=$COUNT 'BEGIN { printf "%.2f", c / hz / n * 1e6 }')
  RATIO=$(awk -v a=$ISW_RATE -v b=$RAW_RATE 'BEGIN { printf "%.3f", a / b }')
  CPUR=$(awk -v a=$ISW_CPU -v b=$RAW_CPU 'BEGIN { printf "%.2f", a / b }')
  ISW_ALL=$(awk -v b=$((BR1 - BR0)) -v hz=$HZ -v l="$(result "$W/lgb$Q.out" cpu_s)" -v s="$ISW_CPU" -v n=$COUNT \
            'BEGIN { printf "%.1f", (b / hz + l) / n * 1e6 + s }')
  ISW_CORES=$(awk -v a=$ISW_ALL -v r=$ISW_RATE 'BEGIN { printf "%.2f", a * r / 1e6 }')
  # Busy cores of the whole machine (/proc/stat), from the daemon's start to the end of the phase.
  MACH=$(awk -v m=$((M1 - M0)) -v hz=$HZ -v a=$TS -v b=$TM 'BEGIN { printf "%.2f", m / hz / (b - a) }')
  # rate = busy cores / CPU per message, so ratio = (RAW_ALL / ISW_ALL) x (ISW_CORES / RAW_CORES):
  # the first factor is what the daemon's extra CPU costs when both phases are CPU-bound.
  CEIL=$(awk -v a=$RAW_ALL -v b=$ISW_ALL 'BEGIN { printf "%.2f", a / b }')
  P50=$(quantile "$W/metrics$Q.txt" 0.5); P99=$(quantile "$W/metrics$Q.txt" 0.99)
  BPP=$(awk -v d=$DISK -v n=$((COUNT * 8)) 'BEGIN { printf "%.1f", d / n }')
  ROW[$Q]="| $Q | $RAW_RATE | $ISW_RATE | **$RATIO** | $RAW_CPU | $ISW_CPU | $CPUR | $RAW_ALL / $ISW_ALL | $RAW_CORES / $ISW_CORES | $RAW_MACH / $MACH | $CEIL | $((RSS / 1024)) | ≤ $P50 / ≤ $P99 | $BPP |"
  RAWRATE[$Q]=$RAW_RATE
done

# Latency phases, after every throughput phase: publish -> durable at half the
# raw subscriber's rate, read from the daemon's islewatch_ingest_delay_seconds.
ROWS=""
for Q in $QOSES; do
  LAT_RATE=$(awk -v r="${RAWRATE[$Q]:-0}" 'BEGIN { printf "%d", r / 2 }')
  if [ "$LAT_RATE" -lt 1 ]; then
    echo "e2e.sh: no raw subscriber rate at QoS $Q; skipping its latency phase" >&2
    ROWS+="${ROW[$Q]} – | n/a / n/a | n/a / n/a |"$'\n'
    continue
  fi
  LAT_COUNT=$((LAT_RATE * LAT_SECONDS))
  # Write back the earlier phases' files first: otherwise the kernel flushes
  # them during this phase and islewatchd's WAL writes wait behind it.
  sync
  echo "e2e: QoS $Q: latency, raw subscriber, $LAT_COUNT messages at $LAT_RATE msg/s ..." >&2
  # The raw subscriber first, same load generator settings: publish -> receive
  # without islewatch (its histogram has the daemon's buckets).
  $B/bench/iw_raw_sub --port $MP --qos $Q --count $LAT_COUNT --topic 'sensors/#' --idle 20 $RAW_OPTS > "$W/rawlat$Q.out" 2>&1 & RAW=$!; PIDS+=($RAW)
  for _ in $(seq 200); do grep -q ready "$W/rawlat$Q.out" && break; sleep 0.05; done
  $B/bench/iw_loadgen --port $MP --qos $Q --count $LAT_COUNT --devices $DEVICES --rate $LAT_RATE \
    --ts-now --tick-us $LAT_TICK --client-id lg-r$Q > "$W/lgr$Q.out" 2>&1 || echo "e2e.sh: the load generator failed at QoS $Q (raw subscriber): $(tail -2 "$W/lgr$Q.out")" >&2
  wait $RAW || echo "e2e.sh: QoS $Q: the raw subscriber received $(result "$W/rawlat$Q.out" count) of $LAT_COUNT in the latency phase" >&2
  R50=$(result "$W/rawlat$Q.out" lat_p50_ms); R99=$(result "$W/rawlat$Q.out" lat_p99_ms); R50=${R50:-n/a}; R99=${R99:-n/a}
  RN=$(result "$W/rawlat$Q.out" lat_n); RN=${RN:-0}
  RLAT_ACH=$(result "$W/lgr$Q.out" rate); RLATE=$(result "$W/lgr$Q.out" late_1ms)
  echo "e2e: QoS $Q: latency phase, raw subscriber: $RN observed, p50 ≤ $R50 ms, p99 ≤ $R99 ms; loadgen acked $RLAT_ACH msg/s, $RLATE of $LAT_COUNT published > 1 ms behind schedule" >&2

  echo "e2e: QoS $Q: latency, islewatchd, $LAT_COUNT messages at $LAT_RATE msg/s ..." >&2
  start_daemon "$Q" "lat$Q"
  $B/bench/iw_loadgen --port $MP --qos $Q --count $LAT_COUNT --devices $DEVICES --rate $LAT_RATE \
    --ts-now --tick-us $LAT_TICK --client-id lg-l$Q > "$W/lgl$Q.out" 2>&1 & LG=$!; PIDS+=($LG)
  wait $LG || echo "e2e.sh: the load generator failed at QoS $Q: $(tail -2 "$W/lgl$Q.out")" >&2
  # Wait for the last message to be durable; give up after 20 s without progress.
  wait_stored "$LAT_COUNT" 0.05 400 "the latency phase at QoS $Q" || true
  curl -s "http://127.0.0.1:$HP/metrics" > "$W/metricslat$Q.txt"
  kill -TERM $D; wait $D || true
  M="$W/metricslat$Q.txt"
  OBS=$(metric "$M" islewatch_ingest_delay_seconds_count)
  FUT=$(metric "$M" 'islewatch_ingest_delay_unobserved_total{reason="future"}')
  OLD=$(metric "$M" 'islewatch_ingest_delay_unobserved_total{reason="over_1h"}')
  SKIP=$(( ${FUT:-0} + ${OLD:-0} )); OBS=${OBS:-0}
  [ "$OBS" -eq "$LAT_COUNT" ] || echo "e2e.sh: QoS $Q: $OBS delays observed for $LAT_COUNT messages ($SKIP out of range)" >&2
  L50=$(ms "$(quantile "$M" 0.5 islewatch_ingest_delay_seconds)"); L99=$(ms "$(quantile "$M" 0.99 islewatch_ingest_delay_seconds)")
  LAT_ACH=$(result "$W/lgl$Q.out" rate); LATE=$(result "$W/lgl$Q.out" late_1ms)
  echo "e2e: QoS $Q: latency phase: $OBS observed, p50 ≤ $L50 ms, p99 ≤ $L99 ms; loadgen acked $LAT_ACH msg/s, $LATE of $LAT_COUNT published > 1 ms behind schedule" >&2
  ROWS+="${ROW[$Q]} $LAT_RATE | ≤ $R50 / ≤ $R99 | ≤ $L50 / ≤ $L99 |"$'\n'
done

# Overload phase: peak RSS at many series while the publisher outruns the daemon.
RSS_TABLE=""
if [ "$RSS_SERIES" -gt 0 ]; then
  RDEV=$(( (RSS_SERIES + 7) / 8 )); RCOUNT=$((RDEV * 10))
  echo "e2e: peak RSS: $RCOUNT QoS 1 messages from $RDEV devices ($((RDEV * 8)) series) over 4 connections$( [ "$RSS_SLOW" != 0 ] && echo ", store writes slowed by $RSS_SLOW ms") ..." >&2
  start_daemon 1 rss "$RSS_SLOW"
  # VmRSS and the stored count every 0.5 s, to see whether memory stays flat
  # once the queues are full (the sampler ends with the daemon).
  ( while [ -r /proc/$D/status ]; do
      echo "$(stored $HP) $(awk '/VmRSS/ {print $2}' /proc/$D/status 2>/dev/null) $(date +%s.%N)"; sleep 0.5
    done > "$W/rss.samples" ) & SAMPLER=$!; PIDS+=($SAMPLER)
  TS=$(date +%s.%N)
  $B/bench/iw_loadgen --port $MP --qos 1 --count $RCOUNT --devices $RDEV --connections 4 \
    --client-id lg-rss > "$W/lgrss.out" 2>&1 || echo "e2e.sh: the load generator failed in the RSS phase: $(tail -2 "$W/lgrss.out")" >&2
  TP=$(date +%s.%N)
  wait_stored "$RCOUNT" 0.5 40 "the RSS phase" || true
  TM=$(date +%s.%N); RSS=$(hwm_kb $D)
  kill -TERM $D; wait $D || true; wait $SAMPLER || true
  PUB=$(result "$W/lgrss.out" rate)
  STO=$(awk -v n="$n" -v a=$TS -v b=$TM 'BEGIN { printf "%.0f", n / (b - a) }')
  OVER=$(awk -v p="$PUB" -v s="$STO" 'BEGIN { printf "%.1f", p / s }')
  # VmRSS (MB) at the first sample with 25, 50, 75 and 100 % stored, and the
  # growth from the 25 % sample to the highest after it; and at the first
  # sample after the publisher finished, when the broker's backlog was largest.
  CURVE=$(awk -v n=$RCOUNT 'NF == 3 && $2 > 0 { k++; s[k] = $1; r[k] = $2 }
    END { for (q = 1; q <= 4; q++) { for (i = 1; i <= k && s[i] < n * q / 4; i++); if (i > k) i = k; at[q] = i; printf "%.1f / ", r[i] / 1024 }
          m = 0; for (i = at[1]; i <= k; i++) if (r[i] > m) m = r[i]; printf "%+.1f", (m - r[at[1]]) / 1024 }' "$W/rss.samples")
  BACKLOG=$(awk -v n=$RCOUNT -v t=$TP 'NF == 3 && $2 > 0 && $3 >= t { printf "%d messages, VmRSS %.1f MB", n - $1, $2 / 1024; exit }' "$W/rss.samples")
  BOUND=$(awk -v s=$((RDEV * 8)) 'BEGIN { printf "%.1f", 64 + s * 0.5 / 1024 }')
  RMB=$(awk -v k=$RSS 'BEGIN { printf "%.1f", k / 1024 }')
  VERDICT=$(awk -v r=$RMB -v b=$BOUND 'BEGIN { print (r <= b) ? "within" : "OVER" }')
  echo "e2e: peak RSS $RMB MB at $((RDEV * 8)) series ($VERDICT the $BOUND MB bound); published $PUB msg/s, stored $STO msg/s (${OVER}x); VmRSS at 25/50/75/100 % stored, then growth after 25 %: $CURVE MB; when the publisher finished, backlog $BACKLOG" >&2
  RSS_TABLE="| series | messages | store writes slowed by (ms) | published msg/s (4 connections) | stored msg/s (to the last) | overload (published ÷ stored) | when the publisher finished: backlog in the broker, daemon's VmRSS | VmRSS MB at 25 / 50 / 75 / 100 % stored, growth after 25 % | peak RSS MB | bound MB (64 + 0.5 KB/series) |
|---|---|---|---|---|---|---|---|---|---|
| $((RDEV * 8)) | $n of $RCOUNT | $RSS_SLOW | $PUB | $STO | ${OVER}× | $BACKLOG | $CURVE | **$RMB** ($VERDICT) | $BOUND |"
fi

TABLE="| QoS | raw subscriber msg/s | islewatchd stored msg/s | ratio | raw CPU µs/msg | islewatchd CPU µs/msg | CPU ratio | machine CPU µs/msg, raw / islewatchd phase | cores busy (broker + loadgen + subscriber), raw / islewatchd phase | cores busy (/proc/stat), raw / islewatchd phase | CPU-bound ratio ceiling | peak RSS MB | store write p50 / p99 (s) | disk B/point (uncompacted, WAL incl.) | latency phase msg/s | raw publish→receive p50 / p99 (ms) | publish→durable p50 / p99 (ms) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
$ROWS"
NOTE="Machine CPU per message adds the broker's CPU (/proc) and the load generator's (getrusage) over the phase to the subscriber's. Cores busy (broker + loadgen + subscriber) is that times the phase's rate; cores busy (/proc/stat) is the whole machine, anything else running included. Since rate = busy cores ÷ machine CPU per message, ratio = CPU-bound ratio ceiling (raw phase's machine CPU per message ÷ islewatchd phase's) × (islewatchd phase's busy cores ÷ raw phase's): when the raw phase already keeps every core busy, the ceiling is the most islewatchd can reach whatever it does with its own threads. Latency phase (after the throughput phases, one per QoS): \`iw_loadgen --ts-now --rate R\` with R half the raw subscriber's rate above, for $LAT_SECONDS s, first into the raw subscriber alone, then with the same settings into a fresh islewatchd alone. raw publish→receive is the raw subscriber's wall clock in its message callback minus the payload's \`ts\`, in the daemon's buckets: what the broker, the load generator, the client library and the machine cost without islewatch. publish→durable is the daemon's \`islewatch_ingest_delay_seconds\` histogram: the wall clock when a message's WAL write returned minus its \`ts\`, stamped at publish; quantiles are the upper bound of the bucket they fall in. ts is whole milliseconds (SPEC §1), truncated at publish, so every delay is over-estimated by up to 1 ms."
[ -n "$ROWS" ] && { echo "$TABLE"; echo "$NOTE"; }
[ -n "$RSS_TABLE" ] && echo "$RSS_TABLE"
if [ "$WRITE" = 1 ]; then
  {
    echo
    echo "## $(date -u +%Y-%m-%dT%H:%MZ) — \`$CMDLINE\`"
    echo
    echo "mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/mosquitto version //p' | head -1) on 127.0.0.1, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))."
    if [ -n "$ROWS" ]; then
      echo "$COUNT messages (water payloads, 8 metrics each) from $DEVICES devices per throughput phase, a device's timestamps $TS_STEP ms apart$( [ "$CONNS" != 1 ] && echo "; islewatchd on $CONNS broker connections (a shared subscription), the raw subscriber on one")."
      echo
      echo "$TABLE"
      echo "$NOTE"
    fi
    if [ -n "$RSS_TABLE" ]; then
      echo
      echo "Overload phase: a fresh islewatchd (one QoS 1 water source; \`test_slow_write\` as in the table), the load generator publishing 10 messages per device over 4 connections as fast as the broker takes them; peak RSS is the daemon's VmHWM, VmRSS is sampled every 0.5 s."
      echo
      echo "$RSS_TABLE"
    fi
  } >> bench/RESULTS.md
fi
