//! The in-process rig: our engine on a [`FaultStorage`] over memory, a seeded single-threaded
//! workload written through the expected-state oracle, and the verification of every recovered
//! state.
//!
//! Three tables, written in the same transactions:
//! * `kv`: keys `0..keys_n`, values from [`crate::gen::generate_value`] embedding the key's
//!   version (checked by [`ExpectedState`]);
//! * `marks`: commit `seq` writes marker key `seq % markers_n` with `seq` embedded (checked by
//!   [`PrefixChecker`]: the recovered commits are a prefix of the history, without holes;
//!   in Normal and Off mode each kv key must also show its last write inside that prefix,
//!   since the markers share one leaf that every commit rewrites);
//! * `bank`: optional accounts; each commit moves money between two of them (checked by
//!   [`check_bank`]: the total never changes). Bank values are padded to spread the accounts
//!   over many pages, so a transfer usually changes two leaves (a torn transfer is visible).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use engine::{Database, Durability, MemStorage, Options, SeededBug, Table};

use super::crowd::{Crowd, CrowdCut, CROWD};
use super::{judge_recovery, names, nanos, report_events, ChaosOutcome, FaultsSection};
use crate::faults::rng::{hash, SplitMix64};
use crate::faults::{CrashModel, FaultPlan, FaultStorage};
use crate::gen::{generate_value, verify_value};
use crate::oracle::{check_bank, CheckMode, CommitWindow, ExpectedState, PrefixChecker};
use crate::report::CrashCycle;

/// The engine's page cache in the rig: small, so reads go to storage and meet injected damage.
const CACHE_BYTES: usize = 128 << 10;
/// Marker values are index + version, nothing else.
const MARK_VALUE_BYTES: usize = crate::gen::value::VALUE_BYTES_MIN;
/// Marker key indexes live far above any kv key index, so a marker value under a kv key (or
/// the reverse) fails verification as a wrong key.
const MARK_INDEX_BASE: u64 = 1 << 40;
/// Bank values: balance, checksum, padding to a quarter page.
const BANK_VALUE_BYTES: usize = 1024;
const BANK_BALANCE_INITIAL: i64 = super::records::BALANCE_INITIAL;
/// Largest single transfer.
pub(super) const TRANSFER_MAX: u64 = 100;
/// A live read of all accounts every this many commits.
const BANK_CHECK_EVERY: u64 = 16;
/// Keys of the rig: enough for a B+tree of a few levels at the rig's scale, small enough to
/// verify every key after every recovery.
pub const RIG_KEYS_MAX: u64 = 1 << 20;
/// Longest value of the rig: sixteen 4 KiB overflow pages, and the memory stays small.
pub const RIG_VALUE_BYTES_MAX: usize = 64 << 10;
/// Opens tried again after an injected read error failed one: random read errors clear.
const OPEN_RETRIES_MAX: u32 = 8;
/// Keys one verified scan covers at most (a prefix scan covers 256).
const SCAN_KEYS_MAX: u64 = 64;
/// Rows read from one scan at most: past its 256 keys, a scan that does not stop is a bug.
const SCAN_ROWS_MAX: usize = 512;
/// Salts of the rig's random streams.
/// Normal mode: slack added to an idle past the time window (a loaded machine may run the
/// flusher late; the check is about minutes-late or never, not milliseconds).
const NORMAL_IDLE_SLACK_MS: u64 = 250;
/// Kv writes remembered for the prefix check of Normal and Off mode (see [`KvWrite`]): far
/// more than the commits between two recoveries of any scenario; past it the oldest half is
/// forgotten, which only leaves their keys unchecked.
const KV_LOG_MAX: usize = 1 << 20;
/// Keys one bulk delete covers at most: with values of a few pages each, thousands of freed
/// pages, more than one trunk page of the smallest page size lists (1017).
const BULK_DELETE_KEYS_MAX: u64 = 4096;
const SALT_WORKLOAD: u64 = 0xC4A0_5001;
const SALT_STORAGE: u64 = 0xC4A0_5002;

mod held;
pub use held::LONG_READER_COMMITS_MAX;

const KV: &str = "kv";
const MARKS: &str = "marks";
pub(super) const BANK: &str = "bank";

/// Shape of the rig's workload.
#[derive(Debug, Clone)]
pub struct RigConfig {
    pub seed: u64,
    pub keys_n: u64,
    pub markers_n: u64,
    pub accounts_n: u64,
    pub value_bytes: usize,
    pub txn_keys_max: u64,
    pub durability: Durability,
    pub sync_every: u64,
    pub checkpoint_every: u64,
    pub read_per_mille: u32,
    pub rollback_per_mille: u32,
    /// Writes that delete their key instead, per 1000.
    pub delete_per_mille: u32,
    /// Every this many commits, a commit deletes a run of keys (0: never).
    pub bulk_delete_every: u64,
    /// Verified range scans per 1000 commits.
    pub scan_per_mille: u32,
    /// Longest value: each put draws its length in `value_bytes..=value_bytes_max` (skewed
    /// short), so values grow, shrink and span several overflow pages.
    pub value_bytes_max: usize,
    pub wal_checkpoint_bytes: u64,
    pub page_size: usize,
    pub cache_bytes: usize,
    pub seeded_bug: Option<SeededBug>,
    /// Threads committing beside the workload (see `crowd`).
    pub writers: usize,
    /// Every this many commits a read snapshot opens and is held (0: never; see `held`).
    pub long_reader_every: u64,
    /// Commits a held reader outlives before it closes.
    pub long_reader_commits: u64,
    /// Every this many commits, one deletes a run of keys and puts half back (0: never).
    pub delete_put_every: u64,
}

impl RigConfig {
    /// The rig's configuration for a scenario's `[faults]` table.
    ///
    /// # Errors
    /// Key counts out of range.
    pub fn from_spec(
        spec: &FaultsSection,
        seed: u64,
        keys_n: u64,
        value_bytes: usize,
    ) -> Result<RigConfig> {
        anyhow::ensure!(
            (1..=RIG_KEYS_MAX).contains(&keys_n),
            "in-process chaos: record_count must be in 1..={RIG_KEYS_MAX}"
        );
        let value_bytes =
            value_bytes.clamp(crate::gen::value::VALUE_BYTES_MIN, RIG_VALUE_BYTES_MAX);
        let durability = match spec.durability.as_str() {
            "off" => Durability::Off,
            "normal" => Durability::Normal {
                commits: spec.normal_commits,
                millis: spec.normal_millis,
            },
            _ => Durability::Full,
        };
        Ok(RigConfig {
            seed,
            keys_n,
            markers_n: keys_n.clamp(1, 64),
            accounts_n: spec.accounts,
            value_bytes,
            txn_keys_max: 4,
            durability,
            sync_every: spec.sync_every,
            checkpoint_every: spec.checkpoint_every,
            read_per_mille: spec.read_per_mille,
            rollback_per_mille: spec.rollback_per_mille,
            delete_per_mille: spec.delete_per_mille,
            bulk_delete_every: spec.bulk_delete_every,
            scan_per_mille: spec.scan_per_mille,
            value_bytes_max: spec.value_bytes_max.clamp(value_bytes, RIG_VALUE_BYTES_MAX),
            wal_checkpoint_bytes: spec.wal_checkpoint_bytes,
            page_size: spec.page_size.unwrap_or(engine::PAGE_SIZE_DEFAULT),
            cache_bytes: spec.cache_bytes.unwrap_or(CACHE_BYTES),
            seeded_bug: spec.bug(),
            writers: spec.writers,
            long_reader_every: spec.long_reader_every,
            long_reader_commits: spec.long_reader_commits,
            delete_put_every: spec.delete_put_every,
        })
    }

