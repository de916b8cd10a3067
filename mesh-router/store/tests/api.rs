//! Behaviour of the public API, one rule per test.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use multihash::Multihash;
use pollen_store::{
    cid_of, BlockStore, Cid, Class, Codec, Evicted, PutStatus, StoreConfig, StoreError, MAX_BLOCK_SIZE,
};
use tempfile::TempDir;

fn store_with(config: StoreConfig) -> (TempDir, PathBuf, BlockStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = BlockStore::open(&path, config).unwrap();
    (dir, path, store)
}

fn store() -> (TempDir, PathBuf, BlockStore) {
    store_with(StoreConfig::default())
}

fn cache_of(quota: u64) -> StoreConfig {
    StoreConfig { cache_quota_bytes: quota, ..StoreConfig::default() }
}

fn block(tag: u8, size: usize) -> (Cid, Vec<u8>) {
    let bytes = vec![tag; size];
    (cid_of(Codec::Raw, &bytes), bytes)
}

fn cache_order(store: &BlockStore) -> Vec<Cid> {
    store.iter_cids(Class::Cache).unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn round_trip_both_codecs() {
    let (_d, _p, s) = store();
    for codec in [Codec::Raw, Codec::DagPb] {
        let bytes = format!("block for {codec:?}").into_bytes();
        let cid = cid_of(codec, &bytes);
        let outcome = s.put(&cid, &bytes, Class::Pinned).unwrap();
        assert_eq!(outcome.status, PutStatus::Inserted);
        assert_eq!(outcome.evicted, Evicted::default());
        assert!(s.has(&cid).unwrap());
        assert_eq!(s.get(&cid).unwrap(), Some(bytes));
    }
    let stats = s.stats().unwrap();
    assert_eq!((stats.blocks, stats.pinned_blocks), (2, 2));
    let missing = cid_of(Codec::Raw, b"never stored");
    assert_eq!(s.get(&missing).unwrap(), None);
    assert!(!s.has(&missing).unwrap());
}

#[test]
fn put_raw_computes_the_cid() {
    let (_d, _p, s) = store();
    let (cid, outcome) = s.put_raw(b"hello", Class::Cache).unwrap();
    assert_eq!(cid, cid_of(Codec::Raw, b"hello"));
    assert_eq!(outcome.status, PutStatus::Inserted);
    assert_eq!(s.class_of(&cid).unwrap(), Some(Class::Cache));
}

#[test]
fn empty_block_is_a_block() {
    let (_d, _p, s) = store();
    let (cid, _) = s.put_raw(b"", Class::Pinned).unwrap();
    assert_eq!(s.get(&cid).unwrap(), Some(Vec::new()));
    assert_eq!(s.stats().unwrap().pinned_blocks, 1);
}

#[test]
fn hash_mismatch_is_rejected_and_nothing_is_stored() {
    let (_d, _p, s) = store();
    let cid = cid_of(Codec::Raw, b"the real bytes");
    let err = s.put(&cid, b"forged bytes", Class::Cache).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { expected } if expected == cid));
    assert!(!s.has(&cid).unwrap());
    assert_eq!(s.stats().unwrap().blocks, 0);
}

#[test]
fn unsupported_codec_and_hash_are_typed_errors() {
    let (_d, _p, s) = store();
    let good = cid_of(Codec::Raw, b"x");
    let dag_cbor = Cid::new_v1(0x71, *good.hash());
    assert!(matches!(s.put(&dag_cbor, b"x", Class::Pinned), Err(StoreError::UnsupportedCodec(0x71))));
    let identity = Cid::new_v1(0x55, Multihash::wrap(0x00, b"x").unwrap());
    assert!(matches!(s.put(&identity, b"x", Class::Pinned), Err(StoreError::UnsupportedHash { code: 0x00, .. })));
    // Lookups of CIDs the store can never hold are simply misses.
    assert_eq!(s.get(&dag_cbor).unwrap(), None);
    assert!(!s.has(&identity).unwrap());
    assert!(!s.delete(&identity).unwrap());
    assert!(matches!(s.pin(&identity), Err(StoreError::NotFound(_))));
}

