//! A test node: a libp2p swarm over one BLE driver, running in its own task and driven by commands.
//!
//! Scenarios talk to nodes only through this API, so the same scenario runs on the sim medium, on BlueZ in the
//! virtual lab, and on remote device-lab hosts.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, Transport};
use pollen_ble::driver::BleDriver;
use pollen_ble::{BleConfig, BleHandle, BleTransport, LinkInfo};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::LabError;

const BULK: StreamProtocol = StreamProtocol::new("/pollen-conformance/bulk/1");
const ECHO: StreamProtocol = StreamProtocol::new("/pollen-conformance/echo/1");
const MAX_ECHO: usize = 1024 * 1024;
/// How many skipped failures a timed-out wait reports.
const MAX_REPORTED_FAILURES: usize = 8;

/// Byte `i` of the deterministic bulk-transfer pattern.
pub fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// How to build a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Transport configuration (session tunables, L2CAP on/off, seed).
    pub ble: BleConfig,
    /// Dial every Pollen node the scanner sees.
    pub auto_dial: bool,
    /// Act as a circuit-relay v2 server for other nodes.
    pub relay_server: bool,
}

/// What a node reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// A listen address (a BLE `/memory/…` address or a relayed `/p2p-circuit` one).
    Listening(Multiaddr),
    /// A connection is up.
    Connected {
        /// The remote peer.
        peer: PeerId,
        /// The remote address of the connection.
        address: Multiaddr,
        /// This node dialed.
        outbound: bool,
    },
    /// A connection closed; `error` is `None` for a clean close.
    ConnectionClosed {
        /// The remote peer.
        peer: PeerId,
        /// Why, if it failed.
        error: Option<String>,
    },
    /// A dial failed.
    DialFailed {
        /// The swarm's error.
        error: String,
    },
    /// The scanner saw a Pollen node advertise at this address.
    Discovered(Multiaddr),
    /// A relay accepted this node's reservation.
    RelayReserved,
    /// A bulk transfer arrived completely.
    BulkReceived {
        /// The sender.
        from: PeerId,
        /// Bytes received.
        bytes: u64,
        /// Whether every byte matched the pattern.
        intact: bool,
        /// Goodput from the first to the last byte, bit/s.
        goodput_bps: f64,
    },
}

impl NodeEvent {
    /// A one-line description when the event is a failure (a failed dial, a connection closed by an error).
    fn failure(&self) -> Option<String> {
        match self {
            NodeEvent::DialFailed { error } => Some(format!("dial failed: {error}")),
            NodeEvent::ConnectionClosed { peer, error: Some(error) } => {
                Some(format!("connection to {peer} closed: {error}"))
            }
            _ => None,
        }
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    ping: ping::Behaviour,
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
    relay_server: Toggle<relay::Behaviour>,
    relay_client: relay::client::Behaviour,
    ble: pollen_ble::discovery::Behaviour,
}

enum Command {
    Listen,
    ListenVia(Multiaddr),
    Dial(Multiaddr),
    Connections(oneshot::Sender<Connections>),
}

/// The swarm's connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connections {
    /// Peers with at least one connection.
    pub peers: Vec<PeerId>,
    /// Established connections in total.
    pub established: u32,
}

/// A running test node. Dropping it stops the swarm and its transport.
pub struct Node {
    peer_id: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    control: libp2p_stream::Control,
    ble: Vec<BleHandle>,
    transports: usize,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn build_swarm<D: BleDriver + Unpin>(
    drivers: Vec<D>,
    options: &NodeOptions,
) -> Result<(Swarm<Behaviour>, Vec<BleHandle>), LabError> {
    let transports: Vec<BleTransport> =
        drivers.into_iter().map(|d| BleTransport::spawn(d, options.ble.clone())).collect();
    let handles: Vec<BleHandle> = transports.iter().map(BleTransport::handle).collect();
    // One BLE transport per adapter; each declines addresses it has not seen, so `or_transport` routes dials.
    let combined = transports
        .into_iter()
        .map(|t| t.boxed())
        .reduce(|a, b| a.or_transport(b).map(|either, _| either.into_inner()).boxed())
        .ok_or_else(|| LabError::Setup("a node needs at least one driver".into()))?;
    let discovery = pollen_ble::discovery::Behaviour::new(handles.clone(), options.auto_dial);
    let relay_server = options.relay_server;
    let swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| {
            let upgraded = combined
                .upgrade(Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(pollen_ble::muxer::Config::default())
                .boxed();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(upgraded)
        })
        .map_err(|e| LabError::Setup(e.to_string()))?
        .with_relay_client(noise::Config::new, pollen_ble::muxer::Config::default)
        .map_err(|e| LabError::Setup(e.to_string()))?
        .with_behaviour(|key, relay_client| Behaviour {
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
            identify: identify::Behaviour::new(identify::Config::new("/pollen-conformance/1".into(), key.public())),
            stream: libp2p_stream::Behaviour::new(),
            relay_server: Toggle::from(
                relay_server.then(|| relay::Behaviour::new(key.public().to_peer_id(), relay::Config::default())),
            ),
            relay_client,
            ble: discovery,
        })
        .map_err(|e| LabError::Setup(e.to_string()))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(3600))
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    Ok((swarm, handles))
}