    /// Engine options of the rig (salts from the seed: runs replay byte for byte).
    #[must_use]
    pub fn options(&self) -> Options {
        Options {
            durability: self.durability,
            page_size: self.page_size,
            cache_bytes_max: self.cache_bytes,
            wal_checkpoint_bytes: self.wal_checkpoint_bytes,
            // Every I/O on this thread in a fixed order: a seed replays the same faults.
            // With concurrent writers the order is the scheduler's anyway: the background
            // checkpointer then runs too, so crashes also land inside its checkpoints.
            checkpoint_in_background: self.writers > 0,
            salt_seed: Some(self.seed),
            seeded_bug: self.seeded_bug,
            ..Options::default()
        }
    }

    /// The length of version `version` of `key`: `value_bytes` when fixed, else drawn
    /// from the key and version (so a recovery can regenerate it), skewed towards short.
    #[must_use]
    pub fn value_len(&self, key: u64, version: u64) -> usize {
        let span = self.value_bytes_max.saturating_sub(self.value_bytes) as u64;
        if span == 0 {
            return self.value_bytes;
        }
        let u = (hash(self.seed, key, version) % 1_000_000) as f64 / 1e6;
        self.value_bytes + (span as f64 * u * u * u) as usize
    }

    fn check_mode(&self) -> CheckMode {
        if self.durability == Durability::Full {
            CheckMode::Full
        } else {
            CheckMode::Buffered
        }
    }
}

/// The result of one workload step.
#[derive(Debug)]
pub enum Step {
    Committed,
    RolledBack,
    /// The commit failed; `settled` when the outcome was read back from the live database.
    Failed {
        error: engine::Error,
        settled: bool,
    },
}

/// One kv write of the rig's commit `seq` since the last recovery: `key` left at `version`
/// (None: deleted). With the markers' prefix `P`, each key must show its last write at or
/// before `P`: a commit inside the prefix whose write to a page no later commit rewrote is
/// lost is a hole the markers cannot show (they share one leaf, which every commit rewrites).
#[derive(Debug, Clone, Copy)]
struct KvWrite {
    seq: u64,
    key: u64,
    version: Option<u64>,
}

/// What one key showed.
enum Obs {
    Known(Option<u64>),
    /// Reported as corruption (nothing known of its value).
    Detected,
}

/// The in-process rig.
pub struct Rig {
    pub cfg: RigConfig,
    pub spec: FaultsSection,
    /// Plan of the storage created at each reopen.
    pub plan: FaultPlan,
    pub storage: FaultStorage,
    /// The memory under `storage` (a process restart sees exactly these bytes).
    mem: MemStorage,
    pub db: Option<Arc<Database>>,
    /// The concurrent writers of this episode, and where the last power loss cut them.
    crowd: Option<Crowd>,
    crowd_cut: Option<CrowdCut>,
    /// The first version each writer writes after the next reopen (past all it began).
    crowd_next: Vec<u64>,
    oracle: ExpectedState,
    _dir: tempfile::TempDir,
    rng: SplitMix64,
    seq: u64,
    window: CommitWindow,
    markers: PrefixChecker,
    /// The kv writes of the commits since the last recovery, in commit order.
    kv_log: Vec<KvWrite>,
    /// Set once damage was injected into data at rest: corruption errors are then detection.
    pub corruption_injected: bool,
    /// Damage was injected into the main file (not only the WAL): a stale or flipped
    /// main-file page can lose acknowledged commits undetectably (a lost write).
    pub main_damaged: bool,
    /// Damaged WAL frames are followed by an intact one that vouches they were synced: a
    /// recovery that loses acknowledged commits took mid-log damage for a torn tail.
    pub wal_damage_vouched: bool,
    /// I/O errors are injected: a read that fails with an I/O error is not a finding.
    pub io_faults_expected: bool,
    /// The tables exist (setup committed); before that, recovery checks only integrity.
    pub setup_done: bool,
    pub out: ChaosOutcome,
    pub commits: u64,
    /// Acknowledged writes a recovery did not show (Buffered mode only).
    pub lost_acked: u64,
    /// Normal mode: acknowledged commits the recoveries lost, in all and at most at once.
    pub lost_commits: u64,
    pub lost_commits_max: u64,
    /// Most free-list trunk pages any integrity check saw (over one: the list spans pages).
    pub free_trunks_max: u64,
    /// Most free pages any integrity check saw.
    pub free_pages_max: u64,
    /// A write meant for the main file was misdirected (see `main_file_misdirected`).
    main_misdirected: bool,
    /// Live reads that returned an older version from a page a misdirected write missed.
    stale_reads: u64,
    schedule_taken: usize,
    reopens: u64,
    value: Vec<u8>,
    /// The read snapshot held across commits, when one is open (`held`).
    held: Option<held::HeldReader>,
    /// Context of failure details ("power_loss cycle 3").
    pub label: String,
}

/// The rows of table `kv` for the indexes `lo..=hi`: by range (ascending or descending)
/// or, with `prefix`, by the 8-byte prefix they share.
fn scan_kv(
    db: &Database,
    lo: u64,
    hi: u64,
    reverse: bool,
    prefix: bool,
) -> engine::Result<Vec<(u64, Vec<u8>)>> {
    use std::ops::Bound;
    let read = db.begin_read()?;
    let kv = read.table(KV)?;
    let (lo_key, hi_key) = (kv_key(lo), kv_key(hi));
    let range = if prefix {
        read.prefix(&kv, &lo_key[..8])?
    } else {
        let (lower, upper) = (Bound::Included(&lo_key[..]), Bound::Included(&hi_key[..]));
        read.range(&kv, lower, upper, reverse)?
    };
    let mut rows = Vec::new();
    for row in range.take(SCAN_ROWS_MAX) {
        let (key, value) = row?;
        let index = key_index(&key).unwrap_or(u64::MAX);
        rows.push((index, value));
    }
    Ok(rows)
}

/// The index of a `kv` key, `None` for any other shape.
fn key_index(key: &[u8]) -> Option<u64> {
    super::records::record_index(key).and_then(|(p, i)| (p == b'k').then_some(i))
}

pub(super) fn kv_key(i: u64) -> [u8; 9] {
    super::records::record_key(b'k', i)
}

pub(super) fn bank_value(account: u64, balance: i64) -> Vec<u8> {
    super::records::bank_value(account, balance, BANK_VALUE_BYTES)
}

pub(super) fn bank_balance(account: u64, bytes: &[u8]) -> Option<i64> {
    super::records::bank_balance(account, bytes, BANK_VALUE_BYTES)
}

