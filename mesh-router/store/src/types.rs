//! Public value types of the store: classes, configuration, statistics and outcomes.

use std::fmt;

/// Which retention policy a block is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The user's own data: never evicted, limited only by the optional pinned quota.
    Pinned,
    /// Data carried for others: evicted least-recently-used first when the cache quota is full.
    Cache,
}

impl Class {
    pub(crate) const fn tag(self) -> u8 {
        match self {
            Class::Pinned => 1,
            Class::Cache => 2,
        }
    }

    pub(crate) const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Class::Pinned),
            2 => Some(Class::Cache),
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Pinned => "pinned",
            Class::Cache => "cache",
        })
    }
}

/// Settings fixed when the store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Byte budget for [`Class::Cache`] blocks; least recently used blocks are evicted to stay
    /// under it. Lowering it between runs evicts down to the new value on open.
    pub cache_quota_bytes: u64,
    /// Optional byte budget for [`Class::Pinned`] blocks. Going over it is an error, never an
    /// eviction: losing the user's own data silently is worse than refusing a write.
    pub pinned_quota_bytes: Option<u64>,
    /// Re-hash every block on [`crate::BlockStore::get`] (one sha2-256 pass over the block). On
    /// by default so that disk corruption is reported as [`crate::StoreError::Corrupt`] instead
    /// of being served to peers, who would then penalise us.
    pub verify_reads: bool,
    /// Save redb's allocator state on every commit so reopening after a crash is near-instant
    /// instead of a full-file walk. Costs an extra `fsync` per commit. See the crate docs.
    pub quick_repair: bool,
    /// redb page-cache size in bytes. redb's own default is 1 GiB, which would dominate a phone
    /// app's memory, so the default here is 16 MiB.
    pub db_cache_bytes: usize,
    /// How many cache-block reads are remembered before their recency is written to disk in one
    /// transaction. Pending reads are also written by the next `put`/`pin`/`unpin`/`delete`, by
    /// [`crate::BlockStore::flush_access`] and on drop. A crash loses at most this many recency
    /// updates, which only affects eviction order. Values below 1 are treated as 1.
    pub access_batch: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_quota_bytes: 256 * 1024 * 1024,
            pinned_quota_bytes: None,
            verify_reads: true,
            quick_repair: true,
            db_cache_bytes: 16 * 1024 * 1024,
            access_batch: 1024,
        }
    }
}

/// Byte and block counts of the store, as recorded in its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Total size of pinned blocks.
    pub pinned_bytes: u64,
    /// Number of pinned blocks.
    pub pinned_blocks: u64,
    /// Total size of cache blocks.
    pub cache_bytes: u64,
    /// Number of cache blocks.
    pub cache_blocks: u64,
    /// Number of blocks of either class.
    pub blocks: u64,
}

/// What eviction removed to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evicted {
    /// Number of cache blocks removed.
    pub blocks: u64,
    /// Their total size.
    pub bytes: u64,
}

/// What [`crate::BlockStore::put`] did with a verified block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// The block was new and is now stored in the requested class.
    Inserted,
    /// The block was already stored and its class did not change (a pinned block offered as cache
    /// stays pinned; a cache block offered again as cache counts as a use).
    AlreadyPresent,
    /// The block was a cache block and is now pinned.
    Promoted,
}

/// Result of a successful [`crate::BlockStore::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// What happened to the block.
    pub status: PutStatus,
    /// Cache blocks evicted to make room (counts only, so the outcome stays small however many
    /// tiny blocks went).
    pub evicted: Evicted,
}

/// Result of [`crate::BlockStore::unpin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpinOutcome {
    /// False if the block was absent or already a cache block.
    pub was_pinned: bool,
    /// Cache blocks evicted because the unpinned block now counts against the cache quota. The
    /// unpinned block is the most recently used, so it goes last, but it does go if it alone is
    /// larger than the quota.
    pub evicted: Evicted,
}
