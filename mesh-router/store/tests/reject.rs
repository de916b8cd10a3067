//! Property tests: whatever a peer sends, bad content is refused with a typed error, nothing bad
//! is stored, and nothing panics.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use multihash::Multihash;
use pollen_store::{cid_of, BlockStore, Cid, Class, Codec, StoreConfig, StoreError};
use proptest::prelude::*;

fn fresh() -> (tempfile::TempDir, BlockStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path().join("r.redb"), StoreConfig::default()).unwrap();
    (dir, store)
}

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![Just(Codec::Raw), Just(Codec::DagPb)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Flipping any single bit, truncating or extending the bytes makes the put fail.
    #[test]
    fn tampered_bytes_are_rejected(
        bytes in prop::collection::vec(any::<u8>(), 1..4096),
        codec in codec(),
        bit in any::<prop::sample::Index>(),
        tail in any::<u8>(),
    ) {
        let (_dir, store) = fresh();
        let cid = cid_of(codec, &bytes);
        let mut flipped = bytes.clone();
        let bit = bit.index(bytes.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mut longer = bytes.clone();
        longer.push(tail);
        for bad in [&flipped[..], &bytes[..bytes.len() - 1], &longer[..]] {
            let got = store.put(&cid, bad, Class::Cache);
            prop_assert!(matches!(got, Err(StoreError::HashMismatch { .. })), "{got:?}");
        }
        prop_assert!(!store.has(&cid).unwrap());
        prop_assert_eq!(store.stats().unwrap().blocks, 0);
        // The genuine bytes still go in afterwards.
        store.put(&cid, &bytes, Class::Cache).unwrap();
        prop_assert_eq!(store.get(&cid).unwrap(), Some(bytes));
    }

    /// Arbitrary bytes parsed as a CID: every operation returns a value or a typed error.
    #[test]
    fn arbitrary_cid_bytes_never_panic(
        cid_bytes in prop::collection::vec(any::<u8>(), 0..80),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Ok(cid) = Cid::try_from(cid_bytes.as_slice()) {
            exercise(cid, &data)?;
        }
    }

    /// Well-formed CIDs with every mix of wrong codec, hash function and digest length.
    #[test]
    fn wrong_cid_parameters_are_typed_errors(
        codec in prop_oneof![Just(0x55u64), Just(0x70), any::<u64>()],
        code in prop_oneof![Just(0x12u64), any::<u64>()],
        digest in prop::collection::vec(any::<u8>(), 0..=64),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let cid = Cid::new_v1(codec, Multihash::wrap(code, &digest).unwrap());
        exercise(cid, &data)?;
    }
}

fn exercise(cid: Cid, data: &[u8]) -> Result<(), TestCaseError> {
    let (_dir, store) = fresh();
    let stored = match store.put(&cid, data, Class::Pinned) {
        // Only possible if the random input happens to be the real CID of this data.
        Ok(_) => true,
        Err(StoreError::HashMismatch { .. } | StoreError::UnsupportedCodec(_) | StoreError::UnsupportedHash { .. }) => {
            false
        }
        Err(other) => return Err(TestCaseError::fail(format!("unexpected error {other:?}"))),
    };
    prop_assert_eq!(store.stats().unwrap().blocks, u64::from(stored));
    prop_assert_eq!(store.get(&cid).unwrap().is_some(), stored);
    prop_assert_eq!(store.has(&cid).unwrap(), stored);
    let _ = store.pin(&cid);
    store.unpin(&cid).unwrap();
    store.delete(&cid).unwrap();
    prop_assert!(store.verify().unwrap().is_consistent());
    Ok(())
}
