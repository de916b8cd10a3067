//! `BleTransport`: the rust-libp2p `Transport` over a [`BleDriver`].
//!
//! Listening means advertising; dialing means connecting. Addresses are `/memory/<ephemeral id>` (see
//! `docs/ble-link.md` §5): listen on `/memory/0`, and dial the addresses the discovery behaviour reports.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use libp2p_core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent};
use libp2p_core::Multiaddr;

use crate::config::{parse_ble_multiaddr, BleConfig, BleError};
use crate::discovery;
use crate::driver::BleDriver;
use crate::engine::{lock, BleEngine, Core, LinkInfo, Upgrade};
use crate::stream::BleStream;

/// The BLE transport. Cloning is not offered: a swarm owns one; use [`BleTransport::handle`] to observe it.
pub struct BleTransport {
    core: Arc<Mutex<Core>>,
}

/// A cheap, cloneable view of a running transport, for diagnostics and the discovery behaviour.
#[derive(Clone)]
pub struct BleHandle {
    core: Arc<Mutex<Core>>,
}

impl BleTransport {
    /// Creates the transport and the engine future that drives `driver`. Run the engine on any executor.
    pub fn new<D: BleDriver + Unpin>(driver: D, config: BleConfig) -> (Self, BleEngine<D>) {
        let core = Core::new_shared(config, driver.capabilities());
        let engine = BleEngine::new(core.clone(), driver);
        (Self { core }, engine)
    }

    /// Creates the transport and spawns its engine on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn<D: BleDriver + Unpin>(driver: D, config: BleConfig) -> Self {
        let (transport, engine) = Self::new(driver, config);
        tokio::spawn(engine);
        transport
    }

    /// A handle to observe the transport after the swarm took it.
    pub fn handle(&self) -> BleHandle {
        BleHandle { core: self.core.clone() }
    }

    /// The discovery behaviour for this transport; with `auto_dial` it dials every Pollen peer it sees.
    pub fn discovery(&self, auto_dial: bool) -> discovery::Behaviour {
        discovery::Behaviour::new(vec![self.handle()], auto_dial)
    }
}

impl BleHandle {
    /// The links the engine holds.
    pub fn links(&self) -> Vec<LinkInfo> {
        lock(&self.core).link_infos()
    }

    /// The multiaddr this node currently advertises (its ephemeral ID).
    pub fn local_address(&self) -> Multiaddr {
        crate::config::ble_multiaddr(lock(&self.core).ephemeral())
    }

    pub(crate) fn poll_sighting(&self, cx: &mut Context<'_>) -> Poll<crate::engine::Sighting> {
        lock(&self.core).poll_sighting(cx)
    }
}

impl Transport for BleTransport {
    type Output = BleStream;
    type Error = BleError;
    type ListenerUpgrade = Upgrade;
    type Dial = BoxFuture<'static, Result<BleStream, BleError>>;

    /// Listens on `/memory/0` by advertising. A transport that already advertises declines further listens as
    /// "not supported", so a swarm with one BLE transport per adapter (composed with `or_transport`) gives each its
    /// own listener.
    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<BleError>> {
        match parse_ble_multiaddr(&addr) {
            Some(0) => match lock(&self.core).listen(id) {
                Err(BleError::ListenerExists) => Err(TransportError::MultiaddrNotSupported(addr)),
                other => other.map_err(TransportError::Other),
            },
            _ => Err(TransportError::MultiaddrNotSupported(addr)),
        }
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        lock(&self.core).remove_listener(id)
    }

    /// Dials a `/memory/<ephemeral id>` address this transport's scanner has seen. Addresses it has not seen are
    /// declined as "not supported", so another BLE transport of the same swarm (another adapter) can take them.
    fn dial(&mut self, addr: Multiaddr, _opts: DialOpts) -> Result<Self::Dial, TransportError<BleError>> {
        let remote = match parse_ble_multiaddr(&addr) {
            Some(id) if id != 0 && lock(&self.core).has_seen(id) => id,
            _ => return Err(TransportError::MultiaddrNotSupported(addr)),
        };
        let core = self.core.clone();
        Ok(async move {
            let rx = lock(&core).start_dial(remote)?;
            rx.await.map_err(|_| BleError::EngineGone)?
        }
        .boxed())
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Upgrade, BleError>> {
        lock(&self.core).poll_transport_event(cx)
    }
}

impl Drop for BleTransport {
    fn drop(&mut self) {
        lock(&self.core).wake_engine();
    }
}
