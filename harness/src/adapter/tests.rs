//! One contract test run against every adapter that stores data.

use super::{open_engine, AdapterError, AdapterResult, EngineOptions, ErrorKind};

fn contract(name: &str) -> AdapterResult<()> {
    let dir = tempfile::tempdir().map_err(|e| AdapterError::new(ErrorKind::Io, e.to_string()))?;
    let mut engine = open_engine(name, dir.path(), &EngineOptions::default())?;
    {
        let mut s = engine.session()?;
        let mut value = Vec::new();
        assert!(!s.get(b"a", &mut value)?, "{name}: empty get");
        for k in [b"a", b"b", b"c", b"d"] {
            s.put(k, &[k[0]; 3])?;
        }
        assert!(s.get(b"b", &mut value)?);
        assert_eq!(value, b"bbb", "{name}: get after put");
        assert!(s.delete(b"c")?, "{name}: delete existing");
        assert!(!s.delete(b"c")?, "{name}: delete missing");
        let mut seen = Vec::new();
        let count = s.scan(b"b", 10, &mut |k, _| seen.push(k.to_vec()))?;
        assert_eq!(count, 2);
        assert_eq!(seen, vec![b"b".to_vec(), b"d".to_vec()], "{name}: scan");
        // An empty start key means "from the first key" (the kill -9 loop's full scan).
        assert_eq!(
            s.scan(b"", 10, &mut |_, _| ())?,
            3,
            "{name}: scan from \"\""
        );
        // A failing transaction leaves nothing behind.
        let failed = s.transaction(&mut |t| {
            t.put(b"x", b"1")?;
            Err(AdapterError::new(ErrorKind::Other, "abort on purpose"))
        });
        assert!(failed.is_err());
        assert!(
            !s.get(b"x", &mut value)?,
            "{name}: rolled back write visible"
        );
        s.transaction(&mut |t| {
            let mut v = Vec::new();
            t.put(b"x", b"1")?;
            assert!(t.get(b"x", &mut v)?, "own write visible in txn");
            t.delete(b"a").map(drop)
        })?;
        assert!(s.get(b"x", &mut value)?);
        assert!(!s.get(b"a", &mut value)?, "{name}: txn delete lost");
    }
    engine.sync()?;
    engine.reopen()?;
    {
        let mut s = engine.session()?;
        let mut value = Vec::new();
        assert!(s.get(b"d", &mut value)?, "{name}: lost after reopen");
        assert_eq!(value, b"ddd");
    }
    engine.close()
}

#[test]
fn every_storing_adapter_keeps_the_contract() -> AdapterResult<()> {
    for name in super::ENGINE_NAMES.iter().filter(|n| **n != "null") {
        contract(name)?;
    }
    Ok(())
}

/// `len` and `compact` (bench/redb-suite): the count is exact, and compaction keeps every key.
fn count_and_compact(name: &str) -> AdapterResult<()> {
    let dir = tempfile::tempdir().map_err(|e| AdapterError::new(ErrorKind::Io, e.to_string()))?;
    let mut engine = open_engine(name, dir.path(), &EngineOptions::default())?;
    {
        let mut s = engine.session()?;
        s.transaction(&mut |t| {
            for i in 0u32..300 {
                t.put(&i.to_be_bytes(), &[7; 150])?;
            }
            Ok(())
        })?;
        for i in 0u32..100 {
            assert!(s.delete(&i.to_be_bytes())?, "{name}: delete {i}");
        }
    }
    if let Some(count) = engine.key_count() {
        assert_eq!(count?, 200, "{name}: len()");
    }
    if let Some(done) = engine.compact() {
        done?;
    }
    let mut s = engine.session()?;
    let mut value = Vec::new();
    assert!(
        s.get(&150u32.to_be_bytes(), &mut value)?,
        "{name}: lost in compaction"
    );
    assert!(
        !s.get(&50u32.to_be_bytes(), &mut value)?,
        "{name}: deleted key back"
    );
    assert_eq!(
        s.scan(b"", 1000, &mut |_, _| ())?,
        200,
        "{name}: scan after compaction"
    );
    Ok(())
}

#[test]
fn count_and_compaction_keep_every_key() -> AdapterResult<()> {
    for name in super::ENGINE_NAMES.iter().filter(|n| **n != "null") {
        count_and_compact(name)?;
    }
    Ok(())
}

#[test]
fn null_adapter_keeps_nothing() -> AdapterResult<()> {
    let dir = tempfile::tempdir().map_err(|e| AdapterError::new(ErrorKind::Io, e.to_string()))?;
    let engine = open_engine("null", dir.path(), &EngineOptions::default())?;
    assert!(!engine.stores_data());
    let mut s = engine.session()?;
    s.put(b"a", b"1")?;
    let mut value = Vec::new();
    assert!(!s.get(b"a", &mut value)?);
    Ok(())
}

#[test]
fn family_names_resolve_and_unknown_names_fail() {
    assert_eq!(
        super::resolve_name("sqlite", None).as_deref(),
        Ok("sqlite-full")
    );
    assert_eq!(
        super::resolve_name("redb", Some("none")).as_deref(),
        Ok("redb-none")
    );
    assert!(super::resolve_name("mysql", None).is_err());
    assert!(super::resolve_name("sqlite", Some("sometimes")).is_err());
}
