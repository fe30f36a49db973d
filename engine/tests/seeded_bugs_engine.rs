//! The engine's seeded bugs do break what they claim to break (the harness's chaos tests
//! then show its checkers catch them). Runs only with `--features seeded-bugs`.
#![cfg(feature = "seeded-bugs")]

use std::sync::Arc;

use engine::{Database, MemStorage, Options, SeededBug, Storage};

#[test]
fn lose_last_key_of_split_loses_keys_and_the_correct_engine_does_not(
) -> Result<(), Box<dyn std::error::Error>> {
    for bug in [None, Some(SeededBug::LoseLastKeyOfSplit)] {
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let db = Database::open_with(
            storage,
            "db",
            Options {
                seeded_bug: bug,
                ..Options::default()
            },
        )?;
        let mut tx = db.begin_write()?;
        let t = tx.create_table("t")?;
        for i in 0..2000u32 {
            tx.put(
                &t,
                &i.wrapping_mul(2_654_435_761).to_be_bytes(),
                &[1u8; 100],
            )?;
        }
        tx.commit()?;
        let r = db.begin_read()?;
        let mut missing = 0;
        for i in 0..2000u32 {
            missing += usize::from(
                r.get(&t, &i.wrapping_mul(2_654_435_761).to_be_bytes())?
                    .is_none(),
            );
        }
        assert_eq!(
            missing > 0,
            bug.is_some(),
            "bug {bug:?}: {missing} keys missing"
        );
    }
    Ok(())
}