impl Node {
    /// Builds the swarm over `drivers` (one BLE transport each, e.g. one per adapter) and starts it in a task on
    /// the current tokio runtime.
    pub fn spawn<D: BleDriver + Unpin>(drivers: Vec<D>, options: NodeOptions) -> Result<Self, LabError> {
        let transports = drivers.len();
        let (mut swarm, ble) = build_swarm(drivers, &options)?;
        let relay_server = options.relay_server;
        let peer_id = *swarm.local_peer_id();
        let mut control = swarm.behaviour().stream.new_control();
        let (commands, mut command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        spawn_bulk_receiver(&mut control, event_tx.clone())?;
        spawn_echo_server(&mut control)?;
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        if relay_server {
                            publish_relay_address(&mut swarm, &event);
                        }
                        if let Some(e) = map_event(event) {
                            if event_tx.send(e).is_err() {
                                return;
                            }
                        }
                    }
                    command = command_rx.recv() => match command {
                        Some(c) => run_command(&mut swarm, c, &event_tx),
                        None => return,
                    },
                }
            }
        });
        Ok(Self { peer_id, commands, events, control, ble, transports, task })
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The links all of the node's BLE transports hold.
    pub fn links(&self) -> Vec<LinkInfo> {
        self.ble.iter().flat_map(BleHandle::links).collect()
    }

    /// The links whose sessions are still open.
    pub fn live_links(&self) -> Vec<LinkInfo> {
        self.links().into_iter().filter(|l| !l.closed).collect()
    }

    /// The address other nodes dial to reach this one over BLE (its first transport's).
    pub fn ble_address(&self) -> Multiaddr {
        self.ble[0].local_address()
    }

    /// The addresses of every BLE transport of the node, in driver order.
    pub fn ble_addresses(&self) -> Vec<Multiaddr> {
        self.ble.iter().map(BleHandle::local_address).collect()
    }

    /// Starts advertising on every transport (listening on `/memory/0` once per transport).
    pub fn listen(&self) {
        for _ in 0..self.transports {
            let _ = self.commands.send(Command::Listen);
        }
    }

    /// Listens through a circuit relay at `relay` (which must end in `/p2p/<relay peer id>`).
    pub fn listen_via(&self, relay: Multiaddr) {
        let _ = self.commands.send(Command::ListenVia(relay));
    }

    /// Dials an address.
    pub fn dial(&self, address: Multiaddr) {
        let _ = self.commands.send(Command::Dial(address));
    }

    /// The swarm's established connections.
    pub async fn connections(&self) -> Connections {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Connections(tx));
        rx.await.unwrap_or_default()
    }

    /// The next event, or a timeout.
    pub async fn next_event(&mut self, within: Duration) -> Result<NodeEvent, LabError> {
        match tokio::time::timeout(within, self.events.recv()).await {
            Ok(Some(e)) => Ok(e),
            Ok(None) => Err(LabError::NodeGone),
            Err(_) => Err(LabError::Timeout(within)),
        }
    }

    /// Waits for an event matching `pred`, skipping others.
    pub async fn wait_for(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&NodeEvent) -> bool,
    ) -> Result<NodeEvent, LabError> {
        let deadline = Instant::now() + within;
        // The failures skipped on the way, so a timeout says what went wrong instead of only that nothing came.
        let mut failures: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self.next_event(left).await.map_err(|e| match e {
                LabError::Timeout(_) if failures.is_empty() => LabError::Timeout(within),
                LabError::Timeout(_) => LabError::TimeoutSeeing { within, seen: failures.join("; ") },
                other => other,
            })?;
            if pred(&e) {
                return Ok(e);
            }
            if let Some(failure) = e.failure() {
                if failures.len() < MAX_REPORTED_FAILURES {
                    failures.push(failure);
                }
            }
        }
    }

    /// Sends `len` pattern bytes to `peer` on a new stream; returns when all were written and the stream closed.
    pub async fn send_bulk(&self, peer: PeerId, len: u64) -> Result<(), LabError> {
        let mut control = self.control.clone();
        let mut stream = control.open_stream(peer, BULK).await.map_err(|e| LabError::Stream(e.to_string()))?;
        stream.write_all(&len.to_be_bytes()).await?;
        let mut offset = 0u64;
        let mut chunk = vec![0u8; 16 * 1024];
        while offset < len {
            let n = (len - offset).min(chunk.len() as u64) as usize;
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern_byte(offset + i as u64);
            }
            stream.write_all(&chunk[..n]).await?;
            offset += n as u64;
        }
        stream.close().await?;
        Ok(())
    }

    /// Sends `payload` to `peer`'s echo service and returns what came back.
    pub async fn echo(&self, peer: PeerId, payload: &[u8]) -> Result<Vec<u8>, LabError> {
        let mut control = self.control.clone();
        let mut stream = control.open_stream(peer, ECHO).await.map_err(|e| LabError::Stream(e.to_string()))?;
        stream.write_all(&(payload.len() as u32).to_be_bytes()).await?;
        stream.write_all(payload).await?;
        stream.flush().await?;
        let mut back = vec![0u8; payload.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    }
}

