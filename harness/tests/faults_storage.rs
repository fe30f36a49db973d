//! FaultStorage: determinism, each fault kind, and the power-loss models.

use std::io;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use engine::{MemStorage, Storage};
use harness::faults::{
    CrashModel, CrashPreset, EnospcPlan, FailAt, FaultEvent, FaultKind, FaultPlan, FaultStorage,
    GarbageSource, Granularity, Trigger, SECTOR_BYTES,
};

/// Writes per test workload: enough to cross several sectors and syncs.
const WORKLOAD_WRITES: u64 = 24;

fn fault_storage(plan: FaultPlan, seed: u64) -> (MemStorage, FaultStorage) {
    let mem = MemStorage::new();
    let faults = FaultStorage::new(Arc::new(mem.clone()), plan, seed);
    (mem, faults)
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed as usize * 31 + i * 7) as u8 | 1)
        .collect()
}

/// A small mixed workload; I/O errors are tolerated (faults are the point) and counted.
fn workload(storage: &FaultStorage) -> Result<u64> {
    let mut errors = 0;
    let db = storage.open("db", true)?;
    let wal = storage.open("db-wal", true)?;
    for i in 0..WORKLOAD_WRITES {
        let len = 300 + (i as usize * 97) % 1500;
        let offset = (i * 1000) % 9000;
        let file = if i % 3 == 0 { &wal } else { &db };
        errors += u64::from(file.write_at(&pattern(i, len), offset).is_err());
        let mut buf = vec![0u8; 200];
        errors += u64::from(file.read_at(&mut buf, offset).is_err());
        if i % 5 == 4 {
            errors += u64::from(file.sync().is_err());
        }
        if i == 10 {
            errors += u64::from(storage.sync_dir().is_err());
        }
    }
    Ok(errors)
}

fn busy_plan() -> FaultPlan {
    FaultPlan {
        eio_read: Some(Trigger {
            probability: 0.1,
            ..Trigger::default()
        }),
        eio_write: Some(Trigger {
            probability: 0.05,
            ..Trigger::default()
        }),
        misdirect: Some(Trigger {
            probability: 0.1,
            ..Trigger::default()
        }),
        ..FaultPlan::default()
    }
}

/// Every file of an image with its bytes.
type Files = Vec<(String, Option<Vec<u8>>)>;

fn image_files(image: &MemStorage) -> Files {
    image
        .names()
        .into_iter()
        .map(|n| (n.clone(), image.snapshot(&n)))
        .collect()
}

fn run(seed: u64) -> Result<(Vec<FaultEvent>, Files)> {
    let (_mem, faults) = fault_storage(busy_plan(), seed);
    workload(&faults)?;
    let image = faults.crash(&CrashPreset::Fdb.model());
    Ok((faults.schedule(), image_files(&image)))
}

#[test]
fn same_seed_replays_schedule_and_crash_image() -> Result<()> {
    let (schedule_a, image_a) = run(42)?;
    let (schedule_b, image_b) = run(42)?;
    ensure!(
        schedule_a.len() > 5,
        "the busy plan injected only {} faults",
        schedule_a.len()
    );
    ensure!(schedule_a == schedule_b, "same seed, different schedules");
    ensure!(image_a == image_b, "same seed, different crash images");
    let (schedule_c, image_c) = run(43)?;
    ensure!(
        schedule_a != schedule_c,
        "different seeds gave the same schedule"
    );
    ensure!(
        image_a != image_c,
        "different seeds gave the same crash image"
    );
    let json = serde_json::to_string(&schedule_a)?;
    let back: Vec<FaultEvent> = serde_json::from_str(&json)?;
    ensure!(
        back == schedule_a,
        "schedule does not round-trip through JSON"
    );
    Ok(())
}

fn is_enospc(e: &io::Error) -> bool {
    e.raw_os_error() == Some(28) && e.kind() == io::ErrorKind::StorageFull
}

