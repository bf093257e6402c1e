#!/usr/bin/env bash
# Writes the corpus for bench/apply.sh: N trivial migrations, each `CREATE TABLE t_<i> (id int);`,
# in the layouts the compared tools read.
#
#   bench/apply_corpus.sh DIR [N]     # N defaults to 1000
#
#   DIR/sections/migrations/  <i>_create_t_<i>.sql with `-- migrate:up` / `-- migrate:down`
#                             sections (safeshift's native layout, which dbmate reads too), plus
#                             DIR/sections/safeshift.toml so safeshift finds nothing else
#   DIR/plain/                <i>_create_t_<i>.sql holding only the up SQL (sqlx-cli's simple
#                             layout, and what the psql replay includes)
#   DIR/replay.sql            the psql replay: `BEGIN; \i file; COMMIT;` per file, in order
set -euo pipefail

if (($# < 1 || $# > 2)); then
    echo "usage: $0 DIR [N]" >&2
    exit 2
fi
dir=$1
count=${2:-1000}
[[ $count =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive number, not '$count'" >&2; exit 2; }

rm -rf "$dir"
mkdir -p "$dir/sections/migrations" "$dir/plain"
dir=$(cd "$dir" && pwd)
printf 'directory = "migrations"\n' >"$dir/sections/safeshift.toml"

# One awk process writes every file (a shell loop forking per file would dominate for large N).
awk -v count="$count" -v dir="$dir" 'BEGIN {
    width = length(count "") < 4 ? 4 : length(count "")
    for (i = 1; i <= count; i++) {
        name = sprintf("%0" width "d_create_t_%d.sql", i, i)
        up = sprintf("CREATE TABLE t_%d (id int);", i)
        sections = dir "/sections/migrations/" name
        plain = dir "/plain/" name
        printf "-- migrate:up\n%s\n\n-- migrate:down\nDROP TABLE t_%d;\n", up, i > sections
        close(sections)
        printf "%s\n", up > plain
        close(plain)
        printf "BEGIN;\n\\i %s\nCOMMIT;\n", plain > (dir "/replay.sql")
    }
}'
