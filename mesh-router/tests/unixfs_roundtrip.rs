//! Import → export round trips, importer edge cases, and one error test per
//! exporter failure mode.

// Test helpers outside #[test] fns panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::Read;

use cid::Cid;
use common::pattern;
use multihash::Multihash;
use pollen_router::unixfs::pb::{DataType, PbLink, PbNode, UnixfsData};
use pollen_router::unixfs::{
    cid_v1_sha256, export_bytes, import_bytes, import_reader, Block, ExportError, ExportOptions, ImportBlocks,
    ImportError, ImportOptions, Importer, NodeDecodeError, DAG_PB_CODEC, RAW_CODEC,
};
use proptest::prelude::*;
use prost::Message as _;

type Store = HashMap<Cid, Vec<u8>>;

fn store_of(blocks: Vec<Block>) -> Store {
    blocks.into_iter().map(|b| (b.cid, b.data)).collect()
}

fn small(chunk_size: usize, max_children: usize) -> ImportOptions {
    ImportOptions { chunk_size, max_children }
}

/// A UnixFS file node over `links` (CID, tsize) with the given blocksizes.
fn file_node(links: &[(Cid, u64)], blocksizes: Vec<u64>, filesize: Option<u64>) -> Vec<u8> {
    PbNode {
        links: links
            .iter()
            .map(|(cid, tsize)| PbLink { hash: Some(cid.to_bytes()), name: Some(String::new()), tsize: Some(*tsize) })
            .collect(),
        data: Some(
            UnixfsData { r#type: DataType::File as i32, filesize, blocksizes, ..Default::default() }.encode_to_vec(),
        ),
    }
    .encode_to_vec()
}

fn put(store: &mut Store, codec: u64, data: Vec<u8>) -> Cid {
    let cid = cid_v1_sha256(codec, &data);
    store.insert(cid, data);
    cid
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes with arbitrary (small) chunking survive the round
    /// trip, and the way input is split across `push` calls never changes
    /// the DAG.
    #[test]
    fn import_export_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..6000),
        chunk_size in 1usize..700,
        max_children in 2usize..6,
        split in any::<prop::sample::Index>(),
    ) {
        let opts = small(chunk_size, max_children);
        let (summary, blocks) = import_bytes(&data, &opts).unwrap();
        prop_assert_eq!(summary.file_size, data.len() as u64);
        prop_assert_eq!(summary.blocks, blocks.len() as u64);
        prop_assert_eq!(blocks.last().map(|b| b.cid), Some(summary.root));

        let mut importer = Importer::new(opts).unwrap();
        let mut pieces = Vec::new();
        let at = split.index(data.len() + 1);
        importer.push(&data[..at], |b| pieces.push(b));
        importer.push(&data[at..], |b| pieces.push(b));
        let again = importer.finish(|b| pieces.push(b));
        prop_assert_eq!(again, summary);
        prop_assert_eq!(&pieces, &blocks);

        let out = export_bytes(&summary.root, &store_of(blocks), &ExportOptions::default()).unwrap();
        prop_assert_eq!(out, data);
    }

    /// Short reads and `Interrupted` errors from the reader do not change
    /// the DAG.
    #[test]
    fn reader_read_sizes_are_irrelevant(
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        max_read in 1usize..300,
        chunk_size in 1usize..700,
    ) {
        struct Trickle<'a> { data: &'a [u8], max: usize, interrupt: bool }
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.interrupt = !self.interrupt;
                if self.interrupt {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
                let n = self.max.min(buf.len()).min(self.data.len());
                buf[..n].copy_from_slice(&self.data[..n]);
                self.data = &self.data[n..];
                Ok(n)
            }
        }
        let opts = small(chunk_size, 3);
        let (summary, blocks) = import_bytes(&data, &opts).unwrap();
        let mut streamed = Vec::new();
        let reader = Trickle { data: &data, max: max_read, interrupt: false };
        let again = import_reader(reader, &opts, |b| {
            streamed.push(b);
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap();
        prop_assert_eq!(again, summary);
        prop_assert_eq!(streamed, blocks);
    }

    /// With Helia's defaults anything up to one chunk is a single raw leaf.
    #[test]
    fn small_files_are_one_raw_leaf(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let (summary, blocks) = import_bytes(&data, &ImportOptions::default()).unwrap();
        prop_assert_eq!(summary.root, cid_v1_sha256(RAW_CODEC, &data));
        prop_assert_eq!(blocks.len(), 1);
    }
}

