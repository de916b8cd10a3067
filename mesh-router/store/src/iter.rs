//! Streaming iteration over the CIDs of one class.

use cid::Cid;
use redb::{Database, ReadableDatabase};

use crate::error::{Result, StoreError};
use crate::schema::{LRU, PINNED};
use crate::types::Class;

/// Iterator over the CIDs of one [`Class`], from a read snapshot taken when it was created.
///
/// Holds one B-tree cursor and yields one CID at a time, so memory stays constant however large
/// the store is. Items are `Result` because each step may read a page from disk.
pub struct CidIter {
    inner: Inner,
}

enum Inner {
    Pinned(redb::Range<'static, &'static [u8], ()>),
    Cache(redb::Range<'static, u64, &'static [u8]>),
}

impl CidIter {
    pub(crate) fn new(db: &Database, class: Class) -> Result<Self> {
        let tx = db.begin_read()?;
        // ReadOnlyTable::range hands back an iterator that keeps the snapshot alive by itself, so
        // the transaction and table handles can be dropped here.
        let inner = match class {
            Class::Pinned => Inner::Pinned(tx.open_table(PINNED)?.range::<&[u8]>(..)?),
            Class::Cache => Inner::Cache(tx.open_table(LRU)?.range::<u64>(..)?),
        };
        Ok(Self { inner })
    }
}

impl Iterator for CidIter {
    type Item = Result<Cid>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoded = match &mut self.inner {
            Inner::Pinned(range) => range.next()?.map(|(key, _)| decode_key(key.value())),
            Inner::Cache(range) => range.next()?.map(|(_, key)| decode_key(key.value())),
        };
        Some(decoded.map_err(StoreError::from).and_then(|cid| cid))
    }
}

impl std::fmt::Debug for CidIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let class = match self.inner {
            Inner::Pinned(_) => crate::Class::Pinned,
            Inner::Cache(_) => crate::Class::Cache,
        };
        f.debug_struct("CidIter").field("class", &class).finish()
    }
}

pub(crate) fn decode_key(key: &[u8]) -> Result<Cid> {
    Cid::try_from(key).map_err(|_| StoreError::Inconsistent("undecodable CID key in an index"))
}
