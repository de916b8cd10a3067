//! Helpers the node's integration tests and routerbench share. Each binary compiles this module and uses part of it.
#![allow(dead_code)]

use pollen::{Node, NodeConfig};

/// `len` pseudo-random bytes from `seed` (xorshift): files whose every byte is checked on arrival.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A node storing in `dir` and listening on loopback TCP only.
pub async fn loopback_node(dir: &tempfile::TempDir) -> Node {
    let mut config = NodeConfig::new(dir.path().to_path_buf());
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
    Node::start(config).await.expect("node")
}
