//! [`FaultStorage`]: the wrapper, its files, and the decisions made per operation.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use engine::{MemStorage, Storage, StorageFile};
use parking_lot::Mutex;

use super::plan::{ByteRange, CrashModel, FaultPlan, Trigger, SECTOR_BYTES};
use super::rng::{chance, hash, SplitMix64};
use super::track::{PendingOp, Tracker, TRACK_FILE_BYTES_MAX};
use super::{FaultEvent, FaultKind, EIO, ENOSPC};

/// Events kept in the schedule; later ones are counted, not stored (a persistent fault on a
/// long run must not exhaust memory; 100 000 events is far more than a report can show).
pub const SCHEDULE_EVENTS_MAX: usize = 100_000;

/// A misdirected write lands 1..=this many sectors away (4 KiB at most): near enough to hit
/// a neighbouring page, as a firmware bug would.
pub const MISDIRECT_SECTORS_MAX: u64 = 8;

const SALT_EIO_READ: u64 = 1;
const SALT_EIO_WRITE: u64 = 2;
const SALT_EIO_SYNC: u64 = 3;
const SALT_MISDIRECT: u64 = 4;
const SALT_MISDIRECT_TARGET: u64 = 5;
const SALT_FLIP: u64 = 6;
const SALT_CRASH: u64 = 7;
const SALT_PARTIAL: u64 = 8;
const SALT_PARTIAL_LEN: u64 = 9;

/// Counters of one [`Trigger`]: operations it has seen, and whether it has fired.
#[derive(Debug, Default, Clone, Copy)]
struct TriggerState {
    seen: u64,
    fired: bool,
}

#[derive(Debug, Default)]
struct State {
    tracker: Tracker,
    schedule: Vec<FaultEvent>,
    schedule_dropped: u64,
    eio_read: TriggerState,
    eio_write: TriggerState,
    partial_write: TriggerState,
    eio_sync: TriggerState,
    misdirect: TriggerState,
    disk_full: bool,
    latent: Vec<ByteRange>,
    crash_image: Option<MemStorage>,
    crashes: u64,
    flips: u64,
}

impl State {
    fn push(&mut self, event: FaultEvent) {
        if self.schedule.len() < SCHEDULE_EVENTS_MAX {
            self.schedule.push(event);
        } else {
            self.schedule_dropped += 1;
        }
    }
}

#[derive(Debug)]
struct Shared {
    inner: Arc<dyn Storage>,
    plan: FaultPlan,
    seed: u64,
    /// False only while nothing can fire and nothing is tracked: then each operation costs
    /// one atomic increment and this branch.
    slow: AtomicBool,
    crashed: AtomicBool,
    /// The I/O operation that loses power (0: none): the plan's `crash_at_op`, or one armed
    /// later with [`FaultStorage::arm_crash_at`].
    crash_at: AtomicU64,
    /// The write that finds the disk full (0: none): the plan's `enospc.at_write`, or one
    /// armed later with [`FaultStorage::arm_enospc`].
    enospc_at_write: AtomicU64,
    /// False while the runner's own setup runs: the plan's EIO, ENOSPC, misdirection and
    /// latent errors hold their fire and their triggers do not count (see
    /// [`FaultStorage::disarm`]).
    armed: AtomicBool,
    ops: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
    space_bytes_max: AtomicU64,
    refused_after_crash: AtomicU64,
    state: Mutex<State>,
}

/// A fault-injecting [`Storage`] over any inner storage. Cloning shares the state, so keep a
/// clone to call [`FaultStorage::crash`] while the engine holds an `Arc<dyn Storage>`.
#[derive(Debug, Clone)]
pub struct FaultStorage {
    shared: Arc<Shared>,
}

/// A file handed out by [`FaultStorage`].
#[derive(Debug)]
pub struct FaultFile {
    shared: Arc<Shared>,
    inner: Arc<dyn StorageFile>,
    name: String,
    incarnation: u64,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(EIO)
}

fn event(op_index: u64, kind: FaultKind, file: &str, offset: u64, len: u64) -> FaultEvent {
    FaultEvent {
        op_index,
        kind,
        file: file.to_string(),
        offset,
        len,
        detail: String::new(),
    }
}

impl FaultStorage {
    /// Like [`FaultStorage::new`], but an invalid plan is an error, not a panic.
    ///
    /// # Errors
    /// The message of [`FaultPlan::validate`].
    pub fn try_new(
        inner: Arc<dyn Storage>,
        plan: FaultPlan,
        seed: u64,
    ) -> Result<FaultStorage, String> {
        plan.validate()?;
        Ok(FaultStorage::new(inner, plan, seed))
    }

