#!/usr/bin/env bash
# Runs SHARDS (default 4) shards of crash/kill9-ycsb-a with one seed, JOBS (default 2) at a
# time, merges them with `harness merge`, and fails when the merge fails (a shard missing,
# duplicated or of another run: exit 2; a check failed: exit 1) or when the merged report's
# crash-cycle count is not the scenario's `faults.kill9.cycles`.
#
#   scripts/shard-merge.sh                               # 4 shards, a fresh seed (printed)
#   SEED=7 SHARDS=4 JOBS=1 scripts/shard-merge.sh        # one shard at a time
#   scripts/shard-merge.sh --set faults.kill9.cycles=400 # extra `harness run` arguments
set -euo pipefail
cd "$(dirname "$0")/.."
shards="${SHARDS:-4}"
jobs="${JOBS:-2}"
scenario="${SCENARIO:-crash/kill9-ycsb-a}"
seed="${SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
out="${OUT_DIR:-reports/runs/shard-merge}"
if ! command -v jq >/dev/null 2>&1; then
  echo "shard-merge: needs jq to read the merged report" >&2
  exit 2
fi
cargo build --release -p harness
h="${CARGO_TARGET_DIR:-target}/release/harness"
rm -rf "$out"
mkdir -p "$out"
echo "shard-merge: $shards shards of $scenario, seed $seed, $jobs at a time, output $out"

started=$(date +%s)
dirs=()
for first in $(seq 0 "$jobs" $((shards - 1))); do
  pids=()
  for i in $(seq "$first" $((first + jobs - 1))); do
    [ "$i" -lt "$shards" ] || break
    dirs+=("$out/shard-$i")
    # A shard's own exit status is not the verdict: the merge reads its report (a shard
    # that wrote none is reported missing).
    "$h" run "$scenario" --seed "$seed" --shard "$i/$shards" --no-progress \
      --out "$out/shard-$i" "$@" > "$out/shard-$i.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
done
echo "shard-merge: shards ran in $(( $(date +%s) - started )) s"

set +e
"$h" merge "${dirs[@]}" --out "$out/merged"
code=$?
set -e
if [ "$code" != 0 ]; then
  echo "shard-merge: FAILED: harness merge exited $code (shard logs: $out/shard-*.log)"
  exit 1
fi
report="$out/merged/report.json"
want=$(jq '.config.faults.kill9.cycles' "$report")
got=$(jq '.crash_cycles.count' "$report")
if [ "$got" != "$want" ]; then
  echo "shard-merge: FAILED: merged $got crash cycles, the scenario has $want"
  exit 1
fi
jq -r '"shard-merge: ok: \(.crash_cycles.count) cycles from \(.shard.count) shards; recovery p50 \(.crash_cycles.reopen.p50_us) us, p99 \(.crash_cycles.reopen.p99_us) us, max \(.crash_cycles.reopen.max_us) us; checks: \([.checks[] | "\(.name) \(if .passed then "pass" else "FAIL" end)"] | join(", "))"' "$report"
