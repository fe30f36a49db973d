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
# python3 rather than jq: a bare CI machine has the one and not always the other.
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want, got = r["config"]["faults"]["kill9"]["cycles"], r["crash_cycles"]["count"]
if got != want:
    print(f"shard-merge: FAILED: merged {got} crash cycles, the scenario has {want}")
    sys.exit(1)
reopen = r["crash_cycles"]["reopen"]
checks = ", ".join(f"{c['name']} {'pass' if c['passed'] else 'FAIL'}" for c in r["checks"])
print(f"shard-merge: ok: {got} cycles from {r['shard']['count']} shards; recovery p50 "
      f"{reopen['p50_us']} us, p99 {reopen['p99_us']} us, max {reopen['max_us']} us; checks: {checks}")
PY
