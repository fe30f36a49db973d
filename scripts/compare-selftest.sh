#!/usr/bin/env bash
# Proves `harness compare` in both directions on this machine:
#  1. a deliberate slowdown of the commit path, 10% by default (SLOWDOWN_PCT; HARNESS_COMMIT_DELAY_NS, sized from the
#     baseline's own per-commit time) is reported as a confirmed regression (exit 3);
#  2. the same build compared with itself SELF_COMPARES times raises no alarm.
# Runs are interleaved (baseline, candidate, baseline, ...) so drift hits both sides alike.
#
#   scripts/compare-selftest.sh                     # 9 repetitions a side, 20 self-compares
#   REPS=9 SELF_COMPARES=1 scripts/compare-selftest.sh   # the CI size
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${REPS:-9}"
selfs="${SELF_COMPARES:-20}"
out="${OUT_DIR:-reports/compare-selftest}"
scenario=bench/commit-off
cargo build --release -p harness
h="${CARGO_TARGET_DIR:-target}/release/harness"
rm -rf "$out"
mkdir -p "$out"

run() { # history-file [delay-ns]
  HARNESS_COMMIT_DELAY_NS="${2:-0}" "$h" run "$scenario" --no-progress --out "$out/run" \
    --history "$1" > /dev/null
}

# The slowdown: a tenth of the baseline's median time per commit.
run "$out/probe.ndjson"
ops_s=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['engines'][0]['phases'][1]['ops_per_s'])" "$out/probe.ndjson")
pct="${SLOWDOWN_PCT:-10}"
delay=$(python3 -c "import sys; print(int(1e9 / float(sys.argv[1]) * float(sys.argv[2]) / 100))" "$ops_s" "$pct")
echo "compare-selftest: baseline $ops_s commits/s, slowdown $delay ns per commit ($pct%)"
for _ in $(seq "$reps"); do
  run "$out/base.ndjson"
  run "$out/slow.ndjson" "$delay"
done
set +e
"$h" compare "$out/base.ndjson" "$out/slow.ndjson"
code=$?
set -e
if [ "$code" != 3 ]; then
  echo "compare-selftest: FAILED: a $pct% slowdown was not a confirmed regression (exit $code)"
  exit 1
fi
echo "compare-selftest: the $pct% slowdown is a confirmed regression"

alarms=0
for s in $(seq "$selfs"); do
  rm -f "$out/a.ndjson" "$out/b.ndjson"
  for _ in $(seq "$reps"); do
    run "$out/a.ndjson"
    run "$out/b.ndjson"
  done
  set +e
  "$h" compare "$out/a.ndjson" "$out/b.ndjson" > "$out/self-$s.txt"
  code=$?
  set -e
  if [ "$code" = 3 ]; then
    alarms=$((alarms + 1))
    echo "compare-selftest: self-compare $s raised a false alarm:"
    cat "$out/self-$s.txt"
  elif [ "$code" != 0 ]; then
    echo "compare-selftest: self-compare $s exited $code"
    cat "$out/self-$s.txt"
    exit 1
  fi
done
echo "compare-selftest: $alarms false alarms in $selfs self-compares"
[ "$alarms" = 0 ]
