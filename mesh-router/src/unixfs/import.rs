//! Streaming UnixFS importer: fixed-size chunker, raw leaves, balanced layout.
//!
//! Helia builds the balanced tree level by level: it batches all leaves into
//! groups of `max_children`, turns each group into a parent, and repeats on
//! the parents until one node is left. Grouping is always "consecutive runs of
//! `max_children`, last run short", so the same tree can be built on the fly:
//! a level is folded into a parent as soon as it holds `max_children` nodes,
//! and the short runs are folded bottom-up at the end. Memory is one chunk
//! plus `max_children` link summaries per level, whatever the file size.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};

use cid::Cid;
use prost::Message as _;

use super::error::{BoxError, ImportError};
use super::pb::{DataType, PbLink, PbNode, UnixfsData};
use super::{cid_v1_sha256, Block, DAG_PB_CODEC, RAW_CODEC};

/// Helia's default chunk size for `addBytes` (1 MiB).
///
/// From `@helia/unixfs` 8.0.5 `dist/src/commands/add.js`:
/// `chunker: fixedSize({ chunkSize: 1_048_576 })`. Older Helia/kubo used
/// 262144; pass that explicitly through [`ImportOptions`] if needed.
pub const DEFAULT_CHUNK_SIZE: usize = 1_048_576;

/// Helia's default maximum links per node for `addBytes`.
///
/// From `@helia/unixfs` 8.0.5 `dist/src/commands/add.js`:
/// `layout: balanced({ maxChildrenPerNode: 1024 })` (kubo's classic 174 is
/// only the importer's fallback when no layout is passed).
pub const DEFAULT_MAX_CHILDREN: usize = 1024;

/// How to cut a file into a DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Bytes per leaf; the last leaf may be shorter.
    pub chunk_size: usize,
    /// Most links in one dag-pb node of the balanced tree.
    pub max_children: usize,
}

impl Default for ImportOptions {
    /// The options that reproduce Helia's `addBytes` with default options.
    fn default() -> Self {
        Self { chunk_size: DEFAULT_CHUNK_SIZE, max_children: DEFAULT_MAX_CHILDREN }
    }
}

impl ImportOptions {
    /// Rejects options that cannot produce a DAG.
    pub fn validate(&self) -> Result<(), ImportError> {
        if self.chunk_size == 0 {
            return Err(ImportError::ZeroChunkSize);
        }
        if self.max_children < 2 {
            return Err(ImportError::TooFewChildren(self.max_children));
        }
        Ok(())
    }
}

/// Outcome of a finished import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// Root CID: the raw leaf itself for files of at most one chunk,
    /// otherwise the top dag-pb node.
    pub root: Cid,
    /// Bytes of file content imported.
    pub file_size: u64,
    /// Blocks emitted, duplicates included (the root is always the last).
    pub blocks: u64,
}

/// What a parent needs to know about a finished child.
#[derive(Clone, Copy, Debug)]
struct Child {
    cid: Cid,
    /// File bytes under this child (the parent's `blocksizes` entry).
    file_size: u64,
    /// Serialized size of the child's whole DAG (the parent's link `Tsize`).
    tsize: u64,
}

/// Sans-IO UnixFS importer: feed bytes with [`push`](Self::push), then call
/// [`finish`](Self::finish). Blocks are handed to `emit` as soon as they are
/// complete, children always before their parents, the root last.
pub struct Importer {
    options: ImportOptions,
    /// The chunk being filled: either empty (not yet allocated) or exactly
    /// `chunk_size` long, of which the first `filled` bytes are file data.
    /// Keeping it full-length lets readers write straight into it.
    chunk: Vec<u8>,
    filled: usize,
    /// `levels[0]` holds leaves not yet under a parent, `levels[1]` their
    /// would-be parents, and so on; each holds fewer than `max_children`.
    levels: Vec<Vec<Child>>,
    leaves: u64,
    file_size: u64,
    blocks: u64,
}

impl std::fmt::Debug for Importer {
    // The chunk buffer is up to a MiB; summarise instead of dumping it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("options", &self.options)
            .field("filled", &self.filled)
            .field("pending_per_level", &self.levels.iter().map(Vec::len).collect::<Vec<_>>())
            .field("leaves", &self.leaves)
            .field("file_size", &self.file_size)
            .field("blocks", &self.blocks)
            .finish()
    }
}

