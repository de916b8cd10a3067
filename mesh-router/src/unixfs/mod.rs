//! UnixFS files: import bytes into a DAG whose root CID matches Helia's
//! `@helia/unixfs` `addBytes` with default options, and export a DAG back to
//! bytes with every block and size verified.
//!
//! The import layout (read from `@helia/unixfs` 8.0.5 `dist/src/commands/add.js`
//! and `ipfs-unixfs-importer` 17.1.1) is: fixed-size chunks of
//! [`DEFAULT_CHUNK_SIZE`] bytes, raw leaves (codec `raw`, CIDv1), a balanced
//! tree of dag-pb `File` nodes with at most [`DEFAULT_MAX_CHILDREN`] links,
//! CIDv1 and sha2-256 everywhere. A file of one chunk (including the empty
//! file) is just that raw leaf.
//!
//! ```
//! use std::collections::HashMap;
//! use pollen_router::unixfs::{export_bytes, import_reader, ExportOptions, ImportOptions};
//!
//! let file = vec![7u8; 3 * 1024 * 1024];
//! let mut store = HashMap::new();
//! // Blocks arrive one at a time; only one chunk of input is ever buffered.
//! let summary = import_reader(&file[..], &ImportOptions::default(), |block| {
//!     store.insert(block.cid, block.data);
//!     Ok::<_, std::convert::Infallible>(())
//! })?;
//! assert_eq!(summary.blocks, 4); // 3 raw leaves + 1 dag-pb root
//! let back = export_bytes(&summary.root, &store, &ExportOptions::default())?;
//! assert_eq!(back, file);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod export;
mod import;
pub mod pb;

pub use error::{BoxError, ExportError, ImportError, NodeDecodeError};
pub(crate) use export::parse_cid_exact;
pub use export::{
    decode_file_node, export_bytes, export_to_writer, BlockSource, ExportOptions, FileNode, DEFAULT_MAX_BLOCK_SIZE,
    DEFAULT_MAX_DEPTH,
};
pub use import::{
    import_bytes, import_reader, ImportBlocks, ImportOptions, ImportSummary, Importer, DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CHILDREN,
};

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// Multicodec code of raw binary blocks.
pub const RAW_CODEC: u64 = 0x55;
/// Multicodec code of dag-pb blocks.
pub const DAG_PB_CODEC: u64 = 0x70;
/// Multihash code of sha2-256.
pub const SHA2_256_CODE: u64 = 0x12;
/// Multihash code of the identity "hash" (the digest is the data itself).
pub const IDENTITY_CODE: u64 = 0x00;

/// A content-addressed block: its CID and the bytes that hash to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    /// CID of `data`.
    pub cid: Cid,
    /// The block's bytes.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Block {
    // A block can be a MiB; its CID identifies it well enough in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("cid", &self.cid.to_string()).field("len", &self.data.len()).finish()
    }
}

/// sha2-256 multihash of `data`.
pub fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    // A 32-byte digest always fits the 64-byte multihash; the error arm is
    // unreachable but kept total rather than panicking.
    Multihash::wrap(SHA2_256_CODE, digest.as_slice()).unwrap_or_default()
}

/// CIDv1 with sha2-256 over `data` for the given codec.
pub fn cid_v1_sha256(codec: u64, data: &[u8]) -> Cid {
    Cid::new_v1(codec, sha256_multihash(data))
}
