//! On-disk schema and the write-transaction toolkit: every mutation of blocks, indexes and
//! counters goes through [`Tables`], so the invariants checked by `verify` live in one place.

use cid::Cid;
use redb::{ReadableTable, TableDefinition};
use tracing::debug;

use crate::error::{Result, StoreError};
use crate::types::{Class, Evicted, StoreStats};

// Schema (version SCHEMA_VERSION). Keys are binary CIDv1s (36 bytes for the CIDs we accept).
// Bytes live apart from metadata so that quota, class and recency work never pages in block data.
pub(crate) const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
/// cid → (class tag, size in bytes, recency tick). The tick is only meaningful for cache blocks.
pub(crate) const META: TableDefinition<&[u8], (u8, u64, u64)> = TableDefinition::new("meta");
/// Set of pinned CIDs, so listing pins costs O(pins) rather than a scan of everything.
pub(crate) const PINNED: TableDefinition<&[u8], ()> = TableDefinition::new("pinned");
/// tick → cid for cache blocks only; the first entry is the least recently used.
pub(crate) const LRU: TableDefinition<u64, &[u8]> = TableDefinition::new("lru");
/// Running totals, kept in the same transactions as the data so they can never drift after a crash.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

pub(crate) const SCHEMA_VERSION: u64 = 1;
pub(crate) const K_SCHEMA: &str = "schema";
const K_PINNED_BYTES: &str = "pinned_bytes";
const K_PINNED_BLOCKS: &str = "pinned_blocks";
const K_CACHE_BYTES: &str = "cache_bytes";
const K_CACHE_BLOCKS: &str = "cache_blocks";
const K_NEXT_TICK: &str = "next_tick";

/// The tables of one write transaction plus the totals loaded at its start.
pub(crate) struct Tables<'t> {
    pub(crate) blocks: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(crate) meta: redb::Table<'t, &'static [u8], (u8, u64, u64)>,
    pub(crate) pinned: redb::Table<'t, &'static [u8], ()>,
    pub(crate) lru: redb::Table<'t, u64, &'static [u8]>,
    pub(crate) counters: redb::Table<'t, &'static str, u64>,
    pub(crate) totals: Totals,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    pub(crate) pinned_bytes: u64,
    pub(crate) pinned_blocks: u64,
    pub(crate) cache_bytes: u64,
    pub(crate) cache_blocks: u64,
    pub(crate) next_tick: u64,
}

/// Arithmetic on counters is checked: a wrap would silently disable quotas, so it is treated as
/// corruption and the transaction is rolled back.
fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or(StoreError::Inconsistent("counter overflow"))
}

fn sub(a: u64, b: u64) -> Result<u64> {
    a.checked_sub(b).ok_or(StoreError::Inconsistent("counter underflow"))
}

fn read_counter(table: &impl ReadableTable<&'static str, u64>, key: &'static str) -> Result<u64> {
    Ok(table.get(key)?.map(|g| g.value()).unwrap_or(0))
}

pub(crate) fn read_stats(table: &impl ReadableTable<&'static str, u64>) -> Result<StoreStats> {
    let pinned_blocks = read_counter(table, K_PINNED_BLOCKS)?;
    let cache_blocks = read_counter(table, K_CACHE_BLOCKS)?;
    Ok(StoreStats {
        pinned_bytes: read_counter(table, K_PINNED_BYTES)?,
        pinned_blocks,
        cache_bytes: read_counter(table, K_CACHE_BYTES)?,
        cache_blocks,
        blocks: add(pinned_blocks, cache_blocks)?,
    })
}

pub(crate) fn read_next_tick(table: &impl ReadableTable<&'static str, u64>) -> Result<u64> {
    read_counter(table, K_NEXT_TICK)
}

impl<'t> Tables<'t> {
    pub(crate) fn open(tx: &'t redb::WriteTransaction) -> Result<Self> {
        let counters = tx.open_table(COUNTERS)?;
        let totals = Totals {
            pinned_bytes: read_counter(&counters, K_PINNED_BYTES)?,
            pinned_blocks: read_counter(&counters, K_PINNED_BLOCKS)?,
            cache_bytes: read_counter(&counters, K_CACHE_BYTES)?,
            cache_blocks: read_counter(&counters, K_CACHE_BLOCKS)?,
            next_tick: read_counter(&counters, K_NEXT_TICK)?,
        };
        Ok(Self {
            blocks: tx.open_table(BLOCKS)?,
            meta: tx.open_table(META)?,
            pinned: tx.open_table(PINNED)?,
            lru: tx.open_table(LRU)?,
            counters,
            totals,
        })
    }

    /// Stamps a brand-new database with the schema version and zeroed counters.
    pub(crate) fn init_schema(&mut self) -> Result<()> {
        self.counters.insert(K_SCHEMA, SCHEMA_VERSION)?;
        self.save_totals()
    }

    pub(crate) fn save_totals(&mut self) -> Result<()> {
        let t = self.totals;
        for (key, value) in [
            (K_PINNED_BYTES, t.pinned_bytes),
            (K_PINNED_BLOCKS, t.pinned_blocks),
            (K_CACHE_BYTES, t.cache_bytes),
            (K_CACHE_BLOCKS, t.cache_blocks),
            (K_NEXT_TICK, t.next_tick),
        ] {
            self.counters.insert(key, value)?;
        }
        Ok(())
    }

    pub(crate) fn lookup(&self, key: &[u8]) -> Result<Option<(Class, u64, u64)>> {
        match self.meta.get(key)?.map(|g| g.value()) {
            None => Ok(None),
            Some((tag, size, tick)) => {
                let class = Class::from_tag(tag).ok_or(StoreError::Inconsistent("unknown class tag in metadata"))?;
                Ok(Some((class, size, tick)))
            }
        }
    }

