//! Expected state that survives `kill -9`, and the invariant checkers run after recovery.
//!
//! [`ExpectedState`] follows RocksDB db_stress's `expected_state`: one 32-bit word per key in a
//! shared memory mapping of a file. The writer marks a key pending before the database write
//! and stores the final word (release ordering) after the acknowledgement, so when the writer
//! process dies at any instant the word tells which outcomes the recovered database may show.
//! The kernel keeps the dirty pages of a shared mapping after the process dies, so no `msync`
//! is needed to survive `kill -9` (it is needed only to survive a power loss of the harness
//! machine itself, which the harness does not claim to survive).
//!
//! # Word layout (bit 0 is the least significant)
//! | bits   | field          | meaning                                                        |
//! |--------|----------------|----------------------------------------------------------------|
//! | 0..20  | version        | version of the last acknowledged put, modulo 2^20              |
//! | 20     | present        | the last acknowledged operation was a put (not a delete)       |
//! | 21     | pending put    | a put of `version + 1` was issued and not acknowledged         |
//! | 22     | pending delete | a delete was issued and not acknowledged                       |
//! | 23..27 | epoch tag      | sync epoch (mod 16) of the last acknowledgement                |
//! | 27     | absent seen    | the key was absent at its last durable point or deleted since  |
//! | 28..32 | puts since     | puts acknowledged since the last durable point, saturating 15  |
//!
//! Versions are per key and consecutive: the put after version v carries v + 1 (mod 2^20;
//! the value written to the database embeds it). A word of 0 is a key never written.
//!
//! # Acceptance rules of [`ExpectedState::check`]
//! *Full* mode (every acknowledged commit is durable): the observation must equal the
//! acknowledged state exactly (present with `version`, or absent), except that a pending put
//! also accepts `version + 1` and a pending delete also accepts absent.
//!
//! *Buffered* mode (Normal/Off: acknowledged commits may be lost up to the last completed
//! `Database::sync`): the driver brackets each `sync` with [`ExpectedState::sync_begin`] and
//! [`ExpectedState::sync_end`]. Epoch `e` holds the acknowledgements stored after the
//! `sync_begin` that opened `e`; after `sync_end` of the sync that closed `e`, every
//! acknowledgement of an epoch <= `e` is durable (`durable_through` = e). A key whose tag is
//! not the residue of an epoch in `(durable_through, current]` was last acknowledged in a
//! durable epoch and gets the Full rule. Otherwise its durable point precedes the puts counted
//! in `puts since`: it accepts a present version in `[version - puts_since, version]` (any
//! version in the half-window `(version - 2^19, version]` once the counter saturated at 15),
//! and absent if `absent seen` or the key is absent now; pending outcomes are added as above.
//!
//! Why sound (never rejects a correct database): tags are compared modulo 16, and a key whose
//! real epoch aliases into the non-durable set only gets the wider Buffered rule (which
//! contains its exact state). The counters restart only when the previous acknowledgement is
//! known durable, so the window always reaches back to a state that was durable; it may reach
//! further back than the newest durable state, which only widens acceptance. An
//! acknowledgement stored after `sync_begin` is tagged with the new epoch even if the database
//! acknowledged it before the sync (lenient); one stored before `sync_begin` was acknowledged
//! before `Database::sync` was called, so that sync covers it.
//!
//! Protocol when the database returns an error of unknown outcome: leave the key pending (do
//! not `abort`); `begin_*` on a pending key is refused until [`ExpectedState::settle`] is
//! called with what the database shows.

use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapRaw;
use serde::Serialize;

/// Keys per expected-state file: 2^32 words are 16 GiB of sparse file, four times the 1e9
/// keys of the largest planned run.
pub const KEYS_MAX: u64 = 1 << 32;

/// Bytes before the first word: one page holding magic, format and the sync epochs, so the
/// words start page-aligned.
pub const HEADER_BYTES: u64 = 4096;

/// Bits of the version in a word; versions wrap modulo 2^20 (1 048 576 puts per key).
pub const VERSION_BITS: u32 = 20;

