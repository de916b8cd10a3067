//! The `btleplug` backend (feature `btleplug`): the central role on desktops through the `btleplug` crate
//! (CoreBluetooth on macOS, WinRT on Windows, BlueZ over D-Bus on Linux). It is how a laptop dials phones.
//!
//! - Central only: it scans, connects, discovers the Pollen GATT service, subscribes to TX notifications and writes
//!   RX without response. It cannot advertise or accept connections ([`Capabilities::peripheral`] is false), and
//!   btleplug has no L2CAP CoC API, so every link stays on GATT.
//! - The trait methods return at once. Sends go into a bounded per-link queue that a writer task drains with
//!   btleplug's async write; a full queue answers [`SendError::Busy`] and one [`DriverEvent::SendReady`] follows
//!   when a slot frees (the same scheme as the BlueZ backend's L2CAP path). Everything else runs on a worker task.
//! - btleplug's `PeripheralId` (a BlueZ object path, a CoreBluetooth UUID, a WinRT address) maps to the driver's
//!   [`DeviceId`] through a bounded table; ids are handed out in order of first sighting and never reused.
//!
//! What btleplug allows and what this backend does about it:
//! - ATT MTU: btleplug's `Peripheral::mtu()`. On Linux it is BlueZ's `MTU` property of the GATT characteristics
//!   (bluetoothd ≥ 5.62), read once at service discovery; on macOS and Windows it can change after connecting, so
//!   each link polls it and reports [`DriverEvent::MtuChanged`]. When btleplug cannot tell (older BlueZ), it reports
//!   23, which the link session treats as unknown: it then writes 20-byte values, because it sizes values to the
//!   smaller of both sides' MTU views (`LinkSession::gatt_frame_payload`).
//! - Scanning on Linux: a BlueZ discovery filter on a service UUID only matches the advertised UUID list, and a
//!   BlueZ peripheral on a legacy (31-byte) controller advertises only the service data, so on Linux the scan runs
//!   unfiltered and the driver filters on service data itself. Elsewhere btleplug's scan filter names the UUID
//!   (Pollen phones advertise it in their UUID list, and CoreBluetooth needs a filter to scan in the background).
//! - A connect issued while BlueZ discovers waits for the discovery window to end, so scanning pauses during
//!   connects (as in the BlueZ backend).
//! - Writes: on Linux each is one D-Bus `WriteValue` call. The writer keeps up to four in flight, each sent in queue
//!   order when it starts, which with one ATT bearer keeps them in order on air (GATT between BlueZ hosts needs
//!   `[GATT] Channels = 1` anyway, see the BlueZ backend). Elsewhere one write is in flight at a time.
//! - After a link's first write the writer pauses briefly: a BlueZ peripheral corrupts writes that arrive while it
//!   is still acquiring its application's write socket (see `link::first_write_hold`).
//! - BlueZ keeps a client's notification session across disconnections and re-enables it as soon as the device
//!   reconnects, so the notification stream is opened before connecting, or the peripheral's HELLO would be missed;
//!   a link this driver ends also ends its notification session.

mod devices;
mod link;
mod worker;

/// The `btleplug` version this backend is built on, for callers that pick adapters themselves.
pub use btleplug;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use btleplug::api::{Central as _, Characteristic, Manager as _};
use btleplug::platform::{Adapter, Manager, Peripheral};
use tokio::sync::mpsc;

use crate::driver::{
    Advertisement, Bearer, BleDriver, Capabilities, DeviceId, DriverError, DriverEvent, LinkId, ScanFilter, SendError,
};

/// Upper bound on a connect: connection, service discovery and the notification subscription.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// GATT values queued per link before `send` reports busy.
pub const SEND_QUEUE: usize = 8;

fn platform(e: impl std::fmt::Display) -> DriverError {
    DriverError::Platform(e.to_string())
}

