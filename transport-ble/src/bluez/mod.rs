//! The `bluez` backend (feature `bluez`): BlueZ through the `bluer` crate.
//!
//! - Peripheral: LE advertising with the Pollen service UUID and service data, a GATT server (RX write-without-
//!   response, TX notify, PSM read) using BlueZ's fd-based AcquireWrite/AcquireNotify, and an L2CAP CoC listener.
//! - Central: scanning, connecting, GATT client over AcquireWrite/AcquireNotify, L2CAP CoC connect.
//!
//! The trait methods return at once: sends go straight to non-blocking sockets (GATT) or a bounded queue (L2CAP);
//! everything that needs D-Bus runs on a worker task that reports back through [`DriverEvent`]s.
//!
//! BlueZ facts this backend works around (measured in the virtual lab, see `hw-tests/vlab/NOTES.md`):
//! - bluetoothd 5.66 drops Write Commands longer than 510 bytes (its length check counted the handle; fixed in 5.69),
//!   so the reported ATT MTU is capped at 513 and the link session never writes more than 510 bytes;
//! - a connect issued while discovery runs waits for the 10.24 s LE discovery window to end, so discovery pauses
//!   during connects;
//! - a UUID discovery filter only matches the advertised UUID list, so the scanner filters on service data itself;
//! - an adapter power cycle drops advertisements and GATT sessions; the worker re-advertises and re-scans;
//! - with EATT (BlueZ's default of 3 ATT bearers per link) GATT values are reordered (the link session reorders
//!   them) and writes routed over an EATT bearer are cut to that bearer's smaller MTU (the session must refuse those
//!   and drops the link). GATT links between BlueZ hosts therefore need `Channels = 1` in the `[GATT]` section of
//!   `/etc/bluetooth/main.conf`; L2CAP CoC links, which Pollen prefers when both sides can, are not affected;
//! - a notification written to an AcquireNotify fd reaches every subscribed central, so a BlueZ peripheral serves
//!   one central at a time;
//! - a BlueZ peripheral (every version up to upstream master) corrupts Write Commands that arrive while it is still
//!   acquiring its application's write socket, which it starts on a link's first write: `gatt-database.c` queues
//!   them by pointer into the ATT receive buffer (`pending_write_new` keeps `value` uncopied), so each is delivered
//!   later with its own length but the bytes of the newest PDU. The RX characteristic therefore also takes Write
//!   Requests, and a central sends a link's first value as one: bluetoothd answers it only after the value reached
//!   the application's socket, and every later write finds the socket in place;
//! - that Write Request's value is itself overwritten by any PDU the peer sends during the acquisition, which
//!   happens when both nodes are GATT central on one LE connection after connecting to each other at once: the node
//!   with the lower address gives way to the peer's subscription (`le_connect`).

mod le_connect;
mod link_io;
mod worker;

/// The `bluer` version this backend is built on, for labs that manage adapters directly.
pub use bluer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bluer::gatt::local::ApplicationHandle;
use bluer::gatt::CharacteristicWriter;
use bluer::{Address, AddressType};
use tokio::sync::mpsc;

use crate::driver::{
    Advertisement, Bearer, BleDriver, Capabilities, DeviceId, DriverError, DriverEvent, LinkId, Role, ScanFilter,
    SendError,
};

/// The largest ATT MTU reported to the link session: bluetoothd 5.66 drops Write Commands over 510 bytes.
pub const BLUEZ_MAX_ATT_MTU: u16 = 513;
/// Receive MTU asked for on L2CAP channels. The kernel's default of 672 bytes costs a lot of per-SDU work; 4096 is
/// what phones use and what the lab's l2test baseline uses too.
pub const L2CAP_RECV_MTU: u16 = 4096;
/// SDUs queued per L2CAP channel before `send` reports busy.
const L2CAP_QUEUE: usize = 8;

/// A BlueZ device address as a driver device id (the 48-bit address, big-endian).
pub fn device_id(address: Address) -> DeviceId {
    let mut raw = [0u8; 8];
    raw[2..].copy_from_slice(&address.0);
    DeviceId(u64::from_be_bytes(raw))
}

/// The address behind a device id made by [`device_id`].
pub fn address_of(device: DeviceId) -> Address {
    let raw = device.0.to_be_bytes();
    let mut a = [0u8; 6];
    a.copy_from_slice(&raw[2..]);
    Address(a)
}

fn platform(e: impl std::fmt::Display) -> DriverError {
    DriverError::Platform(e.to_string())
}

