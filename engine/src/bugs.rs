//! Seeded bugs: deliberate defects that prove the harness's checkers can fail.
//!
//! A bug is honoured only when the crate is built with the `seeded-bugs` feature and
//! [`crate::Options::seeded_bug`] names it; otherwise `Options::validate` rejects it. Each bug
//! is the smallest change that breaks one guarantee, so the harness scenario that checks that
//! guarantee must report a failure.

/// One deliberate defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeededBug {
    /// `Durability::Full` commits return without waiting for the WAL fsync.
    /// Breaks durability under power loss.
    SkipCommitFsync,
    /// Recovery accepts WAL frames whose checksum does not match.
    /// Breaks checksum detection: torn or garbled frames become data.
    AcceptBadFrameChecksum,
    /// The commit mark goes on a transaction's first frame instead of its last, so a torn
    /// transaction can be recovered in part. Breaks atomicity.
    CommitRecordFirst,
    /// A checkpoint skips copying one page before the WAL is reset. Breaks durability.
    DropPageAtCheckpoint,
    /// Rollback leaves the transaction's versions of existing pages in the shared cache.
    /// Breaks isolation: readers see rolled-back data.
    KeepRolledBackPagesInCache,
    /// A leaf split drops the last key of the page being split. Breaks the B+tree.
    LoseLastKeyOfSplit,
    /// Recovery takes any invalid WAL frame for a torn tail, even when later frames vouch
    /// that it had been synced: acknowledged commits after mid-log damage are silently
    /// dropped. Breaks checksum detection.
    CorruptWalReadAsTornTail,
    /// A read that fails with an I/O error returns "absent" instead of the error. Breaks
    /// error handling: a bad sector reads as a missing key.
    ReadErrorAsAbsent,
    /// A leaf merge after deletes drops the last key of the merged leaf. Breaks the B+tree.
    LoseLastKeyOfMerge,
    /// A checkpoint restarts the WAL before it syncs the main file (steps 3 and 4 swapped):
    /// a power loss between them loses the copied pages. Breaks durability.
    WalResetBeforeMainSync,
    /// `Durability::Normal` syncs every ten times `commits` commits. Breaks its window.
    NormalWindowTenfold,
    /// `Durability::Normal`'s flusher thread wakes but never syncs, so an idle database keeps
    /// its last commits unsynced for ever. Breaks the time window.
    NormalFlusherNeverSyncs,
    /// A committer that waited behind another's WAL sync returns once that sync ends, even
    /// when its own frames came after what the sync covered. Breaks group commit: a commit
    /// is acknowledged that the fsync did not cover.
    GroupCommitEarlyAck,
    /// Taking a page from a free-list trunk leaves the trunk's count as it was, so the same
    /// page is handed out again by the next allocation. Breaks the free list: two live pages
    /// share one place in the file.
    FreeListEntryReused,
    /// A read transaction looks up every page at the newest commit instead of its own
    /// snapshot. Breaks snapshot isolation: a multi-key read sees a commit made while it ran.
    SnapshotReadsLatest,
    /// A failed WAL fsync fails its commit but leaves the database usable, so later commits
    /// build on writes the kernel may have dropped. Breaks error handling (fsyncgate).
    FsyncErrorNotPoisoned,
    /// A forward range scan that crosses into the next leaf skips that leaf's first key.
    /// Breaks scans: point reads still find the key.
    ScanSkipsLeafStart,
    /// A page given back is never put on the free list: the file only grows. Breaks page
    /// accounting (the integrity check's leak test); no data is lost.
    FreedPageLeaked,
    /// A commit that meets a full disk poisons the database instead of failing alone, so it
    /// stays unusable after space is freed. Breaks recovery from a full disk.
    DiskFullPoisons,
    /// Recovery that meets an invalid WAL frame drops that frame's transaction and goes on
    /// with the valid transactions after it, instead of ending the log there: an unsynced
    /// commit is lost while a later one survives (`SQLite`'s cumulative frame checksums exist
    /// to rule this out). Breaks the prefix rule: recovered commits must have no holes.
    SkipInvalidWalTxn,
    /// A checkpoint copies page versions newer than the oldest open reader's snapshot into
    /// the main file (it still keeps the WAL for that reader). Breaks snapshot isolation for
    /// a long-lived reader: a page it finds only in the main file shows later commits.
    CheckpointPastReader,
    /// A delete leaves the transaction's insert hint in place, so a later put of the same
    /// transaction can go straight to a leaf the delete merged away or freed. Breaks the
    /// B+tree: the put lands in a page no longer in the tree.
    DeleteKeepsInsertHint,
    /// A new database's main file and WAL are created without the fsync of their directory,
    /// so their names are not durable: a power loss on a file system that keeps names only
    /// when their directory is synced loses the whole database. Breaks durability; only the
    /// real file path shows it (`fs/*` scenarios on faultfs).
    SkipDirSyncOnCreate,
}

