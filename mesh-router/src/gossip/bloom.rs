//! Bloom filters for "have" summaries: which CIDs a node (or its neighbourhood) probably holds.
//!
//! Bit positions use double hashing (Kirsch–Mitzenmacher) over the SHA-256 of the CID's bytes, so any CID form
//! maps evenly. A false positive costs one request answered with DONT_HAVE; a false negative cannot happen.

use cid::Cid;
use sha2::{Digest, Sha256};

/// Largest summary accepted from a peer.
pub const MAX_BLOOM_BYTES: usize = 64 * 1024;
/// Most hash functions accepted.
pub const MAX_HASHES: u8 = 16;

/// A Bloom filter over CIDs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bloom {
    bits: Vec<u8>,
    hashes: u8,
}

/// The two hashes a CID's bit positions derive from (SHA-256 of the CID's bytes, see docs/want-gossip.md), computed
/// once per CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BloomKey {
    h1: u64,
    h2: u64,
}

impl BloomKey {
    /// The key of `cid`.
    pub fn of(cid: &Cid) -> Self {
        let digest = Sha256::digest(cid.to_bytes());
        let mut h1 = [0u8; 8];
        let mut h2 = [0u8; 8];
        h1.copy_from_slice(&digest[..8]);
        h2.copy_from_slice(&digest[8..16]);
        Self { h1: u64::from_le_bytes(h1), h2: u64::from_le_bytes(h2) | 1 }
    }
}

impl Bloom {
    /// An empty filter of `bytes` bytes with `hashes` hash functions (clamped to 1..=16).
    pub fn new(bytes: usize, hashes: u8) -> Self {
        Self { bits: vec![0; bytes.min(MAX_BLOOM_BYTES)], hashes: hashes.clamp(1, MAX_HASHES) }
    }

    /// A filter received from a peer. An empty bit array means "no summary".
    pub fn from_parts(bits: Vec<u8>, hashes: u8) -> Result<Self, String> {
        if bits.len() > MAX_BLOOM_BYTES {
            return Err(format!("{} bytes, at most {MAX_BLOOM_BYTES}", bits.len()));
        }
        if !bits.is_empty() && !(1..=MAX_HASHES).contains(&hashes) {
            return Err(format!("{hashes} hash functions, expected 1..={MAX_HASHES}"));
        }
        Ok(Self { bits, hashes })
    }

    /// The bit array.
    pub fn bits(&self) -> &[u8] {
        &self.bits
    }

    /// The number of hash functions.
    pub fn hashes(&self) -> u8 {
        self.hashes
    }

    fn positions(&self, cid: &Cid) -> impl Iterator<Item = usize> {
        self.key_positions(BloomKey::of(cid))
    }

    fn key_positions(&self, key: BloomKey) -> impl Iterator<Item = usize> {
        let m = (self.bits.len() as u64 * 8).max(1);
        (0..u64::from(self.hashes)).map(move |i| (key.h1.wrapping_add(i.wrapping_mul(key.h2)) % m) as usize)
    }

    /// Whether the CID behind `key` is probably in the set: [`Bloom::contains`] without hashing the CID again, for
    /// testing one CID against many filters.
    pub fn contains_key(&self, key: BloomKey) -> bool {
        !self.bits.is_empty() && self.key_positions(key).all(|p| self.bits[p / 8] & (1 << (p % 8)) != 0)
    }

    /// Adds a CID.
    pub fn insert(&mut self, cid: &Cid) {
        if self.bits.is_empty() {
            return;
        }
        let positions: Vec<usize> = self.positions(cid).collect();
        for p in positions {
            self.bits[p / 8] |= 1 << (p % 8);
        }
    }

    /// Whether the CID is probably in the set (never false for an inserted CID).
    pub fn contains(&self, cid: &Cid) -> bool {
        self.contains_key(BloomKey::of(cid))
    }

    /// Adds every member of `other` (same size and hash count; others are ignored).
    pub fn union(&mut self, other: &Bloom) {
        if other.bits.len() == self.bits.len() && other.hashes == self.hashes {
            for (a, b) in self.bits.iter_mut().zip(&other.bits) {
                *a |= b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::unixfs::{cid_v1_sha256, RAW_CODEC};

    fn cid(n: u32) -> Cid {
        cid_v1_sha256(RAW_CODEC, &n.to_be_bytes())
    }

    #[test]
    fn false_positive_rate_is_low_at_design_load() {
        // 4 KiB, 4 hashes, 2048 members: 16 bits per member gives about 0.24 % false positives.
        let mut b = Bloom::new(4096, 4);
        for n in 0..2048 {
            b.insert(&cid(n));
        }
        let fp = (100_000..110_000).filter(|n| b.contains(&cid(*n))).count();
        assert!(fp < 60, "{fp} false positives in 10 000");
    }

    #[test]
    fn rejects_oversized_or_odd_summaries() {
        assert!(Bloom::from_parts(vec![0; MAX_BLOOM_BYTES + 1], 4).is_err());
        assert!(Bloom::from_parts(vec![0; 16], 0).is_err());
        assert!(Bloom::from_parts(vec![0; 16], 17).is_err());
        assert!(!Bloom::from_parts(Vec::new(), 0).unwrap().contains(&cid(1)));
    }

    proptest! {
        #[test]
        fn no_false_negatives(members in proptest::collection::vec(any::<u32>(), 0..500), size in 1usize..2048, k in 1u8..8) {
            let mut b = Bloom::new(size, k);
            let mut u = Bloom::new(size, k);
            for m in &members {
                b.insert(&cid(*m));
            }
            u.union(&b);
            for m in &members {
                prop_assert!(b.contains(&cid(*m)));
                prop_assert!(u.contains(&cid(*m)));
            }
        }
    }
}
