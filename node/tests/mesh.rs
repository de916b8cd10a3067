//! Pollen nodes on the simulated BLE medium: multi-hop fetches, store-carry-forward by a courier, and coalescing.
//!
//! Virtual time (tokio's paused clock); positions are metres, BLE range is about 53 m.

mod common;
use common::pattern;

use std::time::Duration;

use futures::StreamExt;
use pollen::{BleBackend, Cid, GetUpdate, Node, NodeConfig};
use pollen_ble::driver::DeviceId;
use pollen_ble::sim::{MediumConfig, NodeConfig as SimNode, SimMedium};

const MIB: usize = 1024 * 1024;

struct Mesh {
    medium: SimMedium,
    nodes: Vec<Node>,
    devices: Vec<DeviceId>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn mesh(positions: &[(f64, f64)], spray: &[u32]) -> Mesh {
    let medium = SimMedium::new(MediumConfig::default());
    let mut nodes = Vec::new();
    let mut devices = Vec::new();
    let mut dirs = Vec::new();
    for (i, &p) in positions.iter().enumerate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let driver = medium.add_node(SimNode::android(p)).expect("sim node");
        devices.push(driver.device_id());
        let mut config = NodeConfig::new(dir.path().to_path_buf());
        config.ble = Some(BleBackend::Sim(driver));
        config.ble_config.seed = Some(i as u64 + 1);
        config.net.spray_copies = spray.get(i).copied().unwrap_or(0);
        nodes.push(Node::start(config).await.expect("node"));
        dirs.push(dir);
    }
    Mesh { medium, nodes, devices, _dirs: dirs }
}

async fn wait_neighbors(node: &Node, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while node.neighbors().await.map(|v| v.len()).unwrap_or(0) < n {
        assert!(tokio::time::Instant::now() < deadline, "only {:?} neighbours", node.neighbors().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn fetch(node: &Node, root: Cid, within: Duration) -> Vec<u8> {
    let mut updates = Box::pin(node.get(root));
    let result = tokio::time::timeout(within, async {
        while let Some(update) = updates.next().await {
            match update {
                GetUpdate::Done(bytes) => return bytes,
                GetUpdate::Failed(e) => panic!("get failed: {e}"),
                GetUpdate::Progress(_) => {}
            }
        }
        panic!("the node stopped")
    })
    .await;
    result.expect("get timed out")
}

#[tokio::test(start_paused = true)]
async fn a_gets_five_mib_held_only_by_d_across_three_hops() {
    let m = mesh(&[(0.0, 0.0), (30.0, 0.0), (60.0, 0.0), (90.0, 0.0)], &[]).await;
    let file = pattern(5 * MIB, 1);
    let root = m.nodes[3].put(file.clone()).await.unwrap();
    wait_neighbors(&m.nodes[1], 2, Duration::from_secs(60)).await;
    wait_neighbors(&m.nodes[2], 2, Duration::from_secs(60)).await;
    assert_eq!(m.nodes[0].neighbors().await.unwrap().len(), 1, "A only hears B");
    let start = tokio::time::Instant::now();
    let got = fetch(&m.nodes[0], root, Duration::from_secs(900)).await;
    assert!(got == file, "file corrupted on the way");
    // Relays keep what they forward: store-carry-forward.
    assert!(m.nodes[1].has(root).await.unwrap() && m.nodes[2].has(root).await.unwrap());
    let secs = start.elapsed().as_secs_f64();
    // Three BLE hops of ≈1.3 Mbit/s, pipelined block by block: well under three serial transfers (≈ 96 s).
    assert!(secs < 90.0, "took {secs} s of radio time");
}

#[tokio::test(start_paused = true)]
async fn a_courier_carries_the_file_between_islands_that_never_meet() {
    // Island 1: the source at 0 m and the courier at 10 m. Island 2: the requester at 1000 m.
    let m = mesh(&[(0.0, 0.0), (10.0, 0.0), (1000.0, 0.0)], &[4, 0, 0]).await;
    let file = pattern(3 * MIB, 2);
    let root = m.nodes[0].put(file.clone()).await.unwrap();
    let mut get = Box::pin(m.nodes[2].get(root));
    // The courier picks up spray copies of every block at island 1.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !m.nodes[1].has(root).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "the courier never took a copy");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    // It walks to island 2: out of the source's range, into the requester's.
    m.medium.set_position(m.devices[1], (990.0, 0.0));
    let got = tokio::time::timeout(Duration::from_secs(900), async {
        while let Some(update) = get.next().await {
            match update {
                GetUpdate::Done(bytes) => return bytes,
                GetUpdate::Failed(e) => panic!("get failed: {e}"),
                GetUpdate::Progress(_) => {}
            }
        }
        panic!("the node stopped")
    })
    .await
    .expect("the block never arrived");
    assert!(got == file);
    assert!(m.medium.links_between(m.devices[0], m.devices[2]).is_empty(), "no end-to-end path ever existed");
}

#[tokio::test(start_paused = true)]
async fn two_requesters_behind_one_relay_fetch_each_block_once() {
    // Holder at 0 m; relay at 30 m; requesters at (60, ±10): out of the holder's range, in the relay's.
    let m = mesh(&[(0.0, 0.0), (30.0, 0.0), (60.0, 10.0), (60.0, -10.0)], &[]).await;
    let file = pattern(2 * MIB + 12_345, 3);
    let root = m.nodes[0].put(file.clone()).await.unwrap();
    wait_neighbors(&m.nodes[1], 3, Duration::from_secs(60)).await;
    let (a, b) = tokio::join!(
        fetch(&m.nodes[2], root, Duration::from_secs(900)),
        fetch(&m.nodes[3], root, Duration::from_secs(900)),
    );
    assert!(a == file && b == file);
    let holder = m.nodes[0].stats().await.unwrap();
    let relay = m.nodes[1].stats().await.unwrap();
    // The file is 4 blocks (3 leaves of 1 MiB or less, and the root).
    assert_eq!(holder.blocks_sent, 4, "the holder served each block once: {holder:?}");
    assert_eq!(relay.blocks_in, 4, "the relay fetched each block once: {relay:?}");
}
