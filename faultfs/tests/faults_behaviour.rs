//! Each fault acting alone, through a real mount.

mod common;

use std::os::unix::fs::FileExt as _;

use common::{mount, open_rw, pwrite, pwrite_synced, read, sync_dir, TestResult};
use faultfs::TornModel;

#[test]
fn unsynced_data_is_lost_at_power_loss() -> TestResult {
    let Some(fx) = mount("unsynced_data_is_lost_at_power_loss", 1)? else {
        return Ok(());
    };
    let p = fx.path("f");
    pwrite(&p, 0, b"not synced")?;
    sync_dir(&fx.root)?;
    assert_eq!(read(&p)?, b"not synced");
    fx.power_loss()?;
    assert_eq!(read(&p)?, b"", "the name was synced, the data was not");
    Ok(())
}

#[test]
fn synced_data_is_kept_and_later_writes_lost() -> TestResult {
    let Some(fx) = mount("synced_data_is_kept_and_later_writes_lost", 1)? else {
        return Ok(());
    };
    let p = fx.path("f");
    pwrite_synced(&p, 0, b"durable!")?;
    sync_dir(&fx.root)?;
    pwrite(&p, 0, b"VOLATILE and longer")?;
    fx.power_loss()?;
    assert_eq!(read(&p)?, b"durable!");
    Ok(())
}

#[test]
fn rename_is_lost_without_a_directory_fsync() -> TestResult {
    let Some(fx) = mount("rename_is_lost_without_a_directory_fsync", 1)? else {
        return Ok(());
    };
    pwrite_synced(&fx.path("new"), 0, b"new")?;
    pwrite_synced(&fx.path("cur"), 0, b"cur")?;
    sync_dir(&fx.root)?;
    std::fs::rename(fx.path("new"), fx.path("cur"))?;
    fx.power_loss()?;
    assert_eq!(read(&fx.path("cur"))?, b"cur", "the rename did not survive");
    assert_eq!(read(&fx.path("new"))?, b"new");
    // With the directory synced, it does.
    std::fs::rename(fx.path("new"), fx.path("cur"))?;
    sync_dir(&fx.root)?;
    fx.power_loss()?;
    assert_eq!(read(&fx.path("cur"))?, b"new");
    assert!(!fx.path("new").exists());
    Ok(())
}

#[test]
fn created_file_is_gone_without_a_directory_fsync() -> TestResult {
    let Some(fx) = mount("created_file_is_gone_without_a_directory_fsync", 1)? else {
        return Ok(());
    };
    pwrite_synced(&fx.path("wal"), 0, b"synced data, unsynced name")?;
    fx.power_loss()?;
    assert!(
        !fx.path("wal").exists(),
        "a file fsync does not make its name durable"
    );
    // An unlink without a directory fsync is lost too.
    pwrite_synced(&fx.path("keep"), 0, b"k")?;
    sync_dir(&fx.root)?;
    std::fs::remove_file(fx.path("keep"))?;
    fx.power_loss()?;
    assert_eq!(read(&fx.path("keep"))?, b"k");
    Ok(())
}

#[test]
fn truncate_is_lost_without_a_file_fsync() -> TestResult {
    let Some(fx) = mount("truncate_is_lost_without_a_file_fsync", 1)? else {
        return Ok(());
    };
    let p = fx.path("db");
    pwrite_synced(&p, 0, &[5u8; 8192])?;
    sync_dir(&fx.root)?;
    open_rw(&p)?.set_len(100)?;
    sync_dir(&fx.root)?;
    fx.power_loss()?;
    assert_eq!(read(&p)?, vec![5u8; 8192], "the truncate did not survive");
    let f = open_rw(&p)?;
    f.set_len(100)?;
    f.sync_all()?;
    fx.power_loss()?;
    assert_eq!(read(&p)?, vec![5u8; 100]);
    Ok(())
}

#[test]
fn torn_write_keeps_a_subset_of_sectors_not_a_prefix() -> TestResult {
    let Some(fx) = mount("torn_write_keeps_a_subset_of_sectors_not_a_prefix", 7)? else {
        return Ok(());
    };
    const SECTORS: usize = 32;
    let p = fx.path("f");
    pwrite_synced(&p, 0, &[b'A'; SECTORS * 512])?;
    sync_dir(&fx.root)?;
    pwrite(&p, 0, &[b'B'; SECTORS * 512])?;
    fx.mount.control().power_loss(TornModel::HALF)?;
    let after = read(&p)?;
    assert_eq!(after.len(), SECTORS * 512);
    let mut landed = Vec::new();
    for s in after.chunks(512) {
        assert!(
            s.iter().all(|&b| b == b'A') || s.iter().all(|&b| b == b'B'),
            "a sector is old or new, never mixed (HALF writes no garbage)"
        );
        landed.push(s[0] == b'B');
    }
    let n = landed.iter().filter(|&&b| b).count();
    assert!(
        n > 0 && n < SECTORS,
        "some sectors landed, some did not: {landed:?}"
    );
    let prefix = landed.iter().skip_while(|&&b| b).all(|&b| !b);
    assert!(!prefix, "the surviving sectors form a prefix: {landed:?}");
    Ok(())
}

