//! The block store itself: opening, the public operations, and the recency buffer.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use cid::Cid;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata};
use tracing::{debug, info, warn};

use crate::content::{check_cid, cid_of, digest_matches, verify_block, Codec, MAX_BLOCK_SIZE};
use crate::error::{Result, StoreError};
use crate::iter::CidIter;
use crate::schema::{read_stats, Tables, BLOCKS, COUNTERS, K_SCHEMA, META, SCHEMA_VERSION};
use crate::types::{Class, Evicted, PutOutcome, PutStatus, StoreConfig, StoreStats, UnpinOutcome};

/// A persistent, crash-safe store of verified blocks. Cheap to share: all methods take `&self`
/// and the type is `Send + Sync`; writes are serialised by redb.
pub struct BlockStore {
    pub(crate) db: Database,
    config: StoreConfig,
    /// Binary CIDs of cache blocks read since the last write transaction, oldest first.
    pending_access: Mutex<Vec<Vec<u8>>>,
}

impl fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockStore").field("config", &self.config).finish_non_exhaustive()
    }
}

impl BlockStore {
    /// Opens the store at `path` (a file; its directory must exist), creating it if missing.
    ///
    /// Recovers from an unclean shutdown, checks the schema version, and evicts cache blocks if
    /// `config.cache_quota_bytes` is lower than what is stored.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        let path = path.as_ref();
        if !path.try_exists()? {
            create_atomically(path)?;
        }
        // `open`, never `create`: the file exists now, and initialising in place is exactly what
        // create_atomically avoids.
        let db = redb::Builder::new()
            .set_cache_size(config.db_cache_bytes)
            .set_repair_callback(|session| {
                debug!(progress = session.progress(), "repairing block store");
            })
            .open(path)?;
        let store = BlockStore { db, config, pending_access: Mutex::new(Vec::new()) };
        let quota = store.config.cache_quota_bytes;
        let evicted = store.write(|t| {
            let schema = t.counters.get(K_SCHEMA)?.map(|g| g.value());
            match schema {
                Some(SCHEMA_VERSION) => {}
                Some(found) => return Err(StoreError::SchemaVersion { found, supported: SCHEMA_VERSION }),
                None if t.meta.is_empty()? && t.blocks.is_empty()? => {
                    t.counters.insert(K_SCHEMA, SCHEMA_VERSION)?;
                }
                None => return Err(StoreError::SchemaVersion { found: 0, supported: SCHEMA_VERSION }),
            }
            t.evict_to_fit(0, quota)
        })?;
        let stats = store.stats()?;
        if let Some(pin_quota) = store.config.pinned_quota_bytes {
            if stats.pinned_bytes > pin_quota {
                warn!(
                    pinned_bytes = stats.pinned_bytes,
                    pin_quota, "pinned data exceeds the pinned quota; new pins will be refused"
                );
            }
        }
        info!(
            path = %path.display(),
            blocks = stats.blocks,
            pinned_bytes = stats.pinned_bytes,
            cache_bytes = stats.cache_bytes,
            evicted_blocks = evicted.blocks,
            "block store opened"
        );
        Ok(store)
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Runs `f` in one durable write transaction, after applying pending recency updates.
    ///
    /// If anything fails the transaction is dropped, which rolls everything back; the recency
    /// updates it carried are queued again so that a refused `put` (say, over quota) does not
    /// also forget which cache blocks were just read.
    fn write<R>(&self, f: impl FnOnce(&mut Tables<'_>) -> Result<R>) -> Result<R> {
        let mut tx = self.db.begin_write()?;
        // Immediate is redb's default too; set it anyway so the "acknowledged means fsync'd"
        // promise does not hinge on a default that a future redb could change.
        tx.set_durability(Durability::Immediate)?;
        tx.set_quick_repair(self.config.quick_repair);
        let accesses = std::mem::take(&mut *self.lock_pending());
        let attempt = (|| {
            let result = {
                let mut tables = Tables::open(&tx)?;
                tables.apply_accesses(&accesses)?;
                let result = f(&mut tables)?;
                tables.save_totals()?;
                result
            };
            tx.commit()?;
            Ok(result)
        })();
        if attempt.is_err() && !accesses.is_empty() {
            self.requeue_accesses(accesses);
        }
        attempt
    }

    fn requeue_accesses(&self, mut older: Vec<Vec<u8>>) {
        let mut pending = self.lock_pending();
        older.append(&mut pending);
        // Keep the newest reads if repeated failures pile them up: memory stays bounded and only
        // the oldest hints are lost.
        let cap = self.config.access_batch.max(1);
        if older.len() > cap {
            older.drain(..older.len() - cap);
        }
        *pending = older;
    }

    fn lock_pending(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding this lock cannot leave the Vec half-updated in a way that matters:
        // it only holds recency hints.
        self.pending_access.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Verifies `bytes` against `cid` and stores them in `class`. Returns only after the
    /// transaction has been committed and `fsync`'d.
    ///
    /// A CIDv0 is accepted and stored under its CIDv1 equivalent. Storing a block that is already
    /// present never duplicates it: a cache block put as [`Class::Pinned`] is promoted; a pinned
    /// block put as [`Class::Cache`] stays pinned.
    ///
    /// # Errors
    /// [`StoreError::BlockTooLarge`], [`StoreError::UnsupportedCodec`],
    /// [`StoreError::UnsupportedHash`], [`StoreError::HashMismatch`] for bad input;
    /// [`StoreError::QuotaExceeded`] if a new pin would break the pinned quota or a cache block is
    /// larger than the whole cache quota; database errors otherwise. On error nothing changed.
    pub fn put(&self, cid: &Cid, bytes: &[u8], class: Class) -> Result<PutOutcome> {
        let cid = verify_block(cid, bytes)?;
        self.put_verified(&cid, bytes, class)
    }

    /// Computes the raw-codec CID of `bytes`, stores them, and returns the CID.
    pub fn put_raw(&self, bytes: &[u8], class: Class) -> Result<(Cid, PutOutcome)> {
        if bytes.len() > MAX_BLOCK_SIZE {
            return Err(StoreError::BlockTooLarge { size: bytes.len(), max: MAX_BLOCK_SIZE });
        }
        let cid = cid_of(Codec::Raw, bytes);
        let outcome = self.put_verified(&cid, bytes, class)?;
        Ok((cid, outcome))
    }

    fn put_verified(&self, cid: &Cid, bytes: &[u8], class: Class) -> Result<PutOutcome> {
        let key = cid.to_bytes();
        let size = bytes.len() as u64;
        // Gossip delivers the same block many times. A duplicate that changes no class needs no
        // write transaction (and no fsync): a pinned one is done, a cached one is just a use.
        let present = PutOutcome { status: PutStatus::AlreadyPresent, evicted: Evicted::default() };
        match (self.stored_class(&key)?, class) {
            (Some(Class::Pinned), _) => return Ok(present),
            (Some(Class::Cache), Class::Cache) => {
                self.record_access(key);
                return Ok(present);
            }
            _ => {}
        }
        let pin_quota = self.config.pinned_quota_bytes;
        let cache_quota = self.config.cache_quota_bytes;
        let outcome = self.write(|t| {
            let mut evicted = Evicted::default();
            let status = match (t.lookup(&key)?, class) {
                (Some((Class::Pinned, _, _)), _) => PutStatus::AlreadyPresent,
                (Some((Class::Cache, stored, tick)), Class::Cache) => {
                    t.touch(&key, stored, tick)?;
                    PutStatus::AlreadyPresent
                }
                (Some((Class::Cache, stored, tick)), Class::Pinned) => {
                    t.promote(&key, stored, tick, pin_quota)?;
                    PutStatus::Promoted
                }
                (None, Class::Pinned) => {
                    t.check_pinned_quota(size, pin_quota)?;
                    t.insert_new(&key, bytes, class)?;
                    PutStatus::Inserted
                }
                (None, Class::Cache) => {
                    // Refuse up front: evicting the whole cache and still not fitting helps no one.
                    if size > cache_quota {
                        return Err(StoreError::QuotaExceeded {
                            class: Class::Cache,
                            needed: size,
                            used: t.totals.cache_bytes,
                            quota: cache_quota,
                        });
                    }
                    evicted = t.evict_to_fit(size, cache_quota)?;
                    t.insert_new(&key, bytes, class)?;
                    PutStatus::Inserted
                }
            };
            Ok(PutOutcome { status, evicted })
        })?;
        debug!(
            %cid,
            size,
            %class,
            status = ?outcome.status,
            evicted = outcome.evicted.blocks,
            "put"
        );
        Ok(outcome)
    }

    /// Returns the block's bytes, or `None` if it is not stored (or its CID is of a kind the store
    /// never holds).
    ///
    /// Reading a cache block makes it most recently used. The update is buffered (see
    /// [`StoreConfig::access_batch`]) so a read costs no write transaction most of the time.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if `verify_reads` is on and the stored bytes no longer hash to the
    /// CID; database errors.
    pub fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>> {
        let Ok(cid) = check_cid(cid) else {
            return Ok(None);
        };
        let key = cid.to_bytes();
        let (class, bytes) = {
            let tx = self.db.begin_read()?;
            let meta = tx.open_table(META)?;
            let Some((tag, _, _)) = meta.get(key.as_slice())?.map(|g| g.value()) else {
                return Ok(None);
            };
            let blocks = tx.open_table(BLOCKS)?;
            let bytes = match blocks.get(key.as_slice())? {
                Some(guard) => guard.value().to_vec(),
                None => return Err(StoreError::Inconsistent("metadata without block bytes")),
            };
            (Class::from_tag(tag), bytes)
        };
        if self.config.verify_reads && !digest_matches(&cid, &bytes) {
            warn!(%cid, "stored block does not hash to its CID");
            return Err(StoreError::Corrupt { cid, reason: "stored bytes do not hash to the CID" });
        }
        if class == Some(Class::Cache) {
            self.record_access(key);
        }
        Ok(Some(bytes))
    }

    fn record_access(&self, key: Vec<u8>) {
        let full = {
            let mut pending = self.lock_pending();
            pending.push(key);
            pending.len() >= self.config.access_batch.max(1)
        };
        if full {
            // The read already succeeded; failing to persist a recency hint must not fail it.
            if let Err(e) = self.flush_access() {
                warn!(error = %e, "could not persist cache recency updates");
            }
        }
    }

    /// Writes buffered recency updates now (one durable transaction; a no-op if there are none).
    pub fn flush_access(&self) -> Result<()> {
        if self.lock_pending().is_empty() {
            return Ok(());
        }
        self.write(|_| Ok(()))
    }

    /// True if the block is stored (in either class).
    pub fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.class_of(cid)?.is_some())
    }

