//! Router benchmark: duplicate block bytes and control overhead on a 20-node BLE mesh with overlapping requesters.
//!
//! ```text
//! cargo run --release -p pollen --example routerbench
//! ```
//!
//! Twenty nodes stand in a 5 × 4 grid, 25 m apart, on the simulated BLE medium (so each hears its neighbours up to
//! two steps away). Three nodes each publish a 4 MiB file; six requesters each fetch two of the three files, so
//! every file has several requesters in different parts of the mesh and their wants cross and coalesce. Everything
//! runs in virtual time. Printed:
//! - `duplicate_ratio` = block bytes received that the receiver already held ÷ block bytes that were new to it;
//! - `control_ratio` = bytes of control messages (wants, haves, requests, summaries, …) ÷ bytes of block data sent.

use std::error::Error;
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;

use futures::StreamExt;
use pollen::{BleBackend, Cid, GetUpdate, Node, NodeConfig};
use pollen_ble::sim::{MediumConfig, NodeConfig as SimNode, SimMedium};

const FILE: usize = 4 * 1024 * 1024;
const COLUMNS: usize = 5;
const ROWS: usize = 4;
const SPACING_M: f64 = 25.0;

async fn fetch(node: &Node, root: Cid) -> Result<usize, String> {
    let mut updates = Box::pin(node.get(root));
    while let Some(update) = updates.next().await {
        match update {
            GetUpdate::Done(bytes) => return Ok(bytes.len()),
            GetUpdate::Failed(e) => return Err(e),
            GetUpdate::Progress(_) => {}
        }
    }
    Err("node stopped".into())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let medium = SimMedium::new(MediumConfig::default());
    let dir = std::env::temp_dir().join(format!("pollen-routerbench-{}", std::process::id()));
    let mut nodes = Vec::new();
    for i in 0..COLUMNS * ROWS {
        let position = ((i % COLUMNS) as f64 * SPACING_M, (i / COLUMNS) as f64 * SPACING_M);
        let driver = medium.add_node(SimNode::android(position))?;
        let mut config = NodeConfig::new(dir.join(format!("node{i}")));
        config.ble = Some(BleBackend::Sim(driver));
        config.ble_config.seed = Some(i as u64 + 1);
        nodes.push(Node::start(config).await?);
    }
    // Let the mesh form (each node connects to the neighbours it hears, up to the 7-link limit).
    tokio::time::sleep(Duration::from_secs(30)).await;
    let publishers = [0, COLUMNS - 1, COLUMNS * ROWS - 1];
    let mut roots = Vec::new();
    for (k, &p) in publishers.iter().enumerate() {
        roots.push(nodes[p].put(common::pattern(FILE, k as u8 + 1)).await?);
    }
    let requests: [(usize, [usize; 2]); 6] =
        [(7, [0, 1]), (12, [1, 2]), (15, [0, 2]), (17, [0, 1]), (9, [0, 2]), (11, [1, 2])];
    let start = tokio::time::Instant::now();
    let gets = requests.iter().flat_map(|(node, files)| files.iter().map(move |f| (*node, *f)));
    let results = futures::future::join_all(gets.map(|(n, f)| {
        let node = &nodes[n];
        let root = roots[f];
        async move { (n, f, tokio::time::timeout(Duration::from_secs(3600), fetch(node, root)).await) }
    }))
    .await;
    let elapsed = start.elapsed();
    let mut failures = 0;
    for (n, f, result) in &results {
        match result {
            Ok(Ok(len)) if *len == FILE => {}
            other => {
                failures += 1;
                println!("# node {n} file {f}: {other:?}");
            }
        }
    }
    let (mut dup, mut received, mut control, mut blocks) = (0u64, 0u64, 0u64, 0u64);
    let (mut timeouts, mut requests) = (0u64, 0u64);
    for node in &nodes {
        let r = node.stats().await?;
        timeouts += r.request_timeouts;
        requests += r.requests_sent;
        let s = node.net_stats().await?;
        dup += s.duplicate_block_bytes;
        received += s.block_bytes_received;
        control += s.control_bytes_sent;
        blocks += s.block_bytes_sent;
    }
    let useful = received.saturating_sub(dup);
    println!(
        "# 20 nodes, 3 files of {} MiB, {} fetches ({} failed) in {:.0} s of radio time",
        FILE / (1024 * 1024),
        results.len(),
        failures,
        elapsed.as_secs_f64()
    );
    println!("# block bytes: sent {blocks}, received {received}, duplicate {dup}; control bytes {control}");
    println!("# requests {requests}, of which timed out {timeouts}");
    println!("routerbench duplicate_ratio={:.4}", dup as f64 / useful.max(1) as f64);
    println!("routerbench control_ratio={:.4}", control as f64 / blocks.max(1) as f64);
    for node in nodes {
        node.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failures > 0 {
        return Err(format!("{failures} fetches failed").into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?;
    runtime.block_on(run())
}