    pub(crate) fn take_tick(&mut self) -> Result<u64> {
        let tick = self.totals.next_tick;
        self.totals.next_tick = add(tick, 1)?;
        Ok(tick)
    }

    /// Marks a cache block most recently used.
    pub(crate) fn touch(&mut self, key: &[u8], size: u64, old_tick: u64) -> Result<()> {
        self.lru.remove(old_tick)?;
        let tick = self.take_tick()?;
        self.lru.insert(tick, key)?;
        self.meta.insert(key, (Class::Cache.tag(), size, tick))?;
        Ok(())
    }

    pub(crate) fn check_pinned_quota(&self, size: u64, quota: Option<u64>) -> Result<()> {
        if let Some(quota) = quota {
            let used = self.totals.pinned_bytes;
            if used.saturating_add(size) > quota {
                return Err(StoreError::QuotaExceeded { class: Class::Pinned, needed: size, used, quota });
            }
        }
        Ok(())
    }

    pub(crate) fn promote(&mut self, key: &[u8], size: u64, tick: u64, quota: Option<u64>) -> Result<()> {
        self.check_pinned_quota(size, quota)?;
        self.lru.remove(tick)?;
        self.pinned.insert(key, ())?;
        self.meta.insert(key, (Class::Pinned.tag(), size, 0))?;
        let t = &mut self.totals;
        t.cache_bytes = sub(t.cache_bytes, size)?;
        t.cache_blocks = sub(t.cache_blocks, 1)?;
        t.pinned_bytes = add(t.pinned_bytes, size)?;
        t.pinned_blocks = add(t.pinned_blocks, 1)?;
        Ok(())
    }

    pub(crate) fn demote(&mut self, key: &[u8], size: u64) -> Result<()> {
        self.pinned.remove(key)?;
        let tick = self.take_tick()?;
        self.lru.insert(tick, key)?;
        self.meta.insert(key, (Class::Cache.tag(), size, tick))?;
        let t = &mut self.totals;
        t.pinned_bytes = sub(t.pinned_bytes, size)?;
        t.pinned_blocks = sub(t.pinned_blocks, 1)?;
        t.cache_bytes = add(t.cache_bytes, size)?;
        t.cache_blocks = add(t.cache_blocks, 1)?;
        Ok(())
    }

    pub(crate) fn insert_new(&mut self, key: &[u8], bytes: &[u8], class: Class) -> Result<()> {
        let size = bytes.len() as u64;
        self.blocks.insert(key, bytes)?;
        let tick = match class {
            Class::Pinned => {
                self.pinned.insert(key, ())?;
                let t = &mut self.totals;
                t.pinned_bytes = add(t.pinned_bytes, size)?;
                t.pinned_blocks = add(t.pinned_blocks, 1)?;
                0
            }
            Class::Cache => {
                let tick = self.take_tick()?;
                self.lru.insert(tick, key)?;
                let t = &mut self.totals;
                t.cache_bytes = add(t.cache_bytes, size)?;
                t.cache_blocks = add(t.cache_blocks, 1)?;
                tick
            }
        };
        self.meta.insert(key, (class.tag(), size, tick))?;
        Ok(())
    }

    /// Removes a block of either class; returns its class and size if it was there.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Result<Option<(Class, u64)>> {
        let Some((class, size, tick)) = self.lookup(key)? else {
            return Ok(None);
        };
        self.meta.remove(key)?;
        self.blocks.remove(key)?;
        let t = &mut self.totals;
        match class {
            Class::Pinned => {
                self.pinned.remove(key)?;
                t.pinned_bytes = sub(t.pinned_bytes, size)?;
                t.pinned_blocks = sub(t.pinned_blocks, 1)?;
            }
            Class::Cache => {
                self.lru.remove(tick)?;
                t.cache_bytes = sub(t.cache_bytes, size)?;
                t.cache_blocks = sub(t.cache_blocks, 1)?;
            }
        }
        Ok(Some((class, size)))
    }

    /// Evicts least-recently-used cache blocks until `incoming` more bytes fit under `quota`.
    pub(crate) fn evict_to_fit(&mut self, incoming: u64, quota: u64) -> Result<Evicted> {
        let mut evicted = Evicted::default();
        while self.totals.cache_bytes.saturating_add(incoming) > quota {
            let key = match self.lru.first()? {
                Some((_tick, key)) => key.value().to_vec(),
                None => return Err(StoreError::Inconsistent("cache bytes recorded but the LRU index is empty")),
            };
            match self.remove(&key)? {
                Some((Class::Cache, size)) => {
                    evicted.blocks += 1;
                    evicted.bytes += size;
                    debug!(cid = %display_key(&key), size, "evicted cache block");
                }
                _ => return Err(StoreError::Inconsistent("LRU index points at a block that is not a cache block")),
            }
        }
        Ok(evicted)
    }

    pub(crate) fn apply_accesses(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        for key in keys {
            // The block may have been deleted, evicted or pinned since it was read.
            if let Some((Class::Cache, size, tick)) = self.lookup(key)? {
                self.touch(key, size, tick)?;
            }
        }
        Ok(())
    }
}

/// Renders a binary CID key for logs without failing.
pub(crate) fn display_key(key: &[u8]) -> String {
    match Cid::try_from(key) {
        Ok(cid) => cid.to_string(),
        Err(_) => format!("<undecodable key, {} bytes>", key.len()),
    }
}
