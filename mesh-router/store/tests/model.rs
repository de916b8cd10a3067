//! Model-based property test: random sequences of operations against a tiny in-memory model of
//! the store's policy (classes, quotas, LRU order). Covers eviction order, quota accounting,
//! pin/unpin transitions, rejection of corrupt input and persistence across reopen.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use pollen_store::{cid_of, BlockStore, Cid, Class, Codec, PutStatus, StoreConfig, StoreError, UnpinOutcome};
use proptest::prelude::*;

const POOL: usize = 10;

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Class),
    PutCorrupt(usize),
    Get(usize),
    Pin(usize),
    Unpin(usize),
    Delete(usize),
    /// Flush recency and compare the cache iteration order with the model's LRU list.
    CheckOrder,
    Reopen,
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![Just(Class::Pinned), Just(Class::Cache)]
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..POOL;
    prop_oneof![
        6 => (id.clone(), class()).prop_map(|(i, c)| Op::Put(i, c)),
        1 => id.clone().prop_map(Op::PutCorrupt),
        4 => id.clone().prop_map(Op::Get),
        2 => id.clone().prop_map(Op::Pin),
        2 => id.clone().prop_map(Op::Unpin),
        1 => id.prop_map(Op::Delete),
        1 => Just(Op::CheckOrder),
        1 => Just(Op::Reopen),
    ]
}

/// The reference: what the store should contain, and the cache's recency order.
#[derive(Debug, Default)]
struct Model {
    class: HashMap<usize, Class>,
    /// Cache block ids, least recently used first.
    lru: Vec<usize>,
    pinned_bytes: u64,
    cache_bytes: u64,
}

struct Env {
    blocks: Vec<(Cid, Vec<u8>)>,
    cache_quota: u64,
    pin_quota: Option<u64>,
}

impl Model {
    fn size(env: &Env, id: usize) -> u64 {
        env.blocks[id].1.len() as u64
    }

    fn make_mru(&mut self, id: usize) {
        self.lru.retain(|&x| x != id);
        self.lru.push(id);
    }

    fn evict_to_fit(&mut self, env: &Env, incoming: u64) -> u64 {
        let mut evicted = 0;
        while self.cache_bytes + incoming > env.cache_quota {
            let victim = self.lru.remove(0);
            self.class.remove(&victim);
            self.cache_bytes -= Self::size(env, victim);
            evicted += 1;
        }
        evicted
    }

    fn pin_fits(&self, env: &Env, id: usize) -> bool {
        env.pin_quota.is_none_or(|q| self.pinned_bytes + Self::size(env, id) <= q)
    }

    /// Applies a put; returns the expected status and eviction count, or None if it must fail
    /// with QuotaExceeded.
    fn put(&mut self, env: &Env, id: usize, class: Class) -> Option<(PutStatus, u64)> {
        let size = Self::size(env, id);
        match (self.class.get(&id).copied(), class) {
            (Some(Class::Pinned), _) => Some((PutStatus::AlreadyPresent, 0)),
            (Some(Class::Cache), Class::Cache) => {
                self.make_mru(id);
                Some((PutStatus::AlreadyPresent, 0))
            }
            (Some(Class::Cache), Class::Pinned) => {
                self.pin(env, id).ok()?;
                Some((PutStatus::Promoted, 0))
            }
            (None, Class::Pinned) => {
                if !self.pin_fits(env, id) {
                    return None;
                }
                self.class.insert(id, Class::Pinned);
                self.pinned_bytes += size;
                Some((PutStatus::Inserted, 0))
            }
            (None, Class::Cache) => {
                if size > env.cache_quota {
                    return None;
                }
                let evicted = self.evict_to_fit(env, size);
                self.class.insert(id, Class::Cache);
                self.lru.push(id);
                self.cache_bytes += size;
                Some((PutStatus::Inserted, evicted))
            }
        }
    }

    /// Ok(changed) or Err(()) for "must fail" (absent or over quota).
    fn pin(&mut self, env: &Env, id: usize) -> Result<bool, ()> {
        match self.class.get(&id) {
            None => Err(()),
            Some(Class::Pinned) => Ok(false),
            Some(Class::Cache) => {
                if !self.pin_fits(env, id) {
                    return Err(());
                }
                let size = Self::size(env, id);
                self.lru.retain(|&x| x != id);
                self.cache_bytes -= size;
                self.pinned_bytes += size;
                self.class.insert(id, Class::Pinned);
                Ok(true)
            }
        }
    }

    fn unpin(&mut self, env: &Env, id: usize) -> (bool, u64) {
        if self.class.get(&id) != Some(&Class::Pinned) {
            return (false, 0);
        }
        let size = Self::size(env, id);
        self.pinned_bytes -= size;
        self.cache_bytes += size;
        self.class.insert(id, Class::Cache);
        self.lru.push(id);
        (true, self.evict_to_fit(env, 0))
    }

    fn delete(&mut self, env: &Env, id: usize) -> bool {
        match self.class.remove(&id) {
            None => false,
            Some(Class::Pinned) => {
                self.pinned_bytes -= Self::size(env, id);
                true
            }
            Some(Class::Cache) => {
                self.lru.retain(|&x| x != id);
                self.cache_bytes -= Self::size(env, id);
                true
            }
        }
    }
}

