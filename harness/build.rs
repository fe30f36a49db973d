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
    // packed refs. Only files that exist are named: cargo reruns a build script on every
    // build for a path that is missing.
    let mut watched = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git_dir.join(branch));
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    if let Some(rev) = git(&["rev-parse", "--short", "HEAD"]) {
        println!("cargo:rustc-env=HARNESS_BUILD_REV={rev}");
    }
}