fn run_command(swarm: &mut Swarm<Behaviour>, command: Command, events: &mpsc::UnboundedSender<NodeEvent>) {
    let result = match command {
        Command::Listen => {
            swarm.listen_on(Multiaddr::empty().with(Protocol::Memory(0))).map(drop).map_err(|e| e.to_string())
        }
        Command::ListenVia(relay) => {
            swarm.listen_on(relay.with(Protocol::P2pCircuit)).map(drop).map_err(|e| e.to_string())
        }
        Command::Dial(address) => swarm.dial(address).map_err(|e| e.to_string()),
        Command::Connections(reply) => {
            let peers = swarm.connected_peers().copied().collect();
            let established = swarm.network_info().connection_counters().num_established();
            let _ = reply.send(Connections { peers, established });
            Ok(())
        }
    };
    if let Err(error) = result {
        let _ = events.send(NodeEvent::DialFailed { error });
    }
}

/// A relay's reservations must carry an address to reach it; over BLE that is its current advertised address.
fn publish_relay_address(swarm: &mut Swarm<Behaviour>, event: &SwarmEvent<BehaviourEvent>) {
    match event {
        SwarmEvent::NewListenAddr { address, .. } if !address.iter().any(|p| p == Protocol::P2pCircuit) => {
            swarm.add_external_address(address.clone());
        }
        SwarmEvent::ExpiredListenAddr { address, .. } => swarm.remove_external_address(address),
        _ => {}
    }
}

fn map_event(event: SwarmEvent<BehaviourEvent>) -> Option<NodeEvent> {
    Some(match event {
        SwarmEvent::NewListenAddr { address, .. } => NodeEvent::Listening(address),
        SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => NodeEvent::Connected {
            peer: peer_id,
            address: endpoint.get_remote_address().clone(),
            outbound: endpoint.is_dialer(),
        },
        SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
            NodeEvent::ConnectionClosed { peer: peer_id, error: cause.map(|c| c.to_string()) }
        }
        SwarmEvent::OutgoingConnectionError { error, .. } => NodeEvent::DialFailed { error: error.to_string() },
        SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted { .. })) => {
            NodeEvent::RelayReserved
        }
        SwarmEvent::Behaviour(BehaviourEvent::Ble(pollen_ble::discovery::Event::Discovered { address, .. })) => {
            NodeEvent::Discovered(address)
        }
        _ => return None,
    })
}

fn spawn_bulk_receiver(
    control: &mut libp2p_stream::Control,
    events: mpsc::UnboundedSender<NodeEvent>,
) -> Result<(), LabError> {
    let mut incoming = control.accept(BULK).map_err(|e| LabError::Setup(e.to_string()))?;
    tokio::spawn(async move {
        while let Some((from, mut stream)) = incoming.next().await {
            let events = events.clone();
            tokio::spawn(async move {
                let mut header = [0u8; 8];
                if stream.read_exact(&mut header).await.is_err() {
                    return;
                }
                let expected = u64::from_be_bytes(header);
                let mut buf = vec![0u8; 16 * 1024];
                let (mut got, mut intact) = (0u64, true);
                let mut first: Option<(Instant, u64)> = None;
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    intact &= buf[..n].iter().enumerate().all(|(i, b)| *b == pattern_byte(got + i as u64));
                    got += n as u64;
                    first.get_or_insert((Instant::now(), n as u64));
                }
                let goodput_bps = match first {
                    Some((t0, n0)) if got > n0 => (got - n0) as f64 * 8.0 / t0.elapsed().as_secs_f64().max(1e-9),
                    _ => 0.0,
                };
                intact &= got == expected;
                let _ = events.send(NodeEvent::BulkReceived { from, bytes: got, intact, goodput_bps });
            });
        }
    });
    Ok(())
}

fn spawn_echo_server(control: &mut libp2p_stream::Control) -> Result<(), LabError> {
    let mut incoming = control.accept(ECHO).map_err(|e| LabError::Setup(e.to_string()))?;
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            tokio::spawn(async move {
                let mut len = [0u8; 4];
                stream.read_exact(&mut len).await?;
                let len = u32::from_be_bytes(len) as usize;
                if len > MAX_ECHO {
                    return Err(std::io::Error::other("echo payload too large"));
                }
                let mut buf = vec![0u8; len];
                stream.read_exact(&mut buf).await?;
                stream.write_all(&buf).await?;
                stream.close().await
            });
        }
    });
    Ok(())
}