#[test]
fn oversize_blocks_are_rejected_before_hashing() {
    let (_d, _p, s) = store_with(cache_of(4 * MAX_BLOCK_SIZE as u64));
    let max = vec![7u8; MAX_BLOCK_SIZE];
    s.put_raw(&max, Class::Cache).unwrap();
    let over = vec![7u8; MAX_BLOCK_SIZE + 1];
    let cid = cid_of(Codec::Raw, &over);
    for result in [s.put(&cid, &over, Class::Cache).map(|_| ()), s.put_raw(&over, Class::Pinned).map(|_| ())] {
        let Err(StoreError::BlockTooLarge { size, max }) = result else {
            panic!("expected BlockTooLarge, got {result:?}");
        };
        assert_eq!((size, max), (MAX_BLOCK_SIZE + 1, MAX_BLOCK_SIZE));
    }
}

#[test]
fn cidv0_is_stored_under_its_v1_name() {
    let (_d, _p, s) = store();
    let bytes = b"unixfs node".to_vec();
    let v1 = cid_of(Codec::DagPb, &bytes);
    let v0 = Cid::new_v0(*v1.hash()).unwrap();
    s.put(&v0, &bytes, Class::Pinned).unwrap();
    assert_eq!(s.get(&v0).unwrap(), Some(bytes.clone()));
    assert_eq!(s.get(&v1).unwrap(), Some(bytes));
    let listed: Vec<Cid> = s.iter_cids(Class::Pinned).unwrap().map(Result::unwrap).collect();
    assert_eq!(listed, vec![v1]);
}

#[test]
fn pin_unpin_transitions() {
    let (_d, _p, s) = store();
    let (cid, bytes) = block(1, 100);

    assert!(matches!(s.pin(&cid), Err(StoreError::NotFound(c)) if c == cid));
    assert!(!s.unpin(&cid).unwrap().was_pinned);

    s.put(&cid, &bytes, Class::Cache).unwrap();
    assert!(!s.unpin(&cid).unwrap().was_pinned, "cache block is not pinned");
    assert!(s.pin(&cid).unwrap());
    assert!(!s.pin(&cid).unwrap(), "second pin changes nothing");
    let st = s.stats().unwrap();
    assert_eq!((st.pinned_bytes, st.cache_bytes), (100, 0));

    // A pinned block offered as cache stays pinned.
    let again = s.put(&cid, &bytes, Class::Cache).unwrap();
    assert_eq!(again.status, PutStatus::AlreadyPresent);
    assert_eq!(s.class_of(&cid).unwrap(), Some(Class::Pinned));

    let out = s.unpin(&cid).unwrap();
    assert!(out.was_pinned);
    assert_eq!(s.class_of(&cid).unwrap(), Some(Class::Cache));
    let st = s.stats().unwrap();
    assert_eq!((st.pinned_bytes, st.cache_bytes), (0, 100));

    // A cache block offered as pinned is promoted, not duplicated.
    let promoted = s.put(&cid, &bytes, Class::Pinned).unwrap();
    assert_eq!(promoted.status, PutStatus::Promoted);
    let st = s.stats().unwrap();
    assert_eq!((st.pinned_bytes, st.cache_bytes, st.blocks), (100, 0, 1));
}

#[test]
fn pinned_quota_refuses_and_never_evicts() {
    let (_d, _p, s) =
        store_with(StoreConfig { pinned_quota_bytes: Some(250), cache_quota_bytes: 1000, ..StoreConfig::default() });
    let (a, ab) = block(1, 200);
    let (b, bb) = block(2, 100);
    s.put(&a, &ab, Class::Pinned).unwrap();
    let err = s.put(&b, &bb, Class::Pinned).unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded { class: Class::Pinned, needed: 100, used: 200, quota: 250 }));
    assert!(!s.has(&b).unwrap());
    // Promotion obeys the same quota, and a refused promotion leaves the block cached.
    s.put(&b, &bb, Class::Cache).unwrap();
    assert!(matches!(s.pin(&b), Err(StoreError::QuotaExceeded { class: Class::Pinned, .. })));
    assert_eq!(s.class_of(&b).unwrap(), Some(Class::Cache));
    assert_eq!(s.stats().unwrap().pinned_bytes, 200);
}

#[test]
fn pinned_blocks_do_not_count_against_the_cache() {
    let (_d, _p, s) = store_with(cache_of(100));
    for tag in 0..5 {
        let (cid, bytes) = block(tag, 100);
        s.put(&cid, &bytes, Class::Pinned).unwrap();
    }
    let (c, cb) = block(9, 100);
    assert_eq!(s.put(&c, &cb, Class::Cache).unwrap().evicted.blocks, 0);
    assert_eq!(s.stats().unwrap().blocks, 6);
}

