//! `engine`: an embedded, transactional, ordered key-value database.
//!
//! * Pages of a fixed size (4 KiB by default) with a CRC32C and the writing transaction's id.
//! * A B+tree per named table: point reads, range and prefix scans in both directions, values
//!   up to [`VALUE_BYTES_MAX`] through overflow pages.
//! * A write-ahead log of page images with per-generation salts; recovery replays exactly the
//!   committed transactions and tells a torn tail from corruption.
//! * One writer at a time beside any number of snapshot readers; commit and rollback.
//! * Durability modes: [`Durability::Full`] with group commit, [`Durability::Normal`] (a
//!   bounded loss window) and [`Durability::Off`].
//! * A bounded page cache with metrics, and an integrity check.
//!
//! All file I/O goes through the [`Storage`] trait, so tests and the harness can run the
//! engine on memory or on a fault-injecting wrapper.
//!
//! ```
//! use engine::{Database, MemStorage, Options};
//! use std::sync::Arc;
//! # fn main() -> engine::Result<()> {
//! let db = Database::open_with(Arc::new(MemStorage::new()), "db", Options::default())?;
//! let mut tx = db.begin_write()?;
//! let t = tx.create_table("kv")?;
//! tx.put(&t, b"hello", b"world")?;
//! tx.commit()?;
//! let r = db.begin_read()?;
//! assert_eq!(r.get(&t, b"hello")?, Some(b"world".to_vec()));
//! # Ok(()) }
//! ```

#![warn(clippy::pedantic)]
#![allow(
    clippy::module_name_repetitions,
    clippy::cast_possible_truncation,
    clippy::missing_panics_doc
)]

// Modules depend downward only (CI: `python3 scripts/module-cycles.py engine/src`). From the
// bottom: formats and limits (storage, page, meta, wal, le, error, options, bugs, cache,
// arena, stats); bytes at rest (wal_store, pager); tree shape (btree, freelist); catalog;
// shared; the protocols (checkpoint, txn, write, check, metrics); db. See ARCHITECTURE.md.
mod arena;
mod btree;
mod bugs;
mod cache;
mod catalog;
mod check;
mod checkpoint;
mod db;
mod error;
mod freelist;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod le;
mod meta;
mod metrics;
mod options;
mod page;
mod pager;
mod shared;
mod stats;
mod storage;
mod txn;
mod wal;
mod wal_store;
mod write;

pub use bugs::SeededBug;
pub use catalog::Table;
pub use check::IntegrityReport;
pub use db::Database;
pub use error::{Error, Location, Result};
pub use options::{Durability, Metrics, Options};
pub use page::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, PAGE_SIZE_MIN};
pub use storage::{FileStorage, MemStorage, Storage, StorageFile};
pub use txn::{Range, ReadTxn};
pub use write::WriteTxn;

/// Longest key in bytes. Four keys of this size plus cell overhead fit in the smallest page,
/// which keeps every branch page at a fan-out of at least four.
pub const KEY_BYTES_MAX: usize = 1024;

/// Longest value in bytes. Large values live in overflow chains; 1 MiB bounds the memory a
/// single read may allocate from a hostile file.
pub const VALUE_BYTES_MAX: usize = 1 << 20;

/// Longest table name in bytes.
pub const TABLE_NAME_BYTES_MAX: usize = 255;
