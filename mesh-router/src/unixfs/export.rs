//! UnixFS exporter: walks a file DAG depth-first and writes its bytes in
//! order, trusting nothing it fetches.
//!
//! Every block is checked against its CID before it is parsed, and every
//! node's size against what its parent declared *before* any of its bytes are
//! written, so a lying peer is caught at the first bad block rather than after
//! the output has been corrupted. The walk uses an explicit stack bounded by
//! [`ExportOptions::max_depth`], so a hostile deep DAG cannot overflow the
//! thread's stack.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::Write;

use cid::Cid;
use prost::Message as _;
use sha2::{Digest, Sha256};

use super::error::{BoxError, ExportError, NodeDecodeError};
use super::pb::{DataType, PbNode, UnixfsData};
use super::{DAG_PB_CODEC, IDENTITY_CODE, RAW_CODEC, SHA2_256_CODE};

/// Default [`ExportOptions::max_depth`].
///
/// A balanced DAG with Helia's defaults is 2 levels deep at 1 GiB and 4 at
/// 1 PiB; 32 leaves ample room for trickle DAGs while keeping the walk's
/// memory (one link list per level) small.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Default [`ExportOptions::max_block_size`]: 2 MiB, the largest block
/// kubo/boxo exchange over Bitswap. Helia's leaves are 1 MiB.
pub const DEFAULT_MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// Limits applied while exporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Most link hops from the root to any block.
    pub max_depth: usize,
    /// Largest block accepted from the source.
    pub max_block_size: usize,
    /// Largest file (as declared by the root) accepted.
    pub max_file_size: u64,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { max_depth: DEFAULT_MAX_DEPTH, max_block_size: DEFAULT_MAX_BLOCK_SIZE, max_file_size: u64::MAX }
    }
}

/// Where the exporter gets blocks from. `Ok(None)` means "not available".
///
/// Implemented for closures `Fn(&Cid) -> Result<Option<Vec<u8>>, E>` and for
/// `HashMap<Cid, Vec<u8>>`.
pub trait BlockSource {
    /// The source's own failure type.
    type Error: Into<BoxError>;

    /// Returns the bytes stored under `cid`, unverified.
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error>;
}

impl<F, E> BlockSource for F
where
    F: Fn(&Cid) -> Result<Option<Vec<u8>>, E>,
    E: Into<BoxError>,
{
    type Error = E;

    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, E> {
        self(cid)
    }
}

impl<H: BuildHasher> BlockSource for HashMap<Cid, Vec<u8>, H> {
    type Error = std::convert::Infallible;

    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(self.get(cid).cloned())
    }
}

/// A decoded UnixFS file (or raw-type) dag-pb node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileNode {
    /// Inline bytes, which come before the children's bytes.
    pub data: Vec<u8>,
    /// Children in order, each with the file bytes its subtree must hold.
    pub children: Vec<(Cid, u64)>,
    /// `len(data) + sum(blocksizes)`, checked against `filesize` if present.
    pub file_size: u64,
}