const MAGIC: u64 = u64::from_le_bytes(*b"EXPSTAT1");
const FORMAT: u64 = 1;
const OFF_MAGIC: u64 = 0;
const OFF_FORMAT: u64 = 8;
const OFF_KEYS: u64 = 16;
const OFF_EPOCH: u64 = 24;
const OFF_DURABLE: u64 = 32;

const VERSION_MASK: u32 = (1 << VERSION_BITS) - 1;
const PRESENT: u32 = 1 << 20;
const PENDING_PUT: u32 = 1 << 21;
const PENDING_DELETE: u32 = 1 << 22;
const TAG_SHIFT: u32 = 23;
/// Epoch tags are 4 bits: epochs are compared modulo 16.
const TAG_MODULUS: u64 = 16;
const TAG_MASK: u32 = 0xF << TAG_SHIFT;
const ABSENT_SEEN: u32 = 1 << 27;
const PUTS_SHIFT: u32 = 28;
/// `puts since` saturates here: the window's lower bound is then unknown.
const PUTS_SATURATED: u32 = 15;

/// How durable acknowledged commits are, as the database was configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CheckMode {
    /// Every acknowledged commit is durable (`Durability::Full`).
    Full,
    /// Acknowledged commits may be lost back to the last completed sync (`Normal`, `Off`).
    Buffered,
}

/// A decoded word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyState {
    /// Version of the last acknowledged put, modulo 2^20.
    pub version: u32,
    /// Present after the last acknowledged operation.
    pub present: bool,
    /// A put of `version + 1` is in flight.
    pub pending_put: bool,
    /// A delete is in flight.
    pub pending_delete: bool,
    /// Sync epoch of the last acknowledgement, modulo 16.
    pub epoch_tag: u32,
    /// Absent at the last durable point or deleted since.
    pub absent_seen: bool,
    /// Puts acknowledged since the last durable point (15 = at least 15).
    pub puts_since: u32,
}

impl KeyState {
    fn decode(word: u32) -> KeyState {
        KeyState {
            version: word & VERSION_MASK,
            present: word & PRESENT != 0,
            pending_put: word & PENDING_PUT != 0,
            pending_delete: word & PENDING_DELETE != 0,
            epoch_tag: (word & TAG_MASK) >> TAG_SHIFT,
            absent_seen: word & ABSENT_SEEN != 0,
            puts_since: word >> PUTS_SHIFT,
        }
    }

    fn encode(self) -> u32 {
        debug_assert!(self.version <= VERSION_MASK && self.puts_since <= PUTS_SATURATED);
        debug_assert!(u64::from(self.epoch_tag) < TAG_MODULUS);
        self.version
            | if self.present { PRESENT } else { 0 }
            | if self.pending_put { PENDING_PUT } else { 0 }
            | if self.pending_delete {
                PENDING_DELETE
            } else {
                0
            }
            | (self.epoch_tag << TAG_SHIFT)
            | if self.absent_seen { ABSENT_SEEN } else { 0 }
            | (self.puts_since << PUTS_SHIFT)
    }

    /// A put or a delete is in flight.
    #[must_use]
    pub fn pending(self) -> bool {
        self.pending_put || self.pending_delete
    }
}

/// A protocol error of the caller (not a database bug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OracleError {
    /// The key is not below `keys_n`.
    KeyOutOfRange { key: u64, keys_n: u64 },
    /// `begin_*` on a key already in flight (or left pending by an uncertain error).
    AlreadyPending { key: u64 },
    /// `ack_*`/`abort` on a key with nothing of that kind in flight.
    NotPending { key: u64 },
    /// A put whose version is not the key's next version.
    WrongVersion { key: u64, expected: u64, got: u64 },
}

impl fmt::Display for OracleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OracleError::KeyOutOfRange { key, keys_n } => {
                write!(f, "key {key} out of range (keys_n {keys_n})")
            }
            OracleError::AlreadyPending { key } => {
                write!(f, "key {key} already has a write in flight")
            }
            OracleError::NotPending { key } => write!(f, "key {key} has no such write in flight"),
            OracleError::WrongVersion { key, expected, got } => {
                write!(
                    f,
                    "key {key}: put of version {got}, next version is {expected}"
                )
            }
        }
    }
}

