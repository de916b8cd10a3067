//! Typed errors for the block store.

use cid::Cid;

use crate::Class;

/// Everything that can go wrong in the block store.
///
/// Input errors (`BlockTooLarge`, `UnsupportedCodec`, `UnsupportedHash`, `HashMismatch`) mean the
/// caller or the peer that sent the block is at fault; the router uses them to penalise peers.
/// `QuotaExceeded` and `NotFound` are policy outcomes. `Corrupt`, `Inconsistent`, `SchemaVersion`,
/// `Database` and `Io` mean the local disk or database is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The block is larger than [`crate::MAX_BLOCK_SIZE`].
    #[error("block is {size} bytes; the maximum is {max}")]
    BlockTooLarge {
        /// Size of the rejected block.
        size: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The CID's codec is neither raw (0x55) nor dag-pb (0x70).
    #[error("unsupported codec 0x{0:x}; only raw (0x55) and dag-pb (0x70) are stored")]
    UnsupportedCodec(u64),
    /// The CID's multihash is not a 32-byte sha2-256 digest.
    #[error("unsupported multihash 0x{code:x} with a {size}-byte digest; only sha2-256 (0x12) is stored")]
    UnsupportedHash {
        /// Multihash code found in the CID.
        code: u64,
        /// Digest length found in the CID.
        size: u8,
    },
    /// The bytes do not hash to the CID they were offered under.
    #[error("block bytes do not hash to {expected}")]
    HashMismatch {
        /// The CID the bytes were claimed to have.
        expected: Cid,
    },
    /// Storing this would push a class over its quota. Pinned blocks are never evicted to make
    /// room, and a cache block larger than the whole cache quota is refused rather than flushing
    /// the cache for nothing.
    #[error("{class} quota exceeded: {used} bytes used + {needed} needed > {quota} quota")]
    QuotaExceeded {
        /// The class whose quota would be broken.
        class: Class,
        /// Bytes the operation wanted to add.
        needed: u64,
        /// Bytes already used by that class.
        used: u64,
        /// The quota of that class.
        quota: u64,
    },
    /// The operation needs a block that is not stored.
    #[error("block {0} is not stored")]
    NotFound(Cid),
    /// A stored block no longer hashes to its CID (disk corruption or tampering).
    #[error("stored block {cid} is corrupt: {reason}")]
    Corrupt {
        /// The CID whose stored bytes are bad.
        cid: Cid,
        /// What was wrong.
        reason: &'static str,
    },
    /// The store's own indexes or counters disagree; the database was edited outside this crate or
    /// a bug slipped through. The transaction that found it is rolled back.
    #[error("store indexes are inconsistent: {0}")]
    Inconsistent(&'static str),
    /// The database was written by an incompatible version of this crate.
    #[error("store schema version {found} is not supported (this build reads {supported})")]
    SchemaVersion {
        /// Version recorded in the file.
        found: u64,
        /// Version this build understands.
        supported: u64,
    },
    /// File-system error outside redb (creating, renaming or syncing the store file).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// An error from redb (I/O, corruption detected by redb, locking).
    // Boxed because redb::Error is large and would bloat every `Result` in the hot path.
    #[error("database error: {0}")]
    Database(#[source] Box<redb::Error>),
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

// redb has one error type per operation kind; funnel them all through redb::Error so callers match
// on a single variant.
macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(Box::new(redb::Error::from(e)))
            }
        })*
    };
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);
