#!/usr/bin/env bash
# The test command README.md gives: every unit, property and integration test of the
# workspace, then the codec round-trip tests (they reach private codecs through the
# `fuzzing` feature) and the seeded-bug tests (they need the `seeded-bugs` feature, which makes the
# engine honour deliberate defects so the harness can prove its checkers fail).
# Uses cargo-nextest when installed, else cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --doc
  cargo nextest run -p engine --features seeded-bugs --test seeded_bugs_engine
  cargo nextest run -p engine --features fuzzing --test codec_roundtrip --test fuzz_regressions
  cargo nextest run -p harness --features seeded-bugs --test chaos_seeded_bugs --test scenario_seeded_bugs --test soak_seeded_bugs --test shrunk_replay --test checks_fail_alone
else
  cargo test --workspace --no-fail-fast "$@"
  cargo test -p engine --features seeded-bugs --test seeded_bugs_engine
  cargo test -p engine --features fuzzing --test codec_roundtrip --test fuzz_regressions
  cargo test -p harness --features seeded-bugs --test chaos_seeded_bugs --test scenario_seeded_bugs --test soak_seeded_bugs --test shrunk_replay --test checks_fail_alone
fi
