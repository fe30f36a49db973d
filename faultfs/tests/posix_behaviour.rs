//! The POSIX subset engines use, through a real mount: create/open, pwrite/pread, holes,
//! rename, unlink, truncate/ftruncate, fsync, mkdir/rmdir, readdir, stat sizes.

mod common;

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt as _;

use common::{mount, open_rw, pwrite, read, sync_dir, TestResult};

#[test]
fn create_write_read_and_stat_size() -> TestResult {
    let Some(fx) = mount("create_write_read_and_stat_size", 1)? else {
        return Ok(());
    };
    let p = fx.path("f");
    let f = open_rw(&p)?;
    f.write_all_at(b"hello", 0)?;
    f.write_all_at(b"world", 10_000)?;
    f.sync_all()?;
    let mut buf = [0u8; 5];
    f.read_exact_at(&mut buf, 10_000)?;
    assert_eq!(&buf, b"world");
    assert_eq!(std::fs::metadata(&p)?.len(), 10_005);
    let all = read(&p)?;
    assert_eq!(&all[..5], b"hello");
    assert!(
        all[5..10_000].iter().all(|&b| b == 0),
        "a hole reads as zeros"
    );
    // A write across sector boundaries, unaligned.
    f.write_all_at(&[7u8; 1500], 300)?;
    let all = read(&p)?;
    assert!(all[300..1800].iter().all(|&b| b == 7));
    assert_eq!(all[299], 0);
    assert_eq!(all[1800], 0);
    Ok(())
}

#[test]
fn exclusive_create_refuses_an_existing_name() -> TestResult {
    let Some(fx) = mount("exclusive_create_refuses_an_existing_name", 1)? else {
        return Ok(());
    };
    let p = fx.path("x");
    OpenOptions::new().write(true).create_new(true).open(&p)?;
    let again = OpenOptions::new().write(true).create_new(true).open(&p);
    assert_eq!(
        again.err().map(|e| e.kind()),
        Some(ErrorKind::AlreadyExists)
    );
    Ok(())
}

#[test]
fn rename_replaces_and_unlink_removes() -> TestResult {
    let Some(fx) = mount("rename_replaces_and_unlink_removes", 1)? else {
        return Ok(());
    };
    pwrite(&fx.path("a"), 0, b"A")?;
    pwrite(&fx.path("b"), 0, b"BB")?;
    std::fs::rename(fx.path("a"), fx.path("b"))?;
    assert_eq!(read(&fx.path("b"))?, b"A");
    assert!(!fx.path("a").exists());
    std::fs::remove_file(fx.path("b"))?;
    assert!(!fx.path("b").exists());
    assert_eq!(
        std::fs::remove_file(fx.path("b")).err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    Ok(())
}

#[test]
fn truncate_shrinks_and_extends_with_zeros() -> TestResult {
    let Some(fx) = mount("truncate_shrinks_and_extends_with_zeros", 1)? else {
        return Ok(());
    };
    let p = fx.path("t");
    pwrite(&p, 0, &[9u8; 3000])?;
    let f = open_rw(&p)?;
    f.set_len(700)?;
    assert_eq!(std::fs::metadata(&p)?.len(), 700);
    f.set_len(2000)?;
    let all = read(&p)?;
    assert_eq!(all.len(), 2000);
    assert!(all[..700].iter().all(|&b| b == 9));
    assert!(
        all[700..].iter().all(|&b| b == 0),
        "bytes past a truncate come back as zeros"
    );
    // truncate(2) by path, to zero.
    OpenOptions::new().write(true).truncate(true).open(&p)?;
    assert_eq!(std::fs::metadata(&p)?.len(), 0);
    Ok(())
}

#[test]
fn directories_list_create_and_remove() -> TestResult {
    let Some(fx) = mount("directories_list_create_and_remove", 1)? else {
        return Ok(());
    };
    std::fs::create_dir(fx.path("d"))?;
    pwrite(&fx.path("d/one"), 0, b"1")?;
    pwrite(&fx.path("d/two"), 0, b"22")?;
    let mut names: Vec<String> = std::fs::read_dir(fx.path("d"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(names, ["one", "two"]);
    assert!(
        std::fs::remove_dir(fx.path("d")).is_err(),
        "a full directory is not removed"
    );
    std::fs::remove_file(fx.path("d/one"))?;
    std::fs::remove_file(fx.path("d/two"))?;
    std::fs::remove_dir(fx.path("d"))?;
    assert!(!fx.path("d").exists());
    sync_dir(&fx.root)?;
    Ok(())
}