/// How the driver sends on one link; shared between the synchronous trait methods and the worker.
pub(crate) struct LinkTx {
    pub(crate) device: DeviceId,
    pub(crate) role: Role,
    pub(crate) gatt: Option<Arc<CharacteristicWriter>>,
    /// (Central) the peer's RX characteristic while the link's first value still has to go out as a Write Request;
    /// the write socket is acquired after it (see [`link_io::send_gatt`]).
    pub(crate) first_write: Option<bluer::gatt::remote::Characteristic>,
    /// (Central) that first write is in flight: later values wait for its `SendReady`.
    pub(crate) first_write_busy: bool,
    pub(crate) l2cap: Option<mpsc::Sender<Vec<u8>>>,
    pub(crate) waiting: [bool; 2],
    pub(crate) tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for LinkTx {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// State the trait methods and the worker share.
pub(crate) struct Shared {
    pub(crate) links: HashMap<LinkId, LinkTx>,
    next_link: u64,
}

impl Shared {
    pub(crate) fn new_link(&mut self, device: DeviceId, role: Role) -> LinkId {
        let id = LinkId(self.next_link);
        self.next_link += 1;
        self.links.insert(
            id,
            LinkTx {
                device,
                role,
                gatt: None,
                first_write: None,
                first_write_busy: false,
                l2cap: None,
                waiting: [false; 2],
                tasks: Vec::new(),
            },
        );
        id
    }

    pub(crate) fn link_of(&self, device: DeviceId, role: Role) -> Option<LinkId> {
        self.links.iter().find(|(_, l)| l.device == device && l.role == role).map(|(id, _)| *id)
    }
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Commands the worker carries out.
pub(crate) enum Command {
    Advertise(Advertisement),
    StopAdvertising,
    Scan(ScanFilter),
    StopScan,
    Connect(DeviceId),
    AcceptL2cap(bluer::l2cap::StreamListener),
    OpenL2cap(LinkId, u16),
    Disconnect(LinkId),
}

/// The BlueZ [`BleDriver`] for one adapter.
pub struct BluezDriver {
    shared: Arc<Mutex<Shared>>,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<DriverEvent>,
    event_tx: mpsc::UnboundedSender<DriverEvent>,
    local: (Address, AddressType),
    worker: tokio::task::JoinHandle<()>,
    /// The Pollen GATT service, registered until the links' sockets have closed (see [`Drop`]).
    app: Option<ApplicationHandle>,
    /// This driver's D-Bus connection, kept open for [`SESSION_LINGER`] after the driver is dropped.
    session: bluer::Session,
}

/// How long a dropped driver keeps its D-Bus connection open after closing its links' sockets.
///
/// bluetoothd (5.66, fixed upstream only in 2026 by a94f99420) frees a central's notification client when the
/// client's D-Bus connection goes away but leaves it referenced by the acquired notification socket; handling that
/// socket's hang-up afterwards is a use after free, and bluetoothd died of it (SIGSEGV) in the virtual lab whenever a
/// process dropped its drivers. When the sockets close first and bluetoothd has handled their hang-ups, the client is
/// unregistered cleanly before the connection goes.
pub const SESSION_LINGER: Duration = Duration::from_millis(1500);

impl BluezDriver {
    /// Opens `adapter` (or the default adapter), powers it on, serves the Pollen GATT service and starts the worker.
    /// Must run inside a tokio runtime.
    pub async fn open(adapter: Option<&str>) -> Result<Self, DriverError> {
        let session = bluer::Session::new().await.map_err(platform)?;
        let adapter = match adapter {
            Some(name) => session.adapter(name),
            None => session.default_adapter().await,
        }
        .map_err(platform)?;
        adapter.set_powered(true).await.map_err(platform)?;
        let address = adapter.address().await.map_err(platform)?;
        let address_type = match adapter.address_type().await.map_err(platform)? {
            AddressType::LeRandom => AddressType::LeRandom,
            // Dual-mode adapters report "public"; for LE sockets that is LePublic.
            _ => AddressType::LePublic,
        };
        let shared = Arc::new(Mutex::new(Shared { links: HashMap::new(), next_link: 1 }));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let (worker, app) =
            worker::Worker::start(session.clone(), adapter, shared.clone(), command_rx, event_tx.clone()).await?;
        Ok(Self { shared, commands, events, event_tx, local: (address, address_type), worker, app: Some(app), session })
    }

    /// This adapter's address.
    pub fn address(&self) -> Address {
        self.local.0
    }

    fn command(&self, command: Command) -> Result<(), DriverError> {
        self.commands.send(command).map_err(|_| DriverError::Platform("BlueZ worker stopped".into()))
    }
}

impl Drop for BluezDriver {
    /// Closes the central links' sockets at once, the peripheral links' a third of a [`SESSION_LINGER`] later,
    /// unregisters the GATT service after two thirds and closes the D-Bus connection after the whole linger.
    ///
    /// A peripheral link's write socket keeps being drained meanwhile: the peer central's bluetoothd still delivers
    /// the writes it queued, and bluetoothd 5.66 aborted ("munmap_chunk(): invalid pointer", "double free or
    /// corruption") right after failing to hand such a write to a closed socket ("chrc_write_cb() Unable to write:
    /// Broken pipe"). The service goes last because its removal makes every connected peer's bluetoothd drop the
    /// service from its GATT client, and bluetoothd 5.66 aborted ("free(): invalid pointer", right after
    /// "notify_io_cb() sendmsg: Broken pipe") when that removal met a notification socket whose hang-up it had not
    /// handled yet: two nodes dropped together in the lab did exactly that (hw-tests/vlab/NOTES.md, finding 19).
    fn drop(&mut self) {
        self.worker.abort();
        // Dropping a link aborts its reader and writer tasks, which close its sockets.
        let links = std::mem::take(&mut lock(&self.shared).links);
        let (central, peripheral): (Vec<_>, Vec<_>) = links.into_values().partition(|l| l.role == Role::Central);
        drop(central);
        let app = self.app.take();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let session = self.session.clone();
                runtime.spawn(async move {
                    tokio::time::sleep(SESSION_LINGER / 3).await;
                    drop(peripheral);
                    tokio::time::sleep(SESSION_LINGER / 3).await;
                    drop(app);
                    tokio::time::sleep(SESSION_LINGER / 3).await;
                    drop(session);
                });
            }
            Err(_) => {
                drop(peripheral);
                drop(app);
            }
        }
    }
}

impl BleDriver for BluezDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities { central: true, peripheral: true, l2cap: true }
    }

    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), DriverError> {
        self.command(Command::Advertise(advertisement.clone()))
    }

    fn stop_advertising(&mut self) -> Result<(), DriverError> {
        self.command(Command::StopAdvertising)
    }

    fn start_scan(&mut self, filter: &ScanFilter) -> Result<(), DriverError> {
        self.command(Command::Scan(filter.clone()))
    }

    fn stop_scan(&mut self) -> Result<(), DriverError> {
        self.command(Command::StopScan)
    }

    fn connect(&mut self, device: DeviceId) -> Result<(), DriverError> {
        self.command(Command::Connect(device))
    }

    fn listen_l2cap(&mut self) -> Result<u16, DriverError> {
        use bluer::l2cap::{Socket, SocketAddr};
        let socket = Socket::new_stream().map_err(platform)?;
        socket.set_recv_mtu(L2CAP_RECV_MTU).map_err(platform)?;
        // PSM 0: the kernel picks a free dynamic LE PSM (0x80..=0xff).
        socket.bind(SocketAddr::new(self.local.0, self.local.1, 0)).map_err(platform)?;
        let listener = socket.listen(4).map_err(platform)?;
        let psm = listener.as_ref().local_addr().map_err(platform)?.psm;
        self.command(Command::AcceptL2cap(listener))?;
        Ok(psm)
    }

    fn open_l2cap(&mut self, link: LinkId, psm: u16) -> Result<(), DriverError> {
        if !lock(&self.shared).links.contains_key(&link) {
            return Err(DriverError::NoSuchLink);
        }
        self.command(Command::OpenL2cap(link, psm))
    }

    fn send(&mut self, link: LinkId, bearer: Bearer, data: &[u8]) -> Result<(), SendError> {
        let mut shared = lock(&self.shared);
        let tx = shared.links.get_mut(&link).ok_or(SendError::NoSuchLink)?;
        match bearer {
            Bearer::Gatt => link_io::send_gatt(&self.shared, link, tx, data, &self.event_tx),
            Bearer::L2capCoc => link_io::send_l2cap(link, tx, data, &self.event_tx),
        }
    }

    fn disconnect(&mut self, link: LinkId) {
        let _ = self.command(Command::Disconnect(link));
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<DriverEvent> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                if let DriverEvent::SendReady { link, bearer } = event {
                    link_io::ready(&self.shared, link, bearer);
                }
                Poll::Ready(event)
            }
            // The worker never drops its sender while the driver lives (the driver holds one too).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}