#[test]
fn cache_block_larger_than_the_quota_is_refused_without_flushing() {
    let (_d, _p, s) = store_with(cache_of(150));
    let (a, ab) = block(1, 100);
    s.put(&a, &ab, Class::Cache).unwrap();
    let (big, bigb) = block(2, 151);
    assert!(matches!(
        s.put(&big, &bigb, Class::Cache),
        Err(StoreError::QuotaExceeded { class: Class::Cache, needed: 151, .. })
    ));
    assert!(s.has(&a).unwrap(), "nothing was evicted for a block that cannot fit");
}

#[test]
fn eviction_is_least_recently_used_first() {
    let (_d, _p, s) = store_with(cache_of(300));
    let blocks: Vec<_> = (0..4).map(|t| block(t, 100)).collect();
    for (cid, bytes) in &blocks[..3] {
        s.put(cid, bytes, Class::Cache).unwrap();
    }
    // Read 0, so 1 becomes the oldest.
    s.get(&blocks[0].0).unwrap().unwrap();
    let out = s.put(&blocks[3].0, &blocks[3].1, Class::Cache).unwrap();
    assert_eq!(out.evicted, Evicted { blocks: 1, bytes: 100 });
    assert!(!s.has(&blocks[1].0).unwrap());
    for i in [0, 2, 3] {
        assert!(s.has(&blocks[i].0).unwrap());
    }
    assert_eq!(cache_order(&s), vec![blocks[2].0, blocks[0].0, blocks[3].0], "iteration is LRU first");
}

#[test]
fn reputting_a_cache_block_counts_as_a_use() {
    let (_d, _p, s) = store_with(cache_of(200));
    let (a, ab) = block(1, 100);
    let (b, bb) = block(2, 100);
    let (c, cb) = block(3, 100);
    s.put(&a, &ab, Class::Cache).unwrap();
    s.put(&b, &bb, Class::Cache).unwrap();
    assert_eq!(s.put(&a, &ab, Class::Cache).unwrap().status, PutStatus::AlreadyPresent);
    s.put(&c, &cb, Class::Cache).unwrap();
    assert!(s.has(&a).unwrap() && !s.has(&b).unwrap());
}

#[test]
fn one_large_block_can_evict_many_small_ones() {
    let (_d, _p, s) = store_with(cache_of(1000));
    for tag in 0..100 {
        let (cid, bytes) = block(tag, 10);
        s.put(&cid, &bytes, Class::Cache).unwrap();
    }
    let (big, bigb) = block(200, 995);
    let out = s.put(&big, &bigb, Class::Cache).unwrap();
    assert_eq!(out.evicted, Evicted { blocks: 100, bytes: 1000 });
    assert_eq!(s.stats().unwrap().cache_bytes, 995);
}

#[test]
fn unpin_can_push_the_cache_over_and_evicts_older_blocks_first() {
    let (_d, _p, s) = store_with(cache_of(200));
    let (a, ab) = block(1, 100);
    let (b, bb) = block(2, 100);
    let (p, pb) = block(3, 150);
    s.put(&a, &ab, Class::Cache).unwrap();
    s.put(&b, &bb, Class::Cache).unwrap();
    s.put(&p, &pb, Class::Pinned).unwrap();
    let out = s.unpin(&p).unwrap();
    assert!(out.was_pinned);
    assert_eq!(out.evicted, Evicted { blocks: 2, bytes: 200 });
    assert_eq!(cache_order(&s), vec![p]);

    // A block bigger than the whole cache quota goes itself when unpinned.
    let (huge, hugeb) = block(4, 300);
    s.put(&huge, &hugeb, Class::Pinned).unwrap();
    let out = s.unpin(&huge).unwrap();
    assert_eq!(out.evicted.blocks, 2);
    assert_eq!(s.stats().unwrap().blocks, 0);
}

#[test]
fn delete_either_class() {
    let (_d, _p, s) = store();
    let (a, ab) = block(1, 10);
    let (b, bb) = block(2, 20);
    s.put(&a, &ab, Class::Pinned).unwrap();
    s.put(&b, &bb, Class::Cache).unwrap();
    assert!(s.delete(&a).unwrap());
    assert!(s.delete(&b).unwrap());
    assert!(!s.delete(&b).unwrap());
    assert_eq!(s.stats().unwrap(), Default::default());
    assert!(s.verify().unwrap().is_consistent());
}

