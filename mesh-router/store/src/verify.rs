//! Full consistency check: re-hash every block and cross-check every index against the counters.

use redb::{ReadableDatabase, ReadableTableMetadata};
use tracing::{info, warn};

use crate::content::{check_cid, digest_matches};
use crate::error::Result;
use crate::iter::decode_key;
use crate::schema::{display_key, read_next_tick, read_stats, BLOCKS, COUNTERS, LRU, META, PINNED};
use crate::store::BlockStore;
use crate::types::{Class, StoreStats};

/// How many problem descriptions [`VerifyReport::problems`] keeps; the counts keep going.
pub const MAX_REPORTED_PROBLEMS: usize = 16;

/// Outcome of [`BlockStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// The totals the store's counters claim (what [`BlockStore::stats`] returns).
    pub recorded: StoreStats,
    /// The totals recomputed from a full scan of the block metadata.
    pub scanned: StoreStats,
    /// Blocks whose bytes no longer hash to their CID.
    pub corrupt_blocks: u64,
    /// Index disagreements: bytes without metadata or the reverse, a size that differs from the
    /// stored bytes, a pin or LRU entry that does not match the block's class, a stale tick.
    pub index_errors: u64,
    /// Descriptions of the first [`MAX_REPORTED_PROBLEMS`] problems, so the report stays bounded.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is corrupt, every index agrees and the counters match the scan.
    pub fn is_consistent(&self) -> bool {
        self.corrupt_blocks == 0 && self.index_errors == 0 && self.recorded == self.scanned
    }

    fn index_error(&mut self, what: String) {
        self.index_errors += 1;
        self.note(what);
    }

    fn note(&mut self, what: String) {
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(what);
        }
    }
}

impl BlockStore {
    /// Re-hashes every block and checks every index and counter, streaming from one snapshot
    /// (one block in memory at a time). Costs a full read of the store: meant for tests, startup
    /// after a suspected disk problem, or a maintenance job, not for the hot path.
    ///
    /// Problems in the data are reported in the [`VerifyReport`]; only I/O and database errors
    /// are returned as `Err`.
    pub fn verify(&self) -> Result<VerifyReport> {
        let tx = self.db.begin_read()?;
        let blocks = tx.open_table(BLOCKS)?;
        let meta = tx.open_table(META)?;
        let pinned = tx.open_table(PINNED)?;
        let lru = tx.open_table(LRU)?;
        let counters = tx.open_table(COUNTERS)?;

        let mut report = VerifyReport { recorded: read_stats(&counters)?, ..VerifyReport::default() };
        let next_tick = read_next_tick(&counters)?;
        let mut scanned = StoreStats::default();

        for entry in meta.range::<&[u8]>(..)? {
            let (key, value) = entry?;
            let key = key.value();
            let (tag, size, tick) = value.value();
            let shown = display_key(key);
            let bytes = blocks.get(key)?;
            match &bytes {
                None => report.index_error(format!("{shown}: metadata without bytes")),
                Some(bytes) if bytes.value().len() as u64 != size => {
                    report.index_error(format!("{shown}: size {size} recorded, bytes differ"))
                }
                Some(_) => {}
            }
            let hashes = match (decode_key(key), &bytes) {
                (Ok(cid), Some(bytes)) => check_cid(&cid).is_ok_and(|cid| digest_matches(&cid, bytes.value())),
                _ => false,
            };
            if bytes.is_some() && !hashes {
                report.corrupt_blocks += 1;
                report.note(format!("{shown}: bytes do not hash to the CID"));
            }
            match Class::from_tag(tag) {
                Some(Class::Pinned) => {
                    scanned.pinned_blocks += 1;
                    // Saturating: a tampered size must produce a report, not an overflow panic.
                    scanned.pinned_bytes = scanned.pinned_bytes.saturating_add(size);
                    if pinned.get(key)?.is_none() {
                        report.index_error(format!("{shown}: pinned but not in the pin index"));
                    }
                }
                Some(Class::Cache) => {
                    scanned.cache_blocks += 1;
                    scanned.cache_bytes = scanned.cache_bytes.saturating_add(size);
                    let indexed = lru.get(tick)?.is_some_and(|k| k.value() == key);
                    if !indexed {
                        report.index_error(format!("{shown}: cache block missing from LRU"));
                    }
                    if tick >= next_tick {
                        report.index_error(format!("{shown}: tick {tick} >= next {next_tick}"));
                    }
                }
                None => report.index_error(format!("{shown}: unknown class tag {tag}")),
            }
        }
        scanned.blocks = scanned.pinned_blocks.saturating_add(scanned.cache_blocks);

        // Membership above shows every block is indexed; equal counts then show no index holds
        // stray entries.
        let counts = [
            ("blocks", blocks.len()?, scanned.blocks),
            ("pin index", pinned.len()?, scanned.pinned_blocks),
            ("LRU index", lru.len()?, scanned.cache_blocks),
        ];
        for (what, found, expected) in counts {
            if found != expected {
                report.index_error(format!("{what} has {found} entries, expected {expected}"));
            }
        }

        report.scanned = scanned;
        if report.is_consistent() {
            info!(blocks = scanned.blocks, "block store verified");
        } else {
            warn!(
                corrupt = report.corrupt_blocks,
                index_errors = report.index_errors,
                recorded = ?report.recorded,
                scanned = ?report.scanned,
                "block store verification found problems"
            );
        }
        Ok(report)
    }
}
