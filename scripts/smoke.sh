#!/usr/bin/env bash
# The main job in miniature: the smoke scenarios on the embedded engine, with reports.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT_DIR:-reports/runs/ci}"
cargo build --release -p harness
"${CARGO_TARGET_DIR:-target}/release/harness" run smoke --out "$out/smoke"
if [ -f scenarios/crash/smoke.toml ]; then
  "${CARGO_TARGET_DIR:-target}/release/harness" run crash/smoke --out "$out/crash-smoke"
fi
