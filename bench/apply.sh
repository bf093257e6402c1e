#!/usr/bin/env bash
# Benchmark: apply 1,000 trivial migrations (`CREATE TABLE t_i (id int);`, one file each) to an
# empty PostgreSQL 15 database with the release build of safeshift, next to a plain psql replay
# of the same files (one transaction per file, one session), dbmate and sqlx-cli.
#
#   bench/apply.sh                      # safeshift, psql and dbmate, 5 timed runs each
#   bench/apply.sh --with-sqlx          # also sqlx-cli (installed into bench/out: minutes)
#   bench/apply.sh --runs 9 --migrations 200 --without-dbmate
#   bench/apply.sh --server postgres://postgres@127.0.0.1:5432   # a server of your own
#
# Unless --server names one (a superuser URL without a database; each run creates and drops a
# database there), a throwaway server is started with the testkit (`safeshift-testkit start`) and
# stopped at the end. That one runs with fsync, synchronous_commit and full_page_writes off, so
# commits cost no disk flush and the client's own overhead shows; give --server a durable
# server to see what production commits cost. Every run gets a fresh database and counts only if
# it created every table and its tool recorded every migration. Tool order rotates between
# runs, and one untimed warm-up run per tool comes first. The wall time of each run (process
# start to exit) is divided by the number of migrations; a second invocation with nothing
# pending ("noop") shows the fixed cost. dbmate comes from npm (its binary package installs
# offline through optionalDependencies) and is installed into bench/out/npm-dbmate when it is
# not on PATH; sqlx-cli is used when on PATH or already in bench/out/cargo-root, and installed
# there only with --with-sqlx. Logs and raw timings go to bench/out/apply/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

runs=5
warmups=1
migrations=1000
with_sqlx=false
with_dbmate=true
server=""
dbmate_version=2.36.0
usage="usage: bench/apply.sh [--runs N] [--warmups N] [--migrations N] [--with-sqlx] [--without-dbmate] [--server URL]"
while (($# > 0)); do
    case $1 in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --warmups) warmups=${2:?--warmups needs a number}; shift 2 ;;
        --migrations) migrations=${2:?--migrations needs a number}; shift 2 ;;
        --with-sqlx) with_sqlx=true; shift ;;
        --without-dbmate) with_dbmate=false; shift ;;
        --server) server=${2:?--server needs a URL}; shift 2 ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
for number in "$runs" "$warmups" "$migrations"; do
    [[ $number =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }
done
((runs > 0 && migrations > 0)) || { echo "--runs and --migrations must be positive" >&2; exit 2; }

say() { echo "bench: $*" >&2; }

out=$repo/bench/out
work=$out/apply
mkdir -p "$work/logs"
rm -f "$work"/logs/*

# --- binaries -------------------------------------------------------------------------------
safeshift_require_cargo
target=$(safeshift_target_dir)
say "building safeshift (release) and the testkit"
cargo build --quiet --release -p safeshift-cli --bin safeshift
[[ -n $server ]] || cargo build --quiet -p safeshift-testkit --bin safeshift-testkit
safeshift=$target/release/safeshift
testkit=$target/debug/safeshift-testkit

psql=""
for candidate in "${SAFESHIFT_PG_BIN:-}/psql" /usr/lib/postgresql/15/bin/psql "$(command -v psql || true)"; do
    if [[ -x $candidate ]]; then psql=$candidate; break; fi
done
[[ -n $psql ]] || { say "psql not found (install postgresql-client-15)"; exit 1; }

dbmate=""
if $with_dbmate; then
    if command -v dbmate >/dev/null 2>&1; then
        dbmate=$(command -v dbmate)
    else
        find_dbmate() {
            [[ -d $out/npm-dbmate/node_modules/@dbmate ]] || return 0
            find "$out/npm-dbmate/node_modules/@dbmate" -path '*/bin/dbmate' -type f | head -n 1
        }
        dbmate=$(find_dbmate)
        if [[ -z $dbmate ]] && command -v npm >/dev/null 2>&1; then
            say "installing dbmate $dbmate_version from npm into $out/npm-dbmate"
            mkdir -p "$out/npm-dbmate"
            npm install --silent --no-audit --no-fund --prefix "$out/npm-dbmate" "dbmate@$dbmate_version" >&2 || true
            dbmate=$(find_dbmate)
        fi
        [[ -n $dbmate ]] || say "dbmate is not available (no npm, or the install failed); skipping it"
    fi
fi

sqlx=""
if command -v sqlx >/dev/null 2>&1; then
    sqlx=$(command -v sqlx)
