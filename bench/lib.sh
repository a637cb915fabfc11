# Helpers shared by the benchmark scripts (sourced, not run). Every address is
# loopback; every process started here is recorded in the caller's PIDS array
# so that bench_cleanup ends exactly those.

# bench_init NAME BINARY...: B, the build directory (IW_BUILD_DIR, default
# build/release), must hold every BINARY; makes the work directory W and the
# PIDS array, and on exit ends those processes and removes W.
bench_init() {
  local name=$1 x; shift
  B=${IW_BUILD_DIR:-build/release}
  for x in "$@"; do
    [ -x "$B/$x" ] || { echo "$name: $B/$x missing; build it (bench/README.md)" >&2; exit 1; }
  done
  W=$(mktemp -d "/tmp/iw-${name%.sh}-XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}
bench_cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
pick_port() { local p; for _ in $(seq 50); do p=$((20000 + RANDOM % 30000)); port_free $p && { echo $p; return; }; done; echo "no free port" >&2; exit 1; }

# start_broker DIR: a mosquitto on a free loopback port with the settings
# bench/README.md explains (no queue limit, 20 in flight); sets MP (its port)
# and MOSQ (its pid) once it listens.
start_broker() {
  MP=$(pick_port)
  cat > "$1/mosquitto.conf" <<CONF
listener $MP 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 20
CONF
  mosquitto -c "$1/mosquitto.conf" > "$1/mosquitto.log" 2>&1 & MOSQ=$!; PIDS+=($MOSQ)
  for _ in $(seq 100); do port_free $MP || return 0; sleep 0.05; done
  echo "the benchmark's mosquitto did not listen on 127.0.0.1:$MP within 5 s: $(tail -2 "$1/mosquitto.log")" >&2
  exit 1
}

result() { sed -n 's/.*RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }   # $1 output of iw_loadgen/iw_raw_sub, $2 field
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
hwm_kb() { awk '/VmHWM/ {print $2}' /proc/"$1"/status; }
quantile() { # $1 metrics text file, $2 q, [$3 histogram, default the store write one]: the bucket bound where the cumulative count reaches q
  awk -v q="$2" -v h="^${3:-islewatch_store_write_seconds}_bucket" '$0 ~ h { match($0, /le="[^"]+"/); le=substr($0, RSTART+4, RLENGTH-5); n[++k]=$2; b[k]=le }
                 END { tot=n[k]; if (tot == 0) { print "n/a"; exit } for (i=1;i<=k;i++) if (n[i] >= q*tot) { print b[i]; exit } }' "$1"; }
metric() { awk -v m="$2" '$1 == m { print $2 }' "$1"; }   # $1 metrics text file, $2 sample name with labels
ms() { case "$1" in +Inf|n/a) echo "$1" ;; *) awk -v s="$1" 'BEGIN { printf "%g", s * 1000 }' ;; esac; }