/// This test checks policy, not durability (tests/crash.rs does that on the real disk), so it runs
/// on tmpfs where it exists: there `fsync` is free and the run time does not swing with the disk
/// load of whatever else the machine is doing.
fn policy_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn run(
    sizes: Vec<usize>,
    cache_quota: u64,
    pin_quota: Option<u64>,
    access_batch: usize,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let blocks: Vec<(Cid, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            // The id in the first byte keeps equal-sized blocks distinct.
            let bytes: Vec<u8> = (0..size).map(|j| (i * 31 + j * 7) as u8).collect();
            let mut bytes = bytes;
            bytes[0] = i as u8;
            let codec = if i % 2 == 0 { Codec::Raw } else { Codec::DagPb };
            (cid_of(codec, &bytes), bytes)
        })
        .collect();
    let env = Env { blocks, cache_quota, pin_quota };
    let config = StoreConfig {
        cache_quota_bytes: cache_quota,
        pinned_quota_bytes: pin_quota,
        access_batch,
        ..StoreConfig::default()
    };
    let dir = policy_tempdir();
    let path = dir.path().join("model.redb");
    let mut store = Some(BlockStore::open(&path, config.clone()).unwrap());
    let mut model = Model::default();

    for op in ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Put(id, class) => {
                let (cid, bytes) = &env.blocks[id];
                let got = s.put(cid, bytes, class);
                match (model.put(&env, id, class), got) {
                    (Some((status, evicted)), Ok(outcome)) => {
                        prop_assert_eq!(outcome.status, status);
                        prop_assert_eq!(outcome.evicted.blocks, evicted);
                    }
                    (None, Err(StoreError::QuotaExceeded { .. })) => {}
                    (want, got) => prop_assert!(false, "put {id}: model {want:?}, store {got:?}"),
                }
            }
            Op::PutCorrupt(id) => {
                let (cid, bytes) = &env.blocks[id];
                let mut bad = bytes.clone();
                bad[0] ^= 0x80;
                let got = s.put(cid, &bad, Class::Pinned);
                prop_assert!(matches!(got, Err(StoreError::HashMismatch { .. })), "{got:?}");
            }
            Op::Get(id) => {
                let (cid, bytes) = &env.blocks[id];
                let got = s.get(cid).unwrap();
                let present = model.class.contains_key(&id);
                prop_assert_eq!(got.as_ref(), present.then_some(bytes));
                if model.class.get(&id) == Some(&Class::Cache) {
                    model.make_mru(id);
                }
            }
            Op::Pin(id) => {
                let got = s.pin(&env.blocks[id].0);
                match (model.pin(&env, id), got) {
                    (Ok(changed), Ok(got)) => prop_assert_eq!(changed, got),
                    (Err(()), Err(StoreError::NotFound(_) | StoreError::QuotaExceeded { .. })) => {}
                    (want, got) => prop_assert!(false, "pin {id}: model {want:?}, store {got:?}"),
                }
            }
            Op::Unpin(id) => {
                let UnpinOutcome { was_pinned, evicted } = s.unpin(&env.blocks[id].0).unwrap();
                prop_assert_eq!((was_pinned, evicted.blocks), model.unpin(&env, id));
            }
            Op::Delete(id) => {
                let got = s.delete(&env.blocks[id].0).unwrap();
                prop_assert_eq!(got, model.delete(&env, id));
            }
            Op::CheckOrder => {
                s.flush_access().unwrap();
                let order: Vec<Cid> = s.iter_cids(Class::Cache).unwrap().collect::<Result<_, _>>().unwrap();
                let want: Vec<Cid> = model.lru.iter().map(|&id| env.blocks[id].0).collect();
                prop_assert_eq!(order, want);
            }
            Op::Reopen => {
                // Drop must persist pending recency, or eviction order after reopen would differ.
                drop(store.take());
                store = Some(BlockStore::open(&path, config.clone()).unwrap());
            }
        }

        let s = store.as_ref().unwrap();
        let stats = s.stats().unwrap();
        let pinned = model.class.values().filter(|c| **c == Class::Pinned).count() as u64;
        prop_assert_eq!(stats.pinned_bytes, model.pinned_bytes);
        prop_assert_eq!(stats.cache_bytes, model.cache_bytes);
        prop_assert_eq!(stats.pinned_blocks, pinned);
        prop_assert_eq!(stats.blocks, model.class.len() as u64);
        prop_assert!(stats.cache_bytes <= cache_quota);
        for (id, (cid, _)) in env.blocks.iter().enumerate() {
            prop_assert_eq!(s.class_of(cid).unwrap(), model.class.get(&id).copied());
        }
    }
    let report = store.as_ref().unwrap().verify().unwrap();
    prop_assert!(report.is_consistent(), "{report:#?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(
        sizes in prop::collection::vec(1usize..=300, POOL),
        cache_quota in 0u64..=1200,
        pin_quota in prop::option::of(0u64..=1500),
        access_batch in 1usize..=4,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(sizes, cache_quota, pin_quota, access_batch, ops)?;
    }
}
