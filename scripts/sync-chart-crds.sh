#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml, themselves generated from lib/api) into the controller chart's
# crds/ folder, byte for byte. With --check it changes nothing and fails, naming the files, when the chart's
# copy differs from crds/ (CI runs it; e2e/charts.e2e.ts checks the same).
#
# Why a copy and not .Files.Glob: a chart can only read files inside its own folder, and the chart must be
# packageable on its own. Why the chart's crds/ folder and not templates/: Helm installs crds/ before
# anything else, never deletes them on uninstall (that would delete every GitRepo, Bundle and Cluster)
# and skips CRDs that already exist. The price: `helm upgrade` does not upgrade CRDs; apply them first
# (`kubectl apply --server-side -f charts/flotilla/crds/`), as the chart's NOTES say.
set -euo pipefail
cd "$(dirname "$0")/.."
src=crds
dst=charts/flotilla/crds

if [ "${1:-}" = "--check" ]; then
  status=0
  for f in "$src"/*.yaml; do
    name=$(basename "$f")
    if ! cmp -s "$f" "$dst/$name"; then echo "out of date: $dst/$name (differs from $f)"; status=1; fi
  done
  for f in "$dst"/*.yaml; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    if [ ! -e "$src/$name" ]; then echo "stale: $dst/$name (no $src/$name)"; status=1; fi
  done
  if [ $status -ne 0 ]; then echo "run scripts/sync-chart-crds.sh to update the chart's CRDs"; fi
  exit $status
fi

mkdir -p "$dst"
for f in "$dst"/*.yaml; do
  [ -e "$f" ] || continue
  [ -e "$src/$(basename "$f")" ] || rm -f "$f"
done
cp "$src"/*.yaml "$dst"/
echo "copied $(ls "$src"/*.yaml | wc -l) CRDs into $dst"