impl std::error::Error for OracleError {}

/// A recovered value the expected state does not allow: a lost or phantom write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// Key index.
    pub key: u64,
    /// Version read back (None: absent).
    pub observed: Option<u64>,
    /// The expected-state word.
    pub state: KeyState,
    /// The rule applied.
    pub mode: CheckMode,
    /// What was allowed, in words.
    pub allowed: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let observed = self
            .observed
            .map_or("absent".to_string(), |v| format!("version {v}"));
        write!(
            f,
            "key {}: recovered {observed}, allowed {} ({:?} rule; state {:?})",
            self.key, self.allowed, self.mode, self.state
        )
    }
}

impl std::error::Error for Mismatch {}

/// Returned by [`ExpectedState::sync_begin`]; hand it to [`ExpectedState::sync_end`] once the
/// database's sync returned success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct SyncToken {
    epoch: u64,
}

/// The per-key expected state in a shared mapping of a file.
#[derive(Debug)]
pub struct ExpectedState {
    map: MmapRaw,
    keys_n: u64,
    path: PathBuf,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl ExpectedState {
    /// Creates (or truncates) the file at `path` for `keys_n` keys, all never written. The
    /// file is sparse: creation costs O(1) whatever `keys_n`.
    ///
    /// # Errors
    /// `keys_n` is 0 or above [`KEYS_MAX`]; any I/O error.
    pub fn create(path: impl AsRef<Path>, keys_n: u64) -> io::Result<ExpectedState> {
        if keys_n == 0 || keys_n > KEYS_MAX {
            return Err(invalid(format!("keys_n {keys_n} not in 1..={KEYS_MAX}")));
        }
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(HEADER_BYTES + keys_n * 4)?;
        let map = MmapRaw::map_raw(&file)?;
        let state = ExpectedState {
            map,
            keys_n,
            path: path.to_path_buf(),
        };
        state.header(OFF_FORMAT).store(FORMAT, Ordering::Relaxed);
        state.header(OFF_KEYS).store(keys_n, Ordering::Relaxed);
        // Epoch 1 is open and nothing is durable yet; epoch 0 stands for "before any sync".
        state.header(OFF_EPOCH).store(1, Ordering::Relaxed);
        state.header(OFF_DURABLE).store(0, Ordering::Relaxed);
        // The magic last: a file without it was never fully created.
        state.header(OFF_MAGIC).store(MAGIC, Ordering::Release);
        Ok(state)
    }

    /// Opens a file made by [`ExpectedState::create`] (for example after the writer died).
    ///
    /// # Errors
    /// Not an expected-state file, a size that does not match its header, any I/O error.
    pub fn open(path: impl AsRef<Path>) -> io::Result<ExpectedState> {
        let path = path.as_ref();
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        if len < HEADER_BYTES {
            return Err(invalid(format!(
                "{}: {len} bytes, no header",
                path.display()
            )));
        }
        let map = MmapRaw::map_raw(&file)?;
        let mut state = ExpectedState {
            map,
            keys_n: 0,
            path: path.to_path_buf(),
        };
        let magic = state.header(OFF_MAGIC).load(Ordering::Acquire);
        let format = state.header(OFF_FORMAT).load(Ordering::Relaxed);
        let keys_n = state.header(OFF_KEYS).load(Ordering::Relaxed);
        if magic != MAGIC || format != FORMAT {
            return Err(invalid(format!(
                "{}: not an expected-state file",
                path.display()
            )));
        }
        if keys_n == 0 || keys_n > KEYS_MAX || len != HEADER_BYTES + keys_n * 4 {
            return Err(invalid(format!(
                "{}: {len} bytes for {keys_n} keys",
                path.display()
            )));
        }
        state.keys_n = keys_n;
        Ok(state)
    }

    /// Number of keys.
    #[must_use]
    pub fn keys_n(&self) -> u64 {
        self.keys_n
    }

    /// The file behind the mapping.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the mapping to the file (only needed to survive a power loss of this machine;
    /// `kill -9` of the writer loses nothing without it).
    ///
    /// # Errors
    /// Any I/O error of `msync`.
    pub fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }

