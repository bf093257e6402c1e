#!/usr/bin/env bash
# MySQL/MariaDB benchmark: a copying ALTER TABLE of a large table (1,000,000 rows by default)
# while an application keeps writing to it, run as a plain ALTER and safeshift's way
# (`-- safeshift:online-schema-change`, which runs pt-online-schema-change).
#
#   bench/mysql_alter.sh                          # 1,000,000 rows, 200 writes/s, both scenarios
#   bench/mysql_alter.sh --rows 200000 --rate 400 --scenarios online
#   bench/mysql_alter.sh --app-lock-wait 5        # the application gives up on a lock after 5 s
#
# It starts its own throwaway MariaDB (the testkit's, installed when missing with
# percona-toolkit), loads the table into a fresh database per scenario (dropped afterwards),
# runs a rate-limited write workload (latency from each write's scheduled start, so a stall
# shows as latency), takes a baseline, runs the change, and prints how long it took, the
# writes' p50/p99/max latency and how many waited over a second, before and during it, the
# errors the application got, and whether every acknowledged insert is in the changed table.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
safeshift_require_cargo
# shellcheck disable=SC2046 # space-separated package names
safeshift_install_packages $(safeshift_missing_build_packages) $(safeshift_missing_test_packages)
# The debug build: what is measured is the server's blocking, not the client's speed.
cargo build --quiet -p safeshift-cli
cargo build --quiet -p safeshift-bench --bin mysql_alter
target="$(safeshift_target_dir)"
exec "$target/debug/mysql_alter" --safeshift "$target/debug/safeshift" "$@"
