#!/usr/bin/env bash
# Traffic-impact benchmark: how much a schema change hurts an application that keeps running,
# the naive way and safeshift's way (lock-safe DDL, batched backfill, CONCURRENTLY, NOT VALID
# then VALIDATE, expand/contract).
#
#   bench/traffic.sh                       # 2,000,000 rows, every scenario once
#   bench/traffic.sh --rows 10000000 --repeat 3
#   bench/traffic.sh --scenarios backfill,lock-queue --rate 800
#
# It starts its own throwaway PostgreSQL 15 (durable settings, shared_buffers=1GB,
# log_lock_waits with deadlock_timeout=100ms), loads pgbench_accounts, and for each scenario
# runs a rate-limited pgbench read/write workload with prepared statements (-M prepared -R), takes
# a baseline, runs the migration, and prints migration wall time, rows/s, throughput and
# p50/p99/max latency before vs during (latency from the scheduled start, so stalls count), the
# longest lock wait of a workload session (sampled from pg_locks every 100 ms, and from the
# server log), client errors, and the machine's load average. The physical limit is the naive
# backfill with no traffic. Per-run files (pgbench logs, migration output) go to
# bench/out/traffic/, and the server runs on disk in bench/out/traffic/server (SAFESHIFT_BENCH_SERVER_DIR
# to choose another place). Scenarios: backfill, index, constraints, type, lock-queue.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p safeshift-cli
cargo build --release --quiet -p safeshift-bench --bin traffic
target=${CARGO_TARGET_DIR:-target}
exec "$target/release/traffic" --safeshift "$target/release/safeshift" "$@"
