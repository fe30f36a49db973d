#!/usr/bin/env bash
# A short sweep of the fs/* scenarios (power loss through faultfs) over fresh seeds, every
# engine-mode in its scenario's expected-to-hold list; what CI runs (about a minute).
# Engine-modes whose failures are documented behaviour (reports/fs-findings.md) are left out
# here, with the reason printed; scripts/fs-findings.sh runs them all.
#
#   bash scripts/fs-sweep.sh              # COUNT=3 fresh seeds per engine-mode
#   COUNT=200 FROM=7000 bash scripts/fs-sweep.sh
#
# Without /dev/fuse (or fusermount3) it prints one SKIPPED line and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -e /dev/fuse ]; then
  echo "SKIPPED: fs/* sweep: no /dev/fuse on this machine"
  exit 0
fi
if ! command -v fusermount3 >/dev/null 2>&1; then
  echo "SKIPPED: fs/* sweep: fusermount3 not found (apt-get install fuse3)"
  exit 0
fi

COUNT="${COUNT:-3}"
FROM="${FROM:-$(( (RANDOM << 15 | RANDOM) + 1000000 ))}"
JOBS="${JOBS:-2}"
OUT="${OUT:-reports/sweeps/fs-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
echo "fs/* sweep: seeds $FROM..$((FROM + COUNT - 1)), $JOBS jobs, into $OUT"
cargo build --release -p harness >/dev/null

# scenario engine-mode: expected to hold its promise.
PAIRS=(
  "fs/power-loss engine-full"
  "fs/power-loss engine-normal"
  "fs/power-loss engine-off"
  "fs/power-loss sqlite-full"
  "fs/power-loss sqlite-normal"
  "fs/power-loss sqlite-journal-extra"
  "fs/power-loss sqlite-journal-normal"
  "fs/power-loss-ext4 redb-immediate"
  "fs/power-loss-ext4 redb-none"
  "fs/torn-garbage engine-full"
)
echo "left out (documented, see reports/fs-findings.md): sqlite-journal-full (FULL does not sync the directory after the journal unlink; EXTRA does), redb-* under POSIX names (redb never fsyncs its directory), redb-* under garbage (redb assumes byte-atomic writes)"

status=0
for pair in "${PAIRS[@]}"; do
  set -- $pair
  dir="$OUT/${1//\//-}-$2"
  if ! nice -n 10 target/release/harness sweep "$1" --engine "$2" --count "$COUNT" \
    --from "$FROM" --jobs "$JOBS" --out "$dir" --no-progress >"$dir.log" 2>&1; then
    echo "FAILED: $1 on $2 (see $dir.log):"
    tail -20 "$dir.log"
    status=1
  else
    echo "held: $1 on $2, $COUNT seeds"
  fi
done
exit $status