    /// Wraps `inner`. Decisions derive from `plan.seed`, else `seed`. Files already in
    /// `inner` count as durable when first opened.
    ///
    /// # Panics
    /// When the plan does not validate (check it with [`FaultPlan::validate`] at load time).
    #[must_use]
    pub fn new(inner: Arc<dyn Storage>, plan: FaultPlan, seed: u64) -> FaultStorage {
        if let Err(e) = plan.validate() {
            panic!("invalid fault plan: {e}");
        }
        let seed = plan.seed.unwrap_or(seed);
        let slow = plan.injects() || plan.track_durability;
        let space = plan
            .enospc
            .as_ref()
            .and_then(|e| e.bytes_max)
            .unwrap_or(u64::MAX);
        let at_write = plan.enospc.as_ref().and_then(|e| e.at_write).unwrap_or(0);
        let state = State {
            latent: plan.latent.clone(),
            ..State::default()
        };
        let shared = Shared {
            inner,
            seed,
            slow: AtomicBool::new(slow),
            crashed: AtomicBool::new(false),
            crash_at: AtomicU64::new(plan.crash_at_op.unwrap_or(0)),
            enospc_at_write: AtomicU64::new(at_write),
            armed: AtomicBool::new(true),
            ops: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            space_bytes_max: AtomicU64::new(space),
            refused_after_crash: AtomicU64::new(0),
            state: Mutex::new(state),
            plan,
        };
        FaultStorage {
            shared: Arc::new(shared),
        }
    }

    /// Wraps a memory storage (often a crash image), registering every file in it as durable
    /// so files the engine never opens still appear in the next crash image. Writes go to
    /// `mem` itself (clones of a `MemStorage` share files): keep a `deep_clone` to compare.
    ///
    /// # Errors
    /// Any error of reading `mem` (none for a `MemStorage`).
    pub fn over_mem(mem: &MemStorage, plan: FaultPlan, seed: u64) -> io::Result<FaultStorage> {
        let storage = FaultStorage::new(Arc::new(mem.clone()), plan, seed);
        if storage.shared.plan.track_durability {
            let mut state = storage.shared.state.lock();
            for name in mem.names() {
                if state.tracker.incarnation(&name).is_none() {
                    let durable = mem.snapshot(&name).unwrap_or_default();
                    state.tracker.register(&name, durable, false);
                }
            }
        }
        Ok(storage)
    }

    /// The seed every decision derives from (print it with any failure).
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// I/O operations so far (reads, writes, syncs, `sync_dir`, `set_len`), the N of fail-at-N.
    #[must_use]
    pub fn ops_total(&self) -> u64 {
        self.shared.ops.load(Ordering::Relaxed)
    }

