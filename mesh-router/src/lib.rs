//! Pollen's mesh router.
//!
//! - [`unixfs`]: files to UnixFS DAGs with root CIDs identical to Helia's
//!   `@helia/unixfs` `addBytes` (default options), and back, verifying every
//!   block.
//! - [`bitswap`]: the `/ipfs/bitswap/1.2.0` protobuf message, its varint
//!   framing, and a typed view whose block CIDs are recomputed from the data.

/// The CID type every API here uses.
pub use cid;

pub mod bitswap;
pub mod gossip;
pub mod net;
pub mod unixfs;
