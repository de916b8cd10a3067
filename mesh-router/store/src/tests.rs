//! Tests that tamper with the database underneath the store, which only code inside the crate can
//! do: they check that damage is reported as typed errors, never panics or silent bad data.

use redb::{ReadableDatabase, ReadableTable};

use crate::schema::{BLOCKS, COUNTERS, LRU, META};
use crate::{cid_of, BlockStore, Class, Codec, StoreConfig, StoreError};

fn open(dir: &tempfile::TempDir, config: StoreConfig) -> BlockStore {
    BlockStore::open(dir.path().join("t.redb"), config).unwrap()
}

fn tamper(store: &BlockStore, f: impl FnOnce(&redb::WriteTransaction)) {
    let tx = store.db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

#[test]
fn bit_rot_is_reported_on_read_and_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    let (cid, bytes) =
        store.put_raw(b"precious bytes", Class::Pinned).map(|(c, _)| (c, b"precious bytes".to_vec())).unwrap();
    let mut rotten = bytes.clone();
    rotten[3] ^= 0x01;
    tamper(&store, |tx| {
        let mut t = tx.open_table(BLOCKS).unwrap();
        t.insert(cid.to_bytes().as_slice(), rotten.as_slice()).unwrap();
    });
    assert!(matches!(store.get(&cid), Err(StoreError::Corrupt { cid: c, .. }) if c == cid));
    let report = store.verify().unwrap();
    assert_eq!(report.corrupt_blocks, 1);
    assert!(!report.is_consistent());
    drop(store);

    // With read verification off the damage is served; that is the documented trade-off.
    let store = open(&dir, StoreConfig { verify_reads: false, ..StoreConfig::default() });
    assert_eq!(store.get(&cid).unwrap(), Some(rotten));
}

#[test]
fn tampered_counters_are_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    store.put_raw(b"a", Class::Cache).unwrap();
    assert!(store.verify().unwrap().is_consistent());
    tamper(&store, |tx| {
        tx.open_table(COUNTERS).unwrap().insert("cache_bytes", 999).unwrap();
    });
    let report = store.verify().unwrap();
    assert_eq!(report.recorded.cache_bytes, 999);
    assert_eq!(report.scanned.cache_bytes, 1);
    assert!(!report.is_consistent());
}

#[test]
fn stray_index_entries_are_caught_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    let (cid, _) = store.put_raw(b"a", Class::Pinned).unwrap();
    tamper(&store, |tx| {
        tx.open_table(LRU).unwrap().insert(12345, cid.to_bytes().as_slice()).unwrap();
    });
    let report = store.verify().unwrap();
    assert_eq!(report.index_errors, 1, "{report:#?}");
}

#[test]
fn broken_lru_index_fails_the_write_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig { cache_quota_bytes: 10, ..StoreConfig::default() });
    store.put_raw(b"12345678", Class::Cache).unwrap();
    tamper(&store, |tx| {
        let mut lru = tx.open_table(LRU).unwrap();
        let first = lru.first().unwrap().map(|(k, _)| k.value()).unwrap();
        lru.remove(first).unwrap();
    });
    let err = store.put_raw(b"abcdefgh", Class::Cache).unwrap_err();
    assert!(matches!(err, StoreError::Inconsistent(_)), "{err:?}");
    // The failed transaction was rolled back.
    assert_eq!(store.stats().unwrap().cache_blocks, 1);
}

#[test]
fn metadata_without_bytes_is_an_error_not_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    let (cid, _) = store.put_raw(b"a", Class::Pinned).unwrap();
    tamper(&store, |tx| {
        tx.open_table(BLOCKS).unwrap().remove(cid.to_bytes().as_slice()).unwrap();
    });
    assert!(matches!(store.get(&cid), Err(StoreError::Inconsistent(_))));
    assert_eq!(store.verify().unwrap().index_errors, 2); // no bytes, and block count off
}

#[test]
fn unknown_class_tag_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    let (cid, _) = store.put_raw(b"a", Class::Pinned).unwrap();
    tamper(&store, |tx| {
        tx.open_table(META).unwrap().insert(cid.to_bytes().as_slice(), (77u8, 1u64, 0u64)).unwrap();
    });
    assert!(matches!(store.class_of(&cid), Err(StoreError::Inconsistent(_))));
    assert!(matches!(store.pin(&cid), Err(StoreError::Inconsistent(_))));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    tamper(&store, |tx| {
        tx.open_table(COUNTERS).unwrap().insert("schema", 2).unwrap();
    });
    drop(store);
    let err = BlockStore::open(dir.path().join("t.redb"), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::SchemaVersion { found: 2, supported: 1 }));
}

#[test]
fn counters_are_committed_with_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    let bytes = b"abc";
    store.put(&cid_of(Codec::DagPb, bytes), bytes, Class::Pinned).unwrap();
    let tx = store.db.begin_read().unwrap();
    let counters = tx.open_table(COUNTERS).unwrap();
    assert_eq!(counters.get("pinned_bytes").unwrap().unwrap().value(), 3);
    assert_eq!(counters.get("schema").unwrap().unwrap().value(), 1);
}

#[test]
fn absurd_recorded_size_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, StoreConfig::default());
    let (cid, _) = store.put_raw(b"a", Class::Pinned).unwrap();
    tamper(&store, |tx| {
        tx.open_table(META).unwrap().insert(cid.to_bytes().as_slice(), (Class::Pinned.tag(), u64::MAX, 0u64)).unwrap();
    });
    let report = store.verify().unwrap();
    assert!(!report.is_consistent());
    assert_eq!(report.scanned.pinned_bytes, u64::MAX);
    // Unpinning would underflow the counters: refused as Inconsistent, not wrapped.
    assert!(matches!(store.unpin(&cid), Err(StoreError::Inconsistent(_))));
}