/// How the driver sends on one link; shared between the synchronous trait methods and the tasks.
pub(crate) struct LinkTx {
    pub(crate) device: DeviceId,
    /// The peripheral and its TX characteristic, to unsubscribe when the link ends.
    pub(crate) gatt: (Peripheral, Characteristic),
    pub(crate) sender: link::SendQueue,
    pub(crate) tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for LinkTx {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// State the trait methods, the worker and the link tasks share.
pub(crate) struct Shared {
    pub(crate) links: HashMap<LinkId, LinkTx>,
    next_link: u64,
}

impl Shared {
    pub(crate) fn new_link(
        &mut self,
        device: DeviceId,
        gatt: (Peripheral, Characteristic),
        sender: link::SendQueue,
    ) -> LinkId {
        let id = LinkId(self.next_link);
        self.next_link += 1;
        self.links.insert(id, LinkTx { device, gatt, sender, tasks: Vec::new() });
        id
    }
}

pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Commands the worker carries out.
pub(crate) enum Command {
    Scan(ScanFilter),
    StopScan,
    Connect(DeviceId),
    Disconnect(LinkId),
}

/// The name btleplug gives `adapter`: on Linux the BlueZ adapter name (`hci0`), elsewhere the platform's name
/// (`CoreBluetooth`, `WinRT`).
pub async fn adapter_name(adapter: &Adapter) -> Result<String, DriverError> {
    let info = adapter.adapter_info().await.map_err(platform)?;
    // BlueZ: "hci0 (usb:v1D6Bp0246d0542)".
    Ok(info.split(" (").next().unwrap_or(&info).to_string())
}

/// The adapter of `manager` called `name` (see [`adapter_name`]) or having that address (`00:AA:01:00:00:00`), or
/// the first adapter when `name` is `None`.
pub async fn find_adapter(manager: &Manager, name: Option<&str>) -> Result<Adapter, DriverError> {
    let adapters = manager.adapters().await.map_err(platform)?;
    let Some(name) = name else {
        return adapters.into_iter().next().ok_or(DriverError::Platform("no Bluetooth adapter".into()));
    };
    let mut names = Vec::new();
    for adapter in adapters {
        let own = adapter_name(&adapter).await?;
        let address = adapter.adapter_address().await.ok().flatten().map(|a| a.to_string());
        if own == name || address.is_some_and(|a| a.eq_ignore_ascii_case(name)) {
            return Ok(adapter);
        }
        names.push(own);
    }
    Err(DriverError::Platform(format!("no Bluetooth adapter named {name}; btleplug lists {names:?}")))
}

/// The btleplug [`BleDriver`] for one adapter: central only, GATT only.
pub struct BtleplugDriver {
    shared: Arc<Mutex<Shared>>,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<DriverEvent>,
    event_tx: mpsc::UnboundedSender<DriverEvent>,
}

impl BtleplugDriver {
    /// Opens the adapter called `adapter` (see [`find_adapter`]), or the first one, and starts the worker. Must run
    /// inside a tokio runtime.
    pub async fn open(adapter: Option<&str>) -> Result<Self, DriverError> {
        let manager = Manager::new().await.map_err(platform)?;
        let adapter = find_adapter(&manager, adapter).await?;
        Self::with_adapter(adapter).await
    }

    /// Drives `adapter`, for callers that keep one btleplug `Manager` across drivers. Must run inside a tokio
    /// runtime. The worker ends (stopping its scan and links) once the driver is dropped.
    pub async fn with_adapter(adapter: Adapter) -> Result<Self, DriverError> {
        let central_events = adapter.events().await.map_err(platform)?;
        let shared = Arc::new(Mutex::new(Shared { links: HashMap::new(), next_link: 1 }));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        worker::Worker::spawn(adapter, shared.clone(), command_rx, central_events, event_tx.clone());
        Ok(Self { shared, commands, events, event_tx })
    }

    fn command(&self, command: Command) -> Result<(), DriverError> {
        self.commands.send(command).map_err(|_| DriverError::Platform("btleplug worker stopped".into()))
    }
}

impl BleDriver for BtleplugDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities { central: true, peripheral: false, l2cap: false }
    }

    fn start_advertising(&mut self, _: &Advertisement) -> Result<(), DriverError> {
        Err(DriverError::Unsupported("advertising: the btleplug backend is central-only"))
    }

    /// Nothing advertises, so there is nothing to stop.
    fn stop_advertising(&mut self) -> Result<(), DriverError> {
        Ok(())
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
        Err(DriverError::Unsupported("L2CAP CoC: btleplug has no L2CAP API"))
    }

    fn open_l2cap(&mut self, _: LinkId, _: u16) -> Result<(), DriverError> {
        Err(DriverError::Unsupported("L2CAP CoC: btleplug has no L2CAP API"))
    }

    fn send(&mut self, link: LinkId, bearer: Bearer, data: &[u8]) -> Result<(), SendError> {
        let mut shared = lock(&self.shared);
        let tx = shared.links.get_mut(&link).ok_or(SendError::NoSuchLink)?;
        match bearer {
            Bearer::Gatt => tx.sender.send(link, data, &self.event_tx),
            Bearer::L2capCoc => Err(SendError::NoSuchLink),
        }
    }

    fn disconnect(&mut self, link: LinkId) {
        let _ = self.command(Command::Disconnect(link));
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<DriverEvent> {
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => {
                if let DriverEvent::SendReady { link, .. } = event {
                    if let Some(tx) = lock(&self.shared).links.get_mut(&link) {
                        tx.sender.ready();
                    }
                }
                Poll::Ready(event)
            }
            // The driver holds a sender itself, so the channel never closes while it lives.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}
