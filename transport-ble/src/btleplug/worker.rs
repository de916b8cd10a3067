//! The worker task: scanning, connecting, disconnecting and btleplug's adapter events, off the synchronous trait
//! methods.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use btleplug::api::{Central as _, CentralEvent, CentralState, Characteristic, Peripheral as _};
use btleplug::platform::{Adapter, Peripheral, PeripheralId};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::devices::{DeviceTable, MAX_DEVICES};
use super::link::{self, link_down, LinkIo};
use super::{lock, Command, Shared, CONNECT_TIMEOUT};
use crate::driver::{
    ConnectError, DeviceId, DisconnectReason, DriverEvent, LinkId, Role, ScanFilter, POLLEN_SERVICE_UUID,
    RX_CHARACTERISTIC_UUID, TX_CHARACTERISTIC_UUID,
};

/// How long shutting down (stopping the scan, disconnecting links) may take.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after stopping discovery, so BlueZ has left it before a connect.
const SCAN_SETTLE: Duration = Duration::from_millis(100);
/// RSSI reported when the platform gave none.
const NO_RSSI: i16 = -127;

type CentralEvents = Pin<Box<dyn Stream<Item = CentralEvent> + Send>>;

enum Internal {
    ConnectDone,
}

pub(super) struct Worker {
    adapter: Adapter,
    shared: Arc<Mutex<Shared>>,
    events: mpsc::UnboundedSender<DriverEvent>,
    internal: mpsc::UnboundedSender<Internal>,
    devices: DeviceTable<PeripheralId>,
    scan: Option<ScanFilter>,
    scanning: bool,
    connecting: usize,
    connects: Vec<tokio::task::JoinHandle<()>>,
}

/// The service UUIDs to hand btleplug's scan filter; see the module documentation for why Linux gets none.
fn platform_scan_filter(filter: &ScanFilter) -> btleplug::api::ScanFilter {
    let services = if cfg!(target_os = "linux") { Vec::new() } else { vec![filter.service_uuid] };
    btleplug::api::ScanFilter { services }
}