elif [[ -x $out/cargo-root/bin/sqlx ]]; then
    sqlx=$out/cargo-root/bin/sqlx
elif $with_sqlx; then
    say "installing sqlx-cli into $out/cargo-root (this takes minutes)"
    CARGO_TARGET_DIR=$out/cargo-target cargo install --quiet sqlx-cli --no-default-features \
        --features postgres,rustls --root "$out/cargo-root" >&2
    sqlx=$out/cargo-root/bin/sqlx
fi

# --- corpus and server ----------------------------------------------------------------------
corpus=$out/corpus-$migrations
"$repo/bench/apply_corpus.sh" "$corpus" "$migrations"

if [[ -z $server ]]; then
    say "starting a throwaway PostgreSQL 15"
    eval "$("$testkit" start)"
    trap '"$testkit" stop "$SAFESHIFT_TEST_PG_BASE" >/dev/null 2>&1 || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    server=${SAFESHIFT_TEST_PG_URL%/*}
fi
server=${server%/}
admin() { PGOPTIONS="-c client_min_messages=warning" "$psql" -X -q -t -A -v ON_ERROR_STOP=1 -d "$server/postgres?sslmode=disable" -c "$1"; }
query() { "$psql" -X -q -t -A -v ON_ERROR_STOP=1 -d "$server/$1?sslmode=disable" -c "$2"; }
server_version=$(admin "SHOW server_version")
durability=$(admin "SELECT 'fsync ' || current_setting('fsync') || ', synchronous_commit ' || current_setting('synchronous_commit')")

# --- tools ----------------------------------------------------------------------------------
# apply_<tool> URL: applies everything; history_<tool> DB: how many migrations the tool recorded.
# Each runs in the corpus directory with an environment that cannot point it elsewhere.
clean_env=(env -i "PATH=$PATH" "HOME=$work" "LANG=C.UTF-8")

apply_safeshift() { (cd "$corpus/sections" && "${clean_env[@]}" "$safeshift" --database-url "$1" up); }
history_safeshift() { query "$1" "SELECT count(*) FROM safeshift.history WHERE kind = 'migrate' AND direction = 'up' AND status = 'succeeded'"; }

apply_psql() { (cd "$corpus" && "${clean_env[@]}" "$psql" -X -q -v ON_ERROR_STOP=1 -d "$1" -f replay.sql); }
history_psql() { echo "$migrations"; }

apply_dbmate() { (cd "$corpus" && "${clean_env[@]}" "$dbmate" --url "$1" --migrations-dir sections/migrations --no-dump-schema migrate); }
history_dbmate() { query "$1" "SELECT count(*) FROM schema_migrations"; }

apply_sqlx() { (cd "$corpus" && "${clean_env[@]}" "$sqlx" migrate run --no-dotenv --source plain --database-url "$1"); }
history_sqlx() { query "$1" "SELECT count(*) FROM _sqlx_migrations WHERE success"; }

tools=(safeshift psql)
[[ -n $dbmate ]] && tools+=(dbmate)
[[ -n $sqlx ]] && tools+=(sqlx)
version_of() {
    case $1 in
        safeshift) "$safeshift" --version ;;
        psql) "$psql" --version ;;
        dbmate) "$dbmate" --version ;;
        sqlx) "$sqlx" --version ;;
    esac
}

now_ns() { date +%s%N; }

