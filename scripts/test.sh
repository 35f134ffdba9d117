#!/usr/bin/env bash
# The test command (README quick start; .ci/run calls it). On a fresh machine it installs what it needs:
# npm dependencies, then the real stack's binaries (built once per machine into ~/.cache/flotilla).
# Then: typecheck, CRDs up to date, unit tests, end-to-end tests on the real stack, and the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

say "npm dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

say "stack binaries (cached per machine; a cold build takes many minutes)"
bash stack/tools/install.sh ${FLOTILLA_INSTALL_FLAGS:---extras --node}

say "typecheck"
npx tsc -p tsconfig.json --noEmit

say "lint and format (Biome)"
npx biome ci --colors=off --diagnostic-level=info .

say "generated CRDs are up to date"
npm run --silent crds:check
bash scripts/sync-chart-crds.sh --check

# Stack processes that were already running (another developer's stack) are not this run's leftovers.
before=$(pgrep -f 'flotilla-stack-' | sort || true)

status=0
say "unit tests"
FLOTILLA_TEST_SUITE=unit npx mocha --config .mocharc.unit.json || status=1

say "end-to-end tests (real kube-apiservers, registry, git server)"
FLOTILLA_TEST_SUITE=e2e npx mocha --config .mocharc.e2e.json 'e2e/**/*.e2e.ts' || status=1

say "the main job, as the README runs it (flotilla dev up / status / down)"
FLOTILLA_TEST_SUITE=main-job npx mocha --config .mocharc.main.json || status=1

# Every process the e2e stack started lives under a flotilla-stack-* folder; none may outlive the run.
leftover=$(pgrep -af 'flotilla-stack-' | grep -v -e pgrep -e test.sh | while read -r pid rest; do
  grep -qx "$pid" <<<"$before" || echo "$pid $rest"; done || true)
if [ -n "$leftover" ]; then
  echo "processes left behind by the tests:"; echo "$leftover"; status=1
fi
exit $status
