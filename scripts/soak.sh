#!/usr/bin/env bash
# A soak of one long-lived database (`harness soak`) run as resumable slices: each slice runs
# `--until $SLICE`, ends with a kill and a full verification, and writes the checkpoint the
# next slice resumes from (soak/README.md).
#
#   scripts/soak.sh                           # 24 hours as four 6-hour slices
#   SLICE=1h SLICES=2 scripts/soak.sh         # 2 hours as two 1-hour slices
#   SLICE=60s SLICES=2 scripts/soak.sh --keys 20000 --episode-min 20s --episode-max 40s \
#       --tick 1s --bucket 30s                # the 2-minute CI soak (resume in the middle)
#
# Env: TOTAL_SLICES (slices of the whole soak when this call runs fewer: the CI workflow runs
# one slice per job with SLICES=1 TOTAL_SLICES=4), SOAK_DIR (default reports/runs/soak-<UTC stamp>), SEED (default: drawn and printed),
# SLICE (default 6h), SLICES (default 4), HARNESS (a prebuilt binary; default: build one).
# If SOAK_DIR/checkpoint.json exists the first slice resumes it, so a slice that was stopped
# midway (or ran on another machine and came back as an artifact) continues from its last
# episode. Extra arguments go to the first slice of a new soak (a resume keeps the
# checkpoint's settings). Exit status: that of the first slice that fails (1 a check failed,
# 2 bad input), else 0.
set -euo pipefail
cd "$(dirname "$0")/.."
slice="${SLICE:-6h}"
slices="${SLICES:-4}"
dir="${SOAK_DIR:-reports/runs/soak-$(date -u +%Y%m%dT%H%M%SZ)}"
seed="${SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"
if [ -z "${HARNESS:-}" ]; then
  cargo build --release -p harness
  HARNESS="${CARGO_TARGET_DIR:-target}/release/harness"
fi
checkpoint="$dir/checkpoint.json"
# The whole soak's planned length, for the first slice's --total (which trends it can judge).
seconds() {
  local t="$1" n="${1%[smhd]}"
  case "$t" in
    *s) echo "$n" ;; *m) echo $((n * 60)) ;; *h) echo $((n * 3600)) ;; *d) echo $((n * 86400)) ;;
    *) echo "$t" ;;
  esac
}
total="$(( $(seconds "$slice") * ${TOTAL_SLICES:-$slices} ))s"
for i in $(seq "$slices"); do
  echo "soak.sh: slice $i of $slices ($slice) in $dir"
  if [ -f "$checkpoint" ]; then
    "$HARNESS" soak --until "$slice" --resume "$checkpoint" --checkpoint "$checkpoint"
  else
    mkdir -p "$dir"
    "$HARNESS" soak --until "$slice" --total "$total" --seed "$seed" --out "$dir" \
      --checkpoint "$checkpoint" "$@"
  fi
done
echo "soak.sh: $slices slices passed; report $dir/soak.html"
