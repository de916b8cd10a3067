//! The discovery behaviour: turns BLE sightings into swarm events and, optionally, dials.
//!
//! The PeerId of a sighted node is unknown until Noise runs, so dials go out by address only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::task::{Context, Poll};

use libp2p_core::transport::PortUse;
use libp2p_core::{Endpoint, Multiaddr};
use libp2p_identity::PeerId;
use libp2p_swarm::dial_opts::DialOpts;
use libp2p_swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, DialFailure, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};

use crate::transport::BleHandle;

/// What the behaviour reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A Pollen node advertises nearby; the address is dialable over the BLE transport.
    Discovered {
        /// `/memory/<ephemeral id>`.
        address: Multiaddr,
        /// Signal strength of the sighting, dBm.
        rssi: i16,
    },
}

/// Reports BLE sightings and, with auto-dial, connects to every sighted node it has no connection to.
pub struct Behaviour {
    handles: Vec<BleHandle>,
    auto_dial: bool,
    connected: HashMap<Multiaddr, usize>,
    dialing: HashMap<ConnectionId, Multiaddr>,
    dialing_addrs: HashSet<Multiaddr>,
    pending: VecDeque<ToSwarm<Event, THandlerInEvent<Self>>>,
}

impl Behaviour {
    /// Discovery over several BLE transports of one swarm (one per adapter); [`crate::BleTransport::discovery`]
    /// covers the usual single transport.
    pub fn new(handles: Vec<BleHandle>, auto_dial: bool) -> Self {
        Self {
            handles,
            auto_dial,
            connected: HashMap::new(),
            dialing: HashMap::new(),
            dialing_addrs: HashSet::new(),
            pending: VecDeque::new(),
        }
    }

    fn connection_opened(&mut self, addr: &Multiaddr) {
        *self.connected.entry(addr.clone()).or_default() += 1;
        self.dialing_addrs.remove(addr);
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _id: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.connection_opened(remote);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        _peer: PeerId,
        addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.dialing.remove(&id);
        self.connection_opened(addr);
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { endpoint, .. }) => {
                let addr = endpoint.get_remote_address();
                if let Some(n) = self.connected.get_mut(addr) {
                    *n -= 1;
                    if *n == 0 {
                        self.connected.remove(addr);
                    }
                }
            }
            FromSwarm::DialFailure(DialFailure { connection_id, .. }) => {
                if let Some(addr) = self.dialing.remove(&connection_id) {
                    self.dialing_addrs.remove(&addr);
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
        libp2p_core::util::unreachable(event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        let mut sightings = Vec::new();
        for handle in &self.handles {
            while let Poll::Ready(sighting) = handle.poll_sighting(cx) {
                sightings.push(sighting);
            }
        }
        for sighting in sightings {
            let addr = sighting.address;
            let idle = !self.connected.contains_key(&addr) && !self.dialing_addrs.contains(&addr);
            if self.auto_dial && idle {
                let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
                self.dialing.insert(opts.connection_id(), addr.clone());
                self.dialing_addrs.insert(addr.clone());
                self.pending.push_back(ToSwarm::Dial { opts });
            }
            if sighting.new {
                self.pending
                    .push_back(ToSwarm::GenerateEvent(Event::Discovered { address: addr, rssi: sighting.rssi }));
            }
        }
        match self.pending.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }
}
