//! The router as a libp2p [`NetworkBehaviour`]: the want-gossip core wired to streams, the block store, Bitswap
//! 1.2.0 for IPFS peers, and whole-file `get`s.
//!
//! Every connected peer is sorted once: if it speaks `/pollen/want/1.0.0` it is a mesh neighbour, else if it speaks
//! `/ipfs/bitswap/1.2.0` it is a Bitswap neighbour (translated, see `bitswap_peer`), else it is ignored. What it
//! speaks comes from identify (see `handler`: probing by opening streams is blind under lazy negotiation), so the
//! swarm should run identify; Helia also only sends wants to peers whose identify lists Bitswap. Without identify
//! the router falls back to probing after `links::IDENTIFY_WAIT`.

mod bitswap_peer;
mod fetch;
mod handler;
mod links;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use cid::Cid;
use fetch::{Fetches, Step};
pub use fetch::{GetId, Progress};
use futures::Future;
pub use handler::{RemoteSupport, RouterHandler};
use libp2p_core::transport::PortUse;
use libp2p_core::{Endpoint, Multiaddr};
use libp2p_identity::PeerId;
use libp2p_swarm::{
    behaviour::ConnectionEstablished, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use links::Inbound;
pub use links::{Dialect, BITSWAP_PROTOCOL, WANT_PROTOCOL};
use pollen_store::{BlockStore, Class};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use crate::gossip::wire::WireMessage;
use crate::gossip::{Action, Control, Router, RouterConfig, Time};
use crate::unixfs::{export_bytes, import_reader, ExportOptions, ImportOptions};

/// Tunables of the behaviour.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// The want-gossip core's settings.
    pub router: RouterConfig,
    /// UnixFS import settings (Helia's defaults unless changed).
    pub import: ImportOptions,
    /// Blocks a `get` wants at once (0: 32).
    pub get_window: usize,
    /// Spray budget of every locally imported block (0 or 1: no spray): copies handed to couriers met later.
    pub spray_copies: u32,
}

/// What the behaviour reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A peer joined the router as a neighbour.
    Neighbor {
        /// The peer.
        peer: PeerId,
        /// How it speaks.
        dialect: Dialect,
    },
    /// A `get` advanced.
    GetProgress {
        /// The get.
        id: GetId,
        /// How far.
        progress: Progress,
    },
    /// Every block of a `get` is in the store; read the file with [`RouterBehaviour::read`].
    GetDone {
        /// The get.
        id: GetId,
        /// The file's root.
        root: Cid,
        /// Totals.
        progress: Progress,
    },
    /// A `get` cannot complete.
    GetFailed {
        /// The get.
        id: GetId,
        /// Why.
        error: String,
    },
    /// A single-block `want` is satisfied.
    Delivered {
        /// The block.
        cid: Cid,
    },
    /// A peer was dropped for breaking the protocol or sending a bad block.
    Misbehaved {
        /// The peer.
        peer: PeerId,
        /// What it did.
        reason: String,
    },
}