impl Importer {
    /// A new importer; fails if `options` are unusable.
    pub fn new(options: ImportOptions) -> Result<Self, ImportError> {
        options.validate()?;
        Ok(Self { options, chunk: Vec::new(), filled: 0, levels: Vec::new(), leaves: 0, file_size: 0, blocks: 0 })
    }

    /// Appends file bytes; emits every block completed by them.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Block)) {
        while !data.is_empty() {
            let room = self.spare();
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
            data = &data[n..];
            self.filled += n;
            if self.filled == self.options.chunk_size {
                self.emit_leaf(&mut emit);
            }
        }
    }

    /// Reads from `reader` until the current chunk is full or the input ends,
    /// emitting the blocks that completes. Returns `true` at end of input.
    ///
    /// Reads straight into the chunk buffer, so large files are copied once.
    pub fn push_from_reader<R: Read + ?Sized>(
        &mut self,
        reader: &mut R,
        mut emit: impl FnMut(Block),
    ) -> std::io::Result<bool> {
        let mut eof = false;
        while self.filled < self.options.chunk_size {
            // Clamp what the reader claims: a buggy `Read` returning more
            // than the buffer must not push `filled` past the chunk.
            let room = self.spare();
            let cap = room.len();
            match reader.read(room) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.filled += n.min(cap),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.filled == self.options.chunk_size {
            self.emit_leaf(&mut emit);
        }
        Ok(eof)
    }

    /// Ends the file: emits the last leaf and every pending parent, and
    /// returns the root.
    pub fn finish(mut self, mut emit: impl FnMut(Block)) -> ImportSummary {
        // Helia's chunker yields the remainder if there is one, and a single
        // empty chunk for an empty file, so an empty file is one empty leaf.
        if self.leaves == 0 || self.filled > 0 {
            self.emit_leaf(&mut emit);
        }
        let root = self.fold_pending(&mut emit);
        let summary = ImportSummary { root, file_size: self.file_size, blocks: self.blocks };
        tracing::debug!(
            root = %summary.root,
            file_size = summary.file_size,
            blocks = summary.blocks,
            "unixfs import finished"
        );
        summary
    }

    /// Folds the short runs left on each level into parents, bottom-up, until
    /// a single node remains on the top level.
    fn fold_pending(&mut self, emit: &mut dyn FnMut(Block)) -> Cid {
        let mut level = 0;
        loop {
            let top = self.levels.len().saturating_sub(1);
            match self.levels.get(level).map(Vec::len) {
                // A single-chunk file: Helia returns the raw leaf itself
                // (`reduceSingleLeafToSelf`). Any other lone node on the top
                // level is the root too; a lone node on a lower level still
                // needs its own parent, exactly as Helia's last short batch.
                Some(1) if level == top => return self.levels[level][0].cid,
                Some(0) => {}
                Some(_) => {
                    let children = std::mem::take(&mut self.levels[level]);
                    let parent = self.build_parent(&children, emit);
                    self.add_child(level + 1, parent, emit);
                }
                // Unreachable: `finish` always emits at least one leaf, so
                // the top level is non-empty. Return the empty-file CID rather
                // than panic.
                None => return cid_v1_sha256(RAW_CODEC, &[]),
            }
            level += 1;
        }
    }

    /// The unfilled tail of the current chunk, allocating the chunk on first
    /// use (`vec![0; n]` is a zeroed allocation, not a byte loop).
    fn spare(&mut self) -> &mut [u8] {
        if self.chunk.len() != self.options.chunk_size {
            self.chunk = vec![0; self.options.chunk_size];
        }
        &mut self.chunk[self.filled..]
    }

    fn emit_leaf(&mut self, emit: &mut dyn FnMut(Block)) {
        let mut data = std::mem::take(&mut self.chunk);
        data.truncate(self.filled);
        // A short last chunk would otherwise pin a whole chunk of capacity
        // for as long as the caller keeps the block.
        data.shrink_to_fit();
        self.filled = 0;
        let len = data.len() as u64;
        let cid = cid_v1_sha256(RAW_CODEC, &data);
        self.leaves += 1;
        self.file_size += len;
        self.blocks += 1;
        emit(Block { cid, data });
        self.add_child(0, Child { cid, file_size: len, tsize: len }, emit);
    }

    fn add_child(&mut self, mut level: usize, mut child: Child, emit: &mut dyn FnMut(Block)) {
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::with_capacity(self.options.max_children));
            }
            self.levels[level].push(child);
            if self.levels[level].len() < self.options.max_children {
                return;
            }
            let children = std::mem::take(&mut self.levels[level]);
            child = self.build_parent(&children, emit);
            level += 1;
        }
    }

    /// Builds the dag-pb `File` node over `children` exactly as
    /// `ipfs-unixfs-importer`'s file reducer does: links named `""` with
    /// Tsize, blocksizes of each child's file bytes, filesize their sum, no
    /// inline data and no mode/mtime.
    fn build_parent(&mut self, children: &[Child], emit: &mut dyn FnMut(Block)) -> Child {
        let blocksizes: Vec<u64> = children.iter().map(|c| c.file_size).collect();
        let file_size = blocksizes.iter().sum();
        let unixfs =
            UnixfsData { r#type: DataType::File as i32, filesize: Some(file_size), blocksizes, ..Default::default() };
        let node = PbNode {
            links: children
                .iter()
                .map(|c| PbLink { hash: Some(c.cid.to_bytes()), name: Some(String::new()), tsize: Some(c.tsize) })
                .collect(),
            data: Some(unixfs.encode_to_vec()),
        };
        let bytes = node.encode_to_vec();
        let cid = cid_v1_sha256(DAG_PB_CODEC, &bytes);
        let tsize = bytes.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>();
        tracing::trace!(%cid, links = children.len(), file_size, "unixfs parent node");
        self.blocks += 1;
        emit(Block { cid, data: bytes });
        Child { cid, file_size, tsize }
    }
}

