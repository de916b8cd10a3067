//! Error types of the UnixFS importer and exporter.

use cid::Cid;

/// Boxed error from a caller-supplied block sink or block source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors from [`Importer`](super::Importer) and the import helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// `chunk_size` must be at least one byte.
    #[error("chunk size must be > 0")]
    ZeroChunkSize,
    /// With fewer than two children per node a balanced tree never converges
    /// to a single root (Helia recurses forever).
    #[error("max children per node must be >= 2, got {0}")]
    TooFewChildren(usize),
    /// Reading the input failed.
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    /// The caller's block sink refused a block.
    #[error("block sink: {0}")]
    Sink(#[source] BoxError),
}

/// Why a dag-pb / UnixFS node could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeDecodeError {
    /// The block is not valid dag-pb protobuf.
    #[error("malformed dag-pb: {0}")]
    DagPb(#[source] prost::DecodeError),
    /// The dag-pb node has no Data field, so it is not a UnixFS node.
    #[error("dag-pb node has no UnixFS Data")]
    MissingData,
    /// The Data field is not a valid UnixFS protobuf.
    #[error("malformed UnixFS Data: {0}")]
    Unixfs(#[source] prost::DecodeError),
    /// The UnixFS type number is outside the spec's enum.
    #[error("unknown UnixFS type {0}")]
    UnknownType(i32),
    /// The node is a directory, symlink, ... where a file was expected.
    #[error("UnixFS node is a {0}, not a file")]
    NotAFile(&'static str),
    /// A link has no Hash, or the Hash is not a CID.
    #[error("link {index} has an invalid CID")]
    BadLink {
        /// Position of the link in the node.
        index: usize,
    },
    /// A file node must have exactly one blocksize per link.
    #[error("{links} links but {blocksizes} blocksizes")]
    BlocksizeCount {
        /// Number of links.
        links: usize,
        /// Number of blocksizes.
        blocksizes: usize,
    },
    /// `filesize` disagrees with `len(data) + sum(blocksizes)`.
    #[error("filesize {declared} but data and blocksizes add up to {computed}")]
    FilesizeMismatch {
        /// The `filesize` field.
        declared: u64,
        /// `len(data) + sum(blocksizes)`.
        computed: u64,
    },
    /// `len(data) + sum(blocksizes)` does not fit in a u64.
    #[error("blocksizes overflow u64")]
    SizeOverflow,
}

/// Errors from [`export_to_writer`](super::export_to_writer) and
/// [`export_bytes`](super::export_bytes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The block source does not have a block the DAG needs.
    #[error("missing block {0}")]
    MissingBlock(Cid),
    /// The block source failed.
    #[error("block source failed for {cid}: {source}")]
    Source {
        /// The block that was asked for.
        cid: Cid,
        /// What the source reported.
        #[source]
        source: BoxError,
    },
    /// The bytes returned for a CID do not hash to it.
    #[error("block {0} does not match its hash")]
    HashMismatch(Cid),
    /// The CID uses a hash function this exporter cannot verify.
    #[error("block {cid} uses unsupported multihash 0x{code:x} ({size} bytes)")]
    UnsupportedHash {
        /// The block.
        cid: Cid,
        /// Multihash code.
        code: u64,
        /// Digest length.
        size: u8,
    },
    /// The CID's codec is neither raw nor dag-pb.
    #[error("block {cid} has unsupported codec 0x{codec:x}")]
    UnsupportedCodec {
        /// The block.
        cid: Cid,
        /// Multicodec code.
        codec: u64,
    },
    /// A block is larger than [`ExportOptions::max_block_size`](super::ExportOptions).
    #[error("block {cid} is {len} bytes, limit {max}")]
    BlockTooLarge {
        /// The block.
        cid: Cid,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A dag-pb block is not a well-formed UnixFS file node.
    #[error("block {cid}: {source}")]
    BadNode {
        /// The block.
        cid: Cid,
        /// What is wrong with it.
        #[source]
        source: NodeDecodeError,
    },
    /// A node's content size differs from what its parent declared.
    #[error("block {cid} holds {actual} file bytes, parent declared {expected}")]
    SizeMismatch {
        /// The block.
        cid: Cid,
        /// Size from the parent's blocksizes.
        expected: u64,
        /// Size this node declares (or holds, for raw leaves).
        actual: u64,
    },
    /// The DAG is deeper than [`ExportOptions::max_depth`](super::ExportOptions).
    #[error("DAG deeper than {0} levels")]
    TooDeep(usize),
    /// The file is larger than [`ExportOptions::max_file_size`](super::ExportOptions).
    #[error("file is {size} bytes, limit {max}")]
    FileTooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}
