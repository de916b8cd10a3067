//! The advertisement: a fixed service UUID plus 10 bytes of service data holding a rotating ephemeral ID.
//!
//! Service data layout (`docs/ble-link.md` §2): `version (1) | flags (1) | ephemeral id (8, big-endian)`.
//! The ephemeral ID is random and replaced at least every 15 minutes, so a passive observer cannot follow a phone;
//! the libp2p PeerId is only revealed inside Noise.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rand::RngExt;
use thiserror::Error;

/// Service data format version.
pub const ADVERT_VERSION: u8 = 1;
/// Encoded length of the service data.
pub const ADVERT_LEN: usize = 10;
/// The longest rotation interval allowed (`shared/DESIGN.md` principle 7).
pub const MAX_ROTATION: Duration = Duration::from_secs(15 * 60);

/// A random identifier advertised in place of anything stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EphemeralId(pub u64);

impl EphemeralId {
    /// A fresh random ID (never 0, which the multiaddr mapping reserves for "any").
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        loop {
            let v: u64 = rng.random();
            if v != 0 {
                return Self(v);
            }
        }
    }
}

/// The decoded service data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertPayload {
    /// Flags; [`AdvertPayload::FLAG_ACCEPTING`] set when the node has a free link slot.
    pub flags: u8,
    /// The current ephemeral ID.
    pub ephemeral_id: EphemeralId,
}

/// Service data that is not a Pollen advertisement of a version this side reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdvertError {
    /// Wrong length.
    #[error("service data of {0} bytes, expected 10")]
    Length(usize),
    /// Another version.
    #[error("advertisement version {0}")]
    Version(u8),
}

impl AdvertPayload {
    /// The advertiser accepts new connections.
    pub const FLAG_ACCEPTING: u8 = 0x01;

    /// Encodes the service data.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(ADVERT_LEN);
        out.put_u8(ADVERT_VERSION);
        out.put_u8(self.flags);
        out.put_u64(self.ephemeral_id.0);
        out.freeze()
    }

    /// Decodes service data; unknown flag bits are kept.
    pub fn decode(data: &[u8]) -> Result<Self, AdvertError> {
        let raw: [u8; ADVERT_LEN] = data.try_into().map_err(|_| AdvertError::Length(data.len()))?;
        if raw[0] != ADVERT_VERSION {
            return Err(AdvertError::Version(raw[0]));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&raw[2..]);
        Ok(Self { flags: raw[1], ephemeral_id: EphemeralId(u64::from_be_bytes(id)) })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn layout() {
        let p = AdvertPayload { flags: 1, ephemeral_id: EphemeralId(0x0102_0304_0506_0708) };
        assert_eq!(&p.encode()[..], &[1, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(AdvertPayload::decode(&[2; 10]), Err(AdvertError::Version(2)));
        assert_eq!(AdvertPayload::decode(&[1; 9]), Err(AdvertError::Length(9)));
    }

    proptest! {
        #[test]
        fn roundtrip(flags: u8, id: u64) {
            let p = AdvertPayload { flags, ephemeral_id: EphemeralId(id) };
            prop_assert_eq!(AdvertPayload::decode(&p.encode()), Ok(p));
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = AdvertPayload::decode(&data);
        }
    }
}