#[test]
fn enospc_at_nth_write_until_space_is_freed() -> Result<()> {
    let plan = FaultPlan {
        enospc: Some(EnospcPlan {
            at_write: Some(3),
            bytes_max: None,
        }),
        ..FaultPlan::default()
    };
    let (_mem, faults) = fault_storage(plan, 1);
    let f = faults.open("db", true)?;
    f.write_at(b"one", 0)?;
    f.write_at(b"two", 3)?;
    let third = f
        .write_at(b"three", 6)
        .err()
        .context("3rd write must fail")?;
    ensure!(
        is_enospc(&third),
        "3rd write failed with {third:?}, not ENOSPC"
    );
    ensure!(
        f.write_at(b"four", 6).is_err_and(|e| is_enospc(&e)),
        "disk stays full"
    );
    faults.free_space(0);
    f.write_at(b"five", 6)?;
    let mut buf = [0u8; 10];
    f.read_at(&mut buf, 0)?;
    ensure!(
        &buf == b"onetwofive",
        "failed writes must not land: {buf:?}"
    );
    let kinds: Vec<FaultKind> = faults.schedule().iter().map(|e| e.kind).collect();
    ensure!(
        kinds == [FaultKind::Enospc, FaultKind::Enospc],
        "schedule {kinds:?}"
    );
    Ok(())
}

#[test]
fn enospc_byte_budget_can_be_raised() -> Result<()> {
    let plan = FaultPlan {
        enospc: Some(EnospcPlan {
            at_write: None,
            bytes_max: Some(1000),
        }),
        ..FaultPlan::default()
    };
    let (_mem, faults) = fault_storage(plan, 1);
    let f = faults.open("db", true)?;
    f.write_at(&[1u8; 600], 0)?;
    let full = f
        .write_at(&[2u8; 600], 600)
        .err()
        .context("budget exceeded")?;
    ensure!(is_enospc(&full), "got {full:?}");
    f.write_at(&[3u8; 400], 600)?; // exactly at the budget: allowed
    faults.free_space(600);
    f.write_at(&[4u8; 600], 1000)?;
    ensure!(
        faults.bytes_written() == 1600,
        "bytes written {}",
        faults.bytes_written()
    );
    Ok(())
}

/// Ops of `fail_workload` in order; returns the number of the first failing op, if any.
fn fail_workload(storage: &FaultStorage) -> Result<Option<u64>> {
    let f = storage.open("db", true)?;
    let mut op = 0;
    for i in 0..6u64 {
        op += 1;
        if f.write_at(&pattern(i, 700), i * 512).is_err() {
            return Ok(Some(op));
        }
        op += 1;
        let mut buf = [0u8; 64];
        if f.read_at(&mut buf, i * 512).is_err() {
            return Ok(Some(op));
        }
        op += 1;
        if f.sync().is_err() {
            return Ok(Some(op));
        }
    }
    op += 1;
    if f.set_len(10_000).is_err() {
        return Ok(Some(op));
    }
    op += 1;
    Ok(storage.sync_dir().is_err().then_some(op))
}

#[test]
fn fail_at_n_hits_exactly_op_n_until_the_workload_completes() -> Result<()> {
    let (_mem, clean) = fault_storage(FaultPlan::default(), 9);
    ensure!(fail_workload(&clean)?.is_none(), "clean run failed");
    let ops_total = clean.ops_total();
    ensure!(ops_total == 20, "workload has {ops_total} ops");
    let mut n = 1;
    // SQLite's loop: fail op N for N = 1, 2, ... until the workload completes.
    loop {
        let plan = FaultPlan {
            fail_at: Some(FailAt {
                op: n,
                persistent: false,
            }),
            ..FaultPlan::default()
        };
        let (_mem, faults) = fault_storage(plan, 9);
        let failed = fail_workload(&faults)?;
        if n > ops_total {
            ensure!(
                failed.is_none() && faults.schedule().is_empty(),
                "N past the end must not fail"
            );
            break;
        }
        ensure!(failed == Some(n), "fail-at-{n} failed op {failed:?}");
        let schedule = faults.schedule();
        ensure!(
            schedule.len() == 1 && schedule[0].op_index == n,
            "schedule {schedule:?}"
        );
        ensure!(
            schedule[0].kind == FaultKind::FailAt,
            "kind {:?}",
            schedule[0].kind
        );
        n += 1;
    }
    Ok(())
}