/// Imports everything `reader` yields, handing each block to `sink` as soon
/// as it is complete; at most one chunk of input is buffered.
pub fn import_reader<R, F, E>(mut reader: R, options: &ImportOptions, mut sink: F) -> Result<ImportSummary, ImportError>
where
    R: Read,
    F: FnMut(Block) -> Result<(), E>,
    E: Into<BoxError>,
{
    let mut importer = Importer::new(*options)?;
    // One chunk completes one leaf plus at most one parent per level.
    let mut ready = Vec::new();
    let mut drain = |ready: &mut Vec<Block>| -> Result<(), ImportError> {
        for block in ready.drain(..) {
            sink(block).map_err(|e| ImportError::Sink(e.into()))?;
        }
        Ok(())
    };
    loop {
        let eof = importer.push_from_reader(&mut reader, |b| ready.push(b))?;
        drain(&mut ready)?;
        if eof {
            break;
        }
    }
    let summary = importer.finish(|b| ready.push(b));
    drain(&mut ready)?;
    Ok(summary)
}

/// Imports an in-memory file, returning its blocks (children before parents,
/// root last) and the summary.
pub fn import_bytes(data: &[u8], options: &ImportOptions) -> Result<(ImportSummary, Vec<Block>), ImportError> {
    let mut importer = Importer::new(*options)?;
    let mut blocks = Vec::new();
    importer.push(data, |b| blocks.push(b));
    let summary = importer.finish(|b| blocks.push(b));
    Ok((summary, blocks))
}

/// Iterator over the blocks of a file read from `R`; see
/// [`ImportBlocks::new`]. After it returns `None`,
/// [`summary`](ImportBlocks::summary) gives the root.
#[derive(Debug)]
pub struct ImportBlocks<R> {
    reader: R,
    importer: Option<Importer>,
    ready: VecDeque<Block>,
    summary: Option<ImportSummary>,
}

impl<R: Read> ImportBlocks<R> {
    /// Starts importing from `reader`; nothing is read until the first
    /// `next()`.
    pub fn new(reader: R, options: &ImportOptions) -> Result<Self, ImportError> {
        Ok(Self { reader, importer: Some(Importer::new(*options)?), ready: VecDeque::new(), summary: None })
    }

    /// The import's summary, once the iterator has been exhausted.
    pub fn summary(&self) -> Option<ImportSummary> {
        self.summary
    }
}

impl<R: Read> Iterator for ImportBlocks<R> {
    type Item = Result<Block, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(block) = self.ready.pop_front() {
                return Some(Ok(block));
            }
            let mut importer = self.importer.take()?;
            let ready = &mut self.ready;
            match importer.push_from_reader(&mut self.reader, |b| ready.push_back(b)) {
                Ok(false) => self.importer = Some(importer),
                Ok(true) => self.summary = Some(importer.finish(|b| ready.push_back(b))),
                // The importer is dropped: a failed read leaves the file
                // truncated at an unknown point, so no root can be trusted.
                Err(e) => return Some(Err(ImportError::Io(e))),
            }
        }
    }
}