impl Rig {
    /// A rig on fresh memory with `plan` on its first storage. Call [`Rig::setup`] next.
    ///
    /// # Errors
    /// An invalid plan or oracle file errors.
    pub fn new(cfg: RigConfig, spec: &FaultsSection, plan: FaultPlan) -> Result<Rig> {
        assert!(cfg.keys_n > 0 && cfg.markers_n > 0);
        let dir = tempfile::tempdir()?;
        let oracle = ExpectedState::create(dir.path().join("expected"), cfg.keys_n)?;
        let mem = MemStorage::new();
        let storage = FaultStorage::try_new(
            Arc::new(mem.clone()),
            plan.clone(),
            hash(cfg.seed, SALT_STORAGE, 0),
        )
        .map_err(|e| anyhow!("fault plan: {e}"))?;
        let mut out = ChaosOutcome::default();
        if cfg.writers > 0 {
            // Registered now: a run whose writers never committed fails (nothing seen).
            out.tally.pass(names::CONCURRENT_WRITERS, 0);
        }
        if cfg.scan_per_mille > 0 {
            // Registered now: a run whose scans never came fails the check (nothing seen).
            out.tally.pass(names::VERIFIED_SCANS, 0);
        }
        Ok(Rig {
            rng: SplitMix64::new(hash(cfg.seed, SALT_WORKLOAD, 0)),
            markers: PrefixChecker::new(cfg.markers_n),
            kv_log: Vec::new(),
            cfg,
            spec: spec.clone(),
            plan,
            storage,
            mem,
            db: None,
            crowd: None,
            crowd_cut: None,
            crowd_next: Vec::new(),
            oracle,
            _dir: dir,
            seq: 1,
            window: CommitWindow {
                durable_through: 0,
                acked_through: 0,
                issued_through: 0,
            },
            corruption_injected: false,
            main_damaged: false,
            wal_damage_vouched: false,
            io_faults_expected: false,
            setup_done: false,
            out,
            commits: 0,
            lost_acked: 0,
            lost_commits: 0,
            lost_commits_max: 0,
            free_trunks_max: 0,
            free_pages_max: 0,
            main_misdirected: false,
            stale_reads: 0,
            schedule_taken: 0,
            reopens: 0,
            held: None,
            value: Vec::new(),
            label: String::new(),
        })
    }

    /// Opens the database and creates the tables and accounts, made durable in every mode.
    ///
    /// # Errors
    /// Engine errors (a fault plan may fail the setup on purpose).
    pub fn setup(&mut self) -> engine::Result<()> {
        let db = Database::open_with(Arc::new(self.storage.clone()), "db", self.cfg.options())?;
        let mut tx = db.begin_write()?;
        // The bank first: its leaves get the lowest page numbers, so a transfer's frames lead
        // its transaction in the WAL (frames are in page order).
        let bank = tx.open_or_create_table(BANK)?;
        tx.open_or_create_table(KV)?;
        tx.open_or_create_table(MARKS)?;
        if self.cfg.writers > 0 {
            tx.open_or_create_table(CROWD)?;
        }
        for a in 0..self.cfg.accounts_n {
            tx.put(&bank, &kv_key(a), &bank_value(a, BANK_BALANCE_INITIAL))?;
        }
        tx.commit()?;
        self.db = Some(Arc::new(db));
        let db = self.db().map_err(|_| engine::Error::TransactionClosed)?;
        db.sync()?;
        // The tables and accounts live in the main file from the start: the WAL then holds
        // only workload transactions.
        db.checkpoint()?;
        self.setup_done = true;
        self.start_crowd(&vec![1; self.cfg.writers]);
        Ok(())
    }

    fn start_crowd(&mut self, first_versions: &[u64]) {
        if let (Some(db), false) = (&self.db, first_versions.is_empty()) {
            let (seed, accounts) = (self.cfg.seed, self.cfg.accounts_n);
            self.crowd = Some(Crowd::start(db, seed, accounts, first_versions));
        }
    }

    /// [`Rig::setup`] with the fault layer disarmed, then armed: the plan's faults are for
    /// the workload, and a setup that met one would abort the run instead of judging.
    ///
    /// # Errors
    /// Engine errors of the setup.
    pub fn setup_disarmed(&mut self) -> Result<()> {
        self.storage.disarm();
        self.setup()
            .with_context(|| format!("{}: setup", self.label))?;
        self.storage.arm();
        Ok(())
    }

    fn db(&self) -> Result<&Database> {
        self.db.as_deref().context("rig: database not open")
    }

    /// Runs up to `commits` steps; stops at the first failed commit and returns its step.
    ///
    /// # Errors
    /// Oracle protocol errors and a closed database.
    pub fn run(&mut self, commits: u64) -> Result<Option<Step>> {
        for _ in 0..commits {
            match self.step()? {
                Step::Committed | Step::RolledBack => {}
                failed @ Step::Failed { .. } => return Ok(Some(failed)),
            }
        }
        Ok(None)
    }

    /// One write transaction (or rollback), then the periodic sync, checkpoint and reads.
    ///
    /// # Errors
    /// Oracle protocol errors and a closed database.
    pub fn step(&mut self) -> Result<Step> {
        if self.rng.below(1000) < u64::from(self.cfg.rollback_per_mille) {
            return self.rollback_step();
        }
        let every = self.cfg.bulk_delete_every;
        let bulk = every > 0 && self.seq % every == every - 1;
        let every = self.cfg.delete_put_every;
        let delete_put = !bulk && every > 0 && self.seq % every == every - 1;
        let (keys, put_back) = if bulk {
            (self.bulk_keys(), Vec::new())
        } else if delete_put {
            self.delete_put_keys().into_iter().unzip()
        } else {
            (self.draw_keys(), Vec::new())
        };
        // Per key: the version written, or `None` for a delete.
        let mut versions = Vec::with_capacity(keys.len());
        for (i, &k) in keys.iter().enumerate() {
            // Drawn only when deletes are on: a seed's stream stays what it was without them.
            let delete = bulk
                || delete_put && !put_back.get(i).copied().unwrap_or(false)
                || !delete_put
                    && self.cfg.delete_per_mille > 0
                    && self.rng.below(1000) < u64::from(self.cfg.delete_per_mille);
            if delete {
                self.oracle.begin_delete(k)?;
                versions.push(None);
            } else {
                let v = self.oracle.next_version(k)?;
                self.oracle.begin_put(k, v)?;
                versions.push(Some(v));
            }
        }
        let transfer = self.draw_transfer();
        let seq = self.seq;
        self.window.issued_through = self.window.issued_through.max(seq);
        self.log_kv_writes(seq, &keys, &versions);
        let started = Instant::now();
        let result = self.write_txn(&keys, &versions, transfer, (seq, delete_put));
        match result {
            Ok(()) => {
                self.out.record("commit", started.elapsed());
                for (&k, &v) in keys.iter().zip(&versions) {
                    match v {
                        Some(v) => self.oracle.ack_put(k, v)?,
                        None => self.oracle.ack_delete(k)?,
                    }
                }
                self.acked(seq);
                self.after_commit()?;
                Ok(Step::Committed)
            }
            Err(error) => self.failed_commit(&keys, seq, error),
        }
    }

