//! The engine: one task that owns the [`BleDriver`] and every link's [`LinkSession`], pumping bytes between them.
//!
//! Streams, the transport and the discovery behaviour share the engine's state ([`Core`]) behind one mutex; the
//! engine future does all driver calls. Nothing here blocks: the mutex is never held across an await.

mod events;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;
use futures::task::AtomicWaker;
use libp2p_core::transport::{ListenerId, TransportEvent};
use libp2p_core::Multiaddr;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::time::{Duration, Instant, Sleep};

use crate::advert::{AdvertPayload, EphemeralId};
use crate::config::{ble_multiaddr, BleConfig, BleError};
use crate::driver::{
    Advertisement, Bearer, BleDriver, Capabilities, DeviceId, LinkId, Role, ScanFilter, SendError, POLLEN_SERVICE_UUID,
};
use crate::session::{LinkError, LinkSession, SessionStats};
use crate::stream::BleStream;

/// How long a central keeps a closed link up so its final CLOSE frame can leave.
const CENTRAL_CLOSE_LINGER: Duration = Duration::from_millis(300);
/// Sightings kept at most; the oldest go first.
const MAX_SIGHTINGS: usize = 512;

pub(crate) type Upgrade = futures::future::Ready<Result<BleStream, BleError>>;

/// A discovered peer, for the discovery behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sighting {
    pub(crate) address: Multiaddr,
    pub(crate) rssi: i16,
    /// First sighting of this ephemeral ID within the sighting TTL.
    pub(crate) new: bool,
}

struct Seen {
    device: DeviceId,
    at: Instant,
    reported: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamState {
    /// An incoming link waiting for the peer's HELLO.
    NotHandedOut,
    Live,
    Dropped,
}

pub(crate) struct LinkEntry {
    pub(crate) session: LinkSession,
    pub(crate) device: DeviceId,
    pub(crate) role: Role,
    pub(crate) local_nonce: u64,
    pub(crate) remote_nonce: Option<u64>,
    pub(crate) established_at: Instant,
    pub(crate) stream: StreamState,
    handle: Option<Arc<StreamHandle>>,
    pub(crate) read_waker: Option<Waker>,
    pub(crate) write_waker: Option<Waker>,
    stash: [Option<Vec<u8>>; 2],
    blocked: [bool; 2],
    pub(crate) link_up: bool,
    disconnect_at: Option<Instant>,
}

enum Command {
    Advertise,
    StopAdvertising,
    Scan,
    ListenL2cap,
    Connect(DeviceId),
    OpenL2cap(LinkId, u16),
    Disconnect(LinkId),
}

struct PendingDial {
    tx: oneshot::Sender<Result<BleStream, BleError>>,
    deadline: Instant,
}

/// What a [`BleStream`] shares with the engine without locking: its drop must never take the engine's lock, since
/// streams can be dropped while the engine holds it.
#[derive(Debug, Default)]
pub(crate) struct StreamHandle {
    dropped: AtomicBool,
}

impl StreamHandle {
    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }
}

/// Engine state shared with streams, the transport and the discovery behaviour.
pub(crate) struct Core {
    config: BleConfig,
    caps: Capabilities,
    rng: StdRng,
    ephemeral: EphemeralId,
    next_rotation: Instant,
    listener: Option<ListenerId>,
    psm: Option<u16>,
    started: bool,
    pub(crate) links: HashMap<LinkId, LinkEntry>,
    seen: HashMap<EphemeralId, Seen>,
    dials: HashMap<DeviceId, Vec<PendingDial>>,
    commands: VecDeque<Command>,
    transport_events: VecDeque<TransportEvent<Upgrade, BleError>>,
    transport_waker: Option<Waker>,
    sightings: VecDeque<Sighting>,
    discovery_waker: Option<Waker>,
    engine_waker: Arc<AtomicWaker>,
    self_ref: Weak<Mutex<Core>>,
}

pub(crate) fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    // Core is plain data kept consistent at every unlock; a panic in another holder does not corrupt it.
    core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn slot(bearer: Bearer) -> usize {
    match bearer {
        Bearer::Gatt => 0,
        Bearer::L2capCoc => 1,
    }
}