# One run: a fresh database, the timed apply, the check, the timed noop. Prints
# "tool<TAB>apply_ns<TAB>noop_ns<TAB>load1" (noop_ns is - for psql, which has no history).
run_once() {
    local tool=$1 label=$2
    local database="bench_${tool}_${label}"
    local url="$server/$database?sslmode=disable"
    local log="$work/logs/$tool-$label.log"
    admin "DROP DATABASE IF EXISTS $database" >/dev/null
    admin "CREATE DATABASE $database" >/dev/null
    local start end apply_ns noop_ns="-"
    start=$(now_ns)
    if ! "apply_$tool" "$url" >"$log" 2>&1; then
        say "$tool run $label failed; see $log"
        tail -n 20 "$log" >&2
        exit 1
    fi
    end=$(now_ns)
    apply_ns=$((end - start))
    local tables recorded
    tables=$(query "$database" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'")
    recorded=$("history_$tool" "$database")
    if [[ $tables != "$migrations" || $recorded != "$migrations" ]]; then
        say "$tool run $label applied $tables tables and recorded $recorded migrations, not $migrations; see $log"
        exit 1
    fi
    if [[ $tool != psql ]]; then
        start=$(now_ns)
        "apply_$tool" "$url" >>"$log" 2>&1 || { say "$tool noop run $label failed; see $log"; exit 1; }
        end=$(now_ns)
        noop_ns=$((end - start))
    fi
    admin "DROP DATABASE $database" >/dev/null
    printf '%s\t%s\t%s\t%s\n' "$tool" "$apply_ns" "$noop_ns" "$(cut -d' ' -f1 /proc/loadavg)"
}

say "server: PostgreSQL $server_version at ${server#postgres://}; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
for tool in "${tools[@]}"; do
    say "$(printf '%-9s %s' "$tool" "$(version_of "$tool" 2>&1 | head -n 1)")"
done
for ((w = 1; w <= warmups; w++)); do
    for tool in "${tools[@]}"; do
        run_once "$tool" "warmup$w" >/dev/null
    done
done
results=$work/results.tsv
: >"$results"
for ((r = 1; r <= runs; r++)); do
    # Rotate the order, so no tool always runs right after the same other one.
    count=${#tools[@]}
    for ((k = 0; k < count; k++)); do
        tool=${tools[$(((k + r) % count))]}
        run_once "$tool" "$r" | tee -a "$results" | awk -F'\t' -v n="$migrations" -v r="$r" \
            '{ printf "bench: run %d %-9s %7.1f ms (%.3f ms/migration)%s, load %s\n", r, $1, $2 / 1e6, $2 / 1e6 / n, ($3 == "-" ? "" : sprintf(", noop %.1f ms", $3 / 1e6)), $4 }' >&2
    done
done

# --- summary --------------------------------------------------------------------------------
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit; print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_of() { awk -F'\t' -v t="$1" -v c="$2" '$1 == t && $c != "-" { print $c }' "$results"; }

echo
echo "Applying $migrations trivial migrations to an empty database: PostgreSQL $server_version ($durability), $(nproc) CPUs, $runs runs per tool (+$warmups warm-up)"
echo "load average (1 min) during the runs: $(cut -f4 "$results" | sort -n | head -n 1) to $(cut -f4 "$results" | sort -n | tail -n 1)"
echo
printf '%-10s %12s %10s %10s %12s %12s\n' "tool" "ms/migration" "min" "max" "total (s)" "noop (ms)"
printf '%-10s %12s %10s %10s %12s %12s\n' "" "(median)" "" "" "(median)" "(median)"
declare -A per_migration
for tool in "${tools[@]}"; do
    med=$(column_of "$tool" 2 | median)
    min=$(column_of "$tool" 2 | sort -n | head -n 1)
    max=$(column_of "$tool" 2 | sort -n | tail -n 1)
    noop=$(column_of "$tool" 3 | median)
    per_migration[$tool]=$(awk -v v="$med" -v n="$migrations" 'BEGIN { printf "%.4f", v / 1e6 / n }')
    awk -v tool="$tool" -v med="$med" -v min="$min" -v max="$max" -v noop="$noop" -v n="$migrations" 'BEGIN {
        printf "%-10s %12.3f %10.3f %10.3f %12.2f %12s\n", tool, med / 1e6 / n, min / 1e6 / n, max / 1e6 / n, med / 1e9,
            (noop == "" ? "-" : sprintf("%.1f", noop / 1e6))
    }'
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
psql_ratio=$(ratio "${per_migration[safeshift]}" "${per_migration[psql]}")
verdict() { awk -v r="$1" -v limit="$2" 'BEGIN { print (r <= limit) ? "meets" : "misses" }'; }
echo "safeshift / psql replay:     ${psql_ratio}x  ($(verdict "$psql_ratio" 1.3) the target of at most 1.3x)"
fastest=""
for tool in dbmate sqlx; do
    [[ -n ${per_migration[$tool]:-} ]] || continue
    if [[ -z $fastest ]] || awk -v a="${per_migration[$tool]}" -v b="${per_migration[$fastest]}" 'BEGIN { exit !(a < b) }'; then
        fastest=$tool
    fi
done
if [[ -n $fastest ]]; then
    other_ratio=$(ratio "${per_migration[safeshift]}" "${per_migration[$fastest]}")
    echo "safeshift / fastest other:   ${other_ratio}x  (fastest: $fastest; $(verdict "$other_ratio" 1.0) the target of at most 1.0x)"
else
    echo "safeshift / fastest other:   n/a (neither dbmate nor sqlx-cli is available)"
fi
echo "raw timings (ns): $results"