    /// Remembers commit `seq`'s kv writes. A commit that failed without landing left its
    /// `seq` to the next one: its writes are forgotten.
    fn log_kv_writes(&mut self, seq: u64, keys: &[u64], versions: &[Option<u64>]) {
        self.kv_log.retain(|w| w.seq < seq);
        if self.kv_log.len() > KV_LOG_MAX {
            self.kv_log.drain(..KV_LOG_MAX / 2);
        }
        let writes = keys.iter().zip(versions);
        let writes = writes.map(|(&key, &version)| KvWrite { seq, key, version });
        self.kv_log.extend(writes);
    }

    /// The present, settled keys of a run of up to [`BULK_DELETE_KEYS_MAX`] from a drawn
    /// start: one commit deletes them all.
    fn bulk_keys(&mut self) -> Vec<u64> {
        let start = self.rng.below(self.cfg.keys_n);
        let end = (start + BULK_DELETE_KEYS_MAX).min(self.cfg.keys_n);
        (start..end)
            .filter(|&k| {
                self.oracle
                    .state(k)
                    .is_ok_and(|s| s.present && !s.pending_put && !s.pending_delete)
            })
            .collect()
    }

    fn draw_keys(&mut self) -> Vec<u64> {
        let n = 1 + self.rng.below(self.cfg.txn_keys_max.min(self.cfg.keys_n));
        let mut keys: Vec<u64> = (0..n).map(|_| self.rng.below(self.cfg.keys_n)).collect();
        keys.sort_unstable();
        keys.dedup();
        // A key whose last write's outcome is unknown (a recovery read it as corruption, so
        // could not settle it) stays out of the workload: its next check accepts either.
        keys.retain(|&k| {
            self.oracle
                .state(k)
                .is_ok_and(|s| !s.pending_put && !s.pending_delete)
        });
        keys
    }

    fn draw_transfer(&mut self) -> Option<(u64, u64, i64)> {
        let n = self.cfg.accounts_n;
        if n < 2 {
            return None;
        }
        let from = self.rng.below(n);
        let to = (from + 1 + self.rng.below(n - 1)) % n;
        let amount = 1 + self.rng.below(TRANSFER_MAX);
        Some((from, to, amount as i64))
    }

    /// Commit `seq`'s transaction; with `delete_first`, every key is deleted before the
    /// versioned ones are put back (`held::delete_then_put`).
    fn write_txn(
        &mut self,
        keys: &[u64],
        versions: &[Option<u64>],
        transfer: Option<(u64, u64, i64)>,
        (seq, delete_first): (u64, bool),
    ) -> engine::Result<()> {
        let db = self.db.as_deref().ok_or(engine::Error::TransactionClosed)?;
        let mut tx = db.begin_write()?;
        let kv = tx.table(KV)?;
        let marks = tx.table(MARKS)?;
        if delete_first {
            let writes: Vec<(u64, Option<Vec<u8>>)> = (keys.iter().zip(versions))
                .map(|(&k, &v)| {
                    let value = v.map(|v| {
                        let mut value = Vec::new();
                        generate_value(k, v, self.cfg.seed, self.cfg.value_len(k, v), &mut value);
                        value
                    });
                    (k, value)
                })
                .collect();
            held::delete_then_put(&mut tx, &kv, &writes)?;
        }
        for (&k, &v) in keys.iter().zip(versions).filter(|_| !delete_first) {
            let Some(v) = v else {
                tx.delete(&kv, &kv_key(k))?;
                continue;
            };
            let len = self.cfg.value_len(k, v);
            generate_value(k, v, self.cfg.seed, len, &mut self.value);
            tx.put(&kv, &kv_key(k), &self.value)?;
        }
        let m = self.markers.key_of(seq);
        generate_value(
            MARK_INDEX_BASE + m,
            seq,
            self.cfg.seed,
            MARK_VALUE_BYTES,
            &mut self.value,
        );
        tx.put(&marks, &kv_key(m), &self.value)?;
        if let Some((from, to, amount)) = transfer {
            let bank = tx.table(BANK)?;
            let read = |tx: &engine::WriteTxn, a: u64| -> engine::Result<Option<i64>> {
                Ok(tx.get(&bank, &kv_key(a))?.and_then(|b| bank_balance(a, &b)))
            };
            if let (Some(bf), Some(bt)) = (read(&tx, from)?, read(&tx, to)?) {
                if bf >= amount {
                    tx.put(&bank, &kv_key(from), &bank_value(from, bf - amount))?;
                    tx.put(&bank, &kv_key(to), &bank_value(to, bt + amount))?;
                }
            }
        }
        tx.commit()
    }

    fn acked(&mut self, seq: u64) {
        self.window.acked_through = seq;
        match self.cfg.durability {
            Durability::Full => self.window.durable_through = seq,
            // The commit that makes `commits` since the last sync syncs them all: at most
            // `commits - 1` acknowledged commits are ever unsynced.
            Durability::Normal { commits, .. } => {
                let floor = seq.saturating_sub(u64::from(commits) - 1);
                self.window.durable_through = self.window.durable_through.max(floor);
            }
            _ => {}
        }
        self.seq = seq + 1;
        self.commits += 1;
    }

    fn after_commit(&mut self) -> Result<()> {
        let c = self.commits;
        if self.cfg.sync_every > 0 && c.is_multiple_of(self.cfg.sync_every) {
            let token = self.oracle.sync_begin();
            if self.db()?.sync().is_ok() {
                self.oracle.sync_end(token);
                self.window.durable_through = self.window.acked_through;
            }
        }
        if self.cfg.checkpoint_every > 0 && c.is_multiple_of(self.cfg.checkpoint_every) {
            // A failed checkpoint is the fault layer's doing; the next commit meets it too.
            let _ = self.db()?.checkpoint();
        }
        if self.rng.below(1000) < u64::from(self.cfg.read_per_mille) {
            let key = self.rng.below(self.cfg.keys_n);
            self.live_read(key)?;
        }
        if self.cfg.scan_per_mille > 0 && self.rng.below(1000) < u64::from(self.cfg.scan_per_mille)
        {
            self.live_scan()?;
        }
        if self.cfg.accounts_n > 1 && c.is_multiple_of(BANK_CHECK_EVERY) {
            self.bank_check_live();
        }
        self.held_reader_step()
    }

    /// A transaction that writes and rolls back, then reads its keys: they must be unchanged.
    fn rollback_step(&mut self) -> Result<Step> {
        let keys = self.draw_keys();
        {
            let db = self.db()?;
            let mut tx = db.begin_write().map_err(|e| anyhow!("begin_write: {e}"))?;
            let kv = tx.table(KV).map_err(|e| anyhow!("{e}"))?;
            let mut value = std::mem::take(&mut self.value);
            for &k in &keys {
                let v = self.oracle.next_version(k)?;
                let written = if v % 4 == 0 {
                    tx.delete(&kv, &kv_key(k)).map(|_| ())
                } else {
                    let len = self.cfg.value_len(k, v);
                    generate_value(k, v, self.cfg.seed, len, &mut value);
                    tx.put(&kv, &kv_key(k), &value)
                };
                if written.is_err() {
                    break;
                }
            }
            self.value = value;
            tx.rollback();
        }
        for &k in &keys {
            self.live_read(k)?;
        }
        Ok(Step::RolledBack)
    }

