#!/usr/bin/env bash
# Repeats chaos scenarios (each a fresh process; for one long-lived database see scripts/soak.sh) with fresh seeds until --hours have passed; stops at the first
# failure and prints the command that reproduces it. See soak/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
hours=1
if [ "${1:-}" = "--hours" ]; then hours="$2"; shift 2; fi
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  scenarios=(crash/kill9-ycsb-a crash/kill9-bank faults/power-loss-fdb faults/power-loss-sqlite
             faults/torn-write-wal-tail faults/bitflip faults/enospc faults/eio-fsync faults/fail-at-n)
fi
cargo build --release -p harness
out="reports/runs/soak-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
deadline=$(( $(date +%s) + $(awk "BEGIN { printf \"%d\", $hours * 3600 }") ))
round=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  for s in "${scenarios[@]}"; do
    round=$((round + 1))
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    start=$(date +%s)
    if "${CARGO_TARGET_DIR:-target}/release/harness" run "$s" --seed "$seed" --no-progress \
        --out "$out/$round-${s//\//-}" > "$out.log.tmp" 2>&1; then
      echo "round $round $s seed $seed pass $(( $(date +%s) - start ))s"
    else
      cat "$out.log.tmp"
      echo "round $round $s seed $seed FAIL: reproduce with: harness run $s --seed $seed"
      exit 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || break
  done
done
rm -f "$out.log.tmp"
echo "soak: $round rounds passed"
