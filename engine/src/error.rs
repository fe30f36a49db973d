//! The engine's one error type.

use std::fmt;
use std::io;

/// Where a piece of corruption was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A page of the main database file (as seen through the WAL, if it has a newer version).
    Page(u32),
    /// The header of the main database file (page 0).
    Meta,
    /// The header of the write-ahead log.
    WalHeader,
    /// A frame of the write-ahead log: its index and byte offset in the WAL file.
    WalFrame { index: u64, offset: u64 },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Page(no) => write!(f, "page {no}"),
            Location::Meta => write!(f, "database header"),
            Location::WalHeader => write!(f, "WAL header"),
            Location::WalFrame { index, offset } => {
                write!(f, "WAL frame {index} at byte {offset}")
            }
        }
    }
}

/// Every error the engine returns.
///
/// The enum is `#[non_exhaustive]`: match the variants you act on and keep a fallback arm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error from the storage layer other than a full disk.
    Io { op: &'static str, source: io::Error },
    /// The storage ran out of space (ENOSPC, EFBIG, or a quota). The database stays open:
    /// the failed transaction is rolled back and later transactions may succeed once space is
    /// freed.
    DiskFull { op: &'static str },
    /// Bytes read from storage fail a checksum or a structural check.
    Corruption { location: Location, detail: String },
    /// A key is longer than [`crate::KEY_BYTES_MAX`].
    KeyTooLarge { len: usize, max: usize },
    /// A value is longer than [`crate::VALUE_BYTES_MAX`].
    ValueTooLarge { len: usize, max: usize },
    /// A limit other than key or value size was reached (transaction size, WAL size, ...).
    LimitExceeded {
        what: &'static str,
        value: u64,
        max: u64,
    },
    /// The named table does not exist in this transaction's snapshot.
    TableNotFound { name: String },
    /// `create_table` on a name that exists.
    TableExists { name: String },
    /// The transaction was already committed or rolled back, or failed part-way and must be
    /// dropped.
    TransactionClosed,
    /// An fsync failed earlier. The state of the OS page cache is unknown (see `PostgreSQL`'s
    /// "fsyncgate"), so the database refuses every write until it is closed and reopened.
    Poisoned,
    /// The options or arguments are invalid.
    InvalidArgument { detail: String },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Corruption in page `no`.
    pub(crate) fn page(no: u32, detail: impl Into<String>) -> Error {
        Error::Corruption {
            location: Location::Page(no),
            detail: detail.into(),
        }
    }

    /// Maps an I/O error from storage, telling a full disk apart from other failures.
    pub(crate) fn io(op: &'static str, source: io::Error) -> Error {
        if is_disk_full(&source) {
            Error::DiskFull { op }
        } else {
            Error::Io { op, source }
        }
    }

    /// True for [`Error::Corruption`].
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

/// True when `e` means "no space left": ENOSPC, EFBIG or `StorageFull`.
fn is_disk_full(e: &io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EFBIG: i32 = 27;
    const EDQUOT: i32 = 122;
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge
    ) || matches!(e.raw_os_error(), Some(ENOSPC | EFBIG | EDQUOT))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "I/O error during {op}: {source}"),
            Error::DiskFull { op } => write!(f, "disk full during {op}"),
            Error::Corruption { location, detail } => {
                write!(f, "corruption in {location}: {detail}")
            }
            Error::KeyTooLarge { len, max } => write!(f, "key of {len} bytes exceeds {max}"),
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds {max}")
            }
            Error::LimitExceeded { what, value, max } => {
                write!(f, "limit exceeded: {what} = {value}, max {max}")
            }
            Error::TableNotFound { name } => write!(f, "table {name:?} not found"),
            Error::TableExists { name } => write!(f, "table {name:?} already exists"),
            Error::TransactionClosed => write!(f, "transaction is closed"),
            Error::Poisoned => write!(
                f,
                "database poisoned by a failed fsync: close and reopen it to recover"
            ),
            Error::InvalidArgument { detail } => write!(f, "invalid argument: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
