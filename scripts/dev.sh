#!/usr/bin/env bash
# The main job (README quick start): a local fleet with OCI storage. Installs what it needs on a fresh
# machine (npm dependencies; the stack's binaries, built once per machine into ~/.cache/flotilla), then
# runs `flotilla dev up` (or `flotilla dev <args>` when arguments are given, e.g. `npm run dev -- down`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ $# -eq 0 ]; then set -- up; fi
exec node bin/flotilla.js dev "$@"