    /// A failed commit: settle the keys from the live database when it can still be trusted
    /// (a full disk leaves it usable), else leave them pending for the next recovery.
    fn failed_commit(&mut self, keys: &[u64], seq: u64, error: engine::Error) -> Result<Step> {
        if !matches!(error, engine::Error::DiskFull { .. }) {
            return Ok(Step::Failed {
                error,
                settled: false,
            });
        }
        let db = self.db()?;
        let read = db.begin_read().map_err(|e| anyhow!("{e}"))?;
        let kv = read.table(KV).map_err(|e| anyhow!("{e}"))?;
        let marks = read.table(MARKS).map_err(|e| anyhow!("{e}"))?;
        for &k in keys {
            let observed = match read.get(&kv, &kv_key(k)) {
                Ok(Some(b)) => verify_value(k, self.cfg.seed, &b).ok(),
                _ => None,
            };
            if let Err(m) = self.oracle.settle(k, observed) {
                self.out.tally.fail(
                    names::DURABILITY,
                    format!("{}: after disk full: {m}", self.label),
                );
                self.oracle.adopt(k, observed)?;
            }
        }
        let m = self.markers.key_of(seq);
        let landed = match read.get(&marks, &kv_key(m)) {
            Ok(Some(b)) => verify_value(MARK_INDEX_BASE + m, self.cfg.seed, &b).ok() == Some(seq),
            _ => false,
        };
        drop(read);
        if landed {
            self.acked(seq);
        }
        Ok(Step::Failed {
            error,
            settled: true,
        })
    }

    /// What `key` shows in `read`, judged for damage.
    fn observe(
        &mut self,
        read: &engine::ReadTxn,
        t: &Table,
        key: u64,
        index: u64,
        live: bool,
    ) -> Obs {
        let check = if live {
            names::VERIFIED_READS
        } else {
            names::DURABILITY
        };
        match read.get(t, &kv_key(key)) {
            Ok(None) => Obs::Known(None),
            Ok(Some(bytes)) => match verify_value(index, self.cfg.seed, &bytes) {
                Ok(v) => Obs::Known(Some(v)),
                Err(e) => {
                    let d = format!(
                        "{}: key {key}: damaged bytes returned as data: {e}",
                        self.label
                    );
                    self.out.tally.fail(names::CHECKSUM_DETECTION, d);
                    Obs::Detected
                }
            },
            Err(e) if e.is_corruption() && self.corruption_injected => {
                self.out.tally.pass(names::CHECKSUM_DETECTION, 1);
                Obs::Detected
            }
            Err(e) if e.is_corruption() => {
                let d = format!("{}: key {key}: corruption reported with no damage at rest (torn tail taken for corruption?): {e}", self.label);
                self.out.tally.fail(names::CHECKSUM_DETECTION, d);
                Obs::Detected
            }
            Err(_) if self.io_faults_expected || self.storage.is_crashed() => Obs::Detected,
            Err(e) => {
                self.out.tally.fail(
                    check,
                    format!("{}: key {key}: read failed: {e}", self.label),
                );
                Obs::Detected
            }
        }
    }

    /// A verified read of the live database: the acknowledged version exactly.
    fn live_read(&mut self, key: u64) -> Result<()> {
        let started = Instant::now();
        let db = self.db.take().context("rig: database not open")?;
        let outcome = (|| -> Result<()> {
            let read = db.begin_read().map_err(|e| anyhow!("{e}"))?;
            let kv = match read.table(KV) {
                Ok(t) => t,
                Err(e) if e.is_corruption() && self.corruption_injected => {
                    self.out.tally.pass(names::CHECKSUM_DETECTION, 1);
                    return Ok(());
                }
                // The power went out (or an I/O fault was planned): the crash step judges.
                Err(_) if self.io_faults_expected || self.storage.is_crashed() => return Ok(()),
                Err(e) => return Err(anyhow!("{e}")),
            };
            if let Obs::Known(observed) = self.observe(&read, &kv, key, key, true) {
                match self.oracle.check(key, observed, CheckMode::Full) {
                    Ok(()) => self.out.tally.pass(names::VERIFIED_READS, 1),
                    Err(_) if self.older(key, observed) && self.main_file_misdirected() => {
                        // Documented limit (design.md): a misdirected write into the main
                        // file leaves the page it missed stale but valid. Older data, never
                        // garbled or invented, and counted in the report.
                        self.stale_reads += 1;
                    }
                    Err(m) => self.out.tally.fail(
                        names::VERIFIED_READS,
                        format!("{}: live read: {m}", self.label),
                    ),
                }
            }
            Ok(())
        })();
        self.db = Some(db);
        self.out.record("read", started.elapsed());
        outcome
    }

    /// A verified scan of the live database: a range of up to [`SCAN_KEYS_MAX`] keys,
    /// ascending or descending, or every key under a prefix. Each key in the bounds must
    /// show its acknowledged version, in order, and nothing outside the bounds may appear.
    fn live_scan(&mut self) -> Result<()> {
        let (lo, hi, reverse, prefix) = self.draw_scan();
        let db = self.db.take().context("rig: database not open")?;
        let started = Instant::now();
        let scanned = scan_kv(&db, lo, hi, reverse, prefix);
        self.out.record("scan", started.elapsed());
        self.db = Some(db);
        let rows = match scanned {
            Ok(rows) => rows,
            Err(e) if e.is_corruption() && self.corruption_injected => {
                self.out.tally.pass(names::CHECKSUM_DETECTION, 1);
                return Ok(());
            }
            Err(_) if self.io_faults_expected || self.storage.is_crashed() => return Ok(()),
            Err(e) => {
                let d = format!("{}: scan {lo}..={hi}: {e}", self.label);
                self.out.tally.fail(names::VERIFIED_SCANS, d);
                return Ok(());
            }
        };
        let mut seen = vec![None; (hi - lo + 1) as usize];
        let mut last: Option<u64> = None;
        for (key, bytes) in rows {
            let in_order = last.is_none_or(|l| if reverse { key < l } else { key > l });
            if !(lo..=hi).contains(&key) || !in_order {
                let d = format!(
                    "{}: scan {lo}..={hi} (reverse {reverse}, prefix {prefix}) returned key \
                     {key} after {last:?}: outside its bounds or out of order",
                    self.label
                );
                self.out.tally.fail(names::VERIFIED_SCANS, d);
                return Ok(());
            }
            last = Some(key);
            match verify_value(key, self.cfg.seed, &bytes) {
                Ok(v) => seen[(key - lo) as usize] = Some(v),
                Err(e) => {
                    let d = format!(
                        "{}: scan: key {key}: damaged bytes as data: {e}",
                        self.label
                    );
                    self.out.tally.fail(names::CHECKSUM_DETECTION, d);
                    return Ok(());
                }
            }
        }
        self.judge_scan(lo, &seen, reverse, prefix);
        Ok(())
    }

    fn draw_scan(&mut self) -> (u64, u64, bool, bool) {
        let start = self.rng.below(self.cfg.keys_n);
        let last_key = self.cfg.keys_n - 1;
        if self.rng.below(4) == 0 {
            // Every key under the prefix of `start`'s first 8 bytes: 256 indexes.
            return (start & !0xff, (start | 0xff).min(last_key), false, true);
        }
        let len = 1 + self.rng.below(SCAN_KEYS_MAX);
        let reverse = self.rng.below(2) == 1;
        (start, (start + len - 1).min(last_key), reverse, false)
    }

