#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a time budget each and fails on any crash.
#
#   bash scripts/fuzz.sh                  every target, 60 s each
#   bash scripts/fuzz.sh --smoke          every target, 30 s each (CI)
#   bash scripts/fuzz.sh --time 1800 wal_decode page_decode
#   FUZZ_SEEDED_BUG=skip-commit-fsync bash scripts/fuzz.sh --features seeded-bugs \
#       --expect-fail crash_schedule       (a check must catch a seeded engine bug)
#
# FUZZ_SEED=N fixes libFuzzer's seed (the CI gate uses it, so a red run replays exactly; the
# nightly workflow leaves it unset to explore).
# Needs a nightly toolchain (the address sanitizer); installs cargo-fuzz when missing.
# New corpus entries stay in fuzz/corpus/<target>/ (ignored by git except seed-*); crash
# inputs land in fuzz/artifacts/<target>/. Prints executions per second and total runs per
# target from libFuzzer's final statistics.
set -euo pipefail
cd "$(dirname "$0")/.."

# Limits per input, for every target: a hang is an input running past TIMEOUT_S, a wild
# allocation one malloc past MALLOC_MB (the engine caps any single read at 1 MiB values).
TIMEOUT_S=10
RSS_MB=2048
MALLOC_MB=512

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

budget=60
targets=()
features=()
expect_fail=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) budget=30 ;;
    --time)
      [ $# -ge 2 ] || { echo "--time needs seconds" >&2; exit 2; }
      budget="$2"
      shift
      ;;
    --features)
      [ $# -ge 2 ] || { echo "--features needs a list" >&2; exit 2; }
      features=(--features "$2")
      shift
      ;;
    --expect-fail) expect_fail=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
case "$budget" in
  '' | *[!0-9]*) echo "--time takes whole seconds, got '$budget'" >&2; exit 2 ;;
esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "a nightly toolchain is required: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets"
# One build for all targets, so the budget below is spent fuzzing, not compiling.
cargo +nightly fuzz build "${features[@]}"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${budget}s"
  mkdir -p "fuzz/corpus/$t"
  log="$logs/$t.log"
  rc=0
  cargo +nightly fuzz run "${features[@]}" "$t" -- \
    ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
    -max_total_time="$budget" -timeout="$TIMEOUT_S" \
    -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)"
  secs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)"
  if [ -z "$runs" ]; then
    runs="$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -1)"
  fi
  runs="${runs:-0}"
  [ -n "$secs" ] && [ "$secs" -gt 0 ] || secs="$budget"
  rate=$((runs / (secs > 0 ? secs : 1)))
  if [ "$rc" -ne 0 ]; then
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
    tail -n 40 "$log"
    echo "!! $t failed (exit $rc); crash input: ${artifact:-none written}" >&2
    echo "!! reproduce: cargo +nightly fuzz run $t ${artifact:-}" >&2
    failed+=("$t")
    summary+=("$(printf '%-16s %10s %12s  FAILED %s' "$t" "$rate" "$runs" "${artifact:-}")")
  else
    summary+=("$(printf '%-16s %10s %12s  ok' "$t" "$rate" "$runs")")
  fi
  echo "   $t: $runs runs in ${secs}s, $rate execs/s"
done

echo
printf '%-16s %10s %12s  %s\n' target execs/s runs result
printf '%s\n' "${summary[@]}"
if [ "$expect_fail" -eq 1 ]; then
  # Every target must have caught the seeded bug.
  if [ ${#failed[@]} -eq ${#targets[@]} ]; then
    echo "fuzz: every target caught the seeded bug, as expected"
    exit 0
  fi
  echo "fuzz: expected every target to fail, ${#failed[@]} of ${#targets[@]} did" >&2
  exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