    fn header(&self, offset: u64) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= HEADER_BYTES);
        debug_assert!(self.map.len() as u64 >= HEADER_BYTES);
        // SAFETY: the mapping is at least HEADER_BYTES long (checked at create/open) and
        // page-aligned, so `offset` (8-aligned, inside the header) is a valid, aligned
        // location for an AtomicU64, which has the layout of u64. The mapping lives as long
        // as `self`, the file is never truncated while mapped, and every access to this
        // memory (in any process) goes through atomics, so there is no data race.
        unsafe { &*self.map.as_ptr().add(offset as usize).cast::<AtomicU64>() }
    }

    fn slot(&self, key: u64) -> Result<&AtomicU32, OracleError> {
        if key >= self.keys_n {
            return Err(OracleError::KeyOutOfRange {
                key,
                keys_n: self.keys_n,
            });
        }
        let offset = HEADER_BYTES + key * 4;
        debug_assert!(offset + 4 <= self.map.len() as u64);
        // SAFETY: as in `header`: in bounds (key < keys_n and the length was checked),
        // 4-aligned (page-aligned base, 4096-byte header), accessed only through atomics.
        Ok(unsafe { &*self.map.as_ptr().add(offset as usize).cast::<AtomicU32>() })
    }

    /// The decoded word of `key`.
    ///
    /// # Errors
    /// Key out of range.
    pub fn state(&self, key: u64) -> Result<KeyState, OracleError> {
        Ok(KeyState::decode(self.slot(key)?.load(Ordering::Acquire)))
    }

    /// The version the next put of `key` must carry.
    ///
    /// # Errors
    /// Key out of range.
    pub fn next_version(&self, key: u64) -> Result<u64, OracleError> {
        Ok(u64::from((self.state(key)?.version + 1) & VERSION_MASK))
    }

    /// Current sync epoch and the last epoch known durable.
    #[must_use]
    pub fn epochs(&self) -> (u64, u64) {
        let current = self.header(OFF_EPOCH).load(Ordering::Acquire);
        (current, self.header(OFF_DURABLE).load(Ordering::Acquire))
    }

    /// Call just before `Database::sync`: closes the current epoch.
    pub fn sync_begin(&self) -> SyncToken {
        SyncToken {
            epoch: self.header(OFF_EPOCH).fetch_add(1, Ordering::AcqRel),
        }
    }

    /// Call after `Database::sync` returned success: the epochs up to the token's are durable.
    pub fn sync_end(&self, token: SyncToken) {
        let durable = self.header(OFF_DURABLE);
        durable.fetch_max(token.epoch, Ordering::AcqRel);
        debug_assert!(
            durable.load(Ordering::Relaxed) < self.header(OFF_EPOCH).load(Ordering::Relaxed)
        );
    }

    /// After recovery and checking (and [`ExpectedState::adopt`] of every key): what the
    /// recovered database holds is durable; new acknowledgements start a new epoch.
    pub fn mark_recovered(&self) {
        let token = self.sync_begin();
        self.sync_end(token);
    }

    /// True when an acknowledgement tagged `tag` may belong to a not yet durable epoch.
    fn maybe_volatile(&self, tag: u32) -> bool {
        let (current, durable) = self.epochs();
        let open_epochs = current - durable;
        if open_epochs >= TAG_MODULUS {
            return true;
        }
        let first = (durable + 1) % TAG_MODULUS;
        let distance = (u64::from(tag) + TAG_MODULUS - first) % TAG_MODULUS;
        distance < open_epochs
    }
}

/// Versions and absence a key may show after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allowed {
    /// Highest allowed version, if any version is allowed.
    version_hi: Option<u32>,
    /// Versions `version_hi - span ..= version_hi` (modulo 2^20) are allowed.
    span: u32,
    absent: bool,
}

impl Allowed {
    fn admits(self, observed: Option<u64>) -> bool {
        match (observed, self.version_hi) {
            (None, _) => self.absent,
            (Some(_), None) => false,
            (Some(v), Some(hi)) => (hi.wrapping_sub(v as u32) & VERSION_MASK) <= self.span,
        }
    }

