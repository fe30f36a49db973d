//! Records the commit the harness is built from (`HARNESS_BUILD_REV`), so reports, history
//! lines and soak slices name the binary's commit even when it runs from another checkout
//! or after HEAD has moved (a pinned binary in a long soak). Without git nothing is set and
//! the harness asks git at run time, as before.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) else {
        return;
    };
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names (a commit) and
    // packed refs.
    println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
    println!(
        "cargo:rerun-if-changed={}",
        git_dir.join("packed-refs").display()
    );
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        println!("cargo:rerun-if-changed={}", git_dir.join(branch).display());
    }
    if let Some(rev) = git(&["rev-parse", "--short", "HEAD"]) {
        println!("cargo:rustc-env=HARNESS_BUILD_REV={rev}");
    }
}
