#!/usr/bin/env bash
# Seed sweep of every crash and fault scenario over a freshly drawn seed range, printed first
# so a failure can be replayed. Sized for CI (about 3 minutes on 2 cores); raise the counts
# for a longer sweep. Exit 1 if any seed failed; each failure group prints its reproduce line.
#
#   scripts/sweep.sh                          # CI size: 30 seeds of faults/* and crash/smoke,
#                                             # 4 of each kill -9 loop
#   FAULT_SEEDS=1000 KILL9_SEEDS=1000 scripts/sweep.sh   # the nightly size
#   SWEEP_FROM=1000 scripts/sweep.sh          # a fixed range instead of a fresh one
set -euo pipefail
cd "$(dirname "$0")/.."
fault_seeds="${FAULT_SEEDS:-30}"
kill9_seeds="${KILL9_SEEDS:-4}"
out="${OUT_DIR:-reports/sweeps/ci}"
from="${SWEEP_FROM:-$(( $(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 4000000000 + 10000 ))}"
cargo build --release -p harness
harness="${CARGO_TARGET_DIR:-target}/release/harness"

# faults/disk-full-tmpfs mounts a tmpfs: root only (it exits 2, bad input, otherwise).
faults=()
for f in scenarios/faults/*.toml; do
  name="faults/$(basename "$f" .toml)"
  if [ "$name" = faults/disk-full-tmpfs ] && [ "$(id -u)" != 0 ]; then
    echo "sweep: skipping $name (needs root)"
    continue
  fi
  faults+=("$name")
done
kill9=()
for f in scenarios/crash/kill9-*.toml; do kill9+=("crash/$(basename "$f" .toml)"); done

echo "sweep: seeds $from..$((from + fault_seeds - 1)) of ${faults[*]} crash/smoke;" \
     "seeds $from..$((from + kill9_seeds - 1)) of ${kill9[*]}"
status=0
"$harness" sweep "${faults[@]}" crash/smoke --count "$fault_seeds" --from "$from" \
  --no-progress --out "$out/faults" || status=1
"$harness" sweep "${kill9[@]}" --count "$kill9_seeds" --from "$from" \
  --no-progress --out "$out/kill9" || status=1
if [ "$status" != 0 ]; then
  echo "sweep: FAILED (seed range starts at $from); reports under $out"
fi
exit "$status"