    fn describe(self) -> String {
        let versions = self.version_hi.map(|hi| {
            let lo = hi.wrapping_sub(self.span) & VERSION_MASK;
            if self.span == 0 {
                format!("version {hi}")
            } else {
                format!("versions {lo}..={hi}")
            }
        });
        match (versions, self.absent) {
            (Some(v), true) => format!("{v} or absent"),
            (Some(v), false) => v,
            (None, true) => "absent".to_string(),
            (None, false) => "nothing".to_string(),
        }
    }
}

impl ExpectedState {
    /// Marks a put of `new_version` (which must be [`ExpectedState::next_version`]) in flight.
    /// Call before the database write.
    ///
    /// # Errors
    /// Key out of range, already pending, or not the next version.
    pub fn begin_put(&self, key: u64, new_version: u64) -> Result<(), OracleError> {
        let slot = self.slot(key)?;
        let word = slot.load(Ordering::Acquire);
        let state = KeyState::decode(word);
        if state.pending() {
            return Err(OracleError::AlreadyPending { key });
        }
        let expected = u64::from((state.version + 1) & VERSION_MASK);
        if new_version & u64::from(VERSION_MASK) != expected {
            return Err(OracleError::WrongVersion {
                key,
                expected,
                got: new_version,
            });
        }
        slot.compare_exchange(
            word,
            word | PENDING_PUT,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .map(|_| ())
        .map_err(|_| OracleError::AlreadyPending { key })
    }

    /// Marks a delete in flight. Call before the database write.
    ///
    /// # Errors
    /// Key out of range or already pending.
    pub fn begin_delete(&self, key: u64) -> Result<(), OracleError> {
        let slot = self.slot(key)?;
        let word = slot.load(Ordering::Acquire);
        if KeyState::decode(word).pending() {
            return Err(OracleError::AlreadyPending { key });
        }
        slot.compare_exchange(
            word,
            word | PENDING_DELETE,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .map(|_| ())
        .map_err(|_| OracleError::AlreadyPending { key })
    }

    /// The database acknowledged the put of `version`: stores the final word (release).
    ///
    /// # Errors
    /// Key out of range, no put in flight, or not the version begun.
    pub fn ack_put(&self, key: u64, version: u64) -> Result<(), OracleError> {
        let slot = self.slot(key)?;
        let state = KeyState::decode(slot.load(Ordering::Acquire));
        if !state.pending_put {
            return Err(OracleError::NotPending { key });
        }
        let expected = u64::from((state.version + 1) & VERSION_MASK);
        if version & u64::from(VERSION_MASK) != expected {
            return Err(OracleError::WrongVersion {
                key,
                expected,
                got: version,
            });
        }
        let mut next = self.acknowledged(state);
        next.version = expected as u32;
        next.present = true;
        next.puts_since = (next.puts_since + 1).min(PUTS_SATURATED);
        slot.store(next.encode(), Ordering::Release);
        Ok(())
    }

    /// The database acknowledged the delete: stores the final word (release).
    ///
    /// # Errors
    /// Key out of range or no delete in flight.
    pub fn ack_delete(&self, key: u64) -> Result<(), OracleError> {
        let slot = self.slot(key)?;
        let state = KeyState::decode(slot.load(Ordering::Acquire));
        if !state.pending_delete {
            return Err(OracleError::NotPending { key });
        }
        let mut next = self.acknowledged(state);
        next.present = false;
        next.absent_seen = true;
        slot.store(next.encode(), Ordering::Release);
        Ok(())
    }

    /// The write certainly did not happen (rejected before reaching the database's log):
    /// rolls the key back. Do not call after an error of unknown outcome.
    ///
    /// # Errors
    /// Key out of range or nothing in flight.
    pub fn abort(&self, key: u64) -> Result<(), OracleError> {
        let slot = self.slot(key)?;
        let word = slot.load(Ordering::Acquire);
        if !KeyState::decode(word).pending() {
            return Err(OracleError::NotPending { key });
        }
        slot.store(word & !(PENDING_PUT | PENDING_DELETE), Ordering::Release);
        Ok(())
    }

    /// The word after an acknowledgement, before the operation's own fields: pending bits
    /// cleared, tagged with the current epoch, counters restarted when the previous state is
    /// known durable (or the key was never written).
    fn acknowledged(&self, mut state: KeyState) -> KeyState {
        let never_written = state.encode() & !(PENDING_PUT | PENDING_DELETE) == 0;
        if never_written || !self.maybe_volatile(state.epoch_tag) {
            state.puts_since = 0;
            state.absent_seen = !state.present;
        }
        state.pending_put = false;
        state.pending_delete = false;
        state.epoch_tag = (self.epochs().0 % TAG_MODULUS) as u32;
        state
    }

    fn allowed(&self, state: KeyState, mode: CheckMode) -> Allowed {
        let relaxed = mode == CheckMode::Buffered && self.maybe_volatile(state.epoch_tag);
        let (mut version_hi, mut span) = if relaxed {
            let span = if state.puts_since >= PUTS_SATURATED {
                (1 << (VERSION_BITS - 1)) - 1
            } else {
                state.puts_since
            };
            (Some(state.version), span)
        } else {
            (state.present.then_some(state.version), 0)
        };
        if state.pending_put {
            let new = (state.version + 1) & VERSION_MASK;
            span = if version_hi.is_some() { span + 1 } else { 0 };
            version_hi = Some(new);
        }
        let absent = !state.present || state.pending_delete || (relaxed && state.absent_seen);
        Allowed {
            version_hi,
            span,
            absent,
        }
    }

    /// Checks what the recovered database shows for `key` (`observed`: the version embedded
    /// in its value, None when absent) against the acceptance rules in the module docs.
    ///
    /// # Errors
    /// The observation is not allowed: a lost acknowledged write, a resurrected delete, or a
    /// version never issued.
    pub fn check(&self, key: u64, observed: Option<u64>, mode: CheckMode) -> Result<(), Mismatch> {
        let state = self.state(key).map_err(|e| Mismatch {
            key,
            observed,
            state: KeyState::decode(0),
            mode,
            allowed: e.to_string(),
        })?;
        let allowed = self.allowed(state, mode);
        if allowed.admits(observed) {
            return Ok(());
        }
        Err(Mismatch {
            key,
            observed,
            state,
            mode,
            allowed: allowed.describe(),
        })
    }

    /// Checks a live read that raced with the key's one writer: `before` is the key's state
    /// taken before the read began. The read must show a version no older than the one
    /// acknowledged before it began, and no newer than the newest one begun since (so never
    /// a version that was not written); any version in between may have been committed
    /// meanwhile.
    ///
    /// # Errors
    /// The observation is outside that window.
    pub fn check_read(
        &self,
        key: u64,
        before: KeyState,
        observed: Option<u64>,
    ) -> Result<(), Mismatch> {
        let Err(mismatch) = self.check(key, observed, CheckMode::Full) else {
            return Ok(());
        };
        let after = mismatch.state;
        let newest = (after.version + u32::from(after.pending_put)) & VERSION_MASK;
        let span = newest.wrapping_sub(before.version) & VERSION_MASK;
        let admitted = match observed {
            Some(v) => {
                let ahead = (v as u32).wrapping_sub(before.version) & VERSION_MASK;
                before.present && ahead <= span || !before.present && (1..=span).contains(&ahead)
            }
            None => !before.present,
        };
        if admitted {
            return Ok(());
        }
        Err(Mismatch {
            allowed: format!(
                "a version from {} (acknowledged before the read began) to {newest} (the newest begun)",
                before.version
            ),
            ..mismatch
        })
    }

    /// Resolves a key left pending by an error of unknown outcome, from what a read of the
    /// live database shows.
    ///
    /// # Errors
    /// The observation is neither the old nor the new state.
    pub fn settle(&self, key: u64, observed: Option<u64>) -> Result<(), Mismatch> {
        self.check(key, observed, CheckMode::Full)?;
        let state = self.state(key).map_err(|e| Mismatch {
            key,
            observed,
            state: KeyState::decode(0),
            mode: CheckMode::Full,
            allowed: e.to_string(),
        })?;
        let new_version = u64::from((state.version + 1) & VERSION_MASK);
        let outcome = match observed {
            Some(v) if state.pending_put && v & u64::from(VERSION_MASK) == new_version => {
                self.ack_put(key, new_version)
            }
            None if state.pending_delete && state.present => self.ack_delete(key),
            _ if state.pending() => self.abort(key),
            _ => Ok(()),
        };
        debug_assert!(
            outcome.is_ok(),
            "settle after a passed check cannot fail: {outcome:?}"
        );
        Ok(())
    }

    /// After a passed [`ExpectedState::check`] of a recovered database: the key's expected
    /// state becomes what was recovered, durable, nothing pending.
    ///
    /// # Errors
    /// Key out of range.
    pub fn adopt(&self, key: u64, observed: Option<u64>) -> Result<(), OracleError> {
        let slot = self.slot(key)?;
        let state = KeyState::decode(slot.load(Ordering::Acquire));
        let durable_tag = (self.epochs().1 % TAG_MODULUS) as u32;
        let next = KeyState {
            version: observed.map_or(state.version, |v| (v as u32) & VERSION_MASK),
            present: observed.is_some(),
            pending_put: false,
            pending_delete: false,
            epoch_tag: durable_tag,
            absent_seen: observed.is_none(),
            puts_since: 0,
        };
        // An absent key at version 0 goes back to the all-zero "never written" word: its
        // next acknowledgement restarts the counters either way.
        let word = if observed.is_none() && state.version == 0 {
            0
        } else {
            next.encode()
        };
        slot.store(word, Ordering::Release);
        Ok(())
    }
}

/// The marker workload of a lost-buffered-write check: commit `seq` (from 1, one commit at a
/// time, in order) writes key `seq % keys_n` with a value embedding `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixChecker {
    keys_n: u64,
}

/// What the driver knows of the marker commits when the crash happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CommitWindow {
    /// Commits up to here were made durable by a completed sync (or acknowledged in Full mode).
    pub durable_through: u64,
    /// Commits up to here were acknowledged.
    pub acked_through: u64,
    /// Commits up to here were issued (the last may be in flight).
    pub issued_through: u64,
}

