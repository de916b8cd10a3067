//! CID rules: which CIDs the store accepts and how bytes are checked against them.

use cid::{Cid, Version};
use multihash::Multihash;
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};

/// Largest block the store accepts, in bytes (2 MiB, the Bitswap ceiling).
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

const SHA2_256_LEN: u8 = 32;

/// The IPLD codecs the store accepts.
///
/// The store never parses block contents; the codec only travels in the CID. It is restricted
/// anyway so that the router cannot be used to carry arbitrary content types it cannot serve to
/// Bitswap peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Raw bytes, multicodec 0x55.
    Raw,
    /// Protobuf DAG node (UnixFS), multicodec 0x70.
    DagPb,
}

impl Codec {
    /// The multicodec code of this codec.
    pub const fn code(self) -> u64 {
        match self {
            Codec::Raw => 0x55,
            Codec::DagPb => 0x70,
        }
    }

    /// The codec for a multicodec code, if the store accepts it.
    pub const fn from_code(code: u64) -> Option<Self> {
        match code {
            0x55 => Some(Codec::Raw),
            0x70 => Some(Codec::DagPb),
            _ => None,
        }
    }
}

/// Computes the CIDv1 (sha2-256) of `bytes` under `codec`.
///
/// This does not check [`MAX_BLOCK_SIZE`]; the store does that when the block is offered.
pub fn cid_of(codec: Codec, bytes: &[u8]) -> Cid {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    Cid::new_v1(codec.code(), wrap_sha256(&digest))
}

#[allow(clippy::expect_used, reason = "a 32-byte digest always fits the 64-byte multihash buffer")]
fn wrap_sha256(digest: &[u8; 32]) -> Multihash<64> {
    Multihash::wrap(SHA2_256, digest).expect("32-byte digest fits Multihash<64>")
}

/// Checks that the store accepts this kind of CID, without looking at any bytes, and returns the
/// CIDv1 the block is stored under.
///
/// A CIDv0 (`Qm…`) is by definition dag-pb + sha2-256, so it is accepted and mapped to the
/// equivalent CIDv1: desktop IPFS peers still ask for v0 CIDs over Bitswap, and the store should
/// not hold the same block twice under two names.
pub fn check_cid(cid: &Cid) -> Result<Cid> {
    let cid = match cid.version() {
        Version::V1 => *cid,
        // Built by hand rather than with into_v1, which returns a Result we would have to unwrap.
        Version::V0 => Cid::new_v1(Codec::DagPb.code(), *cid.hash()),
    };
    Codec::from_code(cid.codec()).ok_or(StoreError::UnsupportedCodec(cid.codec()))?;
    let hash = cid.hash();
    if hash.code() != SHA2_256 || hash.size() != SHA2_256_LEN {
        return Err(StoreError::UnsupportedHash { code: hash.code(), size: hash.size() });
    }
    Ok(cid)
}

/// Checks size, CID kind and content hash: the full admission test for a block. Returns the CIDv1
/// the block is stored under (see [`check_cid`]).
pub fn verify_block(cid: &Cid, bytes: &[u8]) -> Result<Cid> {
    if bytes.len() > MAX_BLOCK_SIZE {
        return Err(StoreError::BlockTooLarge { size: bytes.len(), max: MAX_BLOCK_SIZE });
    }
    let v1 = check_cid(cid)?;
    if !digest_matches(&v1, bytes) {
        return Err(StoreError::HashMismatch { expected: *cid });
    }
    Ok(v1)
}

/// True when `bytes` hash to the digest inside `cid` (which must already have passed
/// [`check_cid`]).
pub(crate) fn digest_matches(cid: &Cid, bytes: &[u8]) -> bool {
    Sha256::digest(bytes).as_slice() == cid.hash().digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_raw_empty() {
        // `ipfs add --raw-leaves --cid-version 1` of an empty file.
        let cid = cid_of(Codec::Raw, b"");
        assert_eq!(cid.to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    }

    #[test]
    fn v0_maps_to_dag_pb_v1() {
        let good = cid_of(Codec::DagPb, b"x");
        let v0 = Cid::new_v0(*good.hash()).unwrap();
        assert_eq!(check_cid(&v0).unwrap(), good);
        assert_eq!(verify_block(&v0, b"x").unwrap(), good);
    }

    #[test]
    fn rejects_other_hashes_and_codecs() {
        let good = cid_of(Codec::DagPb, b"x");
        let dag_cbor = Cid::new_v1(0x71, *good.hash());
        assert!(matches!(check_cid(&dag_cbor), Err(StoreError::UnsupportedCodec(0x71))));
        let blake3 = Cid::new_v1(0x55, Multihash::wrap(0x1e, &[0u8; 32]).unwrap());
        assert!(matches!(check_cid(&blake3), Err(StoreError::UnsupportedHash { code: 0x1e, .. })));
        let short = Cid::new_v1(0x55, Multihash::wrap(SHA2_256, &[0u8; 20]).unwrap());
        assert!(matches!(check_cid(&short), Err(StoreError::UnsupportedHash { size: 20, .. })));
    }

    #[test]
    fn size_limit_is_inclusive() {
        let max = vec![0u8; MAX_BLOCK_SIZE];
        assert!(verify_block(&cid_of(Codec::Raw, &max), &max).is_ok());
        let over = vec![0u8; MAX_BLOCK_SIZE + 1];
        assert!(matches!(verify_block(&cid_of(Codec::Raw, &over), &over), Err(StoreError::BlockTooLarge { .. })));
    }
}