#[test]
fn fail_at_n_persistent_fails_every_later_op() -> Result<()> {
    let plan = FaultPlan {
        fail_at: Some(FailAt {
            op: 2,
            persistent: true,
        }),
        ..FaultPlan::default()
    };
    let (_mem, faults) = fault_storage(plan, 9);
    let f = faults.open("db", true)?;
    f.write_at(b"a", 0)?;
    for _ in 0..5 {
        let e = f.write_at(b"b", 1).err().context("persistent failure")?;
        ensure!(e.raw_os_error() == Some(5), "not EIO: {e:?}");
    }
    ensure!(faults.schedule().len() == 5, "one event per failed op");
    Ok(())
}

/// Writes, syncs and more writes; returns the bytes of "db" at its last sync.
fn synced_then_unsynced(faults: &FaultStorage) -> Result<Vec<u8>> {
    let f = faults.open("db", true)?;
    f.write_at(&pattern(1, 3000), 0)?;
    f.sync()?;
    faults.sync_dir()?;
    let mut synced = vec![0u8; 3000];
    f.read_at(&mut synced, 0)?;
    f.write_at(&pattern(2, 1200), 700)?;
    f.write_at(&pattern(3, 900), 2800)?;
    f.set_len(5000)?;
    let fresh = faults.open("fresh", true)?;
    fresh.write_at(b"never dir-synced", 0)?;
    fresh.sync()?;
    Ok(synced)
}

#[test]
fn keep_all_equals_live_and_drop_all_equals_last_sync() -> Result<()> {
    let (mem, faults) = fault_storage(FaultPlan::default(), 5);
    let synced = synced_then_unsynced(&faults)?;
    let keep = faults.crash(&CrashPreset::KeepAll.model());
    ensure!(
        image_files(&keep) == image_files(&mem),
        "keep_all differs from the live image"
    );
    let drop = faults.crash(&CrashPreset::DropAll.model());
    ensure!(drop.names() == ["db"], "drop_all keeps {:?}", drop.names());
    ensure!(
        drop.snapshot("db") == Some(synced),
        "drop_all differs from the last synced image"
    );
    Ok(())
}

#[test]
fn crash_refuses_later_io() -> Result<()> {
    let (_mem, faults) = fault_storage(FaultPlan::default(), 5);
    let f = faults.open("db", true)?;
    f.write_at(b"x", 0)?;
    let _image = faults.crash(&CrashPreset::KeepAll.model());
    ensure!(faults.is_crashed());
    let e = f
        .write_at(b"y", 0)
        .err()
        .context("write after crash must fail")?;
    ensure!(e.raw_os_error() == Some(5), "got {e:?}");
    ensure!(
        faults.open("db", false).is_err() && f.sync().is_err(),
        "all I/O refused"
    );
    Ok(())
}

fn all_garbage(source: GarbageSource) -> CrashModel {
    CrashModel {
        granularity: Granularity::Sector,
        written: 0.0,
        omitted: 0.0,
        garbage: 1.0,
        garbage_source: source,
        dir_op_lost: 0.0,
        whole_sector_garbage: false,
    }
}

fn garbled_image(seed: u64, source: GarbageSource, data: &[u8]) -> Result<Vec<u8>> {
    let (_mem, faults) = fault_storage(FaultPlan::default(), seed);
    let f = faults.open("db", true)?;
    f.write_at(&vec![0xAA; data.len()], 0)?;
    f.sync()?;
    f.write_at(data, 0)?;
    faults
        .crash(&all_garbage(source))
        .snapshot("db")
        .context("db in image")
}

#[test]
fn garbled_sectors_differ_from_old_and_new_bytes() -> Result<()> {
    let sector = SECTOR_BYTES as usize;
    let data = pattern(4, 4 * sector);
    let image = garbled_image(8, GarbageSource::Random, &data)?;
    ensure!(image.len() == data.len(), "length {}", image.len());
    for (i, (got, meant)) in image.chunks(sector).zip(data.chunks(sector)).enumerate() {
        ensure!(got != meant, "sector {i} holds the written bytes");
        ensure!(
            got != vec![0xAA; sector].as_slice(),
            "sector {i} holds the old bytes"
        );
    }
    // TigerBeetle-style: garbage derives from the bytes, so another seed tears the same way.
    let a = garbled_image(8, GarbageSource::Content, &data)?;
    let b = garbled_image(9, GarbageSource::Content, &data)?;
    ensure!(
        a == b && a != data,
        "content-seeded garbage must repeat across seeds"
    );
    let c = garbled_image(9, GarbageSource::Random, &data)?;
    ensure!(c != image, "random garbage must follow the seed");
    Ok(())
}

