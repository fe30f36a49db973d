#!/usr/bin/env bash
# The test command README.md gives: every unit, property and integration test of the
# workspace. Uses cargo-nextest when installed, else cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast "$@"
fi