#[test]
fn empty_file_is_the_empty_raw_leaf() {
    let (summary, blocks) = import_bytes(&[], &ImportOptions::default()).unwrap();
    assert_eq!(summary.root.to_string(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    assert_eq!(blocks.len(), 1);
    assert!(blocks[0].data.is_empty());
    let out = export_bytes(&summary.root, &store_of(blocks), &ExportOptions::default()).unwrap();
    assert!(out.is_empty());
}

/// The exact bytes of a two-leaf parent, written out from the dag-pb and
/// UnixFS schemas: Links (field 2) before Data (field 1), each link with
/// Hash, an empty Name and Tsize; Data = {Type: File, filesize, blocksizes
/// unpacked}.
#[test]
fn parent_node_bytes_are_canonical() {
    let (summary, blocks) = import_bytes(&[0xaa, 0xbb], &small(1, 2)).unwrap();
    let leaf_a = cid_v1_sha256(RAW_CODEC, &[0xaa]).to_bytes();
    let leaf_b = cid_v1_sha256(RAW_CODEC, &[0xbb]).to_bytes();
    assert_eq!(leaf_a.len(), 36); // 01 55 12 20 + 32-byte digest
    let mut expected = Vec::new();
    for leaf in [&leaf_a, &leaf_b] {
        // PBNode.Links (2, LEN), 42 bytes: Hash (1, LEN 36), Name (2, LEN 0), Tsize (3, 1)
        expected.extend_from_slice(&[0x12, 42, 0x0a, 36]);
        expected.extend_from_slice(leaf);
        expected.extend_from_slice(&[0x12, 0x00, 0x18, 0x01]);
    }
    // PBNode.Data (1, LEN 8): Type=File(2), filesize=2, blocksizes 1 and 1
    expected.extend_from_slice(&[0x0a, 0x08, 0x08, 0x02, 0x18, 0x02, 0x20, 0x01, 0x20, 0x01]);
    let root = blocks.last().unwrap();
    assert_eq!(root.data, expected);
    assert_eq!(summary.root, cid_v1_sha256(DAG_PB_CODEC, &expected));
}

#[test]
fn iterator_matches_callback_import() {
    let data = pattern(10_000);
    let opts = small(100, 3);
    let (summary, blocks) = import_bytes(&data, &opts).unwrap();
    let mut iter = ImportBlocks::new(&data[..], &opts).unwrap();
    let collected: Vec<Block> = iter.by_ref().map(Result::unwrap).collect();
    assert_eq!(collected, blocks);
    assert_eq!(iter.summary(), Some(summary));
}

#[test]
fn bad_options_are_rejected() {
    assert!(matches!(Importer::new(small(0, 2)), Err(ImportError::ZeroChunkSize)));
    assert!(matches!(Importer::new(small(10, 1)), Err(ImportError::TooFewChildren(1))));
}

#[test]
fn reader_and_sink_errors_surface() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.0.min(buf.len());
            self.0 -= n;
            Ok(n)
        }
    }
    let opts = small(10, 2);
    let err = import_reader(Failing(25), &opts, |_| Ok::<_, std::io::Error>(())).unwrap_err();
    assert!(matches!(err, ImportError::Io(_)), "{err}");

    let mut iter = ImportBlocks::new(Failing(25), &opts).unwrap();
    assert!(iter.by_ref().any(|r| r.is_err()));
    assert!(iter.next().is_none(), "iterator ends after an error");
    assert_eq!(iter.summary(), None);

    let err = import_reader(&pattern(100)[..], &opts, |_| Err(std::io::Error::other("store full"))).unwrap_err();
    assert!(matches!(err, ImportError::Sink(_)), "{err}");
}

fn multi_block_file() -> (Cid, Store, Vec<u8>) {
    let data = pattern(5000);
    let (summary, blocks) = import_bytes(&data, &small(1000, 2)).unwrap();
    (summary.root, store_of(blocks), data)
}

#[test]
fn missing_block_is_reported() {
    let (root, mut store, _) = multi_block_file();
    let leaf = cid_v1_sha256(RAW_CODEC, &pattern(1000));
    store.remove(&leaf).unwrap();
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::MissingBlock(c) if c == leaf), "{err}");
}

#[test]
fn tampered_block_fails_hash_check() {
    let (root, mut store, _) = multi_block_file();
    let leaf = cid_v1_sha256(RAW_CODEC, &pattern(1000));
    store.get_mut(&leaf).unwrap()[3] ^= 1;
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::HashMismatch(c) if c == leaf), "{err}");
}

#[test]
fn source_errors_are_wrapped() {
    let (root, _, _) = multi_block_file();
    let source = |_: &Cid| -> Result<Option<Vec<u8>>, std::io::Error> { Err(std::io::Error::other("offline")) };
    let err = export_bytes(&root, &source, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::Source { cid, .. } if cid == root), "{err}");
}

#[test]
fn directory_is_not_a_file() {
    let mut store = Store::new();
    let dir = PbNode {
        links: vec![],
        data: Some(UnixfsData { r#type: DataType::Directory as i32, ..Default::default() }.encode_to_vec()),
    };
    let root = put(&mut store, DAG_PB_CODEC, dir.encode_to_vec());
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::BadNode { source: NodeDecodeError::NotAFile("directory"), .. }), "{err}");
}

