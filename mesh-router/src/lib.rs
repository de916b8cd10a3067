//! Pollen's mesh router.
//!
//! - [`unixfs`]: files to UnixFS DAGs with root CIDs identical to Helia's
//!   `@helia/unixfs` `addBytes` (default options), and back, verifying every
//!   block.
//! - [`bitswap`]: the `/ipfs/bitswap/1.2.0` protobuf message, its varint
//!   framing, and a typed view whose block CIDs are recomputed from the data.
//! - [`gossip`]: the sans-IO want-gossip and custody core; [`net`]: its libp2p driver.
//! - [`energy`]: the battery-budget policy (duty cycles and relay participation).

/// The CID type every API here uses.
pub use cid;

pub mod bitswap;
pub mod energy;
pub mod gossip;
pub mod net;
pub mod unixfs;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
