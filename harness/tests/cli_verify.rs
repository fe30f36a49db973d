//! `harness verify` on an engine file written by a run: ok, then failed once pages are damaged.

mod common;
use common::harness;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context as _;

/// Flips 8 bytes in the body of every page after the header page.
fn damage_every_page(file: &Path, page_bytes: u64) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)?;
    let pages = f.metadata()?.len() / page_bytes;
    anyhow::ensure!(pages > 1, "{} has {pages} pages", file.display());
    for page in 1..pages {
        let at = page * page_bytes + page_bytes / 2;
        let mut bytes = [0u8; 8];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut bytes)?;
        for b in &mut bytes {
            *b ^= 0xFF;
        }
        f.seek(SeekFrom::Start(at))?;
        f.write_all(&bytes)?;
    }
    Ok(())
}

#[test]
fn verify_passes_on_a_run_and_fails_on_damaged_pages() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    let out_str = out.to_str().context("path")?;
    let run = harness(
        &[
            "run",
            "smoke",
            "--engine",
            "engine-off",
            "--keep-data",
            "--no-progress",
            "--out",
            out_str,
            "--set",
            "workload.record_count=3000",
            "--set",
            "run.ops=2000",
        ],
        tmp.path(),
    )?;
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let db = out.join("data").join("engine-off").join("engine.db");
    let good = harness(&["verify", db.to_str().context("path")?], tmp.path())?;
    let stdout = String::from_utf8_lossy(&good.stdout).into_owned();
    assert_eq!(
        good.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(stdout.contains("integrity: ok"), "{stdout}");
    damage_every_page(&db, engine::PAGE_SIZE_DEFAULT as u64)?;
    let bad = harness(&["verify", db.to_str().context("path")?], tmp.path())?;
    assert_eq!(
        bad.status.code(),
        Some(1),
        "damage not detected: {}",
        String::from_utf8_lossy(&bad.stdout)
    );
    let missing = harness(&["verify", "no-such.db"], tmp.path())?;
    assert_eq!(missing.status.code(), Some(2));
    Ok(())
}