impl Worker {
    pub(super) fn spawn(
        adapter: Adapter,
        shared: Arc<Mutex<Shared>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut central_events: CentralEvents,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) {
        let (internal, mut internal_rx) = mpsc::unbounded_channel();
        let mut worker = Worker {
            adapter,
            shared,
            events,
            internal,
            devices: DeviceTable::new(MAX_DEVICES),
            scan: None,
            scanning: false,
            connecting: 0,
            connects: Vec::new(),
        };
        tokio::spawn(async move {
            let mut central_alive = true;
            loop {
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(c) => worker.command(c).await,
                        None => break,
                    },
                    event = central_events.next(), if central_alive => match event {
                        Some(e) => worker.on_central_event(e).await,
                        None => {
                            tracing::warn!("btleplug's adapter event stream ended");
                            central_alive = false;
                        }
                    },
                    Some(Internal::ConnectDone) = internal_rx.recv() => {
                        worker.connecting = worker.connecting.saturating_sub(1);
                        worker.resume_scan().await;
                    }
                }
            }
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, worker.shutdown()).await.is_err() {
                tracing::debug!("btleplug worker shutdown timed out");
            }
        });
    }

    fn emit(&self, event: DriverEvent) {
        let _ = self.events.send(event);
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Scan(filter) => {
                self.scan = Some(filter);
                self.resume_scan().await;
            }
            Command::StopScan => {
                self.scan = None;
                self.pause_scan().await;
            }
            Command::Connect(device) => self.connect(device).await,
            Command::Disconnect(link) => self.disconnect(link),
        }
    }

    /// Starts scanning if a scan is wanted and no connect is under way, then reports the Pollen nodes the platform
    /// already knows (BlueZ announces a cached device only when one of its properties changes).
    async fn resume_scan(&mut self) {
        if self.scanning || self.connecting > 0 {
            return;
        }
        let Some(filter) = self.scan.clone() else {
            return;
        };
        match self.adapter.start_scan(platform_scan_filter(&filter)).await {
            Ok(()) => {}
            // BlueZ allows one discovery session per D-Bus client, and drivers that share a btleplug manager share
            // a client: a session left by an earlier driver still scans for this one.
            Err(error) if error.to_string().to_ascii_lowercase().contains("in progress") => {
                tracing::debug!(%error, "a discovery session of this client is already running");
            }
            Err(error) => {
                tracing::warn!(%error, "starting the btleplug scan failed");
                return;
            }
        }
        self.scanning = true;
        match self.adapter.peripherals().await {
            Ok(known) => {
                for peripheral in known {
                    self.report(peripheral.id(), None).await;
                }
            }
            Err(error) => tracing::debug!(%error, "listing known peripherals failed"),
        }
    }

    async fn pause_scan(&mut self) {
        if !self.scanning {
            return;
        }
        self.scanning = false;
        if let Err(error) = self.adapter.stop_scan().await {
            tracing::debug!(%error, "stopping the btleplug scan failed");
        }
        tokio::time::sleep(SCAN_SETTLE).await;
    }

    fn pinned(&self) -> impl Fn(DeviceId) -> bool {
        let linked: Vec<DeviceId> = lock(&self.shared).links.values().map(|l| l.device).collect();
        move |d| linked.contains(&d)
    }

    /// Reports `id` if its advertisement carries service data under the scanned UUID; with `data = None` the
    /// driver asks btleplug for the peripheral's properties first.
    async fn report(&mut self, id: PeripheralId, data: Option<HashMap<Uuid, Vec<u8>>>) {
        let Some(filter) = &self.scan else {
            return;
        };
        let uuid = filter.service_uuid;
        let (data, rssi) = match data {
            Some(data) => (data, None),
            None => {
                let properties = match self.adapter.peripheral(&id).await {
                    Ok(p) => p.properties().await.ok().flatten(),
                    Err(_) => None,
                };
                let Some(properties) = properties else {
                    return;
                };
                (properties.service_data, properties.rssi)
            }
        };
        let Some(service_data) = data.get(&uuid) else {
            return;
        };
        let pinned = self.pinned();
        let device = self.devices.intern(&id, pinned);
        let service_data = Bytes::copy_from_slice(service_data);
        self.devices.set_advert(device, service_data.clone());
        self.emit(DriverEvent::AdvertisementSeen { device, rssi: rssi.unwrap_or(NO_RSSI), service_data });
    }

    async fn on_central_event(&mut self, event: CentralEvent) {
        match event {
            CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) => self.report(id, None).await,
            CentralEvent::ServiceDataAdvertisement { id, service_data } => self.report(id, Some(service_data)).await,
            CentralEvent::RssiUpdate { id, rssi } => {
                // A fresh sighting of a Pollen node already known, without another round trip to the platform.
                let Some(device) = self.devices.get(&id) else { return };
                if let (Some(_), Some(advert)) = (&self.scan, self.devices.advert(device)) {
                    let service_data = advert.clone();
                    self.emit(DriverEvent::AdvertisementSeen { device, rssi, service_data });
                }
            }
            CentralEvent::DeviceDisconnected(id) => {
                let Some(device) = self.devices.get(&id) else { return };
                let links: Vec<LinkId> =
                    lock(&self.shared).links.iter().filter(|(_, l)| l.device == device).map(|(k, _)| *k).collect();
                for link in links {
                    link_down(&self.shared, link, DisconnectReason::Remote, &self.events);
                }
            }
            CentralEvent::StateUpdate(CentralState::PoweredOff) => {
                tracing::info!("adapter powered off: every link is down");
                let links: Vec<LinkId> = lock(&self.shared).links.keys().copied().collect();
                for link in links {
                    link_down(&self.shared, link, DisconnectReason::PoweredOff, &self.events);
                }
                self.scanning = false;
            }
            CentralEvent::StateUpdate(CentralState::PoweredOn) => {
                tracing::info!("adapter powered on: scanning again");
                self.scanning = false;
                self.resume_scan().await;
            }
            _ => {}
        }
    }

    async fn connect(&mut self, device: DeviceId) {
        let Some(id) = self.devices.peripheral(device).cloned() else {
            self.emit(DriverEvent::ConnectFailed { device, error: ConnectError::UnknownDevice });
            return;
        };
        self.connecting += 1;
        self.pause_scan().await;
        let (adapter, shared, events, internal) =
            (self.adapter.clone(), self.shared.clone(), self.events.clone(), self.internal.clone());
        self.connects.retain(|t| !t.is_finished());
        self.connects.push(tokio::spawn(async move {
            let result = tokio::time::timeout(CONNECT_TIMEOUT, connect(&adapter, &shared, &id, device, &events)).await;
            let error = match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(ConnectError::Platform(format!("no link within {CONNECT_TIMEOUT:?}"))),
            };
            if let Some(error) = error {
                tracing::debug!(device = device.0, %error, "connect failed");
                if let Ok(p) = adapter.peripheral(&id).await {
                    let _ = p.disconnect().await;
                }
                let _ = events.send(DriverEvent::ConnectFailed { device, error });
            }
            let _ = internal.send(Internal::ConnectDone);
        }));
    }

    /// Ends the link at once and drops the connection behind it (a central-only driver has one link per device).
    fn disconnect(&mut self, link: LinkId) {
        let Some(gatt) = lock(&self.shared).links.get(&link).map(|l| l.gatt.clone()) else {
            return;
        };
        link_down(&self.shared, link, DisconnectReason::Local, &self.events);
        tokio::spawn(hang_up(gatt));
    }

    /// The driver is gone: stop scanning and drop every connection it made.
    async fn shutdown(&mut self) {
        for task in self.connects.drain(..) {
            task.abort();
        }
        self.scan = None;
        self.pause_scan().await;
        let links: Vec<(Peripheral, Characteristic)> =
            lock(&self.shared).links.drain().map(|(_, l)| l.gatt.clone()).collect();
        for gatt in links {
            hang_up(gatt).await;
        }
    }
}