    /// Judges what a scan showed for the keys `lo..` against the acknowledged state.
    fn judge_scan(&mut self, lo: u64, seen: &[Option<u64>], reverse: bool, prefix: bool) {
        for (key, &observed) in (lo..).zip(seen) {
            match self.oracle.check(key, observed, CheckMode::Full) {
                Ok(()) => {}
                Err(_) if self.older(key, observed) && self.main_file_misdirected() => {
                    self.stale_reads += 1;
                }
                Err(m) => {
                    let d = format!(
                        "{}: scan from {lo} (reverse {reverse}, prefix {prefix}): {m}",
                        self.label
                    );
                    self.out.tally.fail(names::VERIFIED_SCANS, d);
                    return;
                }
            }
        }
        self.out.tally.pass(names::VERIFIED_SCANS, 1);
    }

    fn read_accounts(&mut self, db: &Database) -> Option<Vec<Option<i64>>> {
        let read = db.begin_read().ok()?;
        let bank = match read.table(BANK) {
            Ok(t) => t,
            // The power went out during the lookup (or an I/O fault was planned): the crash
            // step judges, as for the account reads below.
            Err(_) if self.io_faults_expected || self.storage.is_crashed() => return None,
            Err(e) => {
                if self.setup_done && !self.corruption_injected {
                    self.out
                        .tally
                        .fail(names::ATOMICITY, format!("{}: bank table: {e}", self.label));
                }
                return None;
            }
        };
        let mut balances = Vec::with_capacity(self.cfg.accounts_n as usize);
        for a in 0..self.cfg.accounts_n {
            match read.get(&bank, &kv_key(a)) {
                Ok(Some(b)) => balances.push(bank_balance(a, &b)),
                Ok(None) => balances.push(None),
                Err(e) if e.is_corruption() && self.corruption_injected => return None,
                Err(_) if self.io_faults_expected || self.storage.is_crashed() => return None,
                Err(e) => {
                    self.out.tally.fail(
                        names::ATOMICITY,
                        format!("{}: reading account {a}: {e}", self.label),
                    );
                    return None;
                }
            }
        }
        Some(balances)
    }

    fn bank_check_live(&mut self) {
        let Some(db) = self.db.take() else { return };
        self.bank_check(&db, "live read");
        self.db = Some(db);
    }

    fn bank_check(&mut self, db: &Database, what: &str) {
        let Some(balances) = self.read_accounts(db) else {
            return;
        };
        let total = BANK_BALANCE_INITIAL * self.cfg.accounts_n as i64;
        match check_bank(&balances, total) {
            Ok(()) => self.out.tally.pass(names::ATOMICITY, 1),
            Err(e) => self
                .out
                .tally
                .fail(names::ATOMICITY, format!("{}: {what}: {e}", self.label)),
        }
    }

    /// Moves the current storage's new fault events into the outcome.
    pub fn collect_schedule(&mut self) {
        let events = self.storage.schedule();
        let new = events.get(self.schedule_taken..).unwrap_or(&[]);
        let label = if self.label.is_empty() {
            "chaos".to_string()
        } else {
            self.label.clone()
        };
        let room = super::REPORT_SCHEDULE_MAX.saturating_sub(self.out.schedule.len());
        self.out
            .schedule
            .extend(report_events(new, &label).into_iter().take(room));
        self.schedule_taken = events.len();
    }

    /// Power loss now (or the image of the crash the plan already caused).
    pub fn crash(&mut self, model: &CrashModel) -> MemStorage {
        // The writers' acknowledgements before the cut, what they began after it.
        let acked = self.crowd.as_ref().map(Crowd::acked);
        let image = if self.storage.is_crashed() {
            self.storage
                .crash_image()
                .unwrap_or_else(|| self.storage.crash(model))
        } else {
            self.storage.crash(model)
        };
        // The held reader dies with the process.
        self.held = None;
        self.db = None;
        if let (Some(crowd), Some(acked)) = (self.crowd.take(), acked) {
            let cut = crowd.stop(acked);
            self.crowd_next = cut.next_versions();
            self.crowd_cut = Some(cut);
        }
        self.collect_schedule();
        image
    }

    /// I/O operations an open of `image` performs (on a private copy).
    fn recovery_ops(&self, image: &MemStorage) -> u64 {
        let plan = FaultPlan {
            track_durability: false,
            ..FaultPlan::default()
        };
        let probe = FaultStorage::new(Arc::new(image.deep_clone()), plan, 0);
        let _ = Database::open_with(Arc::new(probe.clone()), "db", self.cfg.options());
        probe.ops_total()
    }

    /// Opens `image` with a crash planned at a seeded I/O of its recovery; returns the image of
    /// that second crash (or `image` itself if the open finished first).
    ///
    /// # Errors
    /// An invalid plan.
    pub fn crash_during_recovery(
        &mut self,
        image: MemStorage,
        model: &CrashModel,
    ) -> Result<MemStorage> {
        let ops = self.recovery_ops(&image).max(1);
        let at = 1 + self.rng.below(ops);
        let plan = FaultPlan {
            crash_at_op: Some(at),
            crash: crate::faults::CrashSpec::Model(model.clone()),
            ..FaultPlan::default()
        };
        let seed = hash(self.cfg.seed, SALT_STORAGE, 1_000_000 + self.reopens);
        let storage = FaultStorage::over_mem(&image, plan, seed)?;
        let opened = Database::open_with(Arc::new(storage.clone()), "db", self.cfg.options());
        let label = format!("{} (crash {at} of {ops} I/Os into recovery)", self.label);
        let events = report_events(&storage.schedule(), &label);
        let room = super::REPORT_SCHEDULE_MAX.saturating_sub(self.out.schedule.len());
        self.out.schedule.extend(events.into_iter().take(room));
        drop(opened);
        Ok(storage.crash_image().unwrap_or(image))
    }

