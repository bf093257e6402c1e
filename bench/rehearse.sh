#!/usr/bin/env bash
# Rehearses a generated project of N migrations (tables, indexes, views, functions, triggers,
# each with a correct down) up → down → up on a throwaway PostgreSQL, and prints the time,
# server start included. Target: under 60 s for 250 migrations.
#
#   bench/rehearse.sh [N=250]        # SAFESHIFT_BIN=path/to/safeshift to skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-250}
if [[ -z ${SAFESHIFT_BIN:-} ]]; then
    cargo build --release --quiet -p safeshift-cli
    target=${CARGO_TARGET_DIR:-target}
    SAFESHIFT_BIN="$target/release/safeshift"
fi
project=$(mktemp -d)
trap 'rm -rf "$project"' EXIT
bench/generate-rehearsal-project.sh "$project" "$count"
started=$(date +%s.%N)
status=0
env -u DATABASE_URL "$SAFESHIFT_BIN" -q -C "$project" rehearse --all >"$project/report.txt" || status=$?
ended=$(date +%s.%N)
tail -n 1 "$project/report.txt"
awk -v s="$started" -v e="$ended" -v n="$count" \
    'BEGIN { printf "rehearsed %d migrations (up, down, up, 3 snapshots each) in %.2f s wall, %.1f ms per migration, server start included\n", n, e - s, (e - s) * 1000 / n }'
exit "$status"
