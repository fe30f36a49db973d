#!/usr/bin/env bash
# The fs/* findings table: every engine-mode of fs/power-loss (POSIX names),
# fs/power-loss-ext4 (ext4's journal-commit names) and fs/torn-garbage swept over fresh seeds, one row each, with
# each failure's reproduce command and the verdict checked by hand against the engine's
# documented guarantees. Writes reports/fs-findings.md (and keeps the sweeps under
# reports/fs-findings/).
#
#   bash scripts/fs-findings.sh                 # 20 seeds per engine-mode and scenario
#   COUNT=200 FROM=5000 bash scripts/fs-findings.sh
#   ENGINES="engine-full redb-immediate" COUNT=5 bash scripts/fs-findings.sh
#   TABLE_ONLY=1 FROM=... COUNT=... bash scripts/fs-findings.sh   # the table, no new sweeps
#
# Without /dev/fuse (or fusermount3) it prints one SKIPPED line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -e /dev/fuse ]; then
  echo "SKIPPED: fs findings: no /dev/fuse on this machine"
  exit 0
fi
if ! command -v fusermount3 >/dev/null 2>&1; then
  echo "SKIPPED: fs findings: fusermount3 not found (apt-get install fuse3)"
  exit 0
fi

COUNT="${COUNT:-20}"
FROM="${FROM:-$(( (RANDOM << 15 | RANDOM) + 1000000 ))}"
JOBS="${JOBS:-2}"
OUT="${OUT:-reports/fs-findings}"
SCENARIOS="${SCENARIOS:-fs/power-loss fs/power-loss-ext4 fs/torn-garbage}"
echo "fs findings: seeds $FROM..$((FROM + COUNT - 1)), $JOBS jobs, into $OUT"

if [ "${TABLE_ONLY:-0}" = 1 ]; then
  # The table again from the sweeps already in $OUT (after a verdict was checked by hand).
  python3 scripts/fs-findings-table.py "$OUT" "$FROM" "$COUNT" "$SCENARIOS"
  exit 0
fi
cargo build --release -p harness >/dev/null
HARNESS=target/release/harness

engines_of() {
  python3 - "$1" <<'PY'
import sys, tomllib
print(" ".join(tomllib.load(open(f"scenarios/{sys.argv[1]}.toml", "rb"))["engines"]))
PY
}

for sc in $SCENARIOS; do
  list="${ENGINES:-$(engines_of "$sc")}"
  for e in $list; do
    dir="$OUT/${sc//\//-}/$e"
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    # A failing sweep is a finding, not an error of this script.
    nice -n 10 "$HARNESS" sweep "$sc" --engine "$e" --count "$COUNT" --from "$FROM" \
      --jobs "$JOBS" --out "$dir" --no-progress >"$dir.log" 2>&1 || true
    echo "$sc $e: $(grep -m1 -E 'verdict|PASS|FAIL' "$dir.log" || tail -1 "$dir.log")"
  done
done

python3 scripts/fs-findings-table.py "$OUT" "$FROM" "$COUNT" "$SCENARIOS"