/// A recovered state that is not a prefix of the commit history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PrefixViolation {
    /// Commit `missing_seq` is absent while the later commit `present_seq` survived.
    Hole {
        missing_seq: u64,
        present_seq: u64,
        key: u64,
    },
    /// Commit `seq` was never issued (or is on the wrong key): corruption or a phantom.
    Phantom { seq: u64, key: u64 },
    /// The recovered prefix ends at `prefix_seq`, before durable commit `durable_through`.
    LostDurable {
        prefix_seq: u64,
        durable_through: u64,
    },
    /// `observed` has the wrong number of keys.
    WrongKeyCount { observed: u64, keys_n: u64 },
}

impl fmt::Display for PrefixViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixViolation::Hole { missing_seq, present_seq, key } => write!(
                f,
                "hole: commit {missing_seq} (key {key}) lost while later commit {present_seq} survived"
            ),
            PrefixViolation::Phantom { seq, key } => {
                write!(f, "key {key} holds commit {seq}, which was never issued for it")
            }
            PrefixViolation::LostDurable { prefix_seq, durable_through } => write!(
                f,
                "recovered prefix ends at commit {prefix_seq}, durable commits reach {durable_through}"
            ),
            PrefixViolation::WrongKeyCount { observed, keys_n } => {
                write!(f, "{observed} observations for {keys_n} marker keys")
            }
        }
    }
}

