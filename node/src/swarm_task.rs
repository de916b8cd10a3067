//! The swarm: transports and behaviours, and the task that runs it and answers the node's commands.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::dummy::DummyTransport;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder, Transport};
use pollen_ble::BleTransport;
use pollen_router::net::{Event as RouterEvent, GetId, RouterBehaviour};
use pollen_store::BlockStore;
use tokio::sync::{mpsc, oneshot};

use crate::{BleBackend, Command, GetUpdate, NodeConfig, NodeError};

/// Identify's protocol version; IPFS implementations expect this one.
const IDENTIFY_PROTOCOL: &str = "ipfs/0.1.0";

#[derive(NetworkBehaviour)]
pub(crate) struct NodeBehaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    router: RouterBehaviour,
    ble: Toggle<pollen_ble::discovery::Behaviour>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn ble_stack(ble: Option<BleTransport>, key: &Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, BoxError> {
    Ok(match ble {
        Some(ble) => ble
            .upgrade(Version::V1Lazy)
            .authenticate(noise::Config::new(key)?)
            .multiplex(pollen_ble::muxer::Config::default())
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
        None => DummyTransport::new().boxed(),
    })
}

pub(crate) fn build(
    keypair: Keypair,
    store: Arc<BlockStore>,
    config: NodeConfig,
) -> Result<Swarm<NodeBehaviour>, NodeError> {
    let swarm_err = |e: &dyn std::fmt::Display| NodeError::Swarm(e.to_string());
    let ble = config.ble.map(|backend| match backend {
        BleBackend::Sim(driver) => BleTransport::spawn(driver, config.ble_config.clone()),
        #[cfg(feature = "bluez")]
        BleBackend::Bluez(driver) => BleTransport::spawn(driver, config.ble_config.clone()),
    });
    let discovery = ble.as_ref().map(|t| t.discovery(config.ble_auto_dial));
    let listen_ble = ble.is_some();
    let router = RouterBehaviour::new(store, config.net)?;
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| swarm_err(&e))?
        .with_other_transport(|key| ble_stack(ble, key))
        .map_err(|e| swarm_err(&e))?
        .with_behaviour(|key| NodeBehaviour {
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("pollen/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
            router,
            ble: Toggle::from(discovery),
        })
        .map_err(|e| swarm_err(&e))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(3600))
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    for address in config.listen {
        swarm.listen_on(address.clone()).map_err(|e| NodeError::Dial { address, reason: e.to_string() })?;
    }
    if listen_ble {
        let advertise: Multiaddr = "/memory/0".parse().map_err(|e: libp2p::multiaddr::Error| swarm_err(&e))?;
        swarm.listen_on(advertise).map_err(|e| swarm_err(&e))?;
    }
    Ok(swarm)
}

struct State {
    gets: HashMap<GetId, mpsc::UnboundedSender<GetUpdate>>,
    dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, NodeError>>)>,
    /// Dials whose connection is up, waiting for the peer to join the router.
    joining: HashMap<PeerId, Vec<oneshot::Sender<Result<PeerId, NodeError>>>>,
    neighbors: Vec<PeerId>,
}

pub(crate) async fn run(mut swarm: Swarm<NodeBehaviour>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut state =
        State { gets: HashMap::new(), dials: HashMap::new(), joining: HashMap::new(), neighbors: Vec::new() };
    loop {
        tokio::select! {
            event = swarm.select_next_some() => on_event(&mut swarm, &mut state, event),
            command = commands.recv() => match command {
                Some(Command::Shutdown(done)) => {
                    drop(swarm);
                    let _ = done.send(());
                    return;
                }
                Some(c) => on_command(&mut swarm, &mut state, c),
                None => return,
            },
        }
    }
}

fn on_command(swarm: &mut Swarm<NodeBehaviour>, state: &mut State, command: Command) {
    let router = &mut swarm.behaviour_mut().router;
    match command {
        Command::Put(bytes, reply) => {
            let _ = reply.send(router.put(&bytes).map_err(NodeError::from));
        }
        Command::PutFile(path, reply) => {
            let _ = reply.send(router.put_file(&path).map_err(NodeError::from));
        }
        Command::Get(root, updates) => {
            let id = router.get(root);
            state.gets.insert(id, updates);
        }
        Command::Dial(address, reply) => {
            let opts = DialOpts::unknown_peer_id().address(address.clone()).build();
            let id = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => {
                    state.dials.insert(id, (address, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(NodeError::Dial { address, reason: e.to_string() }));
                }
            }
        }
        Command::ListenAddrs(reply) => {
            let _ = reply.send(swarm.listeners().cloned().collect());
        }
        Command::Neighbors(reply) => {
            let _ = reply.send(state.neighbors.clone());
        }
        Command::Has(cid, reply) => {
            let _ = reply.send(swarm.behaviour().router.has(&cid));
        }
        Command::Stats(reply) => {
            let router = &swarm.behaviour().router;
            let _ = reply.send((router.stats(), router.net_stats()));
        }
        Command::Shutdown(_) => {}
    }
}

fn on_event(swarm: &mut Swarm<NodeBehaviour>, state: &mut State, event: SwarmEvent<NodeBehaviourEvent>) {
    match event {
        SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. } => {
            if let Some((_, reply)) = state.dials.remove(&connection_id) {
                if state.neighbors.contains(&peer_id) {
                    let _ = reply.send(Ok(peer_id));
                } else {
                    state.joining.entry(peer_id).or_default().push(reply);
                }
            }
        }
        SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
            if let Some((address, reply)) = state.dials.remove(&connection_id) {
                let _ = reply.send(Err(NodeError::Dial { address, reason: error.to_string() }));
            }
        }
        SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
            state.neighbors.retain(|p| *p != peer_id);
        }
        SwarmEvent::NewListenAddr { address, .. } => tracing::debug!(%address, "listening"),
        SwarmEvent::Behaviour(NodeBehaviourEvent::Router(event)) => on_router_event(swarm, state, event),
        _ => {}
    }
}

fn on_router_event(swarm: &mut Swarm<NodeBehaviour>, state: &mut State, event: RouterEvent) {
    match event {
        RouterEvent::Neighbor { peer, dialect } => {
            tracing::debug!(%peer, ?dialect, "router neighbour");
            state.neighbors.push(peer);
            for reply in state.joining.remove(&peer).unwrap_or_default() {
                let _ = reply.send(Ok(peer));
            }
        }
        RouterEvent::GetProgress { id, progress } => {
            if let Some(updates) = state.gets.get(&id) {
                let _ = updates.send(GetUpdate::Progress(progress));
            }
        }
        RouterEvent::GetDone { id, root, .. } => {
            if let Some(updates) = state.gets.remove(&id) {
                let update = match swarm.behaviour().router.read(&root) {
                    Ok(bytes) => GetUpdate::Done(bytes),
                    Err(e) => GetUpdate::Failed(e.to_string()),
                };
                let _ = updates.send(update);
            }
        }
        RouterEvent::GetFailed { id, error } => {
            if let Some(updates) = state.gets.remove(&id) {
                let _ = updates.send(GetUpdate::Failed(error));
            }
        }
        RouterEvent::Delivered { .. } => {}
        RouterEvent::Misbehaved { peer, reason } => tracing::warn!(%peer, %reason, "peer misbehaved"),
    }
}
