//! Fuzz-style robustness: hostile bytes fed to the dag-pb / UnixFS decoders
//! and to the exporter must produce errors, never panics or runaway memory.
//!
//! Garbage alone rarely gets past the hash check, so the exporter cases give
//! each garbage block a CID computed over it: the decoder then really sees it.

// Test helpers outside #[test] fns panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use cid::Cid;
use pollen_router::unixfs::pb::{PbNode, UnixfsData};
use pollen_router::unixfs::{
    cid_v1_sha256, decode_file_node, export_bytes, import_bytes, ExportOptions, ImportOptions, DAG_PB_CODEC,
};
use proptest::prelude::*;
use prost::Message as _;

/// Bytes that look a bit like protobuf: field keys for tags 1–8 with every
/// wire type, mixed with random bytes, so decoders get past the first byte.
fn protobufish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (1u8..9, 0u8..8).prop_map(|(tag, wt)| vec![(tag << 3) | wt]),
        proptest::collection::vec(any::<u8>(), 0..6),
        (0u8..40).prop_map(|len| vec![len]),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_never_panic(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        protobufish(),
    ]) {
        let _ = PbNode::decode(bytes.as_slice());
        let _ = UnixfsData::decode(bytes.as_slice());
        if let Ok(node) = decode_file_node(&bytes) {
            // Whatever decodes must be internally consistent.
            let sum: u64 = node.children.iter().map(|(_, s)| *s).sum::<u64>()
                + node.data.len() as u64;
            prop_assert_eq!(sum, node.file_size);
        }
    }

    /// A garbage root, correctly hashed, plus garbage children it might link
    /// to: export fails cleanly or returns exactly the declared size.
    #[test]
    fn exporter_survives_garbage_dags(
        root in protobufish(),
        children in proptest::collection::vec(protobufish(), 0..4),
    ) {
        let mut store = HashMap::new();
        for child in children {
            store.insert(cid_v1_sha256(DAG_PB_CODEC, &child), child);
        }
        let cid = cid_v1_sha256(DAG_PB_CODEC, &root);
        store.insert(cid, root.clone());
        let result = export_bytes(&cid, &store, &ExportOptions::default());
        if let (Ok(out), Ok(node)) = (result, decode_file_node(&root)) {
            prop_assert_eq!(out.len() as u64, node.file_size);
        }
    }

    /// Flip bytes in the root of a real multi-level DAG and re-hash it: the
    /// exporter must either reproduce a file of the declared size or fail.
    #[test]
    fn exporter_survives_mutated_roots(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        truncate in any::<prop::sample::Index>(),
        do_truncate in any::<bool>(),
    ) {
        let data = common::pattern(3000);
        let opts = ImportOptions { chunk_size: 100, max_children: 4 };
        let (summary, blocks) = import_bytes(&data, &opts).unwrap();
        let mut store: HashMap<Cid, Vec<u8>> =
            blocks.into_iter().map(|b| (b.cid, b.data)).collect();
        let mut root = store.remove(&summary.root).unwrap();
        for (at, x) in flips {
            let i = at.index(root.len());
            root[i] ^= x;
        }
        if do_truncate {
            root.truncate(truncate.index(root.len() + 1));
        }
        let cid = cid_v1_sha256(DAG_PB_CODEC, &root);
        store.insert(cid, root);
        if let Ok(out) = export_bytes(&cid, &store, &ExportOptions::default()) {
            prop_assert!(out.len() <= 1 << 20);
        }
    }
}

/// A node announcing absurd sizes must not make the exporter allocate them.
#[test]
fn huge_declared_sizes_do_not_allocate() {
    let node = PbNode {
        links: vec![],
        data: Some(UnixfsData { r#type: 2, filesize: Some(u64::MAX), ..Default::default() }.encode_to_vec()),
    };
    let bytes = node.encode_to_vec();
    let cid = cid_v1_sha256(DAG_PB_CODEC, &bytes);
    let store = HashMap::from([(cid, bytes)]);
    assert!(export_bytes(&cid, &store, &ExportOptions::default()).is_err());
}
