//! Bitswap 1.2.0 message codec (`/ipfs/bitswap/1.2.0`): protobuf schema,
//! varint framing, and a typed view with CIDs rebuilt and checked.
//!
//! Limits (enforced on decode, and on encode so we never send what a peer
//! following the same rules would refuse):
//!
//! | limit | value | why |
//! |---|---|---|
//! | [`MAX_MESSAGE_SIZE`] | 4 MiB | boxo's and Helia's stream message cap; a 2 MiB block plus overhead fits |
//! | [`MAX_WANTS_PER_MESSAGE`] | 16 384 | far above boxo's batching (full wantlists are normally a few hundred); ~1.5 MiB decoded |
//! | [`MAX_BLOCKS_PER_MESSAGE`] | 1 024 | `blocks` + `payload`; a 4 MiB message of tiny blocks stays cheap to hash |
//! | [`MAX_PRESENCES_PER_MESSAGE`] | 16 384 | one answer per want, so the same as wants |

mod error;
mod framing;
mod message;
pub mod pb;

pub use error::BitswapError;
pub use framing::{encode_frame, FrameDecoder};
pub use message::{BitswapMessage, Presence, Want, WantType};

/// The libp2p protocol ID this codec speaks.
pub const PROTOCOL_ID: &str = "/ipfs/bitswap/1.2.0";

/// Largest message body accepted or produced (4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Most wantlist entries in one message.
pub const MAX_WANTS_PER_MESSAGE: usize = 16_384;

/// Most blocks (1.0.0 `blocks` plus `payload`) in one message.
pub const MAX_BLOCKS_PER_MESSAGE: usize = 1_024;

/// Most block presences in one message.
pub const MAX_PRESENCES_PER_MESSAGE: usize = 16_384;