/// Ends the notification session (BlueZ would otherwise re-enable it on the next connection) and the connection.
async fn hang_up((peripheral, tx): (Peripheral, Characteristic)) {
    if let Err(error) = peripheral.unsubscribe(&tx).await {
        tracing::debug!(%error, "unsubscribing failed");
    }
    if let Err(error) = peripheral.disconnect().await {
        tracing::debug!(%error, "disconnect failed");
    }
}

/// The Pollen service's RX and TX characteristics of a peripheral whose services were discovered.
fn pollen_characteristics(peripheral: &Peripheral) -> Option<(Characteristic, Characteristic)> {
    let service = peripheral.services().into_iter().find(|s| s.uuid == POLLEN_SERVICE_UUID)?;
    let rx = service.characteristics.iter().find(|c| c.uuid == RX_CHARACTERISTIC_UUID)?.clone();
    let tx = service.characteristics.iter().find(|c| c.uuid == TX_CHARACTERISTIC_UUID)?.clone();
    Some((rx, tx))
}

/// Connects, discovers the Pollen service, subscribes to TX and brings the link up.
async fn connect(
    adapter: &Adapter,
    shared: &Arc<Mutex<Shared>>,
    id: &PeripheralId,
    device: DeviceId,
    events: &mpsc::UnboundedSender<DriverEvent>,
) -> Result<(), ConnectError> {
    let err = |e: btleplug::Error| ConnectError::Platform(e.to_string());
    let peripheral = adapter.peripheral(id).await.map_err(|_| ConnectError::UnknownDevice)?;
    // Listen before connecting. BlueZ keeps a client's notification session across disconnections and re-enables
    // notifications as soon as the device is back, before `subscribe` below, and the peripheral sends its HELLO
    // then. The stream is read only once the services are known (btleplug maps values to characteristics through
    // them), so it buffers until then.
    let notifications = peripheral.notifications().await.map_err(err)?;
    let setup = tokio::time::Instant::now();
    peripheral.connect().await.map_err(err)?;
    peripheral.discover_services().await.map_err(err)?;
    let Some((rx, tx)) = pollen_characteristics(&peripheral) else {
        return Err(ConnectError::Platform("the device has no Pollen GATT service".into()));
    };
    peripheral.subscribe(&tx).await.map_err(err)?;
    let hold = link::first_write_hold(setup.elapsed());
    let att_mtu = peripheral.mtu();
    let (sender, values) = link::SendQueue::new(att_mtu);
    let link = lock(shared).new_link(device, (peripheral.clone(), tx), sender);
    tracing::debug!(link = link.0, device = device.0, att_mtu, ?hold, "link up");
    let _ = events.send(DriverEvent::Connected { link, device, role: Role::Central, att_mtu });
    let io = LinkIo { shared: shared.clone(), link, peripheral, rx, att_mtu, hold, events: events.clone() };
    link::start(io, values, notifications);
    Ok(())
}