impl std::error::Error for PrefixViolation {}

impl PrefixChecker {
    /// A checker for `keys_n` marker keys (at least 1).
    ///
    /// # Panics
    /// When `keys_n` is 0.
    #[must_use]
    pub fn new(keys_n: u64) -> PrefixChecker {
        assert!(keys_n > 0, "the marker workload needs a key");
        PrefixChecker { keys_n }
    }

    /// The key commit `seq` writes.
    #[must_use]
    pub fn key_of(&self, seq: u64) -> u64 {
        seq % self.keys_n
    }

    /// The newest commit at or before `prefix` that wrote `key`.
    fn last_write(&self, key: u64, prefix: u64) -> Option<u64> {
        let first = if key == 0 { self.keys_n } else { key };
        (prefix >= first).then(|| prefix - (prefix - key) % self.keys_n)
    }

    /// Checks that the recovered markers (`observed[key]`: the commit number in the value,
    /// None when absent) are exactly the commits `1..=P` for some `P` between
    /// `window.durable_through` and `window.issued_through`. Returns `P`.
    ///
    /// # Errors
    /// The first hole (lowest missing commit below a surviving one), a phantom, or a prefix
    /// shorter than the durable commits.
    pub fn check(
        &self,
        window: CommitWindow,
        observed: &[Option<u64>],
    ) -> Result<u64, PrefixViolation> {
        debug_assert!(window.durable_through <= window.acked_through);
        debug_assert!(window.acked_through <= window.issued_through);
        if observed.len() as u64 != self.keys_n {
            return Err(PrefixViolation::WrongKeyCount {
                observed: observed.len() as u64,
                keys_n: self.keys_n,
            });
        }
        let mut prefix = 0;
        for (key, seq) in (0u64..).zip(observed) {
            if let Some(seq) = *seq {
                if seq == 0 || seq > window.issued_through || self.key_of(seq) != key {
                    return Err(PrefixViolation::Phantom { seq, key });
                }
                prefix = prefix.max(seq);
            }
        }
        let mut first_hole: Option<(u64, u64)> = None;
        for (key, seq) in (0u64..).zip(observed) {
            let expected = self.last_write(key, prefix);
            if *seq != expected {
                // The commit after the surviving one on this key is the first lost one there.
                let missing = seq.map_or(if key == 0 { self.keys_n } else { key }, |s| {
                    s + self.keys_n
                });
                debug_assert!(missing <= prefix);
                if first_hole.is_none_or(|(m, _)| missing < m) {
                    first_hole = Some((missing, key));
                }
            }
        }
        if let Some((missing_seq, key)) = first_hole {
            return Err(PrefixViolation::Hole {
                missing_seq,
                present_seq: prefix,
                key,
            });
        }
        if prefix < window.durable_through {
            return Err(PrefixViolation::LostDurable {
                prefix_seq: prefix,
                durable_through: window.durable_through,
            });
        }
        Ok(prefix)
    }
}