    /// Reopens on `image` with `plan` (a fresh fault layer over it) and verifies everything.
    /// Returns false when the database could not be opened (the episode is over).
    ///
    /// # Errors
    /// Oracle protocol errors.
    pub fn reopen(
        &mut self,
        image: &MemStorage,
        plan: FaultPlan,
        kind: &str,
        at_op: u64,
    ) -> Result<bool> {
        self.reopens += 1;
        let wal_bytes = image.snapshot("db-wal").map_or(0, |w| w.len() as u64);
        let seed = hash(self.cfg.seed, SALT_STORAGE, self.reopens);
        // The page a misdirected write missed stays stale in `image`: note the misdirect
        // before the schedule that recorded it is replaced.
        self.main_file_misdirected();
        self.storage = FaultStorage::over_mem(image, plan.clone(), seed)?;
        self.mem = image.clone();
        self.plan = plan;
        self.schedule_taken = 0;
        let failures_before = self.out.tally.total_failures();
        let storage = Arc::new(self.storage.clone());
        let (mut opened, took) =
            super::timed(|| Database::open_with(storage.clone(), "db", self.cfg.options()));
        judge_recovery(&mut self.out.tally, &self.spec, wal_bytes, took);
        let took = took.wall;
        // A planned read error may fail the open: an error, not data. Open again, as a
        // user would, until the error clears (a transient one) or the tries run out.
        for _ in 0..OPEN_RETRIES_MAX {
            if !(self.io_faults_expected && matches!(opened, Err(engine::Error::Io { .. }))) {
                break;
            }
            opened = Database::open_with(storage.clone(), "db", self.cfg.options());
        }
        let (usable, verify_ns) = match opened {
            Ok(db) => {
                let v0 = Instant::now();
                // Planned read faults hit the recovery and the workload, not the checks.
                self.storage.disarm();
                let verified = self.verify(&db);
                self.storage.arm();
                verified?;
                self.db = Some(Arc::new(db));
                let next = std::mem::take(&mut self.crowd_next);
                self.start_crowd(&next);
                (true, nanos(v0.elapsed()))
            }
            Err(e) => {
                self.open_failed(&e);
                (false, 0)
            }
        };
        self.out.reopen_ns.push(nanos(took));
        self.out.verify_ns.push(verify_ns);
        self.out.cycles.push(CrashCycle {
            cycle: self.out.cycles.len() as u64,
            at_op,
            kind: kind.to_string(),
            reopen_us: took.as_secs_f64() * 1e6,
            verify_us: verify_ns as f64 / 1e3,
            passed: self.out.tally.total_failures() == failures_before,
        });
        Ok(usable)
    }

    fn open_failed(&mut self, e: &engine::Error) {
        if e.is_corruption() && self.corruption_injected {
            self.out.tally.pass(names::CHECKSUM_DETECTION, 1);
        } else if e.is_corruption() {
            let d = format!(
                "{}: open reported corruption after a crash with no damage at rest: {e}",
                self.label
            );
            self.out.tally.fail(names::CHECKSUM_DETECTION, d);
        } else {
            self.out.tally.fail(
                names::DURABILITY,
                format!("{}: reopen failed: {e}", self.label),
            );
        }
    }

    /// Verifies the recovered database: every key, the markers, the bank and the integrity
    /// check; then adopts what was recovered as the new durable state.
    ///
    /// # Errors
    /// Oracle protocol errors.
    pub fn verify(&mut self, db: &Database) -> Result<()> {
        let mode = self.cfg.check_mode();
        let read = match db.begin_read() {
            Ok(r) => r,
            Err(e) => return Err(anyhow!("begin_read after recovery: {e}")),
        };
        let tables = (read.table(KV), read.table(MARKS));
        if !self.setup_done {
            drop(read);
            self.integrity(db);
            return Ok(());
        }
        if self.corruption_injected && (tables.0.is_err() || tables.1.is_err()) {
            self.out.tally.pass(names::CHECKSUM_DETECTION, 1);
            return Ok(());
        }
        let (Ok(kv), Ok(marks)) = tables else {
            let why = [tables.0.err(), tables.1.err()];
            let why: Vec<String> = why.iter().flatten().map(ToString::to_string).collect();
            let detail = format!(
                "{}: tables missing after recovery: {}",
                self.label,
                why.join("; ")
            );
            self.out.tally.fail(names::DURABILITY, detail);
            return Ok(());
        };
        let accepted = self.verify_keys(&read, &kv, mode)?;
        if let Some(prefix) = self.verify_markers(&read, &marks) {
            self.verify_kv_prefix(prefix, &accepted);
        }
        self.kv_log.clear();
        self.verify_crowd(&read);
        drop(read);
        if self.cfg.accounts_n > 1 {
            self.bank_check(db, "recovered state");
        }
        self.integrity(db);
        self.oracle.mark_recovered();
        Ok(())
    }

    /// Checks every key against the oracle; returns the keys it accepted, with what they showed.
    fn verify_keys(
        &mut self,
        read: &engine::ReadTxn,
        kv: &Table,
        mode: CheckMode,
    ) -> Result<Vec<(u64, Option<u64>)>> {
        let mut accepted = Vec::new();
        for key in 0..self.cfg.keys_n {
            let Obs::Known(observed) = self.observe(read, kv, key, key, false) else {
                continue;
            };
            match self.oracle.check(key, observed, mode) {
                Ok(()) => accepted.push((key, observed)),
                Err(m) if self.corruption_injected && self.older(key, observed) => {
                    // Documented limit (design.md): damage to the last synced group cannot be
                    // told from a torn tail, so those commits are dropped, never garbled.
                    self.lost_acked += 1;
                    let _ = m;
                }
                Err(m) => self
                    .out
                    .tally
                    .fail(names::DURABILITY, format!("{}: {m}", self.label)),
            }
            if mode == CheckMode::Buffered
                && self.oracle.check(key, observed, CheckMode::Full).is_err()
            {
                self.lost_acked += 1;
            }
            self.oracle.adopt(key, observed)?;
        }
        let held = accepted.len() as u64;
        self.out.tally.pass(names::DURABILITY, held);
        Ok(accepted)
    }

    /// Normal and Off mode: each key the oracle `accepted` (an unsynced write may be lost)
    /// must still show its last write inside the recovered `prefix`. Full mode leaves this to
    /// the durability check (every acknowledged write must be there); damage at rest may
    /// leave a page stale (design.md), so it is not judged then.
    fn verify_kv_prefix(&mut self, prefix: u64, accepted: &[(u64, Option<u64>)]) {
        let damaged = self.corruption_injected || self.main_file_misdirected();
        if self.cfg.check_mode() == CheckMode::Full || damaged {
            return;
        }
        let mut last = std::collections::HashMap::new();
        for w in self.kv_log.iter().filter(|w| w.seq <= prefix) {
            last.insert(w.key, *w);
        }
        let mut held = 0;
        for &(key, observed) in accepted {
            let Some(w) = last.get(&key) else {
                continue;
            };
            if observed == w.version {
                held += 1;
                continue;
            }
            let d = format!(
                "{}: key {key} shows version {observed:?}, but commit {} inside the recovered \
                 prefix 1..={prefix} left it at {:?}: an earlier commit lost while later ones \
                 survived",
                self.label, w.seq, w.version
            );
            self.out.tally.fail(names::NO_HOLE_PREFIX, d);
        }
        self.out.tally.pass(names::NO_HOLE_PREFIX, held);
    }

    /// True when `observed` is what an older state showed (absent, an older version, or the
    /// last put's version before an acknowledged delete): a lost write, not a phantom.
    fn older(&self, key: u64, observed: Option<u64>) -> bool {
        let Ok(state) = self.oracle.state(key) else {
            return false;
        };
        let version = u64::from(state.version);
        observed.is_none_or(|v| v < version || (v == version && !state.present))
    }

