//! Shared by the command-line integration tests: run the built `harness` binary.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Context as _;

/// Runs `harness ARGS` in `cwd` and collects its output.
pub fn harness(args: &[&str], cwd: &Path) -> anyhow::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(cwd)
        .output()
        .context("running harness")
}
