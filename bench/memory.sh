#!/usr/bin/env bash
# Peak memory of safeshift on one large migration: a file of 50,000 INSERT statements (about
# 2 MB, the size of a data-seeding migration), through `up` on SQLite and PostgreSQL, `lint`
# and `plan`. Prints the peak resident set size of each command (GNU time's %M) next to the
# file's size, so the ratio shows whether memory stays proportional to the file.
#
#   bench/memory.sh                          # 50,000 statements, the release build
#   bench/memory.sh --statements 200000      # a larger file
#   bench/memory.sh --binary target/debug/safeshift   # a build of your own (no release build)
#   bench/memory.sh --server postgres://postgres@127.0.0.1:5432   # a server of your own
#
# Unless --server names one (a superuser URL without a database; a database is created there
# and dropped at the end), a throwaway server is started with the testkit and stopped at the
# end. The peak includes the allocator's retained free memory, as the operating system sees
# it. Needs GNU time (/usr/bin/time; Debian package `time`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

statements=50000
binary=""
server=""
usage="usage: bench/memory.sh [--statements N] [--binary PATH] [--server URL]"
while (($# > 0)); do
    case $1 in
        --statements) statements=${2:?--statements needs a number}; shift 2 ;;
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --server) server=${2:?--server needs a URL}; shift 2 ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
[[ -x /usr/bin/time ]] || safeshift_install_packages time

target=$(safeshift_target_dir)
if [[ -z $binary ]]; then
    safeshift_say "building safeshift (release)"
    cargo build --quiet --release -p safeshift-cli --bin safeshift
    binary=$target/release/safeshift
fi
binary=$(realpath "$binary")
if [[ -z $server ]]; then
    cargo build --quiet -p safeshift-testkit --bin safeshift-testkit
    testkit=$target/debug/safeshift-testkit
    eval "$("$testkit" start)"
    trap '"$testkit" stop "$SAFESHIFT_TEST_PG_BASE" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
    server=${SAFESHIFT_TEST_PG_URL%/*}
else
    trap 'rm -rf "$work"' EXIT
fi

work=$(mktemp -d)
mkdir "$work/migrations"
python3 - "$work/migrations/0001_seed_items.sql" "$statements" <<'EOF'
import sys
path, count = sys.argv[1], int(sys.argv[2])
with open(path, "w") as out:
    out.write("-- migrate:up\nCREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);\n")
    for i in range(count):
        out.write(f"INSERT INTO items (id, name) VALUES ({i}, 'item {i}');\n")
    out.write("\n-- migrate:down\nDROP TABLE items;\n")
EOF
size=$(stat -c %s "$work/migrations/0001_seed_items.sql")
database="safeshift_memory_$$"
psql -q -X "$server/postgres" -c "CREATE DATABASE $database" >/dev/null
pg_url="$server/$database"

# peak LABEL ARGS…: runs safeshift in the work directory and prints its peak RSS.
peak() {
    local label=$1
    shift
    local log="$work/time.log"
    (cd "$work" && /usr/bin/time -f "%M %e" -o "$log" "$binary" "$@" >/dev/null 2>&1) || true
    # GNU time writes "Command exited with non-zero status N" first when it does (lint does).
    read -r kib seconds < <(tail -n 1 "$log")
    awk -v label="$label" -v kib="$kib" -v size="$size" -v seconds="$seconds" 'BEGIN {
        printf "%-20s %8.1f MiB peak  %6.1f x the file  %7.2f s\n", label, kib / 1024, kib * 1024 / size, seconds
    }'
}

awk -v n="$statements" -v size="$size" 'BEGIN { printf "file: %d statements, %.2f MiB\n", n, size / 1048576 }'
peak "status (sqlite)" --database-url "sqlite://app.db" status
peak "lint" --database-url "sqlite://app.db" lint migrations
peak "plan (postgres)" --database-url "$pg_url" plan -o "$work/plan.md"
peak "up (sqlite)" --database-url "sqlite://app.db" up
peak "up (postgres)" --database-url "$pg_url" up
psql -q -X "$server/postgres" -c "DROP DATABASE $database" >/dev/null
