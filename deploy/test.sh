#!/usr/bin/env bash
# Installs, builds and runs the whole test suite:
#  0. a Release build of what the quickstart and the benchmarks run (gcc's
#     -O2 warnings, e.g. -Wformat-truncation, are errors there and only
#     there: a Debug build would not catch them);
#  1. a TSan build of the lock-free structures and their stress tests
#     (RocksDB and Paho are not TSan-instrumented, so they stay out of it);
#  2. an ASan+UBSan build of everything, running unit, stress and
#     integration tests (the integration tests start their own mosquitto on a
#     free loopback port).
# Exits non-zero on any failure; the last line is ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== Release build: daemon, CLI, simulator, load generator =="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DISLEWATCH_BUILD_TESTS=OFF -DISLEWATCH_BUILD_BENCH=ON >/dev/null
cmake --build build/release -j"$jobs" --target islewatchd islewatch islewatch-sim iw_loadgen iw_raw_sub

echo "== TSan build: lock-free structures =="
cmake -S . -B build/tsan -DISLEWATCH_CONCURRENCY_ONLY=ON -DISLEWATCH_SANITIZE=thread \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/tsan -j"$jobs"
# setarch -R: TSan's shadow memory layout cannot cope with high-entropy ASLR
# on some kernels ("unexpected memory mapping").
(cd build/tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
   setarch "$(uname -m)" -R ctest --output-on-failure)

echo "== ASan+UBSan build: whole suite =="
cmake -S . -B build/asan -DISLEWATCH_SANITIZE="address;undefined" \
      -DCMAKE_BUILD_TYPE=Debug -DISLEWATCH_BUILD_BENCH=OFF >/dev/null
cmake --build build/asan -j"$jobs"
cd build/asan
# Two test executables at a time: the integration tests spend most of their
# time waiting for timers (test_alerts: 210 s of wall time, 14 s of CPU), so a
# second one roughly halves the suite (785 s serial, 452 s with -j2, on the
# 2-core machine). Each test starts its own broker and daemon on kernel-chosen
# loopback ports in its own mkdtemp directory, so two never share anything.
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  ctest --output-on-failure --parallel 2
