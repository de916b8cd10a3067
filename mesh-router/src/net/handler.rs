//! The router's connection handler: `libp2p-stream`'s handler plus what the remote said it supports.
//!
//! Why: swarms that negotiate substreams lazily (`Version::V1Lazy`, which `docs/ble-link.md` asks for) report an
//! outbound stream as open before the remote accepted its protocol, so "try `/pollen/want/1.0.0`, then Bitswap"
//! cannot tell a Helia node from a Pollen node: the first protocol always "works". Identify knows better. Its
//! handler reports the remote's protocols to every handler of the connection
//! ([`ConnectionEvent::RemoteProtocolsChange`]); this wrapper passes that on to the behaviour, which then opens the
//! stream of the dialect the remote really speaks.

use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p_swarm::handler::{ConnectionEvent, ProtocolsChange};
use libp2p_swarm::{ConnectionHandler, ConnectionHandlerEvent, NetworkBehaviour, StreamProtocol, SubstreamProtocol};

use super::links::{BITSWAP_PROTOCOL, WANT_PROTOCOL};

type Inner = <libp2p_stream::Behaviour as NetworkBehaviour>::ConnectionHandler;

/// Which of the router's protocols the remote lists (in identify, or whatever reports remote protocols).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteSupport {
    /// `/pollen/want/1.0.0`.
    pub want: bool,
    /// `/ipfs/bitswap/1.2.0`.
    pub bitswap: bool,
}

impl RemoteSupport {
    /// Applies a change of the remote's protocols; true if it touched the router's protocols.
    pub(super) fn apply(&mut self, change: &ProtocolsChange<'_>) -> bool {
        let (protocols, supported): (Vec<&StreamProtocol>, bool) = match change {
            ProtocolsChange::Added(added) => (added.clone().collect(), true),
            ProtocolsChange::Removed(removed) => (removed.clone().collect(), false),
        };
        let mut touched = false;
        for protocol in protocols {
            if *protocol == WANT_PROTOCOL {
                self.want = supported;
                touched = true;
            } else if *protocol == BITSWAP_PROTOCOL {
                self.bitswap = supported;
                touched = true;
            }
        }
        touched
    }
}

/// The router's [`ConnectionHandler`]: streams as `libp2p-stream` handles them, plus [`RemoteSupport`] reports.
pub struct RouterHandler {
    inner: Inner,
    support: RemoteSupport,
    /// The remote's protocols were reported at least once (identify completed).
    reported_once: bool,
    pending: Option<RemoteSupport>,
}

impl RouterHandler {
    pub(super) fn new(inner: Inner) -> Self {
        Self { inner, support: RemoteSupport::default(), reported_once: false, pending: None }
    }
}

impl ConnectionHandler for RouterHandler {
    type FromBehaviour = <Inner as ConnectionHandler>::FromBehaviour;
    type ToBehaviour = RemoteSupport;
    type InboundProtocol = <Inner as ConnectionHandler>::InboundProtocol;
    type OutboundProtocol = <Inner as ConnectionHandler>::OutboundProtocol;
    type InboundOpenInfo = <Inner as ConnectionHandler>::InboundOpenInfo;
    type OutboundOpenInfo = <Inner as ConnectionHandler>::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.inner.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>> {
        if let Some(support) = self.pending.take() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(support));
        }
        self.inner.poll(cx).map(|event| event.map_custom(|never: Infallible| match never {}))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx).map(|event| event.map(|never: Infallible| match never {}))
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        if let ConnectionEvent::RemoteProtocolsChange(change) = &event {
            // The first report says "identify is done" even if it lists neither protocol; later ones only matter
            // when they touch ours. The connection polls the handler right after this call.
            if self.support.apply(change) || !self.reported_once {
                self.reported_once = true;
                self.pending = Some(self.support);
            }
        }
        self.inner.on_connection_event(event);
    }
}