    /// The concurrent writers' keys against where the last power loss cut them.
    fn verify_crowd(&mut self, read: &engine::ReadTxn) {
        let Some(cut) = self.crowd_cut.take() else {
            return;
        };
        let table = match read.table(CROWD) {
            Ok(t) => t,
            Err(e) => {
                let d = format!("{}: concurrent writers' table: {e}", self.label);
                self.out.tally.fail(names::CONCURRENT_WRITERS, d);
                return;
            }
        };
        for w in 0..cut.acked.len() {
            let verdict = match read.get(&table, &super::crowd::crowd_key(w)) {
                Ok(got) => super::crowd::judge(w, self.cfg.seed, got.as_deref(), &cut),
                Err(e) if e.is_corruption() && self.corruption_injected => continue,
                Err(e) => Err(format!("concurrent writer {w}: read failed: {e}")),
            };
            match verdict {
                Ok(_) if cut.acked[w] > 0 => self.out.tally.pass(names::CONCURRENT_WRITERS, 1),
                Ok(_) => {}
                Err(m) => {
                    let d = format!("{}: {m}", self.label);
                    self.out.tally.fail(names::CONCURRENT_WRITERS, d);
                }
            }
        }
    }

    /// Checks the markers; returns the recovered prefix when it held.
    fn verify_markers(&mut self, read: &engine::ReadTxn, marks: &Table) -> Option<u64> {
        let mut observed = Vec::with_capacity(self.cfg.markers_n as usize);
        for m in 0..self.cfg.markers_n {
            match self.observe(read, marks, m, MARK_INDEX_BASE + m, false) {
                Obs::Known(seq) => observed.push(seq),
                Obs::Detected => return None,
            }
        }
        let mut held = None;
        let normal = matches!(self.cfg.durability, Durability::Normal { .. });
        let prefix = match self.markers.check(self.window, &observed) {
            Ok(p) => {
                self.out.tally.pass(names::NO_HOLE_PREFIX, 1);
                if normal {
                    self.out.tally.pass(names::NORMAL_WINDOW, 1);
                }
                held = Some(p);
                p
            }
            Err(crate::oracle::PrefixViolation::LostDurable { prefix_seq, .. })
                if normal && !self.corruption_injected =>
            {
                let d = format!(
                    "{}: lost acknowledged commits {}..={} of Normal mode {:?}, past its \
                     window (window {:?})",
                    self.label,
                    prefix_seq + 1,
                    self.window.acked_through,
                    self.cfg.durability,
                    self.window
                );
                self.out.tally.fail(names::NORMAL_WINDOW, d);
                prefix_seq
            }
            Err(crate::oracle::PrefixViolation::LostDurable { prefix_seq, .. })
                if self.corruption_injected =>
            {
                // Damage to the last synced frames cannot be told from a torn tail
                // (design.md), so it may lose their commits. Damage that an intact later
                // frame vouches for must surface as corruption.
                if self.wal_damage_vouched && !self.main_damaged && !self.main_file_misdirected() {
                    let d = format!(
                        "{}: WAL damage taken for a torn tail: recovery silently dropped \
                         acknowledged commits {}..={} (window {:?})",
                        self.label,
                        prefix_seq + 1,
                        self.window.acked_through,
                        self.window
                    );
                    self.out.tally.fail(names::CHECKSUM_DETECTION, d);
                }
                prefix_seq
            }
            Err(v) => {
                let d = format!("{}: {v} (window {:?})", self.label, self.window);
                self.out.tally.fail(names::NO_HOLE_PREFIX, d);
                observed.iter().flatten().copied().max().unwrap_or(0)
            }
        };
        if normal {
            let lost = self.window.acked_through.saturating_sub(prefix);
            self.lost_commits += lost;
            self.lost_commits_max = self.lost_commits_max.max(lost);
        }
        self.seq = prefix + 1;
        self.window = CommitWindow {
            durable_through: prefix,
            acked_through: prefix,
            issued_through: prefix,
        };
        held
    }

    fn integrity(&mut self, db: &Database) {
        let report = db.check_integrity();
        if self.storage.is_crashed() {
            // A crash planned for the next cycle landed during the check: nothing to judge.
            return;
        }
        if let Ok(r) = &report {
            self.free_trunks_max = self.free_trunks_max.max(r.free_trunks);
            self.free_pages_max = self.free_pages_max.max(r.pages_free);
        }
        match report {
            Ok(r) if r.is_ok() => self.out.tally.pass(names::INTEGRITY, 1),
            // A planned read error stopped the check: an error, not data; nothing to judge.
            Err(engine::Error::Io { .. }) if self.io_faults_expected => {}
            Ok(_) | Err(_) if self.corruption_injected => {
                self.out.tally.pass(names::CHECKSUM_DETECTION, 1)
            }
            Ok(r) => {
                let d = format!(
                    "{}: {} problems, first: {}",
                    self.label,
                    r.problems.len(),
                    r.problems.join("; ")
                );
                self.out.tally.fail(names::INTEGRITY, d);
            }
            Err(e) => self.out.tally.fail(
                names::INTEGRITY,
                format!("{}: integrity check failed: {e}", self.label),
            ),
        }
    }

    /// Reads every key of the live database against the acknowledged state (no recovery).
    ///
    /// # Errors
    /// A closed database.
    pub fn verify_live(&mut self) -> Result<()> {
        for key in 0..self.cfg.keys_n {
            self.live_read(key)?;
        }
        Ok(())
    }

    /// True once a write meant for the main file landed elsewhere (sticky: the page it
    /// missed stays stale after the fault layer is replaced).
    fn main_file_misdirected(&mut self) -> bool {
        if !self.main_misdirected {
            self.main_misdirected = (self.storage.schedule().iter())
                .any(|e| e.kind == crate::faults::FaultKind::Misdirect && e.file == "db");
        }
        self.main_misdirected
    }

    /// Live reads so far that returned an older version from a main-file page a misdirected
    /// write missed; the count restarts.
    pub fn take_stale_reads(&mut self) -> u64 {
        std::mem::take(&mut self.stale_reads)
    }

    /// Normal mode: waits past the time window (the engine's flusher syncs every
    /// `millis`), after which every acknowledged commit is durable.
    pub fn idle_past_window(&mut self) {
        let Durability::Normal { millis, .. } = self.cfg.durability else {
            return;
        };
        // Two flusher periods cover a commit made just after a flush, plus slack for a
        // loaded machine: the promise is "within the window", not "at its edge".
        let idle = Duration::from_millis(4 * u64::from(millis) + NORMAL_IDLE_SLACK_MS);
        std::thread::sleep(idle);
        self.window.durable_through = self.window.acked_through;
    }

    /// Current WAL size in the live storage.
    #[must_use]
    pub fn wal_bytes(&self) -> u64 {
        self.mem.snapshot("db-wal").map_or(0, |w| w.len() as u64)
    }

    /// The seed-derived random stream of the rig (for callers' choices).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.rng.below(bound.max(1))
    }

    /// Drops the database without a crash, clean-closing it when `close` (process exit).
    pub fn close(&mut self, close: bool) {
        self.held = None;
        if let Some(crowd) = self.crowd.take() {
            let acked = crowd.acked();
            let _ = crowd.stop(acked);
        }
        if let Some(db) = self.db.take() {
            if close {
                if let Ok(db) = Arc::try_unwrap(db) {
                    let _ = db.close();
                }
            }
        }
    }

    /// The live memory itself (shared: writes through either are seen by both).
    #[must_use]
    pub fn shared_mem(&self) -> MemStorage {
        self.mem.clone()
    }

    /// A copy of the live memory under the current fault layer: what a process restart
    /// (no power loss) finds.
    #[must_use]
    pub fn live_image(&self) -> MemStorage {
        self.mem.deep_clone()
    }
}