    /// Bytes written successfully (counted while the plan injects or tracks).
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }

    /// Every fault injected so far, in order.
    #[must_use]
    pub fn schedule(&self) -> Vec<FaultEvent> {
        self.shared.state.lock().schedule.clone()
    }

    /// Events beyond [`SCHEDULE_EVENTS_MAX`] (counted, not kept), and I/O refused after a crash.
    #[must_use]
    pub fn dropped_counts(&self) -> (u64, u64) {
        let dropped = self.shared.state.lock().schedule_dropped;
        (
            dropped,
            self.shared.refused_after_crash.load(Ordering::Relaxed),
        )
    }

    /// True after a crash: every later operation fails with EIO.
    #[must_use]
    pub fn is_crashed(&self) -> bool {
        self.shared.crashed.load(Ordering::Acquire)
    }

    /// Frees disk space: raises the byte budget by `bytes` and ends an `at_write` full disk.
    pub fn free_space(&self, bytes: u64) {
        let mut state = self.shared.state.lock();
        state.disk_full = false;
        let budget = &self.shared.space_bytes_max;
        let raised = budget.load(Ordering::Relaxed).saturating_add(bytes);
        budget.store(raised, Ordering::Relaxed);
    }

    /// From now on, reads overlapping this range of `file` fail with EIO.
    pub fn add_latent_error(&self, file: &str, offset: u64, len: u64) {
        let mut state = self.shared.state.lock();
        state.latent.push(ByteRange {
            file: file.to_string(),
            offset,
            len,
        });
        self.shared.slow.store(true, Ordering::Release);
    }

    /// Flips `bits` random bits (each in a random sector) of `file` at rest: in the live file
    /// and in its durable image. The flips are recorded and returned.
    ///
    /// # Errors
    /// The file is missing, or `bits` exceeds [`super::BIT_FLIPS_PER_CALL_MAX`].
    pub fn flip_bits(&self, file: &str, bits: u32) -> io::Result<Vec<FaultEvent>> {
        self.flip_bits_in(file, 0..u64::MAX, bits)
    }

    /// [`FaultStorage::flip_bits`] within the byte range `range` of the file (cut to its
    /// length), e.g. the live frames of a WAL.
    ///
    /// # Errors
    /// As [`FaultStorage::flip_bits`].
    pub fn flip_bits_in(
        &self,
        file: &str,
        range: std::ops::Range<u64>,
        bits: u32,
    ) -> io::Result<Vec<FaultEvent>> {
        if bits > super::BIT_FLIPS_PER_CALL_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too many bit flips",
            ));
        }
        let mut state = self.shared.state.lock();
        let op = self.ops_total();
        self.shared.flip_locked(&mut state, file, range, bits, op)
    }

    /// Power loss now under `model`: returns the disk as it would be found on restart, and
    /// refuses all further I/O with EIO. Can be called again (each crash draws new fates).
    #[must_use]
    pub fn crash(&self, model: &CrashModel) -> MemStorage {
        let mut state = self.shared.state.lock();
        let op = self.ops_total();
        self.shared.crash_locked(&mut state, model, op)
    }

    /// Power loss now under the plan's `crash` model.
    #[must_use]
    pub fn crash_planned(&self) -> MemStorage {
        self.crash(&self.shared.plan.crash.model())
    }

    /// Loses power at I/O operation `op` (counted like [`FaultStorage::ops_total`]) under the
    /// plan's `crash` model. A runner arms the crash once its own setup and verification
    /// are done, so the power loss lands in the workload and never in the checks.
    pub fn arm_crash_at(&self, op: u64) {
        debug_assert!(
            op > self.ops_total(),
            "a crash armed in the past never fires"
        );
        self.shared.crash_at.store(op, Ordering::Release);
        self.shared.slow.store(true, Ordering::Release);
    }

    /// Cancels a crash armed with [`FaultStorage::arm_crash_at`] that has not fired.
    pub fn cancel_crash(&self) {
        self.shared.crash_at.store(0, Ordering::Release);
    }

    /// Holds the plan's EIO, ENOSPC, misdirection and latent errors until [`FaultStorage::arm`]
    /// (crashes, bit flips and fail-at-N count I/O numbers and are not affected). A runner
    /// disarms the layer for its own setup, so an injected fault meets the workload and
    /// never aborts the setup; trigger positions (`at`) count from the arming.
    pub fn disarm(&self) {
        self.shared.armed.store(false, Ordering::Release);
    }

    /// Ends [`FaultStorage::disarm`].
    pub fn arm(&self) {
        self.shared.armed.store(true, Ordering::Release);
    }

    /// A full disk from now on: `at_write` counts writes from this call, `bytes_max` bytes
    /// written from this call. A runner arms it after its own setup, so the fault meets the
    /// workload, never the setup.
    pub fn arm_enospc(&self, plan: &super::plan::EnospcPlan) {
        let sh = &self.shared;
        if let Some(at) = plan.at_write {
            let writes = sh.writes.load(Ordering::Relaxed);
            sh.enospc_at_write
                .store(writes.saturating_add(at), Ordering::Release);
        }
        if let Some(bytes) = plan.bytes_max {
            let written = sh.bytes_written.load(Ordering::Relaxed);
            sh.space_bytes_max
                .store(written.saturating_add(bytes), Ordering::Release);
        }
        sh.slow.store(true, Ordering::Release);
    }

    /// The operation armed to lose power, if any.
    #[must_use]
    pub fn crash_at_op(&self) -> Option<u64> {
        Some(self.shared.crash_at.load(Ordering::Acquire)).filter(|&op| op != 0)
    }

    /// The image of the last crash (from `crash_at_op` or a call to `crash`).
    #[must_use]
    pub fn crash_image(&self) -> Option<MemStorage> {
        self.shared.state.lock().crash_image.clone()
    }
}

