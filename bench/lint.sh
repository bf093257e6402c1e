#!/usr/bin/env bash
# Lints a generated corpus of migration SQL with safeshift (release build) and with squawk, and
# prints statements per second for both.
#
#   bench/lint.sh [STATEMENTS] [FILES] [RUNS]     (defaults: 100000 200 5)
#
# squawk comes from PyPI (`squawk-cli`), installed into a virtualenv under the work directory
# when missing. Both tools read the same files, write JSON to /dev/null, and may use every core;
# each is run RUNS times and the fastest run counts (the machine may be shared).
set -euo pipefail

statements=${1:-100000}
files=${2:-200}
runs=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${SAFESHIFT_BENCH_DIR:-${TMPDIR:-/tmp}/safeshift-lint-bench}
corpus="$work/corpus"
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

rm -rf "$corpus"
python3 "$root/bench/lint_corpus.py" "$corpus" "$statements" "$files" >&2

# measure LABEL COMMAND…: runs the command $runs times (both tools exit non-zero when they find
# something) and prints "LABEL best-wall-seconds cpu-seconds-of-that-run".
measure() {
    local label=$1
    shift
    python3 - "$runs" "$@" <<'PY'
import resource, subprocess, sys, time
runs, command = int(sys.argv[1]), sys.argv[2:]
best = None
for _ in range(runs):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if best is None or wall < best[0]:
        best = (wall, cpu)
print(f"{best[0]:.3f} {best[1]:.3f}")
PY
}

read -r safeshift_wall safeshift_cpu < <(measure safeshift "$safeshift" lint --format json "$corpus")
read -r squawk_wall squawk_cpu < <(measure squawk "$squawk" --reporter json "$corpus"/*.sql)

python3 - "$statements" "$files" "$runs" "$(nproc)" \
    "$("$safeshift" --version)" "$safeshift_wall" "$safeshift_cpu" \
    "$("$squawk" --version)" "$squawk_wall" "$squawk_cpu" <<'PY'
import sys
statements, files, runs, cores = (int(v) for v in sys.argv[1:5])
rows = [sys.argv[5:8], sys.argv[8:11]]
print(f"{'tool':<22} {'wall s':>8} {'cpu s':>8} {'statements/s':>14} {'per cpu-second':>15}")
for name, wall, cpu in rows:
    wall, cpu = float(wall), float(cpu)
    print(f"{name:<22} {wall:>8.3f} {cpu:>8.3f} {statements / wall:>14,.0f} {statements / cpu:>15,.0f}")
print(f"{statements} statements in {files} files, {cores} cores, fastest of {runs} runs each")
PY
