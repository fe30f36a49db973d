#!/usr/bin/env bash
# Mutation testing that measures the harness: cargo-mutants mutates the engine's storage path
# (WAL, WAL store, checkpoint, free list, B+tree, cache, pager, recovery in db.rs), and each
# mutant is judged by the harness's crash and fault scenarios alone
# (harness/tests/mutant_scenarios.rs, run through the `harness` binary), never by the
# engine's own unit tests. A missed mutant is a change to the storage path no scenario saw.
#
#   bash scripts/mutants.sh --shard 0/15      # a sample: about 100 of the ~1,500 mutants
#   bash scripts/mutants.sh --list            # the mutants, without running them
#   bash scripts/mutants.sh                   # all of them (many hours on 2 cores)
#
# Each mutant costs one build of engine and harness in the lean `mutants` profile
# (Cargo.toml) and about half a minute of scenarios. Results land in $MUTANTS_OUT
# (default reports/mutants/mutants.out: caught.txt, missed.txt, timeout.txt,
# unviable.txt); the summary line prints the score. The nightly workflow
# (.github/workflows/mutants.yml) runs every shard.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked --version 27.1.0
fi
files=(engine/src/wal.rs engine/src/wal_store.rs engine/src/checkpoint.rs
  engine/src/freelist.rs 'engine/src/btree/*.rs' engine/src/cache.rs engine/src/db.rs
  engine/src/pager.rs)
args=()
for f in "${files[@]}"; do args+=(--file "$f"); done
out="${MUTANTS_OUT:-reports/mutants}"
mkdir -p "$out"
status=0
cargo mutants --package engine "${args[@]}" --test-package harness --profile mutants \
  --timeout 900 --build-timeout 900 --output "$out" "$@" \
  -- --test mutant_scenarios -- --ignored || status=$?
dir="$out/mutants.out"
if [ -d "$dir" ]; then
  count() { [ -f "$dir/$1" ] && wc -l < "$dir/$1" || echo 0; }
  caught=$(count caught.txt); missed=$(count missed.txt)
  timeout=$(count timeout.txt); unviable=$(count unviable.txt)
  viable=$((caught + missed + timeout))
  echo "mutants: $viable viable ($unviable unviable): $caught caught, $timeout timed out" \
       "(counted as caught), $missed missed; score" \
       "$(( viable > 0 ? 100 * (caught + timeout) / viable : 0 ))%"
  [ "$missed" -gt 0 ] && { echo "missed:"; cat "$dir/missed.txt"; }
fi
# cargo-mutants exits 2 when a mutant was missed: the sample's result, not the script's.
[ "$status" = 0 ] || [ "$status" = 2 ] || exit "$status"