impl Shared {
    fn next_op(&self) -> u64 {
        self.ops.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn fast(&self) -> bool {
        !self.slow.load(Ordering::Acquire)
    }

    fn refuse(&self) -> io::Error {
        self.refused_after_crash.fetch_add(1, Ordering::Relaxed);
        eio()
    }

    /// Checks common to every counted operation: crashed, planned flips and crash, fail-at-N.
    fn begin(
        &self,
        state: &mut State,
        op: u64,
        name: &str,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        if self.crashed.load(Ordering::Acquire) {
            return Err(self.refuse());
        }
        let flips: Vec<(String, u32)> = (self.plan.bit_flips.iter())
            .filter(|f| f.at_op == op)
            .map(|f| (f.file.clone(), f.bits))
            .collect();
        for (file, bits) in flips {
            // A planned flip on a file not created yet is a no-op, not a failure of this op.
            let _ = self.flip_locked(state, &file, 0..u64::MAX, bits, op);
        }
        if self.crash_at.load(Ordering::Acquire) == op {
            let image = self.crash_locked(state, &self.plan.crash.model(), op);
            debug_assert!(state.crash_image.is_some() && self.crashed.load(Ordering::Relaxed));
            drop(image);
            return Err(eio());
        }
        if let Some(fail) = &self.plan.fail_at {
            if op == fail.op || (fail.persistent && op > fail.op) {
                state.push(event(op, FaultKind::FailAt, name, offset, len));
                return Err(eio());
            }
        }
        Ok(())
    }

    fn fires(&self, st: &mut TriggerState, trig: &Trigger, name: &str, op: u64, salt: u64) -> bool {
        if trig.file.as_deref().is_some_and(|f| f != name) {
            return false;
        }
        st.seen += 1;
        if st.fired && trig.persistent {
            return true;
        }
        let hit = trig.at == Some(st.seen) || chance(hash(self.seed, salt, op), trig.probability);
        st.fired |= hit;
        hit
    }

    fn check_read(
        &self,
        state: &mut State,
        op: u64,
        name: &str,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.begin(state, op, name, offset, len)?;
        if !self.armed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(trig) = &self.plan.eio_read {
            let hit = self.fires(&mut state.eio_read, trig, name, op, SALT_EIO_READ);
            if hit {
                state.push(event(op, FaultKind::EioRead, name, offset, len));
                return Err(eio());
            }
        }
        let end = offset.saturating_add(len);
        let latent = state
            .latent
            .iter()
            .any(|r| r.file == name && offset < r.offset.saturating_add(r.len) && r.offset < end);
        if latent {
            state.push(event(op, FaultKind::LatentSector, name, offset, len));
            return Err(eio());
        }
        Ok(())
    }

    /// ENOSPC, EIO and misdirection for a write; returns where the write lands.
    fn check_write(
        &self,
        state: &mut State,
        op: u64,
        name: &str,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        self.begin(state, op, name, offset, len)?;
        let nth = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.armed.load(Ordering::Acquire) {
            return Ok(offset);
        }
        state.disk_full |= self.enospc_at_write.load(Ordering::Acquire) == nth;
        let budget = self.space_bytes_max.load(Ordering::Relaxed);
        let over = self
            .bytes_written
            .load(Ordering::Relaxed)
            .saturating_add(len)
            > budget;
        if state.disk_full || over {
            let mut e = event(op, FaultKind::Enospc, name, offset, len);
            e.detail = format!("write #{nth}, budget {budget} bytes");
            state.push(e);
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        if let Some(trig) = &self.plan.eio_write {
            let hit = self.fires(&mut state.eio_write, trig, name, op, SALT_EIO_WRITE);
            if hit {
                state.push(event(op, FaultKind::EioWrite, name, offset, len));
                return Err(eio());
            }
        }
        Ok(self.misdirect(state, op, name, offset, len))
    }

    /// A short write, when the plan's `partial_write` fires: how many leading bytes land
    /// (whole sectors, fewer than `len`).
    fn partial(
        &self,
        state: &mut State,
        op: u64,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Option<u64> {
        let trig = self.plan.partial_write.as_ref()?;
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let hit = self.fires(&mut state.partial_write, trig, name, op, SALT_PARTIAL);
        if !hit {
            return None;
        }
        let sectors = len.div_ceil(SECTOR_BYTES);
        let keep = (hash(self.seed, SALT_PARTIAL_LEN, op) % sectors) * SECTOR_BYTES;
        let mut e = event(op, FaultKind::PartialWrite, name, offset, len);
        e.detail = format!("{keep} of {len} bytes landed");
        state.push(e);
        Some(keep.min(len.saturating_sub(1)))
    }

    fn misdirect(&self, state: &mut State, op: u64, name: &str, offset: u64, len: u64) -> u64 {
        let Some(trig) = &self.plan.misdirect else {
            return offset;
        };
        let hit = self.fires(&mut state.misdirect, trig, name, op, SALT_MISDIRECT);
        if !hit {
            return offset;
        }
        let word = hash(self.seed, SALT_MISDIRECT_TARGET, op);
        let delta = (1 + word % MISDIRECT_SECTORS_MAX) * SECTOR_BYTES;
        let backwards = word >> 63 == 1 && offset >= delta;
        let target = if backwards {
            offset - delta
        } else {
            offset + delta
        };
        debug_assert!(target != offset && target.abs_diff(offset).is_multiple_of(SECTOR_BYTES));
        let mut e = event(op, FaultKind::Misdirect, name, offset, len);
        e.detail = format!("landed at {target}");
        state.push(e);
        target
    }

    fn check_sync(&self, state: &mut State, op: u64, name: &str) -> io::Result<()> {
        self.begin(state, op, name, 0, 0)?;
        if !self.armed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(trig) = &self.plan.eio_sync {
            let hit = self.fires(&mut state.eio_sync, trig, name, op, SALT_EIO_SYNC);
            if hit {
                state.push(event(op, FaultKind::EioSync, name, 0, 0));
                return Err(eio());
            }
        }
        Ok(())
    }

    fn flip_locked(
        &self,
        state: &mut State,
        name: &str,
        range: std::ops::Range<u64>,
        bits: u32,
        op: u64,
    ) -> io::Result<Vec<FaultEvent>> {
        let file = self.inner.open(name, false)?;
        let end = file.len()?.min(range.end);
        let start = range.start.min(end);
        let len = end - start;
        let mut flipped = Vec::new();
        if len == 0 {
            return Ok(flipped);
        }
        state.flips += 1;
        let mut rng = SplitMix64::new(hash(self.seed, SALT_FLIP, state.flips));
        let sectors = len.div_ceil(SECTOR_BYTES);
        for _ in 0..bits {
            let sector = rng.below(sectors);
            let sector_bytes = SECTOR_BYTES.min(len - sector * SECTOR_BYTES);
            let bit = rng.below(sector_bytes * 8);
            let pos = start + sector * SECTOR_BYTES + bit / 8;
            debug_assert!((start..end).contains(&pos));
            let mask = 1u8 << (bit % 8);
            let mut byte = [0u8; 1];
            file.read_at(&mut byte, pos)?;
            file.write_at(&[byte[0] ^ mask], pos)?;
            state.tracker.flip_durable(name, pos, mask);
            let mut e = event(op, FaultKind::BitFlip, name, pos, 1);
            e.detail = format!("mask {mask:#04x}");
            state.push(e.clone());
            flipped.push(e);
        }
        Ok(flipped)
    }

    fn crash_locked(&self, state: &mut State, model: &CrashModel, op: u64) -> MemStorage {
        self.crashed.store(true, Ordering::Release);
        self.slow.store(true, Ordering::Release);
        state.crashes += 1;
        let crash_seed = hash(self.seed, SALT_CRASH, state.crashes);
        let mut e = event(op, FaultKind::Crash, "", 0, 0);
        e.detail = format!("crash #{} seed {crash_seed:#018x}", state.crashes);
        if !self.plan.track_durability {
            e.detail
                .push_str(": durability not tracked, image is empty");
        }
        state.push(e);
        let mut outcomes = Vec::new();
        let image = state
            .tracker
            .crash_image(model, crash_seed, op, &mut outcomes);
        for outcome in outcomes {
            state.push(outcome);
        }
        state.crash_image = Some(image.deep_clone());
        image
    }
}

fn read_all(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let len = file.len()?;
    if len > TRACK_FILE_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            "fault tracker file limit",
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_at(&mut bytes, 0)?;
    Ok(bytes)
}

impl Storage for FaultStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let sh = &self.shared;
        if sh.crashed.load(Ordering::Acquire) {
            return Err(sh.refuse());
        }
        let (inner, incarnation) = if sh.plan.track_durability {
            let mut state = sh.state.lock();
            match state.tracker.incarnation(name) {
                Some(incarnation) => (sh.inner.open(name, create)?, incarnation),
                None => {
                    let existed = sh.inner.exists(name)?;
                    let inner = sh.inner.open(name, create)?;
                    let durable = if existed {
                        read_all(inner.as_ref())?
                    } else {
                        Vec::new()
                    };
                    (inner, state.tracker.register(name, durable, !existed))
                }
            }
        } else {
            (sh.inner.open(name, create)?, 0)
        };
        let shared = sh.clone();
        Ok(Arc::new(FaultFile {
            shared,
            inner,
            name: name.to_string(),
            incarnation,
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let sh = &self.shared;
        if sh.crashed.load(Ordering::Acquire) {
            return Err(sh.refuse());
        }
        let mut state = sh.state.lock();
        sh.inner.remove(name)?;
        state.tracker.remove(name);
        Ok(())
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        if self.shared.crashed.load(Ordering::Acquire) {
            return Err(self.shared.refuse());
        }
        self.shared.inner.exists(name)
    }

    fn sync_dir(&self) -> io::Result<()> {
        let sh = &self.shared;
        let op = sh.next_op();
        if sh.fast() {
            return sh.inner.sync_dir();
        }
        let mut state = sh.state.lock();
        sh.check_sync(&mut state, op, "")?;
        sh.inner.sync_dir()?;
        state.tracker.sync_dir();
        Ok(())
    }
}

impl StorageFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let sh = &self.shared;
        let op = sh.next_op();
        if sh.fast() {
            return self.inner.read_at(buf, offset);
        }
        sh.check_read(
            &mut sh.state.lock(),
            op,
            &self.name,
            offset,
            buf.len() as u64,
        )?;
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let sh = &self.shared;
        let op = sh.next_op();
        if sh.fast() {
            return self.inner.write_at(buf, offset);
        }
        let len = buf.len() as u64;
        // The lock is held across the inner write so the unsynced log has the disk's order.
        let mut state = sh.state.lock();
        let target = sh.check_write(&mut state, op, &self.name, offset, len)?;
        let short = sh.partial(&mut state, op, &self.name, target, len);
        let buf = match short {
            Some(keep) => buf.get(..keep as usize).unwrap_or_default(),
            None => buf,
        };
        let len = buf.len() as u64;
        let track = sh.plan.track_durability;
        if track {
            state.tracker.admit(target.saturating_add(len), len)?;
        }
        self.inner.write_at(buf, target)?;
        sh.bytes_written.fetch_add(len, Ordering::Relaxed);
        if track && len > 0 {
            let pending = PendingOp::Write {
                op_index: op,
                offset: target,
                data: buf.to_vec(),
            };
            state.tracker.record(&self.name, self.incarnation, pending);
        }
        if short.is_some() {
            return Err(eio());
        }
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let sh = &self.shared;
        let op = sh.next_op();
        if sh.plan.sync_delay_us > 0 {
            // The disk's fsync time, outside the lock: other threads write meanwhile, and
            // this sync does not cover what they write.
            std::thread::sleep(std::time::Duration::from_micros(sh.plan.sync_delay_us));
        }
        if sh.fast() {
            return self.inner.sync();
        }
        let mut state = sh.state.lock();
        let result = sh
            .check_sync(&mut state, op, &self.name)
            .and_then(|()| self.inner.sync());
        match result {
            Ok(()) => {
                state
                    .tracker
                    .sync_file_before(&self.name, self.incarnation, op);
            }
            Err(_) if !sh.crashed.load(Ordering::Acquire) => {
                // Linux marks pages whose writeback failed clean: they stay readable but
                // never reach the disk, and the next fsync succeeds without them.
                let lost = state.tracker.lose_unsynced(&self.name, self.incarnation);
                if let Some(last) = state.schedule.last_mut().filter(|e| e.op_index == op) {
                    last.detail = format!("{lost} unsynced operations lost");
                }
            }
            Err(_) => {}
        }
        result
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let sh = &self.shared;
        let op = sh.next_op();
        if sh.fast() {
            return self.inner.set_len(len);
        }
        let mut state = sh.state.lock();
        sh.begin(&mut state, op, &self.name, len, 0)?;
        if sh.plan.track_durability {
            state.tracker.admit(len, 0)?;
        }
        self.inner.set_len(len)?;
        if sh.plan.track_durability {
            state.tracker.record(
                &self.name,
                self.incarnation,
                PendingOp::SetLen { op_index: op, len },
            );
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        if self.shared.crashed.load(Ordering::Acquire) {
            return Err(self.shared.refuse());
        }
        self.inner.len()
    }
}