impl SeededBug {
    /// Every seeded bug, for catalogs and tests.
    pub const ALL: [SeededBug; 23] = [
        SeededBug::SkipCommitFsync,
        SeededBug::AcceptBadFrameChecksum,
        SeededBug::CommitRecordFirst,
        SeededBug::DropPageAtCheckpoint,
        SeededBug::KeepRolledBackPagesInCache,
        SeededBug::LoseLastKeyOfSplit,
        SeededBug::NormalWindowTenfold,
        SeededBug::NormalFlusherNeverSyncs,
        SeededBug::CorruptWalReadAsTornTail,
        SeededBug::WalResetBeforeMainSync,
        SeededBug::LoseLastKeyOfMerge,
        SeededBug::ReadErrorAsAbsent,
        SeededBug::GroupCommitEarlyAck,
        SeededBug::FreeListEntryReused,
        SeededBug::SnapshotReadsLatest,
        SeededBug::FsyncErrorNotPoisoned,
        SeededBug::ScanSkipsLeafStart,
        SeededBug::FreedPageLeaked,
        SeededBug::DiskFullPoisons,
        SeededBug::SkipInvalidWalTxn,
        SeededBug::CheckpointPastReader,
        SeededBug::DeleteKeepsInsertHint,
        SeededBug::SkipDirSyncOnCreate,
    ];

    /// A stable kebab-case name (`skip-commit-fsync`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SeededBug::SkipCommitFsync => "skip-commit-fsync",
            SeededBug::AcceptBadFrameChecksum => "accept-bad-frame-checksum",
            SeededBug::CommitRecordFirst => "commit-record-first",
            SeededBug::DropPageAtCheckpoint => "drop-page-at-checkpoint",
            SeededBug::KeepRolledBackPagesInCache => "keep-rolled-back-pages-in-cache",
            SeededBug::LoseLastKeyOfSplit => "lose-last-key-of-split",
            SeededBug::NormalWindowTenfold => "normal-window-tenfold",
            SeededBug::CorruptWalReadAsTornTail => "corrupt-wal-read-as-torn-tail",
            SeededBug::WalResetBeforeMainSync => "wal-reset-before-main-sync",
            SeededBug::LoseLastKeyOfMerge => "lose-last-key-of-merge",
            SeededBug::ReadErrorAsAbsent => "read-error-as-absent",
            SeededBug::NormalFlusherNeverSyncs => "normal-flusher-never-syncs",
            SeededBug::GroupCommitEarlyAck => "group-commit-early-ack",
            SeededBug::FreeListEntryReused => "free-list-entry-reused",
            SeededBug::SnapshotReadsLatest => "snapshot-reads-latest",
            SeededBug::FsyncErrorNotPoisoned => "fsync-error-not-poisoned",
            SeededBug::ScanSkipsLeafStart => "scan-skips-leaf-start",
            SeededBug::FreedPageLeaked => "freed-page-leaked",
            SeededBug::DiskFullPoisons => "disk-full-poisons",
            SeededBug::SkipInvalidWalTxn => "skip-invalid-wal-txn",
            SeededBug::CheckpointPastReader => "checkpoint-past-reader",
            SeededBug::DeleteKeepsInsertHint => "delete-keeps-insert-hint",
            SeededBug::SkipDirSyncOnCreate => "skip-dir-sync-on-create",
        }
    }

    /// The bug named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<SeededBug> {
        SeededBug::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// True when `bug` is configured and the crate was built to honour it.
#[inline]
pub(crate) fn active(configured: Option<SeededBug>, bug: SeededBug) -> bool {
    cfg!(feature = "seeded-bugs") && configured == Some(bug)
}