/// Snapshot of one link, for diagnostics and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The driver's link id.
    pub link: LinkId,
    /// The remote device.
    pub device: DeviceId,
    /// This side's role.
    pub role: Role,
    /// When the driver reported the link up.
    pub established_at: Instant,
    /// The peer's HELLO nonce (its ephemeral ID), once known.
    pub remote_nonce: Option<u64>,
    /// The bearer this side sends on.
    pub bearer: Bearer,
    /// Session counters.
    pub stats: SessionStats,
    /// Whether the session ended.
    pub closed: bool,
}

impl Core {
    pub(crate) fn new_shared(config: BleConfig, caps: Capabilities) -> Arc<Mutex<Self>> {
        Arc::new_cyclic(|weak| Mutex::new(Self::new(config, caps, weak.clone())))
    }

    fn new(config: BleConfig, caps: Capabilities, self_ref: Weak<Mutex<Core>>) -> Self {
        let mut rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => rand::make_rng(),
        };
        let ephemeral = EphemeralId::random(&mut rng);
        let next_rotation = Instant::now() + config.rotation();
        Self {
            config,
            caps,
            rng,
            ephemeral,
            next_rotation,
            listener: None,
            psm: None,
            started: false,
            links: HashMap::new(),
            seen: HashMap::new(),
            dials: HashMap::new(),
            commands: VecDeque::new(),
            transport_events: VecDeque::new(),
            transport_waker: None,
            sightings: VecDeque::new(),
            discovery_waker: None,
            engine_waker: Arc::new(AtomicWaker::new()),
            self_ref,
        }
    }

    pub(crate) fn wake_engine(&mut self) {
        self.engine_waker.wake();
    }

    /// Hands out the stream of a link; the entry learns when it is dropped through a shared flag.
    fn new_stream(&mut self, link: LinkId) -> Option<BleStream> {
        let core = self.self_ref.upgrade()?;
        let entry = self.links.get_mut(&link)?;
        let handle = Arc::new(StreamHandle::default());
        entry.handle = Some(handle.clone());
        entry.stream = StreamState::Live;
        Some(BleStream::new(core, link, handle, self.engine_waker.clone()))
    }

    /// Streams dropped since the last poll close their links gracefully.
    fn reap_dropped_streams(&mut self, now: Instant) {
        for entry in self.links.values_mut() {
            let dropped = entry.handle.as_ref().is_some_and(|h| h.dropped.load(Ordering::Acquire));
            if dropped && entry.stream == StreamState::Live {
                entry.stream = StreamState::Dropped;
                entry.session.close(now.into_std(), crate::frame::CloseReason::Normal);
            }
        }
    }

    pub(crate) fn ephemeral(&self) -> EphemeralId {
        self.ephemeral
    }

    pub(crate) fn link_infos(&self) -> Vec<LinkInfo> {
        let mut out: Vec<LinkInfo> = self
            .links
            .iter()
            .map(|(&link, e)| LinkInfo {
                link,
                device: e.device,
                role: e.role,
                established_at: e.established_at,
                remote_nonce: e.remote_nonce,
                bearer: e.session.tx_bearer(),
                stats: e.session.stats(),
                closed: e.session.is_closed(),
            })
            .collect();
        out.sort_by_key(|i| i.link);
        out
    }

    // --- called by the transport ---

    pub(crate) fn listen(&mut self, id: ListenerId) -> Result<(), BleError> {
        if self.listener.is_some() {
            return Err(BleError::ListenerExists);
        }
        if !self.caps.peripheral {
            return Err(crate::driver::DriverError::Unsupported("advertising (peripheral role)").into());
        }
        self.listener = Some(id);
        if self.caps.l2cap && self.config.session.l2cap {
            self.commands.push_back(Command::ListenL2cap);
        }
        self.commands.push_back(Command::Advertise);
        let listen_addr = ble_multiaddr(self.ephemeral);
        self.push_transport_event(TransportEvent::NewAddress { listener_id: id, listen_addr });
        self.wake_engine();
        Ok(())
    }

    pub(crate) fn remove_listener(&mut self, id: ListenerId) -> bool {
        if self.listener != Some(id) {
            return false;
        }
        self.listener = None;
        self.commands.push_back(Command::StopAdvertising);
        self.push_transport_event(TransportEvent::ListenerClosed { listener_id: id, reason: Ok(()) });
        self.wake_engine();
        true
    }

    pub(crate) fn has_seen(&self, remote: u64) -> bool {
        self.seen.contains_key(&EphemeralId(remote))
    }

    pub(crate) fn start_dial(
        &mut self,
        remote: u64,
    ) -> Result<oneshot::Receiver<Result<BleStream, BleError>>, BleError> {
        let seen = self.seen.get(&EphemeralId(remote)).ok_or(BleError::UnknownPeer(remote))?;
        let device = seen.device;
        let connected = self.links.values().any(|e| e.device == device && e.role == Role::Central && e.link_up);
        if connected {
            return Err(BleError::AlreadyConnected);
        }
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + self.config.connect_timeout;
        let pending = self.dials.entry(device).or_default();
        if pending.is_empty() {
            self.commands.push_back(Command::Connect(device));
        }
        pending.push(PendingDial { tx, deadline });
        self.wake_engine();
        Ok(rx)
    }

    pub(crate) fn poll_transport_event(&mut self, cx: &mut Context<'_>) -> Poll<TransportEvent<Upgrade, BleError>> {
        match self.transport_events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                self.transport_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    pub(crate) fn poll_sighting(&mut self, cx: &mut Context<'_>) -> Poll<Sighting> {
        match self.sightings.pop_front() {
            Some(s) => Poll::Ready(s),
            None => {
                self.discovery_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn push_transport_event(&mut self, event: TransportEvent<Upgrade, BleError>) {
        self.transport_events.push_back(event);
        if let Some(w) = self.transport_waker.take() {
            w.wake();
        }
    }

    fn advertisement(&self) -> Advertisement {
        let payload = AdvertPayload { flags: AdvertPayload::FLAG_ACCEPTING, ephemeral_id: self.ephemeral };
        Advertisement { service_uuid: POLLEN_SERVICE_UUID, service_data: payload.encode() }
    }

    // --- timers ---

    fn run_timers(&mut self, now: Instant) {
        let now_std = now.into_std();
        for (&id, entry) in self.links.iter_mut() {
            if entry.session.poll_timeout().is_some_and(|t| t <= now_std) {
                entry.session.handle_timeout(now_std);
            }
            if entry.disconnect_at.is_some_and(|t| t <= now) {
                entry.disconnect_at = None;
                entry.link_up = false;
                self.commands.push_back(Command::Disconnect(id));
            }
        }
        let timeout = self.config.connect_timeout;
        for dials in self.dials.values_mut() {
            let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(dials).into_iter().partition(|d| d.deadline <= now);
            *dials = live;
            for dial in expired {
                let _ = dial.tx.send(Err(BleError::ConnectTimeout(timeout)));
            }
        }
        self.dials.retain(|_, d| !d.is_empty());
        if now >= self.next_rotation {
            self.rotate(now);
        }
        let ttl = self.config.sighting_ttl;
        self.seen.retain(|_, s| now.saturating_duration_since(s.at) < ttl);
    }

    fn rotate(&mut self, now: Instant) {
        let old = self.ephemeral;
        self.ephemeral = EphemeralId::random(&mut self.rng);
        self.next_rotation = now + self.config.rotation();
        tracing::debug!(old = old.0, new = self.ephemeral.0, "rotated ephemeral id");
        if let Some(listener_id) = self.listener {
            self.commands.push_back(Command::Advertise);
            let expired = TransportEvent::AddressExpired { listener_id, listen_addr: ble_multiaddr(old) };
            self.push_transport_event(expired);
            let fresh = TransportEvent::NewAddress { listener_id, listen_addr: ble_multiaddr(self.ephemeral) };
            self.push_transport_event(fresh);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let sessions = self.links.values().flat_map(|e| {
            let session = e.session.poll_timeout().map(Instant::from_std);
            session.into_iter().chain(e.disconnect_at)
        });
        let dials = self.dials.values().flatten().map(|d| d.deadline);
        sessions.chain(dials).chain(Some(self.next_rotation)).min()
    }

    // --- driver side ---

    fn execute_commands<D: BleDriver>(&mut self, driver: &mut D) -> bool {
        let ran = !self.commands.is_empty();
        while let Some(command) = self.commands.pop_front() {
            let result = match command {
                Command::Advertise => driver.start_advertising(&self.advertisement()),
                Command::StopAdvertising => driver.stop_advertising(),
                Command::Scan => driver.start_scan(&ScanFilter { service_uuid: POLLEN_SERVICE_UUID }),
                Command::ListenL2cap => driver.listen_l2cap().map(|psm| self.psm = Some(psm)),
                Command::Connect(device) => driver.connect(device),
                Command::OpenL2cap(link, psm) => driver.open_l2cap(link, psm),
                Command::Disconnect(link) => {
                    driver.disconnect(link);
                    Ok(())
                }
            };
            if let Err(error) = result {
                tracing::warn!(%error, "BLE driver command failed");
                self.on_command_error(command, error);
            }
        }
        ran
    }

    fn on_command_error(&mut self, command: Command, error: crate::driver::DriverError) {
        match command {
            Command::Connect(device) => {
                for dial in self.dials.remove(&device).unwrap_or_default() {
                    let _ = dial.tx.send(Err(BleError::Driver(error.clone())));
                }
            }
            Command::Advertise => {
                if let Some(listener_id) = self.listener.take() {
                    let event = TransportEvent::ListenerClosed { listener_id, reason: Err(error.into()) };
                    self.push_transport_event(event);
                }
            }
            _ => {}
        }
    }

    fn transmit<D: BleDriver>(&mut self, driver: &mut D, now: Instant) {
        let now_std = now.into_std();
        for (&id, entry) in self.links.iter_mut() {
            if !entry.link_up {
                continue;
            }
            for bearer in [Bearer::Gatt, Bearer::L2capCoc] {
                let s = slot(bearer);
                while !entry.blocked[s] {
                    let Some(value) = entry.stash[s].take().or_else(|| entry.session.poll_transmit(now_std, bearer))
                    else {
                        break;
                    };
                    match driver.send(id, bearer, &value) {
                        Ok(()) => {}
                        Err(SendError::Busy) => {
                            entry.stash[s] = Some(value);
                            entry.blocked[s] = true;
                        }
                        Err(error) => {
                            tracing::warn!(%error, link = id.0, "send refused");
                            entry.session.abort(LinkError::Platform(error.to_string()));
                            break;
                        }
                    }
                }
            }
            if entry.session.is_closed() && entry.disconnect_at.is_none() {
                // The central tears the link down (an iOS peripheral cannot); the peripheral only as a fallback.
                let linger = match entry.role {
                    Role::Central => CENTRAL_CLOSE_LINGER,
                    Role::Peripheral => CENTRAL_CLOSE_LINGER + self.config.session.close_linger,
                };
                entry.disconnect_at = Some(now + linger);
            }
        }
        self.links.retain(|_, e| e.link_up || e.stream == StreamState::Live);
    }
}

/// The engine future: run it on any executor (or use [`crate::BleTransport::spawn`] on tokio). It ends when the
/// transport, its streams and its discovery behaviour are all dropped.
pub struct BleEngine<D> {
    core: Arc<Mutex<Core>>,
    driver: D,
    timer: Pin<Box<Sleep>>,
}

impl<D: BleDriver> BleEngine<D> {
    pub(crate) fn new(core: Arc<Mutex<Core>>, driver: D) -> Self {
        Self { core, driver, timer: Box::pin(tokio::time::sleep(Duration::ZERO)) }
    }

    fn shutdown(&mut self) {
        let _ = self.driver.stop_advertising();
        let _ = self.driver.stop_scan();
        let links: Vec<LinkId> = lock(&self.core).links.keys().copied().collect();
        for link in links {
            self.driver.disconnect(link);
        }
    }
}

impl<D: BleDriver + Unpin> Future for BleEngine<D> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if Arc::strong_count(&this.core) == 1 {
                this.shutdown();
                return Poll::Ready(());
            }
            let now = Instant::now();
            let mut core = lock(&this.core);
            if !core.started {
                core.started = true;
                if core.config.scan && core.caps.central {
                    core.commands.push_back(Command::Scan);
                }
            }
            let mut busy = false;
            while let Poll::Ready(event) = this.driver.poll_event(cx) {
                core.on_driver_event(event, now);
                busy = true;
            }
            core.reap_dropped_streams(now);
            core.run_timers(now);
            core.process_session_events(now);
            busy |= core.execute_commands(&mut this.driver);
            core.transmit(&mut this.driver, now);
            core.process_session_events(now);
            busy |= core.execute_commands(&mut this.driver);
            core.engine_waker.register(cx.waker());
            let next = core.next_deadline();
            drop(core);
            if busy {
                continue;
            }
            if let Some(at) = next {
                this.timer.as_mut().reset(at);
                if this.timer.as_mut().poll(cx).is_ready() {
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}