#[test]
fn sqlite_preset_mixes_fates_per_write() -> Result<()> {
    let (_mem, faults) = fault_storage(FaultPlan::default(), 77);
    let f = faults.open("db", true)?;
    for i in 0..64u64 {
        f.write_at(&pattern(i, 1024), i * 1024)?;
    }
    let _image = faults.crash(&CrashPreset::Sqlite.model());
    let mut fates = [0u32; 3];
    for e in faults
        .schedule()
        .iter()
        .filter(|e| e.kind == FaultKind::CrashWrite)
    {
        // One choice per write: both sectors share it.
        match e.detail.as_str() {
            "sectors written 2, omitted 0, garbage 0" => fates[0] += 1,
            "sectors written 0, omitted 2, garbage 0" => fates[1] += 1,
            "sectors written 0, omitted 0, garbage 2" => fates[2] += 1,
            other => anyhow::bail!("mixed fates in one write: {other}"),
        }
    }
    ensure!(
        fates.iter().all(|n| *n > 0) && fates.iter().sum::<u32>() == 64,
        "fates {fates:?}"
    );
    Ok(())
}

#[test]
fn unsynced_creation_vanishes_and_unsynced_removal_is_undone() -> Result<()> {
    let model = CrashModel {
        dir_op_lost: 1.0,
        ..CrashPreset::KeepAll.model()
    };
    let (_mem, faults) = fault_storage(FaultPlan::default(), 3);
    let old = faults.open("old", true)?;
    old.write_at(b"durable", 0)?;
    old.sync()?;
    faults.sync_dir()?;
    let new = faults.open("new", true)?;
    new.write_at(b"synced file, unsynced dir", 0)?;
    new.sync()?;
    faults.remove("old")?;
    let image = faults.crash(&model);
    ensure!(image.names() == ["old"], "image holds {:?}", image.names());
    ensure!(
        image.snapshot("old").as_deref() == Some(b"durable".as_slice()),
        "old restored"
    );
    let kinds: Vec<FaultKind> = faults.schedule().iter().map(|e| e.kind).collect();
    ensure!(kinds.contains(&FaultKind::FileVanished) && kinds.contains(&FaultKind::RemovalUndone));
    // The same steps with a sync_dir keep the creation and the removal.
    let (_mem, synced) = fault_storage(FaultPlan::default(), 3);
    synced.open("new", true)?.write_at(b"x", 0)?;
    synced.sync_dir()?;
    ensure!(
        synced.crash(&model).names() == ["new"],
        "dir-synced creation must survive"
    );
    Ok(())
}

#[test]
fn failed_fsync_loses_unsynced_writes_but_reads_still_see_them() -> Result<()> {
    let plan = FaultPlan {
        eio_sync: Some(Trigger {
            at: Some(2),
            ..Trigger::default()
        }),
        ..FaultPlan::default()
    };
    let (_mem, faults) = fault_storage(plan, 3);
    let f = faults.open("db", true)?;
    f.write_at(b"first", 0)?;
    f.sync()?;
    f.write_at(b"SECOND", 0)?;
    ensure!(
        f.sync().is_err_and(|e| e.raw_os_error() == Some(5)),
        "2nd sync must fail"
    );
    f.sync()?; // Linux: the next fsync succeeds without the lost pages.
    let mut buf = [0u8; 6];
    f.read_at(&mut buf, 0)?;
    ensure!(&buf == b"SECOND", "page cache still shows the write");
    let image = faults.crash(&CrashPreset::KeepAll.model());
    ensure!(
        image.snapshot("db").as_deref() == Some(b"first".as_slice()),
        "write lost at crash"
    );
    Ok(())
}