    /// The class the block is stored in, or `None` if it is not stored.
    pub fn class_of(&self, cid: &Cid) -> Result<Option<Class>> {
        let Ok(cid) = check_cid(cid) else {
            return Ok(None);
        };
        self.stored_class(&cid.to_bytes())
    }

    fn stored_class(&self, key: &[u8]) -> Result<Option<Class>> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        let tag = meta.get(key)?.map(|g| g.value().0);
        match tag {
            None => Ok(None),
            Some(tag) => {
                Class::from_tag(tag).map(Some).ok_or(StoreError::Inconsistent("unknown class tag in metadata"))
            }
        }
    }

    /// Pins a stored block. Returns `true` if it was a cache block and is now pinned, `false` if it
    /// was already pinned.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the block is absent (fetch it first, then `put` it as pinned);
    /// [`StoreError::QuotaExceeded`] if it would break the pinned quota.
    pub fn pin(&self, cid: &Cid) -> Result<bool> {
        let v1 = check_cid(cid).map_err(|_| StoreError::NotFound(*cid))?;
        let key = v1.to_bytes();
        let quota = self.config.pinned_quota_bytes;
        let changed = self.write(|t| match t.lookup(&key)? {
            None => Err(StoreError::NotFound(*cid)),
            Some((Class::Pinned, _, _)) => Ok(false),
            Some((Class::Cache, size, tick)) => {
                t.promote(&key, size, tick, quota)?;
                Ok(true)
            }
        })?;
        debug!(cid = %v1, changed, "pin");
        Ok(changed)
    }

    /// Moves a pinned block to the cache, where it becomes the most recently used block and may
    /// trigger eviction of older cache blocks. Unpinning an absent or cache block does nothing.
    pub fn unpin(&self, cid: &Cid) -> Result<UnpinOutcome> {
        let Ok(v1) = check_cid(cid) else {
            return Ok(UnpinOutcome { was_pinned: false, evicted: Evicted::default() });
        };
        let key = v1.to_bytes();
        let quota = self.config.cache_quota_bytes;
        let outcome = self.write(|t| match t.lookup(&key)? {
            Some((Class::Pinned, size, _)) => {
                t.demote(&key, size)?;
                Ok(UnpinOutcome { was_pinned: true, evicted: t.evict_to_fit(0, quota)? })
            }
            _ => Ok(UnpinOutcome { was_pinned: false, evicted: Evicted::default() }),
        })?;
        debug!(
            cid = %v1,
            was_pinned = outcome.was_pinned,
            evicted = outcome.evicted.blocks,
            "unpin"
        );
        Ok(outcome)
    }

    /// Removes a block of either class. Returns `true` if it was stored.
    pub fn delete(&self, cid: &Cid) -> Result<bool> {
        let Ok(v1) = check_cid(cid) else {
            return Ok(false);
        };
        let key = v1.to_bytes();
        let removed = self.write(|t| t.remove(&key))?;
        debug!(cid = %v1, removed = removed.is_some(), "delete");
        Ok(removed.is_some())
    }

    /// Current totals, read from the counters maintained by every write (O(1), no scan).
    pub fn stats(&self) -> Result<StoreStats> {
        let tx = self.db.begin_read()?;
        let counters = tx.open_table(COUNTERS)?;
        read_stats(&counters)
    }

    /// Streams the CIDs of one class from a consistent snapshot. Pinned CIDs come in binary-CID
    /// order; cache CIDs come least recently used first (recency as of the last write).
    ///
    /// The snapshot stays open until the iterator is dropped, and while it is open redb cannot
    /// reuse pages freed by later writes, so do not park the iterator.
    pub fn iter_cids(&self, class: Class) -> Result<CidIter> {
        CidIter::new(&self.db, class)
    }

    /// Flushes pending recency updates and closes the store, reporting any error that `Drop`
    /// could only log.
    pub fn close(self) -> Result<()> {
        self.flush_access()
    }
}

/// Creates and stamps a new store beside `path`, then renames it into place.
///
/// redb initialises a new file in several writes; a kill between them leaves a file without a
/// valid header that redb refuses to open ("invalid data") forever after, which on a phone means
/// an app killed during its very first start would be bricked. Building the file under a temporary
/// name and renaming it only once its first commit is durable makes creation all-or-nothing: a
/// kill leaves either no store (and a temp file we delete next time) or a complete one.
fn create_atomically(path: &Path) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".creating");
    let tmp = path.with_file_name(tmp_name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => warn!(path = %tmp.display(), "removed a half-created store left by a crash"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    {
        let db = redb::Builder::new().set_cache_size(INIT_CACHE_BYTES).create(&tmp)?;
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        Tables::open(&tx)?.init_schema()?;
        tx.commit()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename itself lives in the directory; without this a power cut could undo it.
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    info!(path = %path.display(), "created a new block store");
    Ok(())
}

/// Page cache for the short-lived handle that creates a store: it only writes a few pages.
const INIT_CACHE_BYTES: usize = 1024 * 1024;

impl Drop for BlockStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush_access() {
            warn!(error = %e, "could not persist cache recency updates on close");
        }
    }
}
