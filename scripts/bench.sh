#!/usr/bin/env bash
# `npm run bench`: the benchmarks (bench/README.md). On a fresh machine it installs what it needs, as
# scripts/test.sh does: npm dependencies, then the real stack's binaries with the extras (oras, helm),
# built once per machine into ~/.cache/flotilla. Then it runs bench/main.ts, which starts the stack,
# prints a table per benchmark and writes bench/results/latest.json. Knobs are BENCH_* environment
# variables (bench/lib/knobs.ts). Figures are reported, never judged: the exit code is 0 unless a
# benchmark could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*" >&2; }

say "npm dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

say "stack binaries with extras (cached per machine; a cold build takes many minutes)"
bash stack/tools/install.sh --extras

say "benchmarks"
# Every folder this run creates (the stack's, the scratch folder, the memory benchmark's control planes)
# is made below its own temporary folder, so that its processes can be told from those of stacks other
# people run on the same machine at the same time.
run_tmp=$(mktemp -d "${TMPDIR:-/tmp}/flotilla-bench-run-XXXXXX")
status=0
TMPDIR="$run_tmp" node --import tsx bench/main.ts "$@" || status=$?

# None of this run's processes may outlive it.
leftover=$(pgrep -af -- "$run_tmp" | grep -v -e pgrep -e bench.sh || true)
if [ -n "$leftover" ]; then
  echo "processes left behind by the benchmarks:"; echo "$leftover"; status=1
fi
# tsx keeps its transpile cache in TMPDIR; the rest is empty unless a benchmark failed or BENCH_KEEP is
# set (then it holds the logs the run printed the path of).
rm -rf "$run_tmp"/tsx-*
rmdir "$run_tmp" 2>/dev/null || true
exit $status
