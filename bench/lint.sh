#!/usr/bin/env bash
# Lints the same generated statements split into 10, 100 and 1,000 migration files with safeshift
# (release build) and with squawk, and prints wall time, CPU time and time per statement for both.
# safeshift lints the files alone (--no-database), as squawk does.
#
#   bench/lint.sh [STATEMENTS] [FILE-COUNTS] [RUNS]     (defaults: 100000 10,100,1000 5)
#
# The corpus is a migrations directory (bench/lint_corpus.py): safeshift lints it as one history,
# in version order, carrying the schema from file to file; squawk lints the same files one by one.
# squawk comes from PyPI (`squawk-cli`), installed into a virtualenv under the work directory
# when missing. Both tools write JSON to /dev/null and may use every core; each is run RUNS times,
# the two alternately, and the fastest run of each counts (the machine may be shared).
set -euo pipefail

statements=${1:-100000}
file_counts=${2:-10,100,1000}
runs=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${SAFESHIFT_BENCH_DIR:-${TMPDIR:-/tmp}/safeshift-lint-bench}
mkdir -p "$work"

target_dir=${CARGO_TARGET_DIR:-$root/target}
echo "building safeshift (release)…" >&2
(cd "$root" && cargo build --release -q -p safeshift-cli)
safeshift="$target_dir/release/safeshift"

squawk=$(command -v squawk || true)
if [ -z "$squawk" ]; then
    if [ ! -x "$work/venv/bin/squawk" ]; then
        echo "installing squawk-cli from PyPI into $work/venv…" >&2
        python3 -m venv "$work/venv"
        "$work/venv/bin/pip" install -q squawk-cli
    fi
    squawk="$work/venv/bin/squawk"
fi

# measure SAFESHIFT-COMMAND -- SQUAWK-COMMAND: runs the two commands alternately $runs times each
# (both tools exit non-zero when they find something), so a machine shared with other work loads
# both alike, and prints "best-wall cpu-of-that-run" for each, safeshift first.
measure() {
    python3 - "$runs" "$@" <<'PY'
import resource, subprocess, sys, time
runs, rest = int(sys.argv[1]), sys.argv[2:]
split = rest.index("--")
commands = [rest[:split], rest[split + 1:]]
best = [None, None]
for _ in range(runs):
    for i, command in enumerate(commands):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if best[i] is None or wall < best[i][0]:
            best[i] = (wall, cpu)
print(" ".join(f"{wall:.3f} {cpu:.3f}" for wall, cpu in best))
PY
}

results=()
for files in ${file_counts//,/ }; do
    corpus="$work/corpus-$files"
    rm -rf "$corpus"
    python3 "$root/bench/lint_corpus.py" "$corpus" "$statements" "$files" >&2
    read -r safeshift_wall safeshift_cpu squawk_wall squawk_cpu < <(
        measure "$safeshift" lint --no-database --format json "$corpus" -- \
            "$squawk" --reporter json "$corpus"/*.sql
    )
    results+=("$files" "$safeshift_wall" "$safeshift_cpu" "$squawk_wall" "$squawk_cpu")
    rm -rf "$corpus"
done

python3 - "$statements" "$runs" "$(nproc)" "$("$safeshift" --version)" "$("$squawk" --version)" \
    "${results[@]}" <<'PY'
import sys
statements, runs, cores = (int(v) for v in sys.argv[1:4])
safeshift, squawk = sys.argv[4:6]
values = sys.argv[6:]
print(f"{'files':>6} {'tool':<18} {'wall s':>8} {'cpu s':>8} {'µs/statement':>13} {'statements/s':>13}")
for i in range(0, len(values), 5):
    files = int(values[i])
    for name, wall, cpu in ((safeshift, values[i + 1], values[i + 2]), (squawk, values[i + 3], values[i + 4])):
        wall, cpu = float(wall), float(cpu)
        print(f"{files:>6} {name:<18} {wall:>8.3f} {cpu:>8.3f} {wall * 1e6 / statements:>13.1f} {statements / wall:>13,.0f}")
print(f"{statements} statements per corpus, {cores} cores, fastest of {runs} runs each")
PY