#[test]
fn misdirected_write_lands_elsewhere() -> Result<()> {
    let plan = FaultPlan {
        misdirect: Some(Trigger {
            at: Some(2),
            ..Trigger::default()
        }),
        ..FaultPlan::default()
    };
    let (mem, faults) = fault_storage(plan, 11);
    let f = faults.open("db", true)?;
    f.write_at(&[0u8; 16384], 0)?;
    f.write_at(&[7u8; 512], 4096)?;
    let mut buf = [0u8; 512];
    f.read_at(&mut buf, 4096)?;
    ensure!(buf == [0u8; 512], "the intended sector must be unchanged");
    let schedule = faults.schedule();
    ensure!(
        schedule.len() == 1 && schedule[0].kind == FaultKind::Misdirect,
        "{schedule:?}"
    );
    let landed: u64 = schedule[0]
        .detail
        .trim_start_matches("landed at ")
        .parse()?;
    ensure!(
        landed != 4096 && landed.is_multiple_of(SECTOR_BYTES),
        "landed at {landed}"
    );
    let bytes = mem.snapshot("db").context("db")?;
    let at = usize::try_from(landed)?;
    ensure!(
        bytes[at..at + 512] == [7u8; 512],
        "the data must be at {landed}"
    );
    Ok(())
}

#[test]
fn latent_sector_error_fails_overlapping_reads_only() -> Result<()> {
    let (_mem, faults) = fault_storage(FaultPlan::default(), 1);
    let f = faults.open("db", true)?;
    f.write_at(&[1u8; 8192], 0)?;
    faults.add_latent_error("db", 4096, 512);
    let mut buf = [0u8; 512];
    f.read_at(&mut buf, 0)?;
    f.read_at(&mut buf, 4608)?;
    ensure!(
        f.read_at(&mut buf, 4000).is_err(),
        "overlapping read must fail"
    );
    ensure!(f.read_at(&mut buf, 4096).is_err(), "latent errors persist");
    Ok(())
}

#[test]
fn bit_flips_change_exactly_the_recorded_bits() -> Result<()> {
    let (mem, faults) = fault_storage(FaultPlan::default(), 21);
    let f = faults.open("db", true)?;
    f.write_at(&[0u8; 8192], 0)?;
    f.sync()?;
    faults.sync_dir()?;
    let flips = faults.flip_bits("db", 3)?;
    let bytes = mem.snapshot("db").context("db")?;
    let flipped: u32 = bytes.iter().map(|b| b.count_ones()).sum();
    ensure!(
        flips.len() == 3 && flipped == 3,
        "flips {flips:?}, {flipped} bits set"
    );
    for e in &flips {
        ensure!(
            bytes[usize::try_from(e.offset)?] != 0,
            "recorded flip at {} not found",
            e.offset
        );
    }
    // At-rest corruption is in the durable image too.
    let image = faults.crash(&CrashPreset::DropAll.model());
    ensure!(
        image.snapshot("db") == Some(bytes),
        "durable image must carry the flips"
    );
    Ok(())
}

#[test]
fn crash_during_recovery_of_a_crash_image() -> Result<()> {
    let (_mem, first) = fault_storage(FaultPlan::default(), 4);
    let synced = synced_then_unsynced(&first)?;
    let image = first.crash(&CrashPreset::Fdb.model());
    // The storage below writes into `image` (clones of a MemStorage share files).
    let before = image.deep_clone();
    // "Recovery" on the image: read, then rewrite, crashing at the 3rd I/O.
    let plan = FaultPlan {
        crash_at_op: Some(3),
        crash: CrashPreset::DropAll.into(),
        ..FaultPlan::default()
    };
    let second = FaultStorage::over_mem(&image, plan, 4)?;
    let f = second.open("db", false)?;
    let mut head = [0u8; 100];
    f.read_at(&mut head, 0)?;
    f.write_at(b"recovery scribble", 0)?;
    ensure!(f.sync().is_err(), "op 3 is the crash");
    ensure!(
        second.is_crashed() && f.write_at(b"late", 0).is_err(),
        "storage stays down"
    );
    let again = second
        .crash_image()
        .context("crash_at_op records the image")?;
    ensure!(
        again.snapshot("db") == before.snapshot("db"),
        "unsynced recovery write dropped"
    );
    ensure!(
        again.names() == before.names(),
        "files of the image survive even if unopened"
    );
    ensure!(
        image.snapshot("db") != before.snapshot("db"),
        "the live image saw the write"
    );
    // And a third generation over the second image still works.
    let third = FaultStorage::over_mem(&again, FaultPlan::default(), 4)?;
    let mut buf = vec![0u8; synced.len().min(500)];
    third.open("db", false)?.read_at(&mut buf, 0)?;
    Ok(())
}