/// Errors of the behaviour's API.
#[derive(Debug, Error)]
pub enum NetError {
    /// The block store failed.
    #[error("block store: {0}")]
    Store(#[from] pollen_store::StoreError),
    /// Importing a file failed.
    #[error("import: {0}")]
    Import(#[from] crate::unixfs::ImportError),
    /// Exporting a file failed.
    #[error("export: {0}")]
    Export(#[from] crate::unixfs::ExportError),
    /// Reading the file to import failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A protocol is already registered on the swarm's stream behaviour.
    #[error("the router's protocols are already registered")]
    AlreadyRegistered,
}

/// Messages kept per peer that writes before its probe finished.
const MAX_EARLY_MESSAGES: usize = 64;

/// Traffic counters of the behaviour, for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Bytes of control messages queued for neighbours (framing included).
    pub control_bytes_sent: u64,
    /// Bytes of block data sent.
    pub block_bytes_sent: u64,
    /// Blocks received from neighbours.
    pub blocks_received: u64,
    /// Bytes of block data received.
    pub block_bytes_received: u64,
    /// Received blocks that were already in the store.
    pub duplicate_blocks: u64,
    /// Their bytes.
    pub duplicate_block_bytes: u64,
    /// CIDs in the router's want table right now (bounded by the router's limits).
    pub want_table: u64,
}

/// Messages held for one neighbour beyond its send queue before control messages are dropped. Blocks are never
/// dropped; their number is bounded by the requesters' per-neighbour request caps.
const MAX_OVERFLOW: usize = 4096;

struct Neighbor {
    dialect: Dialect,
    tx: mpsc::Sender<Vec<u8>>,
    /// Messages waiting for room in `tx`, in order.
    overflow: VecDeque<Vec<u8>>,
}

impl Neighbor {
    /// Moves waiting messages into the send queue; true when some are still waiting.
    fn flush(&mut self) -> bool {
        while !self.overflow.is_empty() {
            match self.tx.try_reserve() {
                Ok(permit) => {
                    if let Some(message) = self.overflow.pop_front() {
                        permit.send(message);
                    }
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// The router behaviour. See the [module documentation](self).
pub struct RouterBehaviour {
    streams: libp2p_stream::Behaviour,
    control: libp2p_stream::Control,
    core: Router<PeerId>,
    store: Arc<BlockStore>,
    config: NetConfig,
    neighbors: HashMap<PeerId, Neighbor>,
    inbox_tx: mpsc::UnboundedSender<Inbound>,
    inbox: mpsc::UnboundedReceiver<Inbound>,
    early: HashMap<PeerId, Vec<Inbound>>,
    /// New peers whose stream task waits for the remote's protocols (see `handler`).
    awaiting_support: HashMap<PeerId, oneshot::Sender<RemoteSupport>>,
    fetches: Fetches,
    events: VecDeque<Event>,
    to_close: VecDeque<PeerId>,
    epoch: Instant,
    timer: Pin<Box<Sleep>>,
    want_counter: u64,
    dropped_sends: u64,
    net_stats: NetStats,
}

impl RouterBehaviour {
    /// A router over `store`. Must be created inside a tokio runtime (stream tasks are spawned on it).
    pub fn new(store: Arc<BlockStore>, config: NetConfig) -> Result<Self, NetError> {
        let streams = libp2p_stream::Behaviour::new();
        let mut control = streams.new_control();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        for (protocol, dialect) in [(WANT_PROTOCOL, Dialect::Pollen), (BITSWAP_PROTOCOL, Dialect::Bitswap)] {
            let incoming = control.accept(protocol).map_err(|_| NetError::AlreadyRegistered)?;
            links::spawn_accept(incoming, dialect, inbox_tx.clone());
        }
        let mut core = Router::new(config.router.clone());
        for class in [Class::Pinned, Class::Cache] {
            for cid in store.iter_cids(class)? {
                core.add_held(cid?);
            }
        }
        let window = if config.get_window == 0 { 32 } else { config.get_window };
        Ok(Self {
            streams,
            control,
            core,
            store,
            config,
            neighbors: HashMap::new(),
            inbox_tx,
            inbox,
            early: HashMap::new(),
            awaiting_support: HashMap::new(),
            fetches: Fetches::new(window),
            events: VecDeque::new(),
            to_close: VecDeque::new(),
            epoch: Instant::now(),
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            want_counter: 0,
            dropped_sends: 0,
            net_stats: NetStats::default(),
        })
    }

    fn now(&self) -> Time {
        self.epoch.elapsed().as_millis() as Time
    }

    /// The block store.
    pub fn store(&self) -> &Arc<BlockStore> {
        &self.store
    }

    /// The want-gossip core's counters.
    pub fn stats(&self) -> crate::gossip::RouterStats {
        self.core.stats()
    }

    /// Traffic counters.
    pub fn net_stats(&self) -> NetStats {
        NetStats { want_table: self.core.wanted() as u64, ..self.net_stats }
    }

    /// Whether the store holds `cid`.
    pub fn has(&self, cid: &Cid) -> bool {
        self.store.has(cid).unwrap_or(false)
    }

    /// Control messages dropped because a neighbour's queue was far behind.
    pub fn dropped_sends(&self) -> u64 {
        self.dropped_sends
    }

    /// Imports `bytes` as a UnixFS file (pinned) and returns its root CID, as Helia's `addBytes` would.
    pub fn put(&mut self, bytes: &[u8]) -> Result<Cid, NetError> {
        self.import(&mut std::io::Cursor::new(bytes))
    }

    /// Imports a file, streaming it from disk, and returns its root CID.
    pub fn put_file(&mut self, path: &Path) -> Result<Cid, NetError> {
        let io = |source| NetError::Io { path: path.display().to_string(), source };
        let mut file = std::fs::File::open(path).map_err(io)?;
        self.import(&mut file)
    }

    fn import(&mut self, reader: &mut dyn std::io::Read) -> Result<Cid, NetError> {
        let store = self.store.clone();
        let mut added = Vec::new();
        let summary = import_reader(reader, &self.config.import, |block| {
            store.put(&block.cid, &block.data, Class::Pinned)?;
            added.push(block.cid);
            Ok::<_, pollen_store::StoreError>(())
        })?;
        let now = self.now();
        for cid in added {
            self.core.publish(cid, self.config.spray_copies);
            self.core.block_arrived(now, None, cid);
        }
        Ok(summary.root)
    }

    /// Fetches the whole file under `root` into the store; progress and completion arrive as events.
    pub fn get(&mut self, root: Cid) -> GetId {
        let id = self.fetches.start(root);
        self.pump_fetches();
        id
    }

    /// Stops a `get`.
    pub fn abort(&mut self, id: GetId) {
        let now = self.now();
        for cid in self.fetches.abort(id) {
            self.core.cancel(now, cid);
        }
    }

    /// Wants one block.
    pub fn want(&mut self, cid: Cid) {
        let now = self.now();
        self.core.want(now, cid);
    }

    /// No longer wants one block.
    pub fn cancel(&mut self, cid: Cid) {
        let now = self.now();
        self.core.cancel(now, cid);
    }

    /// Reads a complete file from the store.
    pub fn read(&self, root: &Cid) -> Result<Vec<u8>, NetError> {
        let store = self.store.clone();
        let source = move |cid: &Cid| store.get(cid);
        Ok(export_bytes(root, &source, &ExportOptions::default())?)
    }

    fn pump_fetches(&mut self) {
        loop {
            let wants = self.fetches.next_wants();
            if wants.is_empty() {
                return;
            }
            let now = self.now();
            for cid in wants {
                match self.store.get(&cid) {
                    Ok(Some(data)) => self.advance_fetches(&cid, &data),
                    _ => self.core.want(now, cid),
                }
            }
        }
    }

    fn advance_fetches(&mut self, cid: &Cid, data: &[u8]) {
        for step in self.fetches.on_block(cid, data) {
            self.events.push_back(match step {
                Step::Progress(id, progress) => Event::GetProgress { id, progress },
                Step::Done(id, root, progress) => {
                    let _ = self.store.pin(&root);
                    Event::GetDone { id, root, progress }
                }
                Step::Failed(id, error) => Event::GetFailed { id, error },
            });
        }
    }

    fn send(&mut self, peer: PeerId, bytes: Vec<u8>, droppable: bool) {
        let Some(n) = self.neighbors.get_mut(&peer) else { return };
        if n.overflow.is_empty() {
            if let Err(mpsc::error::TrySendError::Full(bytes)) = n.tx.try_send(bytes) {
                n.overflow.push_back(bytes);
            }
        } else if droppable && n.overflow.len() >= MAX_OVERFLOW {
            self.dropped_sends += 1;
        } else {
            n.overflow.push_back(bytes);
        }
    }

    fn send_control(&mut self, peer: PeerId, msg: Control) {
        let Some(dialect) = self.neighbors.get(&peer).map(|n| n.dialect) else { return };
        let bytes = match dialect {
            Dialect::Pollen => Some(WireMessage::Control(msg).encode_framed()),
            Dialect::Bitswap => bitswap_peer::to_bitswap(&msg).and_then(|m| m.encode_framed().ok()),
        };
        if let Some(bytes) = bytes {
            self.net_stats.control_bytes_sent += bytes.len() as u64;
            self.send(peer, bytes, true);
        }
    }

    fn send_block(&mut self, peer: PeerId, cid: Cid) {
        let data = match self.store.get(&cid) {
            Ok(Some(data)) => data,
            _ => {
                // Evicted since the core last heard of it.
                self.core.forget(&cid);
                self.send_control(peer, Control::DontHave(vec![cid]));
                return;
            }
        };
        let Some(dialect) = self.neighbors.get(&peer).map(|n| n.dialect) else { return };
        self.net_stats.block_bytes_sent += data.len() as u64;
        let bytes = match dialect {
            Dialect::Pollen => Some(WireMessage::Block { cid, data: data.into() }.encode_framed()),
            Dialect::Bitswap => bitswap_peer::block_message(cid, data).encode_framed().ok(),
        };
        if let Some(bytes) = bytes {
            self.send(peer, bytes, false);
        }
    }

    fn on_block(&mut self, peer: PeerId, cid: Cid, data: &[u8]) {
        let now = self.now();
        self.net_stats.blocks_received += 1;
        self.net_stats.block_bytes_received += data.len() as u64;
        if self.store.has(&cid).unwrap_or(false) {
            self.net_stats.duplicate_blocks += 1;
            self.net_stats.duplicate_block_bytes += data.len() as u64;
        }
        let class =
            if self.core.wants_locally(&cid) || self.fetches.waits_for(&cid) { Class::Pinned } else { Class::Cache };
        match self.store.put(&cid, data, class) {
            Ok(outcome) => {
                if outcome.evicted.blocks > 0 {
                    tracing::debug!(blocks = outcome.evicted.blocks, "cache evicted blocks");
                }
                self.core.block_arrived(now, Some(peer), cid);
                if self.fetches.waits_for(&cid) {
                    self.advance_fetches(&cid, data);
                }
            }
            Err(pollen_store::StoreError::HashMismatch { .. }) => self.core.block_refused(now, peer, cid),
            Err(error) => tracing::warn!(%cid, %error, "could not store a received block"),
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        let now = self.now();
        match inbound {
            Inbound::Opened { peer, dialect, tx } => {
                self.neighbors.insert(peer, Neighbor { dialect, tx, overflow: VecDeque::new() });
                self.core.peer_connected(now, peer);
                self.events.push_back(Event::Neighbor { peer, dialect });
                for early in self.early.remove(&peer).unwrap_or_default() {
                    self.on_inbound(early);
                }
            }
            Inbound::Unsupported { peer } => tracing::debug!(%peer, "peer speaks neither want gossip nor Bitswap"),
            Inbound::Pollen { peer, .. } | Inbound::Bitswap { peer, .. } if !self.neighbors.contains_key(&peer) => {
                // The peer wrote before our probe of it finished: hold the message until it did.
                let held = self.early.entry(peer).or_default();
                if held.len() < MAX_EARLY_MESSAGES {
                    held.push(inbound);
                }
            }
            Inbound::Pollen { peer, msg } => match msg {
                WireMessage::Control(c) => self.core.handle(now, peer, c),
                WireMessage::Block { cid, data } => self.on_block(peer, cid, &data),
            },
            Inbound::Bitswap { peer, msg } => {
                let hops = self.config.router.want_hops;
                let ttl = self.config.router.want_ttl_ms;
                let counter = &mut self.want_counter;
                let (controls, blocks) = bitswap_peer::from_bitswap(
                    *msg,
                    |cid| {
                        *counter += 1;
                        let mut h = cid.hash().digest().iter().fold(0u64, |a, b| a.rotate_left(8) ^ u64::from(*b));
                        h ^= counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                        h
                    },
                    hops,
                    ttl,
                );
                for control in controls {
                    self.core.handle(now, peer, control);
                }
                for (cid, data) in blocks {
                    self.on_block(peer, cid, &data);
                }
            }
            Inbound::Malformed { peer, error } => {
                self.events.push_back(Event::Misbehaved { peer, reason: error });
                self.to_close.push_back(peer);
            }
        }
    }

    fn run_actions(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                Action::Send { to, msg } => self.send_control(to, msg),
                Action::SendBlock { to, cid } => self.send_block(to, cid),
                Action::Delivered { cid } => {
                    if let Ok(Some(data)) = self.store.get(&cid) {
                        let _ = self.store.pin(&cid);
                        self.advance_fetches(&cid, &data);
                    }
                    self.events.push_back(Event::Delivered { cid });
                }
                Action::Disconnect { peer, reason } => {
                    self.events.push_back(Event::Misbehaved { peer, reason: format!("{reason:?}") });
                    self.to_close.push_back(peer);
                }
            }
        }
    }
}

impl NetworkBehaviour for RouterBehaviour {
    type ConnectionHandler = RouterHandler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(RouterHandler::new(self.streams.handle_established_inbound_connection(id, peer, local, remote)?))
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(RouterHandler::new(self.streams.handle_established_outbound_connection(id, peer, addr, role, port_use)?))
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished { peer_id, other_established: 0, .. }) => {
                let (support_tx, support_rx) = oneshot::channel();
                self.awaiting_support.insert(*peer_id, support_tx);
                links::spawn_connect(self.control.clone(), *peer_id, support_rx, self.inbox_tx.clone());
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { peer_id, remaining_established: 0, .. }) => {
                self.early.remove(peer_id);
                self.awaiting_support.remove(peer_id);
                if self.neighbors.remove(peer_id).is_some() {
                    let now = self.now();
                    self.core.peer_disconnected(now, *peer_id);
                }
            }
            _ => {}
        }
        self.streams.on_swarm_event(event);
    }

    fn on_connection_handler_event(&mut self, peer: PeerId, _: ConnectionId, support: THandlerOutEvent<Self>) {
        // The first report of a new peer's protocols decides its dialect; later ones (identify push) are ignored.
        if let Some(tx) = self.awaiting_support.remove(&peer) {
            tracing::debug!(%peer, ?support, "remote protocols");
            let _ = tx.send(support);
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        loop {
            let mut progressed = false;
            while let Poll::Ready(Some(inbound)) = self.inbox.poll_recv(cx) {
                self.on_inbound(inbound);
                progressed = true;
            }
            let now = self.now();
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
                progressed = true;
            }
            self.run_actions();
            self.pump_fetches();
            self.run_actions();
            let waiting = self.neighbors.values_mut().map(Neighbor::flush).filter(|w| *w).count() > 0;
            if let Some(peer_id) = self.to_close.pop_front() {
                return Poll::Ready(ToSwarm::CloseConnection { peer_id, connection: CloseConnection::All });
            }
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ToSwarm::GenerateEvent(event));
            }
            if let Poll::Ready(ToSwarm::Dial { opts }) = self.streams.poll(cx) {
                return Poll::Ready(ToSwarm::Dial { opts });
            }
            let core_deadline = self.core.poll_timeout().map(|t| self.epoch + std::time::Duration::from_millis(t));
            // Queued messages waiting for room: look again soon, as the writer tasks drain the queues.
            let retry = waiting.then(|| Instant::now() + std::time::Duration::from_millis(20));
            if let Some(at) = [core_deadline, retry].into_iter().flatten().min() {
                self.timer.as_mut().reset(at);
                if self.timer.as_mut().poll(cx).is_ready() {
                    continue;
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}