/// Jepsen's bank: `accounts_n` accounts, transfers move money inside one transaction, so every
/// consistent state has the same total and no negative balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bank {
    /// Number of accounts.
    pub accounts_n: usize,
    /// The total that every state must show.
    pub total: i64,
}

impl Bank {
    /// Accounts all opened with `balance_initial`.
    ///
    /// # Panics
    /// When the total overflows i64.
    #[must_use]
    pub fn new(accounts_n: usize, balance_initial: i64) -> Bank {
        let total = i64::try_from(accounts_n)
            .ok()
            .and_then(|n| n.checked_mul(balance_initial));
        let Some(total) = total else {
            panic!("bank total overflows: {accounts_n} x {balance_initial}")
        };
        Bank { accounts_n, total }
    }

    /// Checks one read of all accounts (`None`: the account is missing).
    ///
    /// # Errors
    /// The first violated invariant, in words.
    pub fn check(&self, balances: &[Option<i64>]) -> Result<(), String> {
        if balances.len() != self.accounts_n {
            return Err(format!(
                "bank: {} accounts read, {} exist",
                balances.len(),
                self.accounts_n
            ));
        }
        check_bank(balances, self.total)
    }
}

/// Checks a bank state: every account present, none negative, the sum equal to `total`.
///
/// # Errors
/// The first violated invariant, in words.
pub fn check_bank(balances: &[Option<i64>], total: i64) -> Result<(), String> {
    let mut sum: i128 = 0;
    for (account, balance) in balances.iter().enumerate() {
        match balance {
            None => return Err(format!("bank: account {account} is missing")),
            Some(b) if *b < 0 => {
                return Err(format!("bank: account {account} has negative balance {b}"))
            }
            Some(b) => sum += i128::from(*b),
        }
    }
    if sum != i128::from(total) {
        return Err(format!(
            "bank: total is {sum}, expected {total} (difference {})",
            sum - i128::from(total)
        ));
    }
    Ok(())
}