#[test]
fn data_and_recency_survive_reopen() {
    let config = cache_of(300);
    let (_d, path, s) = store_with(config.clone());
    let blocks: Vec<_> = (0..4).map(|t| block(t, 100)).collect();
    for (cid, bytes) in &blocks[..3] {
        s.put(cid, bytes, Class::Cache).unwrap();
    }
    let (p, pb) = block(9, 42);
    s.put(&p, &pb, Class::Pinned).unwrap();
    // Buffered (access_batch is 1024): only close() makes it durable.
    s.get(&blocks[0].0).unwrap();
    let before = s.stats().unwrap();
    s.close().unwrap();

    let s = BlockStore::open(&path, config).unwrap();
    assert_eq!(s.stats().unwrap(), before);
    assert_eq!(s.get(&p).unwrap(), Some(pb));
    s.put(&blocks[3].0, &blocks[3].1, Class::Cache).unwrap();
    assert!(!s.has(&blocks[1].0).unwrap(), "the read of block 0 was remembered");
    assert!(s.has(&blocks[0].0).unwrap());
}

#[test]
fn small_access_batch_flushes_from_get() {
    let (_d, _p, s) = store_with(StoreConfig { cache_quota_bytes: 1000, access_batch: 1, ..StoreConfig::default() });
    let (a, ab) = block(1, 10);
    let (b, bb) = block(2, 10);
    s.put(&a, &ab, Class::Cache).unwrap();
    s.put(&b, &bb, Class::Cache).unwrap();
    s.get(&a).unwrap();
    // No write happened since the get, yet the order already reflects it.
    assert_eq!(cache_order(&s), vec![b, a]);
}

#[test]
fn lower_quota_on_reopen_evicts_down_to_it() {
    let (_d, path, s) = store_with(cache_of(1000));
    let blocks: Vec<_> = (0..10).map(|t| block(t, 100)).collect();
    for (cid, bytes) in &blocks {
        s.put(cid, bytes, Class::Cache).unwrap();
    }
    drop(s);
    let s = BlockStore::open(&path, cache_of(350)).unwrap();
    assert_eq!(s.stats().unwrap().cache_bytes, 300);
    assert_eq!(cache_order(&s), blocks[7..].iter().map(|b| b.0).collect::<Vec<_>>());
}

#[test]
fn iteration_streams_each_class() {
    let (_d, _p, s) = store();
    let mut pinned = Vec::new();
    for tag in 0..50 {
        let (cid, bytes) = block(tag, 8);
        let class = if tag % 5 == 0 {
            pinned.push(cid);
            Class::Pinned
        } else {
            Class::Cache
        };
        s.put(&cid, &bytes, class).unwrap();
    }
    let mut listed: Vec<Cid> = s.iter_cids(Class::Pinned).unwrap().map(Result::unwrap).collect();
    listed.sort();
    pinned.sort();
    assert_eq!(listed, pinned);
    assert_eq!(s.iter_cids(Class::Cache).unwrap().count(), 40);

    // The iterator reads a snapshot: writes made while it is open do not show up in it.
    let iter = s.iter_cids(Class::Cache).unwrap();
    s.put_raw(b"late", Class::Cache).unwrap();
    assert_eq!(iter.count(), 40);
}

#[test]
fn store_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BlockStore>();

    // A tiny access batch makes reads flush recency while other threads write.
    let (_d, _p, s) = store_with(StoreConfig { access_batch: 2, ..cache_of(20_000) });
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..25u8 {
                    let bytes = vec![t, i, 0xAA];
                    let (cid, _) = s.put_raw(&bytes, Class::Cache).unwrap();
                    assert_eq!(s.get(&cid).unwrap(), Some(bytes));
                }
            });
        }
    });
    assert_eq!(s.stats().unwrap().cache_blocks, 100);
    assert!(s.verify().unwrap().is_consistent());
}

#[test]
fn opening_a_locked_or_garbage_file_is_an_error_not_a_panic() {
    let (_d, path, s) = store();
    assert!(matches!(BlockStore::open(&path, StoreConfig::default()), Err(StoreError::Database(_))));
    drop(s);
    let garbage = path.with_file_name("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    assert!(BlockStore::open(&garbage, StoreConfig::default()).is_err());
}
