#!/usr/bin/env bash
# Benchmark: the advisory run lock through PgBouncer in transaction pooling (where it cannot
# work, so safeshift must refuse it before taking it), and what finding that out costs on a
# direct connection.
#
#   bench/pooler.sh                 # 20 trials of each
#   bench/pooler.sh --trials 50
#
# Starts a throwaway PostgreSQL 15 and a transaction-pooling PgBouncer with the testkit
# (`safeshift-testkit start --pgbouncer`), stopped at the end, and the release build of
# safeshift. Each trial gets a fresh database with 20 one-table migrations.
#
# 1. One advisory runner (`--lock-mode advisory up`) through PgBouncer: its exit code, whether it
#    said to use the lease lock, how many migrations it applied, and how many advisory locks are
#    held in the database right after it exits (pg_locks, read directly).
# 2. Eight such runners at once: the same, for every runner.
# 3. A no-op `up` directly (nothing pending) with the advisory lock, which probes for a pooler
#    before taking it, and with the lease lock, which does not: the median wall time of each.
# Raw results go to bench/out/pooler/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

trials=20
usage="usage: bench/pooler.sh [--trials N]"
while (($# > 0)); do
    case $1 in
        --trials) trials=${2:?--trials needs a number}; shift 2 ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
[[ $trials =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }

say() { echo "bench: $*" >&2; }

work=$repo/bench/out/pooler
mkdir -p "$work"
rm -rf "${work:?}"/*

safeshift_require_cargo
target=$(safeshift_target_dir)
say "building safeshift (release) and the testkit"
cargo build --quiet --release -p safeshift-cli --bin safeshift
cargo build --quiet -p safeshift-testkit --bin safeshift-testkit
safeshift=$target/release/safeshift
testkit=$target/debug/safeshift-testkit
psql=""
for candidate in "${SAFESHIFT_PG_BIN:-}/psql" /usr/lib/postgresql/15/bin/psql "$(command -v psql || true)"; do
    if [[ -x $candidate ]]; then psql=$candidate; break; fi
done
[[ -n $psql ]] || { say "psql not found (install postgresql-client-15)"; exit 1; }

say "starting a throwaway PostgreSQL 15 and PgBouncer (transaction pooling)"
eval "$("$testkit" start --pgbouncer)"
trap '"$testkit" stop "$SAFESHIFT_TEST_PG_BASE" >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
server=${SAFESHIFT_TEST_PG_URL%/*}
pooler=${SAFESHIFT_TEST_PGBOUNCER_URL%/*}

project=$work/project
mkdir -p "$project/migrations"
for number in $(seq 1 20); do
    printf -- '-- migrate:up\nCREATE TABLE t_%04d (id int);\n\n-- migrate:down\nDROP TABLE t_%04d;\n' \
        "$number" "$number" >"$project/migrations/$(printf '%04d' "$number")_table.sql"
done

query() { "$psql" -X -q -t -A -d "$1" -c "$2"; }
fresh_database() {
    local name=bench_pooler_$1
    query "$server/postgres" "DROP DATABASE IF EXISTS $name" >/dev/null
    query "$server/postgres" "CREATE DATABASE $name" >/dev/null
    echo "$name"
}
advisory_locks() {
    query "$server/$1" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
}
tables() {
    query "$server/$1" "SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'"
}
# One advisory runner's line: exit code, whether it named the lease lock.
advisory_up() {
    local database=$1 log=$2 code=0
    (cd "$project" && env -u DATABASE_URL -u SAFESHIFT_DATABASE_URL NO_COLOR=1 \
        "$safeshift" --database-url "$pooler/$database" --lock-mode advisory --lock-wait 30s up \
        >"$log" 2>&1) || code=$?
    # How it was stopped: by the check before the lock ("no lock was taken"), or by the first
    # migration's own check of the lock ("lost the run lock").
    local named=no
    grep -q -- '--lock-mode lease' "$log" && named=yes
    local how=-
    grep -q 'no lock was taken' "$log" && how=before-the-lock
    grep -q 'lost the run lock' "$log" && how=by-the-migration-check
    echo "$code $named $how"
}

refused=0 left_locks=0 applied=0 runs=0 late=0
say "1. one advisory runner through PgBouncer, $trials times"
for trial in $(seq 1 "$trials"); do
    database=$(fresh_database "one_$trial")
    read -r code named how < <(advisory_up "$database" "$work/one_$trial.log")
    [[ $how == by-the-migration-check ]] && late=$((late + 1))
    locks=$(advisory_locks "$database") made=$(tables "$database")
    echo "trial $trial: exit $code, names lease: $named, tables created: $made, advisory locks left: $locks" >>"$work/one.txt"
    runs=$((runs + 1))
    [[ $code == 5 && $named == yes ]] && refused=$((refused + 1))
    ((locks > 0)) && left_locks=$((left_locks + 1))
    ((made > 0)) && applied=$((applied + 1))
    query "$server/postgres" "DROP DATABASE $database WITH (FORCE)" >/dev/null
done
echo "one runner: $refused of $runs refused (exit 5, naming --lock-mode lease; $late of them by the first migration's lock check rather than before the lock); $applied applied anything; $left_locks left an advisory lock"

refused=0 left_locks=0 applied=0 runs=0 late=0
say "2. eight advisory runners at once through PgBouncer, $trials times"
for trial in $(seq 1 "$trials"); do
    database=$(fresh_database "eight_$trial")
    for runner in $(seq 1 8); do
        advisory_up "$database" "$work/eight_${trial}_$runner.log" >"$work/eight_${trial}_$runner.result" &
    done
    wait
    locks=$(advisory_locks "$database") made=$(tables "$database")
    for runner in $(seq 1 8); do
        read -r code named how <"$work/eight_${trial}_$runner.result"
        runs=$((runs + 1))
        [[ $how == by-the-migration-check ]] && late=$((late + 1))
        [[ $code == 5 && $named == yes ]] && refused=$((refused + 1))
    done
    echo "trial $trial: tables created: $made, advisory locks left: $locks" >>"$work/eight.txt"
    ((locks > 0)) && left_locks=$((left_locks + 1))
    ((made > 0)) && applied=$((applied + 1))
    query "$server/postgres" "DROP DATABASE $database WITH (FORCE)" >/dev/null
done
echo "eight runners: $refused of $runs runners refused ($late of them by the first migration's lock check); $applied of $trials trials applied anything; $left_locks of $trials left an advisory lock"

say "3. a no-op up directly: advisory (probe included) and lease, $trials times each"
database=$(fresh_database noop)
(cd "$project" && "$safeshift" --database-url "$server/$database" up >/dev/null 2>&1)
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for mode in advisory lease; do
    for _ in $(seq 1 "$trials"); do
        started=$(date +%s%N)
        (cd "$project" && "$safeshift" --database-url "$server/$database" --lock-mode "$mode" up >/dev/null 2>&1)
        echo $((($(date +%s%N) - started) / 1000))
    done >"$work/noop_$mode.txt"
    echo "no-op up directly, --lock-mode $mode: median $(median <"$work/noop_$mode.txt") µs over $trials runs"
done