#[test]
fn plan_parses_from_scenario_toml_and_rejects_unknown_fields() -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Scenario {
        faults: Faults,
    }
    #[derive(serde::Deserialize)]
    struct Faults {
        storage: FaultPlan,
    }
    let text = r#"
        [faults.storage]
        enospc = { at_write = 500 }
        eio_sync = { at = 3 }
        eio_read = { probability = 0.001, file = "db-wal" }
        fail_at = { op = 17, persistent = true }
        latent = [{ file = "db", offset = 8192, len = 4096 }]
        bit_flips = [{ at_op = 1000, file = "db", bits = 3 }]
        crash_at_op = 2000
        crash = "tigerbeetle"
    "#;
    let scenario: Scenario = toml::from_str(text)?;
    let plan = scenario.faults.storage;
    plan.validate().map_err(anyhow::Error::msg)?;
    ensure!(
        plan.fail_at
            == Some(FailAt {
                op: 17,
                persistent: true
            })
    );
    ensure!(plan.crash.model() == CrashPreset::Tigerbeetle.model());
    let custom = r#"
        [faults.storage]
        crash = { granularity = "sector", written = 1.0, omitted = 1.0, garbage = 0.0, garbage_source = "random", dir_op_lost = 0.0 }
    "#;
    let scenario: Scenario = toml::from_str(custom)?;
    ensure!(scenario.faults.storage.crash.model().omitted == 1.0);
    let typo = "[faults.storage]\neio_sinc = { at = 3 }\n";
    ensure!(
        toml::from_str::<Scenario>(typo).is_err(),
        "unknown field must be rejected"
    );
    let bad = FaultPlan {
        eio_read: Some(Trigger {
            probability: 1.5,
            ..Trigger::default()
        }),
        ..FaultPlan::default()
    };
    ensure!(bad.validate().is_err(), "probability 1.5 must be rejected");
    Ok(())
}

#[test]
fn untracked_plan_without_faults_passes_through() -> Result<()> {
    let plan = FaultPlan {
        track_durability: false,
        ..FaultPlan::default()
    };
    let (mem, faults) = fault_storage(plan, 1);
    let f = faults.open("db", true)?;
    f.write_at(b"fast", 0)?;
    f.sync()?;
    ensure!(faults.ops_total() == 2 && faults.schedule().is_empty());
    ensure!(mem.snapshot("db").as_deref() == Some(b"fast".as_slice()));
    Ok(())
}

#[test]
fn torn_append_spares_synced_neighbours_unless_whole_sector_garbage() -> Result<()> {
    for whole_sector in [false, true] {
        let (_mem, faults) = fault_storage(FaultPlan::default(), 12);
        let f = faults.open("log", true)?;
        f.write_at(&[5u8; 100], 0)?;
        f.sync()?;
        f.write_at(&[6u8; 100], 100)?; // an unsynced append inside the same sector
        let model = CrashModel {
            whole_sector_garbage: whole_sector,
            ..all_garbage(GarbageSource::Random)
        };
        let image = faults.crash(&model).snapshot("log").context("log")?;
        ensure!(
            image.len() == 200 && image[100..] != [6u8; 100],
            "append must be garbage"
        );
        let synced_intact = image[..100] == [5u8; 100];
        ensure!(
            synced_intact != whole_sector,
            "whole_sector_garbage {whole_sector}: synced bytes intact {synced_intact}"
        );
    }
    Ok(())
}

#[test]
fn eio_read_at_nth_read_of_one_file_then_persistent() -> Result<()> {
    let trigger = Trigger {
        at: Some(2),
        persistent: true,
        file: Some("db-wal".to_string()),
        ..Trigger::default()
    };
    let plan = FaultPlan {
        eio_read: Some(trigger),
        ..FaultPlan::default()
    };
    let (_mem, faults) = fault_storage(plan, 2);
    let db = faults.open("db", true)?;
    let wal = faults.open("db-wal", true)?;
    db.write_at(&[1u8; 64], 0)?;
    wal.write_at(&[2u8; 64], 0)?;
    let mut buf = [0u8; 8];
    for _ in 0..3 {
        db.read_at(&mut buf, 0)?; // other files are neither counted nor failed
    }
    wal.read_at(&mut buf, 0)?;
    for _ in 0..3 {
        let e = wal
            .read_at(&mut buf, 0)
            .err()
            .context("2nd wal read on must fail")?;
        ensure!(e.raw_os_error() == Some(5), "not EIO: {e:?}");
    }
    db.read_at(&mut buf, 0)?;
    let schedule = faults.schedule();
    ensure!(
        schedule.len() == 3
            && schedule
                .iter()
                .all(|e| e.kind == FaultKind::EioRead && e.file == "db-wal"),
        "{schedule:?}"
    );
    Ok(())
}

