//! The Pollen node: a libp2p swarm that assembles the transports (TCP, and BLE when given a driver), the mesh
//! router with its block store, identify and ping, and runs it in a task behind a small async API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), pollen::NodeError> {
//! use pollen::{Node, NodeConfig};
//! let node = Node::start(NodeConfig::new("/tmp/pollen-store".into())).await?;
//! let cid = node.put(b"hello mesh".to_vec()).await?;
//! println!("{} holds {cid}", node.peer_id());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

mod swarm_task;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
pub use pollen_ble::BleConfig;
pub use pollen_router::cid::Cid;
pub use pollen_router::net::{NetConfig, Progress};
use pollen_store::{BlockStore, StoreConfig};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// A BLE radio for the node.
pub enum BleBackend {
    /// A node of a simulated medium.
    Sim(pollen_ble::sim::SimDriver),
    /// A BlueZ adapter.
    #[cfg(feature = "bluez")]
    Bluez(pollen_ble::bluez::BluezDriver),
}

/// How to start a node.
pub struct NodeConfig {
    /// Where blocks and the node's identity live.
    pub store_dir: PathBuf,
    /// TCP addresses to listen on (e.g. `/ip4/0.0.0.0/tcp/4001`).
    pub listen: Vec<Multiaddr>,
    /// The BLE radio, if any.
    pub ble: Option<BleBackend>,
    /// BLE transport settings.
    pub ble_config: BleConfig,
    /// Dial every Pollen node the BLE scanner sees.
    pub ble_auto_dial: bool,
    /// Router settings.
    pub net: NetConfig,
    /// Bytes of blocks carried for others before the least recently used are evicted.
    pub cache_quota_bytes: u64,
}

impl NodeConfig {
    /// Defaults: no listen address, no BLE, 256 MiB of cache.
    pub fn new(store_dir: PathBuf) -> Self {
        Self {
            store_dir,
            listen: Vec::new(),
            ble: None,
            ble_config: BleConfig::default(),
            ble_auto_dial: true,
            net: NetConfig::default(),
            cache_quota_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Errors of the node API.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The block store failed.
    #[error("block store: {0}")]
    Store(#[from] pollen_store::StoreError),
    /// The router failed (import, export).
    #[error("{0}")]
    Router(#[from] pollen_router::net::NetError),
    /// Reading or writing the identity key failed.
    #[error("identity key {path}: {reason}")]
    Identity {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Building the swarm failed.
    #[error("swarm: {0}")]
    Swarm(String),
    /// A dial failed.
    #[error("dial {address}: {reason}")]
    Dial {
        /// The address.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The node stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// What a `get` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetUpdate {
    /// Blocks arrived.
    Progress(Progress),
    /// The whole file.
    Done(Vec<u8>),
    /// The get cannot complete.
    Failed(String),
}

enum Command {
    Put(Vec<u8>, oneshot::Sender<Result<Cid, NodeError>>),
    PutFile(PathBuf, oneshot::Sender<Result<Cid, NodeError>>),
    Get(Cid, mpsc::UnboundedSender<GetUpdate>),
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NodeError>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Neighbors(oneshot::Sender<Vec<PeerId>>),
    Has(Cid, oneshot::Sender<bool>),
    Stats(oneshot::Sender<(pollen_router::gossip::RouterStats, pollen_router::net::NetStats)>),
    Shutdown(oneshot::Sender<()>),
}

/// A running node. Dropping it stops the swarm (call [`Node::shutdown`] to wait for a clean stop).
pub struct Node {
    peer_id: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<tokio::task::JoinHandle<()>>,
}

fn load_or_create_identity(dir: &std::path::Path) -> Result<Keypair, NodeError> {
    let path = dir.join("identity.key");
    let err = |reason: String| NodeError::Identity { path: path.clone(), reason };
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let encoded = key.to_protobuf_encoding().map_err(|e| err(e.to_string()))?;
            std::fs::write(&path, encoded).map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

impl Node {
    /// Opens the store (creating it and the node's identity on first use), builds the swarm and starts it on the
    /// current tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        std::fs::create_dir_all(&config.store_dir)
            .map_err(|e| NodeError::Identity { path: config.store_dir.clone(), reason: e.to_string() })?;
        let keypair = load_or_create_identity(&config.store_dir)?;
        let store_config = StoreConfig { cache_quota_bytes: config.cache_quota_bytes, ..StoreConfig::default() };
        let store = Arc::new(BlockStore::open(config.store_dir.join("blocks.redb"), store_config)?);
        let peer_id = keypair.public().to_peer_id();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let swarm = swarm_task::build(keypair, store, config)?;
        let task = tokio::spawn(swarm_task::run(swarm, command_rx));
        Ok(Self { peer_id, commands, task: Some(task) })
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    /// Imports bytes as a UnixFS file (Helia-compatible CID), pinned; returns the root CID.
    pub async fn put(&self, bytes: Vec<u8>) -> Result<Cid, NodeError> {
        self.ask(|tx| Command::Put(bytes, tx)).await?
    }

    /// Imports a file from disk; returns the root CID.
    pub async fn put_file(&self, path: PathBuf) -> Result<Cid, NodeError> {
        self.ask(|tx| Command::PutFile(path, tx)).await?
    }

    /// Fetches the file under `root` from the mesh: progress updates, then the bytes (or a failure).
    pub fn get(&self, root: Cid) -> impl Stream<Item = GetUpdate> {
        let (tx, rx) = mpsc::unbounded_channel();
        if self.commands.send(Command::Get(root, tx.clone())).is_err() {
            let _ = tx.send(GetUpdate::Failed("the node has stopped".into()));
        }
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|u| (u, rx)) })
    }

    /// Connects to a peer and waits until it joined the router (speaks want gossip or Bitswap).
    pub async fn dial(&self, address: Multiaddr) -> Result<PeerId, NodeError> {
        self.ask(|tx| Command::Dial(address, tx)).await?
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NodeError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Waits until the node listens on at least `n` addresses (or `within` passes).
    pub async fn wait_listening(&self, n: usize, within: Duration) -> Result<Vec<Multiaddr>, NodeError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let addrs = self.listen_addrs().await?;
            if addrs.len() >= n || tokio::time::Instant::now() >= deadline {
                return Ok(addrs);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The router's neighbours.
    pub async fn neighbors(&self) -> Result<Vec<PeerId>, NodeError> {
        self.ask(Command::Neighbors).await
    }

    /// Whether the node's store holds `cid`.
    pub async fn has(&self, cid: Cid) -> Result<bool, NodeError> {
        self.ask(|tx| Command::Has(cid, tx)).await
    }

    /// The router's counters.
    pub async fn stats(&self) -> Result<pollen_router::gossip::RouterStats, NodeError> {
        Ok(self.ask(Command::Stats).await?.0)
    }

    /// Traffic counters: control and block bytes, duplicates.
    pub async fn net_stats(&self) -> Result<pollen_router::net::NetStats, NodeError> {
        Ok(self.ask(Command::Stats).await?.1)
    }

    /// Stops the swarm and closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.ask(Command::Shutdown).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
