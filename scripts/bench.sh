#!/usr/bin/env bash
# Runs the fixed benchmark set (reports/baselines/README.md), appends its history lines to a
# history file, compares them with the committed baselines and renders the dashboard.
#
#   scripts/bench.sh                        # append to reports/history.ndjson
#   scripts/bench.sh /tmp/history.ndjson    # append to another file
#   scripts/bench.sh --refresh-baselines    # re-measure reports/baselines/history.ndjson
#   BENCH_SEEDS="1 2 3 4 5 6 7 8 9" scripts/bench.sh   # more seeds (see the exit status)
#
# The set: bench/commit-off, ycsb/a and ycsb/c at their scenario defaults (engine-off for
# commit-off, the `engine` family's default engine-full for the YCSB pair), seeds 1 to 9; no
# --set overrides (the set takes about 5 minutes here). Scenario and seeds are the same on
# both sides of the compare, so only the code and the machine differ.
#
# Exit status: that of `harness compare BASELINE NEW` (0 no regression, 1 a run failed a
# check, 2 bad input, 3 a confirmed regression), except 4 (inconclusive: fewer than 9 samples
# a side, as with BENCH_SEEDS="1 2 3") which is reported and exits 0 unless BENCH_STRICT=1.
# A run that fails a check still appends its line, and the compare then exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

baselines=reports/baselines/history.ndjson
set_scenarios=(bench/commit-off ycsb/a ycsb/c)
read -r -a seeds <<< "${BENCH_SEEDS:-1 2 3 4 5 6 7 8 9}"
refresh=0
history=reports/history.ndjson
case "${1:-}" in
  --refresh-baselines) refresh=1 ;;
  -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
  "") ;;
  *) history="$1" ;;
esac

cargo build --release -p harness
h="${CARGO_TARGET_DIR:-target}/release/harness"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs="reports/runs/bench-$stamp"
new="$runs/new.ndjson"
mkdir -p "$runs"

started=$SECONDS
for scenario in "${set_scenarios[@]}"; do
  for seed in "${seeds[@]}"; do
    echo "bench: $scenario seed $seed"
    # A failed check is recorded in the history line; the compare below reports it.
    "$h" run "$scenario" --seed "$seed" --no-progress --history "$new" \
      --out "$runs/${scenario//\//-}-$seed" > "$runs/${scenario//\//-}-$seed.log" 2>&1 \
      || echo "bench: $scenario seed $seed exited $? (log: $runs/${scenario//\//-}-$seed.log)"
  done
done
echo "bench: the set took $((SECONDS - started)) s; lines in $new"

if [ "$refresh" = 1 ]; then
  mkdir -p "$(dirname "$baselines")"
  cp "$new" "$baselines"
  echo "bench: baselines refreshed: $baselines ($(wc -l < "$baselines") lines); commit it"
  exit 0
fi

mkdir -p "$(dirname "$history")"
cat "$new" >> "$history"
echo "bench: appended $(wc -l < "$new") lines to $history"

set +e
"$h" compare "$baselines" "$new"
code=$?
set -e

# The dashboard over the baselines and the accumulated history, in that order.
inputs=("$baselines")
if [ "$(realpath "$history")" != "$(realpath "$baselines")" ]; then inputs+=("$history"); fi
"$h" dashboard "${inputs[@]}" --out reports/dashboard
cp "$history" reports/dashboard/history.ndjson

case "$code" in
  0) echo "bench: no regression against the baselines" ;;
  4)
    echo "bench: compare inconclusive (fewer than 9 samples a side; raise BENCH_SEEDS)"
    if [ "${BENCH_STRICT:-0}" != 1 ]; then code=0; fi
    ;;
  *) echo "bench: compare exited $code (1 a check failed, 2 bad input, 3 regression)" ;;
esac
exit "$code"