#[test]
fn planned_bit_flip_fires_before_its_op() -> Result<()> {
    let flip = harness::faults::BitFlipPlan {
        at_op: 3,
        file: "db".to_string(),
        bits: 2,
    };
    let plan = FaultPlan {
        bit_flips: vec![flip],
        ..FaultPlan::default()
    };
    let (mem, faults) = fault_storage(plan, 6);
    let f = faults.open("db", true)?;
    f.write_at(&[0u8; 4096], 0)?; // op 1
    f.sync()?; // op 2
    ensure!(
        mem.snapshot("db")
            .is_some_and(|b| b.iter().all(|x| *x == 0)),
        "no flip yet"
    );
    let mut buf = vec![0u8; 4096];
    f.read_at(&mut buf, 0)?; // op 3: flips first, so the read sees them
    let ones: u32 = buf.iter().map(|b| b.count_ones()).sum();
    ensure!(ones == 2, "{ones} bits flipped");
    let flips = faults.schedule();
    ensure!(
        flips.len() == 2
            && flips
                .iter()
                .all(|e| e.kind == FaultKind::BitFlip && e.op_index == 3),
        "{flips:?}"
    );
    Ok(())
}

/// Threads of the concurrency smoke test, each with its own file.
const THREADS_N: u64 = 4;

#[test]
fn concurrent_writers_keep_live_and_keep_all_images_equal() -> Result<()> {
    let (mem, faults) = fault_storage(FaultPlan::default(), 13);
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..THREADS_N)
            .map(|t| {
                let faults = faults.clone();
                scope.spawn(move || -> io::Result<()> {
                    let f = faults.open(&format!("f{t}"), true)?;
                    for i in 0..200u64 {
                        f.write_at(&pattern(t * 1000 + i, 700), (i % 17) * 300)?;
                        if i % 13 == 0 {
                            f.sync()?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
        }
        Ok(())
    })?;
    ensure!(
        faults.ops_total() == THREADS_N * (200 + 16),
        "ops {}",
        faults.ops_total()
    );
    let keep = faults.crash(&CrashPreset::KeepAll.model());
    ensure!(
        image_files(&keep) == image_files(&mem),
        "keep_all differs from live"
    );
    Ok(())
}

#[test]
fn a_partial_write_lands_a_whole_sector_prefix_then_fails() -> Result<()> {
    let plan = FaultPlan {
        partial_write: Some(Trigger {
            at: Some(2),
            ..Trigger::default()
        }),
        ..FaultPlan::default()
    };
    let mut landed_some = false;
    for seed in 0..16 {
        let (mem, faults) = fault_storage(plan.clone(), seed);
        let file = faults.open("db", true)?;
        file.write_at(&[0xAA; 4096], 0)?;
        let data = pattern(seed, 4096);
        ensure!(
            file.write_at(&data, 0).is_err(),
            "the short write reports EIO"
        );
        let events = faults.schedule();
        let event = events
            .iter()
            .find(|e| e.kind == FaultKind::PartialWrite)
            .context("no partial write event")?;
        let now = mem.snapshot("db").context("no file")?;
        // A whole-sector prefix of the new bytes, the old bytes after it.
        let keep = (0..=4096)
            .step_by(SECTOR_BYTES as usize)
            .find(|&k| now[..k] == data[..k] && now[k..].iter().all(|&b| b == 0xAA))
            .with_context(|| format!("not a sector prefix: {}", event.detail))?;
        ensure!(keep < 4096, "the whole write landed");
        landed_some |= keep > 0;
        // Only the second write is short; the next lands whole.
        file.write_at(&data, 0)?;
        ensure!(mem.snapshot("db").context("no file")? == data);
    }
    ensure!(landed_some, "no seed landed a non-empty prefix");
    Ok(())
}
