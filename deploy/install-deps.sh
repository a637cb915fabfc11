#!/usr/bin/env bash
# Installs every Debian 12 package islewatch's build, tests, benchmarks and
# quickstart use. Idempotent: does nothing when all are present. Run as root.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  libpaho-mqtt-dev libssl-dev          # islewatchd's MQTT client (Paho C, MQTTAsync)
  libmosquitto-dev mosquitto mosquitto-clients  # simulator, load generator, test clients, broker
  librocksdb-dev                       # storage
  libyaml-dev                          # config
  libcjson-dev                         # JSON for the CLI and tests (ingest has its own scanner)
  libmicrohttpd-dev                    # HTTP API
  libsystemd-dev                       # sd_notify
  libcriterion-dev                     # tests
  curl procps openssl                  # tests: HTTP probes, RSS readings, TLS test certificates
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root (or: sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The quickstart and the tests start their own brokers: keep the packaged
# service from holding port 1883 where the package started it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
  systemctl disable mosquitto >/dev/null 2>&1 || true
fi
echo "install-deps: done"