#[test]
fn lying_blocksizes_are_caught() {
    let mut store = Store::new();
    let leaf = put(&mut store, RAW_CODEC, vec![1, 2, 3, 4]);
    // Parent claims the leaf holds 5 bytes.
    let root = put(&mut store, DAG_PB_CODEC, file_node(&[(leaf, 4)], vec![5], Some(5)));
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::SizeMismatch { expected: 5, actual: 4, .. }), "{err}");

    let root = put(&mut store, DAG_PB_CODEC, file_node(&[(leaf, 4)], vec![4], Some(9)));
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ExportError::BadNode { source: NodeDecodeError::FilesizeMismatch { declared: 9, computed: 4 }, .. }
        ),
        "{err}"
    );

    let root = put(&mut store, DAG_PB_CODEC, file_node(&[(leaf, 4)], vec![], Some(0)));
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(
        matches!(err, ExportError::BadNode { source: NodeDecodeError::BlocksizeCount { links: 1, blocksizes: 0 }, .. }),
        "{err}"
    );

    let root = put(&mut store, DAG_PB_CODEC, file_node(&[(leaf, 4), (leaf, 4)], vec![u64::MAX, 4], None));
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::BadNode { source: NodeDecodeError::SizeOverflow, .. }), "{err}");
}

#[test]
fn garbage_dag_pb_is_malformed() {
    let mut store = Store::new();
    let root = put(&mut store, DAG_PB_CODEC, vec![0xff, 0xff, 0xff]);
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::BadNode { source: NodeDecodeError::DagPb(_), .. }), "{err}");
    // Valid dag-pb, but Data is not UnixFS.
    let node = PbNode { links: vec![], data: Some(vec![0x08]) };
    let root = put(&mut store, DAG_PB_CODEC, node.encode_to_vec());
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::BadNode { source: NodeDecodeError::Unixfs(_), .. }), "{err}");
}

/// A chain of single-link nodes, `depth` hops from root to leaf.
fn chain(depth: usize) -> (Cid, Store) {
    let mut store = Store::new();
    let mut cid = put(&mut store, RAW_CODEC, b"deep".to_vec());
    for _ in 0..depth {
        cid = put(&mut store, DAG_PB_CODEC, file_node(&[(cid, 0)], vec![4], Some(4)));
    }
    (cid, store)
}

#[test]
fn depth_is_bounded() {
    let (root, store) = chain(40);
    let err = export_bytes(&root, &store, &ExportOptions::default()).unwrap_err();
    assert!(matches!(err, ExportError::TooDeep(32)), "{err}");
    let deep = ExportOptions { max_depth: 40, ..Default::default() };
    assert_eq!(export_bytes(&root, &store, &deep).unwrap(), b"deep");
    let shallow = ExportOptions { max_depth: 39, ..Default::default() };
    assert!(matches!(export_bytes(&root, &store, &shallow), Err(ExportError::TooDeep(39))));
}

#[test]
fn codecs_hashes_and_limits() {
    let store = Store::new();
    let cbor = Cid::new_v1(0x71, Multihash::wrap(0x12, &[0; 32]).unwrap());
    assert!(matches!(
        export_bytes(&cbor, &store, &ExportOptions::default()),
        Err(ExportError::UnsupportedCodec { codec: 0x71, .. })
    ));
    let blake3 = Cid::new_v1(RAW_CODEC, Multihash::wrap(0x1e, &[0; 32]).unwrap());
    assert!(matches!(
        export_bytes(&blake3, &store, &ExportOptions::default()),
        Err(ExportError::UnsupportedHash { code: 0x1e, size: 32, .. })
    ));
    // Identity CIDs carry their bytes; nothing is fetched.
    let inline = Cid::new_v1(RAW_CODEC, Multihash::wrap(0x00, b"hi").unwrap());
    assert_eq!(export_bytes(&inline, &store, &ExportOptions::default()).unwrap(), b"hi");

    let (root, store, data) = multi_block_file();
    let tight = ExportOptions { max_block_size: 999, ..Default::default() };
    assert!(matches!(export_bytes(&root, &store, &tight), Err(ExportError::BlockTooLarge { len: 1000, max: 999, .. })));
    let small_file = ExportOptions { max_file_size: 4999, ..Default::default() };
    assert!(matches!(
        export_bytes(&root, &store, &small_file),
        Err(ExportError::FileTooLarge { size: 5000, max: 4999 })
    ));
    let mut out = Vec::new();
    let n = pollen_router::unixfs::export_to_writer(&root, &store, &mut out, &ExportOptions::default()).unwrap();
    assert_eq!(n, 5000);
    assert_eq!(out, data);
}

/// Nodes that carry inline data and children (as trickle/old importers make)
/// export as data first, then children.
#[test]
fn inline_data_precedes_children() {
    let mut store = Store::new();
    let leaf = put(&mut store, RAW_CODEC, b"world".to_vec());
    let node = PbNode {
        links: vec![PbLink { hash: Some(leaf.to_bytes()), name: None, tsize: None }],
        data: Some(
            UnixfsData {
                r#type: DataType::File as i32,
                data: Some(b"hello ".to_vec()),
                blocksizes: vec![5],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    };
    let root = put(&mut store, DAG_PB_CODEC, node.encode_to_vec());
    assert_eq!(export_bytes(&root, &store, &ExportOptions::default()).unwrap(), b"hello world");
}
