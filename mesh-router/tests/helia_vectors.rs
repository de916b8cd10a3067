//! Replays `tests/helia/vectors.json` (root CIDs computed by Helia's
//! `@helia/unixfs` `addBytes`) through our importer. Needs no Node: the JSON
//! is committed; regenerate it with `tests/helia/gen-vectors.mjs`.

// Test helpers outside #[test] fns panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use cid::Cid;
use common::{pattern, PatternReader};
use pollen_router::unixfs::{
    export_bytes, import_reader, ExportOptions, ImportOptions, DEFAULT_CHUNK_SIZE, DEFAULT_MAX_CHILDREN,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    pattern: String,
    generator: HashMap<String, String>,
    profiles: Vec<Profile>,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Profile {
    name: String,
    chunk_size: usize,
    max_children: usize,
}

#[derive(Deserialize)]
struct Vector {
    profile: String,
    size: u64,
    root: String,
    blocks: u64,
}

fn load() -> VectorFile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/helia/vectors.json");
    let text = std::fs::read_to_string(path).expect("read vectors.json");
    serde_json::from_str(&text).expect("parse vectors.json")
}

fn options(file: &VectorFile, profile: &str) -> ImportOptions {
    let p = file.profiles.iter().find(|p| p.name == profile).unwrap_or_else(|| panic!("unknown profile {profile}"));
    ImportOptions { chunk_size: p.chunk_size, max_children: p.max_children }
}

#[test]
fn vector_file_describes_helia_defaults() {
    let file = load();
    assert_eq!(file.pattern, "byte i = (i * 31 + 7) mod 251");
    assert!(file.generator.contains_key("@helia/unixfs"));
    let default = options(&file, "helia-default");
    assert_eq!(default, ImportOptions::default());
    assert_eq!(default.chunk_size, DEFAULT_CHUNK_SIZE);
    assert_eq!(default.max_children, DEFAULT_MAX_CHILDREN);
}

/// Every vector, streamed through `import_reader` so even the 1 GiB inputs
/// never sit in memory.
#[test]
fn root_cids_match_helia() {
    let file = load();
    assert!(file.vectors.len() >= 30, "vector file looks truncated");
    let mut failures = Vec::new();
    for v in &file.vectors {
        let opts = options(&file, &v.profile);
        let mut blocks = 0u64;
        let mut last = None;
        let summary = import_reader(PatternReader::new(v.size), &opts, |b| {
            blocks += 1;
            last = Some(b.cid);
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap();
        let expected: Cid = v.root.parse().unwrap();
        assert_eq!(summary.file_size, v.size);
        assert_eq!(summary.blocks, blocks);
        assert_eq!(last, Some(summary.root), "root must be the last block");
        if summary.root != expected || blocks != v.blocks {
            failures.push(format!(
                "{} size {}: got {} ({} blocks), Helia {} ({} blocks)",
                v.profile, v.size, summary.root, blocks, expected, v.blocks
            ));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

/// The DAGs behind the vectors up to 50 MiB export back to the input.
#[test]
fn vector_dags_export_to_their_input() {
    let file = load();
    for v in file.vectors.iter().filter(|v| v.size <= 50 * 1024 * 1024) {
        let opts = options(&file, &v.profile);
        let mut store = HashMap::new();
        let summary = import_reader(PatternReader::new(v.size), &opts, |b| {
            store.insert(b.cid, b.data);
            Ok::<_, std::convert::Infallible>(())
        })
        .unwrap();
        let out = export_bytes(&summary.root, &store, &ExportOptions::default()).unwrap();
        assert!(out == pattern(v.size as usize), "{} size {} exported wrong bytes", v.profile, v.size);
    }
}