/// Decodes a dag-pb block as a UnixFS file node, checking its internal
/// consistency (one blocksize per link, filesize adds up, links are CIDs).
pub fn decode_file_node(bytes: &[u8]) -> Result<FileNode, NodeDecodeError> {
    let node = PbNode::decode(bytes).map_err(NodeDecodeError::DagPb)?;
    let data = node.data.ok_or(NodeDecodeError::MissingData)?;
    let unixfs = UnixfsData::decode(data.as_slice()).map_err(NodeDecodeError::Unixfs)?;
    match DataType::try_from(unixfs.r#type) {
        Ok(DataType::File | DataType::Raw) => {}
        Ok(DataType::Directory) => return Err(NodeDecodeError::NotAFile("directory")),
        Ok(DataType::Metadata) => return Err(NodeDecodeError::NotAFile("metadata node")),
        Ok(DataType::Symlink) => return Err(NodeDecodeError::NotAFile("symlink")),
        Ok(DataType::HamtShard) => return Err(NodeDecodeError::NotAFile("HAMT shard")),
        Err(_) => return Err(NodeDecodeError::UnknownType(unixfs.r#type)),
    }
    if node.links.len() != unixfs.blocksizes.len() {
        return Err(NodeDecodeError::BlocksizeCount { links: node.links.len(), blocksizes: unixfs.blocksizes.len() });
    }
    let inline = unixfs.data.unwrap_or_default();
    let computed = unixfs
        .blocksizes
        .iter()
        .try_fold(inline.len() as u64, |acc, &s| acc.checked_add(s))
        .ok_or(NodeDecodeError::SizeOverflow)?;
    // `filesize` is optional in the spec; when present it must agree.
    if let Some(declared) = unixfs.filesize.filter(|&d| d != computed) {
        return Err(NodeDecodeError::FilesizeMismatch { declared, computed });
    }
    let children = node
        .links
        .iter()
        .zip(&unixfs.blocksizes)
        .enumerate()
        .map(|(index, (link, &size))| {
            let cid = link.hash.as_deref().and_then(parse_cid_exact).ok_or(NodeDecodeError::BadLink { index })?;
            Ok((cid, size))
        })
        .collect::<Result<Vec<_>, NodeDecodeError>>()?;
    Ok(FileNode { data: inline, children, file_size: computed })
}

/// Parses a binary CID that must span all of `bytes` (the `cid` crate's
/// `TryFrom<&[u8]>` ignores trailing garbage).
pub(crate) fn parse_cid_exact(mut bytes: &[u8]) -> Option<Cid> {
    let cid = Cid::read_bytes(&mut bytes).ok()?;
    bytes.is_empty().then_some(cid)
}

/// Writes the file rooted at `root` to `out`; returns the bytes written.
pub fn export_to_writer<S, W>(root: &Cid, source: &S, mut out: W, options: &ExportOptions) -> Result<u64, ExportError>
where
    S: BlockSource + ?Sized,
    W: Write,
{
    let mut written = 0u64;
    // Each frame is the not-yet-visited children of one node on the path
    // from the root; its length is the depth of the next child.
    let mut stack: Vec<std::vec::IntoIter<(Cid, u64)>> = Vec::new();
    let mut next = Some((*root, None));
    let mut declared_total = None;
    while let Some((cid, expected)) = next.take() {
        let block = fetch_verified(source, &cid, options)?;
        let (inline, children, size) = match cid.codec() {
            RAW_CODEC => {
                let size = block.len() as u64;
                (block, Vec::new(), size)
            }
            // `fetch_verified` rejected every other codec.
            _ => {
                let node = decode_file_node(&block).map_err(|source| ExportError::BadNode { cid, source })?;
                (node.data, node.children, node.file_size)
            }
        };
        match expected {
            Some(expected) if expected != size => {
                return Err(ExportError::SizeMismatch { cid, expected, actual: size })
            }
            Some(_) => {}
            None => {
                if size > options.max_file_size {
                    return Err(ExportError::FileTooLarge { size, max: options.max_file_size });
                }
                declared_total = Some(size);
            }
        }
        out.write_all(&inline)?;
        written += inline.len() as u64;
        if !children.is_empty() {
            if stack.len() >= options.max_depth {
                return Err(ExportError::TooDeep(options.max_depth));
            }
            stack.push(children.into_iter());
        }
        while let Some(frame) = stack.last_mut() {
            if let Some((child, size)) = frame.next() {
                next = Some((child, Some(size)));
                break;
            }
            stack.pop();
        }
    }
    // Per-node checks already make the total add up; this guards the walk
    // itself against a future bug.
    if let Some(total) = declared_total.filter(|&t| t != written) {
        return Err(ExportError::SizeMismatch { cid: *root, expected: total, actual: written });
    }
    out.flush()?;
    tracing::debug!(root = %root, bytes = written, "unixfs export finished");
    Ok(written)
}

/// Exports the file rooted at `root` into memory.
pub fn export_bytes<S: BlockSource + ?Sized>(
    root: &Cid,
    source: &S,
    options: &ExportOptions,
) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    export_to_writer(root, source, &mut out, options)?;
    Ok(out)
}

/// Fetches `cid` and checks that its bytes hash to it; identity CIDs carry
/// their bytes inline and are not fetched.
fn fetch_verified<S: BlockSource + ?Sized>(
    source: &S,
    cid: &Cid,
    options: &ExportOptions,
) -> Result<Vec<u8>, ExportError> {
    let codec = cid.codec();
    if codec != RAW_CODEC && codec != DAG_PB_CODEC {
        return Err(ExportError::UnsupportedCodec { cid: *cid, codec });
    }
    let mh = cid.hash();
    let too_large = |len: usize| ExportError::BlockTooLarge { cid: *cid, len, max: options.max_block_size };
    match (mh.code(), mh.size()) {
        (IDENTITY_CODE, _) => {
            let data = mh.digest().to_vec();
            if data.len() > options.max_block_size {
                return Err(too_large(data.len()));
            }
            return Ok(data);
        }
        (SHA2_256_CODE, 32) => {}
        (code, size) => return Err(ExportError::UnsupportedHash { cid: *cid, code, size }),
    }
    let data = source
        .get_block(cid)
        .map_err(|e| ExportError::Source { cid: *cid, source: e.into() })?
        .ok_or(ExportError::MissingBlock(*cid))?;
    if data.len() > options.max_block_size {
        return Err(too_large(data.len()));
    }
    if Sha256::digest(&data).as_slice() != mh.digest() {
        tracing::warn!(%cid, "block does not match its CID");
        return Err(ExportError::HashMismatch(*cid));
    }
    Ok(data)
}