#[test]
fn fsync_eio_drops_the_dirty_pages() -> TestResult {
    let Some(fx) = mount("fsync_eio_drops_the_dirty_pages", 1)? else {
        return Ok(());
    };
    let p = fx.path("f");
    pwrite_synced(&p, 0, b"old")?;
    sync_dir(&fx.root)?;
    fx.mount.control().arm_fsync_eio(1);
    let f = open_rw(&p)?;
    f.write_all_at(b"new", 0)?;
    let e = f.sync_all().err().and_then(|e| e.raw_os_error());
    assert_eq!(e, Some(libc::EIO));
    drop(f);
    assert_eq!(read(&p)?, b"old", "the failed fsync dropped the dirty page");
    // A retried fsync succeeds with nothing to write: the data is gone (fsyncgate).
    open_rw(&p)?.sync_all()?;
    fx.power_loss()?;
    assert_eq!(read(&p)?, b"old");
    assert_eq!(fx.mount.control().stats().eio_fsync, 1);
    Ok(())
}

#[test]
fn write_and_read_eio_fire_once() -> TestResult {
    let Some(fx) = mount("write_and_read_eio_fire_once", 1)? else {
        return Ok(());
    };
    let p = fx.path("f");
    let f = open_rw(&p)?;
    fx.mount.control().arm_write_eio(1);
    let e = f.write_all_at(b"x", 0).err().and_then(|e| e.raw_os_error());
    assert_eq!(e, Some(libc::EIO));
    f.write_all_at(b"y", 0)?;
    drop(f);
    fx.mount.control().arm_read_eio(1);
    let e = read(&p).err().and_then(|e| e.raw_os_error());
    assert_eq!(e, Some(libc::EIO));
    assert_eq!(read(&p)?, b"y");
    Ok(())
}

#[test]
fn enospc_after_the_byte_budget() -> TestResult {
    let Some(fx) = mount("enospc_after_the_byte_budget", 1)? else {
        return Ok(());
    };
    let f = open_rw(&fx.path("f"))?;
    fx.mount.control().arm_enospc(8192);
    f.write_all_at(&[1u8; 8192], 0)?;
    let e = f
        .write_all_at(&[1u8; 4096], 8192)
        .err()
        .and_then(|e| e.raw_os_error());
    assert_eq!(e, Some(libc::ENOSPC));
    fx.mount.control().disarm();
    f.write_all_at(&[1u8; 4096], 8192)?;
    Ok(())
}

#[test]
fn bit_flip_in_durable_data_is_seen_on_read() -> TestResult {
    let Some(fx) = mount("bit_flip_in_durable_data_is_seen_on_read", 3)? else {
        return Ok(());
    };
    let p = fx.path("f");
    pwrite_synced(&p, 0, &[0u8; 4096])?;
    let flips = fx.mount.control().flip_bits(1)?;
    assert_eq!(flips.len(), 1);
    let data = read(&p)?;
    let changed: Vec<usize> = (0..data.len()).filter(|&i| data[i] != 0).collect();
    assert_eq!(changed, [flips[0].offset as usize]);
    assert_eq!(data[changed[0]], 1 << flips[0].bit);
    Ok(())
}

#[test]
fn handles_from_before_a_power_loss_fail() -> TestResult {
    let Some(fx) = mount("handles_from_before_a_power_loss_fail", 1)? else {
        return Ok(());
    };
    let p = fx.path("f");
    pwrite_synced(&p, 0, b"x")?;
    sync_dir(&fx.root)?;
    let f = open_rw(&p)?;
    fx.power_loss()?;
    let e = f
        .write_all_at(b"late", 0)
        .err()
        .and_then(|e| e.raw_os_error());
    assert_eq!(
        e,
        Some(libc::EIO),
        "a dead process's write never lands after the cut"
    );
    Ok(())
}

#[test]
fn control_commands_arm_and_cut() -> TestResult {
    let Some(fx) = mount("control_commands_arm_and_cut", 1)? else {
        return Ok(());
    };
    let c = fx.mount.control();
    pwrite(&fx.path("f"), 0, b"x")?;
    assert!(faultfs::control::execute(c, "power-loss").starts_with("ok"));
    assert!(!fx.path("f").exists());
    assert!(faultfs::control::execute(c, "fsync-eio 2").starts_with("ok"));
    assert_eq!(c.stats().power_losses, 1);
    assert!(faultfs::control::execute(c, "bogus").starts_with("error"));
    Ok(())
}

#[test]
fn torn_garbage_touches_only_the_bytes_written() -> TestResult {
    let Some(fx) = mount("torn_garbage_touches_only_the_bytes_written", 11)? else {
        return Ok(());
    };
    const SECTORS: u64 = 32;
    let p = fx.path("f");
    pwrite_synced(&p, 0, &[b'A'; (SECTORS * 512) as usize])?;
    sync_dir(&fx.root)?;
    let f = open_rw(&p)?;
    for s in 0..SECTORS {
        f.write_all_at(&[b'B'; 100], s * 512)?;
    }
    drop(f);
    fx.mount.control().power_loss(TornModel::FDB)?;
    let after = read(&p)?;
    let mut garbled = 0;
    for s in after.chunks(512) {
        assert!(
            s[100..].iter().all(|&b| b == b'A'),
            "bytes the write did not cover keep their synced value (powersafe overwrite)"
        );
        if s[..100].iter().any(|&b| b != b'A' && b != b'B') {
            garbled += 1;
        }
    }
    assert!(garbled > 0, "FDB odds garble some written bytes");
    Ok(())
}
