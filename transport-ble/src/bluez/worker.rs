//! The worker task: everything that talks D-Bus (advertising, scanning, connecting, the GATT server, L2CAP setup,
//! adapter power) runs here, off the synchronous trait methods.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bluer::adv::{Advertisement as BluerAdvertisement, AdvertisementHandle, Type as AdvType};
use bluer::gatt::local::{
    characteristic_control, Application, ApplicationHandle, Characteristic, CharacteristicControl,
    CharacteristicControlEvent, CharacteristicNotify, CharacteristicNotifyMethod, CharacteristicRead,
    CharacteristicWrite, CharacteristicWriteMethod, Service,
};
use bluer::gatt::CharacteristicReader;
use bluer::l2cap::{Socket, SocketAddr, StreamListener};
use bluer::{
    Adapter, AdapterEvent, AdapterProperty, Address, AddressType, DiscoveryFilter, DiscoveryTransport, Session,
};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use super::le_connect::{connect_le, gives_way, peer_connected_first, SHARED_CONNECTION_SETTLE};
use super::link_io::{attach_l2cap, link_down, spawn_gatt_reader, spawn_writer_watch};
use super::{address_of, device_id, lock, platform, Command, Shared, BLUEZ_MAX_ATT_MTU};
use crate::driver::{
    Advertisement, ConnectError, DeviceId, DisconnectReason, DriverError, DriverEvent, LinkId, Role, ScanFilter,
    POLLEN_SERVICE_UUID, PSM_CHARACTERISTIC_UUID, RX_CHARACTERISTIC_UUID, TX_CHARACTERISTIC_UUID,
};

/// Upper bound on a connect (connection + service discovery + notification subscription).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// GATT readers of centrals that wrote before subscribing, held at most this many.
const MAX_PENDING_READERS: usize = 16;

enum Internal {
    ConnectDone,
}

pub(super) struct Worker {
    adapter: Adapter,
    shared: Arc<Mutex<Shared>>,
    events: mpsc::UnboundedSender<DriverEvent>,
    internal: mpsc::UnboundedSender<Internal>,
    advertisement: Option<Advertisement>,
    advertising: Option<AdvertisementHandle>,
    /// BlueZ refused the advertisement with the UUID list although the controller's limit takes it (BlueZ before
    /// 5.76 caps advertising data at 31 bytes whatever the controller does): only the compact one from then on.
    full_refused: bool,
    scan: Option<ScanFilter>,
    scan_task: Option<tokio::task::AbortHandle>,
    connecting: usize,
    psm: Arc<Mutex<Option<u16>>>,
    pending_readers: HashMap<Address, CharacteristicReader>,
    _session: Session,
}

/// The ATT MTU to report for a GATT fd whose value limit is `fd_mtu` (BlueZ reports ATT MTU − 3).
fn att_mtu(fd_mtu: usize) -> u16 {
    u16::try_from(fd_mtu + 3).unwrap_or(u16::MAX).min(BLUEZ_MAX_ATT_MTU)
}

/// Advertising data limits of legacy (Bluetooth 4.x) and extended advertising.
const LEGACY_ADV_DATA_MAX: usize = 31;
const EXTENDED_ADV_DATA_MAX: usize = 251;

/// Bytes BlueZ puts into the advertising data for `adv`: the Flags field (the advertisement is discoverable), the
/// service UUID list when `with_uuid_list`, and the service data. UUIDs are counted in their 128-bit form, so a
/// UUID BlueZ could shorten only makes the estimate err towards the variant that fits.
fn advertising_data_len(adv: &Advertisement, with_uuid_list: bool) -> usize {
    const FIELD_HEADER: usize = 2;
    const FLAGS: usize = FIELD_HEADER + 1;
    const UUID: usize = 16;
    let uuid_list = if with_uuid_list { FIELD_HEADER + UUID } else { 0 };
    FLAGS + uuid_list + FIELD_HEADER + UUID + adv.service_data.len()
}

fn gatt_application(psm: Arc<Mutex<Option<u16>>>) -> (Application, CharacteristicControl, CharacteristicControl) {
    let (rx_control, rx_handle) = characteristic_control();
    let (tx_control, tx_handle) = characteristic_control();
    let read_psm = move |_| {
        let value = psm.lock().map(|p| p.unwrap_or(0)).unwrap_or(0);
        async move { Ok(value.to_le_bytes().to_vec()) }.boxed()
    };
    let app = Application {
        services: vec![Service {
            uuid: POLLEN_SERVICE_UUID,
            primary: true,
            characteristics: vec![
                Characteristic {
                    uuid: RX_CHARACTERISTIC_UUID,
                    write: Some(CharacteristicWrite {
                        // Write Requests only for a link's first value (see the module notes), then Write Commands.
                        write: true,
                        write_without_response: true,
                        method: CharacteristicWriteMethod::Io,
                        ..Default::default()
                    }),
                    control_handle: rx_handle,
                    ..Default::default()
                },
                Characteristic {
                    uuid: TX_CHARACTERISTIC_UUID,
                    notify: Some(CharacteristicNotify {
                        notify: true,
                        method: CharacteristicNotifyMethod::Io,
                        ..Default::default()
                    }),
                    control_handle: tx_handle,
                    ..Default::default()
                },
                Characteristic {
                    uuid: PSM_CHARACTERISTIC_UUID,
                    read: Some(CharacteristicRead { read: true, fun: Box::new(read_psm), ..Default::default() }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    (app, rx_control, tx_control)
}

impl Worker {
    pub(super) async fn start(
        session: Session,
        adapter: Adapter,
        shared: Arc<Mutex<Shared>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) -> Result<(tokio::task::JoinHandle<()>, ApplicationHandle), DriverError> {
        let psm = Arc::new(Mutex::new(None));
        let (app, mut rx_control, mut tx_control) = gatt_application(psm.clone());
        let app = adapter.serve_gatt_application(app).await.map_err(platform)?;
        let mut adapter_events = Box::pin(adapter.events().await.map_err(platform)?);
        let (internal, mut internal_rx) = mpsc::unbounded_channel();
        let mut worker = Worker {
            adapter,
            shared,
            events,
            internal,
            advertisement: None,
            advertising: None,
            full_refused: false,
            scan: None,
            scan_task: None,
            connecting: 0,
            psm,
            pending_readers: HashMap::new(),
            _session: session,
        };
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(c) => worker.command(c).await,
                        None => return,
                    },
                    Some(event) = rx_control.next() => worker.on_rx_control(event),
                    Some(event) = tx_control.next() => worker.on_tx_control(event),
                    Some(event) = adapter_events.next() => worker.on_adapter_event(event).await,
                    Some(Internal::ConnectDone) = internal_rx.recv() => {
                        worker.connecting = worker.connecting.saturating_sub(1);
                        worker.resume_scan().await;
                    }
                }
            }
        });
        Ok((task, app))
    }

    fn emit(&self, event: DriverEvent) {
        let _ = self.events.send(event);
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Advertise(advertisement) => {
                self.advertisement = Some(advertisement);
                self.advertise().await;
            }
            Command::StopAdvertising => {
                self.advertisement = None;
                self.advertising = None;
            }
            Command::Scan(filter) => {
                self.scan = Some(filter);
                self.resume_scan().await;
            }
            Command::StopScan => {
                self.scan = None;
                self.pause_scan().await;
            }
            Command::Connect(device) => self.connect(device).await,
            Command::AcceptL2cap(listener) => self.accept_l2cap(listener),
            Command::OpenL2cap(link, psm) => self.open_l2cap(link, psm),
            Command::Disconnect(link) => self.disconnect(link),
        }
    }

    /// Registers the advertisement: the UUID list plus service data when it fits the controller's advertising data
    /// (extended advertising), else service data alone, which fits a 31-byte legacy advertisement and still names
    /// the service.
    ///
    /// The variant is chosen from the controller's limit rather than by trying the larger one first: when BlueZ
    /// 5.66 refuses advertising data as too long, it has already created the kernel's advertising instance and never
    /// removes it, so the adapter goes on advertising an empty, connectable advertisement after Pollen is gone
    /// (hw-tests/vlab/NOTES.md, finding 20). Where the controller takes more than BlueZ does (extended advertising
    /// before BlueZ 5.76), that happens once per driver, which then keeps to the compact advertisement.
    async fn advertise(&mut self) {
        let Some(adv) = self.advertisement.clone() else {
            return;
        };
        self.advertising = None;
        let service_data = BTreeMap::from([(adv.service_uuid, adv.service_data.to_vec())]);
        let full = BluerAdvertisement {
            advertisement_type: AdvType::Peripheral,
            service_uuids: BTreeSet::from([adv.service_uuid]),
            service_data: service_data.clone(),
            discoverable: Some(true),
            ..Default::default()
        };
        let compact = BluerAdvertisement { service_uuids: BTreeSet::new(), ..full.clone() };
        let max_len = self.max_advertising_data_len().await;
        if !self.full_refused && advertising_data_len(&adv, true) <= max_len {
            match self.adapter.advertise(full).await {
                Ok(handle) => {
                    self.advertising = Some(handle);
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, max_len, "the advertisement with the UUID list was refused");
                    self.full_refused = true;
                }
            }
        }
        match self.adapter.advertise(compact).await {
            Ok(handle) => self.advertising = Some(handle),
            Err(error) => tracing::warn!(%error, max_len, "BlueZ refused the advertisement"),
        }
    }

    /// The controller's advertising data limit. BlueZ 5.66 publishes it (`SupportedCapabilities`) only when
    /// started with `-E`; otherwise `SupportedSecondaryChannels`, which BlueZ publishes exactly when the controller
    /// does extended advertising, tells the two limits apart. A BlueZ with neither gets the legacy limit, which the
    /// compact advertisement always fits.
    async fn max_advertising_data_len(&self) -> usize {
        if let Ok(Some(caps)) = self.adapter.supported_advertising_capabilities().await {
            return usize::from(caps.max_advertisement_length);
        }
        match self.adapter.supported_advertising_secondary_channels().await {
            Ok(Some(channels)) if !channels.is_empty() => EXTENDED_ADV_DATA_MAX,
            _ => LEGACY_ADV_DATA_MAX,
        }
    }

    async fn resume_scan(&mut self) {
        if self.scan.is_none() || self.connecting > 0 || self.scan_task.is_some() {
            return;
        }
        let Some(filter) = self.scan.clone() else {
            return;
        };
        let le = DiscoveryFilter { transport: DiscoveryTransport::Le, duplicate_data: true, ..Default::default() };
        if let Err(error) = self.adapter.set_discovery_filter(le).await {
            tracing::warn!(%error, "setting the discovery filter failed");
        }
        let adapter = self.adapter.clone();
        let events = self.events.clone();
        self.scan_task = Some(
            tokio::spawn(async move {
                if let Err(error) = scan(adapter, filter, events).await {
                    tracing::warn!(%error, "scan ended");
                }
            })
            .abort_handle(),
        );
    }

    async fn pause_scan(&mut self) {
        if let Some(task) = self.scan_task.take() {
            task.abort();
            // bluer stops discovery from a spawned task when the stream drops; give it a moment so the next
            // connect does not wait for the LE discovery window.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn connect(&mut self, device: DeviceId) {
        self.connecting += 1;
        self.pause_scan().await;
        let (adapter, shared, events, internal) =
            (self.adapter.clone(), self.shared.clone(), self.events.clone(), self.internal.clone());
        tokio::spawn(async move {
            let dev = adapter.device(address_of(device)).ok();
            let already_up = match &dev {
                Some(dev) => dev.is_connected().await.unwrap_or(false),
                None => false,
            };
            let made_acl = AtomicBool::new(false);
            let attempt = connect(&adapter, &shared, device, &events, &made_acl);
            let (error, timed_out) = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok(())) => (None, false),
                Ok(Err(e)) => (Some(e), false),
                Err(_) => (Some(ConnectError::Platform(format!("no link within {CONNECT_TIMEOUT:?}"))), true),
            };
            if let Some(error) = error {
                // Tear down only an LE connection this attempt made. When the peer dialled us at the same moment,
                // bluetoothd fails our connect with EBUSY (or finds the device connected already): that connection
                // is the peer's link, and dropping it would fail both dials.
                let ours = made_acl.load(Ordering::Relaxed)
                    && !already_up
                    && !lock(&shared).links.values().any(|l| l.device == device);
                // A `Connect` still pending when the budget ran out keeps running inside bluetoothd, which then
                // answers every later `Connect` to the device with "Operation already in progress" (seen in the
                // virtual lab): cancel it, unless the device is connected by now (that is the peer's connection).
                let pending = timed_out && !made_acl.load(Ordering::Relaxed);
                let cancel = match (&dev, pending) {
                    (Some(dev), true) => !dev.is_connected().await.unwrap_or(false),
                    _ => false,
                };
                tracing::debug!(device = %address_of(device), %error, disconnecting = ours, cancel, "connect failed");
                if let (true, Some(dev)) = (ours || cancel, dev) {
                    let _ = dev.disconnect().await;
                }
                let _ = events.send(DriverEvent::ConnectFailed { device, error });
            }
            let _ = internal.send(Internal::ConnectDone);
        });
    }

    fn on_tx_control(&mut self, event: CharacteristicControlEvent) {
        let CharacteristicControlEvent::Notify(writer) = event else {
            return;
        };
        let address = writer.device_address();
        let device = device_id(address);
        let mtu = att_mtu(writer.mtu());
        let writer = Arc::new(writer);
        let link = {
            let mut shared = lock(&self.shared);
            let link =
                shared.link_of(device, Role::Peripheral).unwrap_or_else(|| shared.new_link(device, Role::Peripheral));
            let watch = spawn_writer_watch(self.shared.clone(), link, writer.clone(), self.events.clone());
            if let Some(tx) = shared.links.get_mut(&link) {
                tx.gatt = Some(writer);
                tx.tasks.push(watch);
            }
            link
        };
        self.emit(DriverEvent::Connected { link, device, role: Role::Peripheral, att_mtu: mtu });
        if let Some(reader) = self.pending_readers.remove(&address) {
            self.attach_reader(link, reader);
        }
    }

    fn on_rx_control(&mut self, event: CharacteristicControlEvent) {
        let CharacteristicControlEvent::Write(request) = event else {
            return;
        };
        let address = request.device_address();
        let reader = match request.accept() {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%error, "accepting a GATT write session failed");
                return;
            }
        };
        let link = lock(&self.shared).link_of(device_id(address), Role::Peripheral);
        match link {
            Some(link) => self.attach_reader(link, reader),
            None if self.pending_readers.len() < MAX_PENDING_READERS => {
                self.pending_readers.insert(address, reader);
            }
            None => tracing::warn!("too many centrals writing before subscribing; dropping one"),
        }
    }

    fn attach_reader(&self, link: LinkId, reader: CharacteristicReader) {
        let task = spawn_gatt_reader(self.shared.clone(), link, reader, self.events.clone());
        if let Some(tx) = lock(&self.shared).links.get_mut(&link) {
            tx.tasks.push(task);
        }
    }

    fn accept_l2cap(&mut self, listener: StreamListener) {
        if let Ok(addr) = listener.as_ref().local_addr() {
            if let Ok(mut psm) = self.psm.lock() {
                *psm = Some(addr.psm);
            }
        }
        let (shared, events) = (self.shared.clone(), self.events.clone());
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let link = lock(&shared).link_of(device_id(peer.addr), Role::Peripheral);
                match link {
                    Some(link) => {
                        // Off the accept loop: attaching waits for the kernel to know the channel's send MTU.
                        let (shared, events) = (shared.clone(), events.clone());
                        tokio::spawn(async move { attach_l2cap(&shared, link, stream, &events).await });
                    }
                    None => {
                        tracing::debug!(peer = %peer.addr, "L2CAP channel from a device without a GATT link")
                    }
                }
            }
        });
    }

    fn open_l2cap(&mut self, link: LinkId, psm: u16) {
        let Some(device) = lock(&self.shared).links.get(&link).map(|l| l.device) else {
            return;
        };
        let (adapter, shared, events) = (self.adapter.clone(), self.shared.clone(), self.events.clone());
        tokio::spawn(async move {
            let result = open_channel(&adapter, address_of(device), psm).await;
            match result {
                Ok(stream) => {
                    attach_l2cap(&shared, link, stream, &events).await;
                }
                Err(reason) => {
                    let _ = events.send(DriverEvent::L2capFailed { link, reason });
                }
            }
        });
    }

    /// Ends one GATT session. The LE connection goes down only when no other session uses it: when both nodes
    /// connected at once, the kernel gives both GATT sessions the same LE link, and the duplicate tie-break closes
    /// only one of them.
    fn disconnect(&mut self, link: LinkId) {
        let (device, shared_acl) = {
            let shared = lock(&self.shared);
            let Some(device) = shared.links.get(&link).map(|l| l.device) else { return };
            (device, shared.links.iter().any(|(id, l)| *id != link && l.device == device))
        };
        link_down(&self.shared, link, DisconnectReason::Local, &self.events);
        if shared_acl {
            return;
        }
        let adapter = self.adapter.clone();
        tokio::spawn(async move {
            if let Ok(dev) = adapter.device(address_of(device)) {
                let _ = dev.disconnect().await;
            }
        });
    }

    /// A power cycle (the user toggling Bluetooth) drops every link and BlueZ forgets the advertisement; bring the
    /// node back as it was once power returns.
    async fn on_adapter_event(&mut self, event: AdapterEvent) {
        let AdapterEvent::PropertyChanged(AdapterProperty::Powered(powered)) = event else {
            return;
        };
        if powered {
            tracing::info!("adapter powered on: re-advertising and re-scanning");
            self.advertise().await;
            self.scan_task = None;
            self.resume_scan().await;
        } else {
            let links: Vec<LinkId> = lock(&self.shared).links.keys().copied().collect();
            for link in links {
                link_down(&self.shared, link, DisconnectReason::PoweredOff, &self.events);
            }
            self.pending_readers.clear();
            if let Some(task) = self.scan_task.take() {
                task.abort();
            }
        }
    }
}

/// Discovery is restarted this often: a discovery session on emulated controllers sometimes stops reporting for
/// whole 10 s windows, and a restart also re-reports devices BlueZ has cached.
const DISCOVERY_RESTART: Duration = Duration::from_secs(3);

/// Reports every device whose advertisement carries the filter's service data, until aborted.
async fn scan(adapter: Adapter, filter: ScanFilter, events: mpsc::UnboundedSender<DriverEvent>) -> bluer::Result<()> {
    loop {
        let window = tokio::time::timeout(DISCOVERY_RESTART, scan_once(&adapter, &filter, &events)).await;
        if let Ok(result) = window {
            return result;
        }
    }
}

async fn scan_once(
    adapter: &Adapter,
    filter: &ScanFilter,
    events: &mpsc::UnboundedSender<DriverEvent>,
) -> bluer::Result<()> {
    // `_with_changes`: a device BlueZ already knows produces no new DeviceAdded when its advertisement changes
    // (rotation), only property changes, which this stream re-reports. Boxed so that dropping it really ends the
    // discovery session.
    let mut stream = Box::pin(adapter.discover_devices_with_changes().await?);
    while let Some(event) = stream.next().await {
        let AdapterEvent::DeviceAdded(address) = event else {
            continue;
        };
        let Ok(device) = adapter.device(address) else {
            continue;
        };
        let Ok(Some(data)) = device.service_data().await else {
            continue;
        };
        let Some(service_data) = data.get(&filter.service_uuid) else {
            continue;
        };
        let rssi = device.rssi().await.ok().flatten().unwrap_or(-127);
        let event = DriverEvent::AdvertisementSeen {
            device: device_id(address),
            rssi,
            service_data: service_data.clone().into(),
        };
        if events.send(event).is_err() {
            break;
        }
    }
    Ok(())
}

async fn connect(
    adapter: &Adapter,
    shared: &Arc<Mutex<Shared>>,
    device: DeviceId,
    events: &mpsc::UnboundedSender<DriverEvent>,
    made_acl: &AtomicBool,
) -> Result<(), ConnectError> {
    let err = |e: bluer::Error| ConnectError::Platform(e.to_string());
    let dev = adapter.device(address_of(device)).map_err(err)?;
    let own = adapter.address().await.map_err(err)?;
    let has_link = || lock(shared).links.values().any(|l| l.device == device);
    connect_le(&dev, own, dev.address(), has_link).await?;
    made_acl.store(true, Ordering::Relaxed);
    let settle_until = tokio::time::Instant::now() + SHARED_CONNECTION_SETTLE;
    let mut rx = None;
    let mut tx = None;
    for service in dev.services().await.map_err(err)? {
        if service.uuid().await.map_err(err)? != POLLEN_SERVICE_UUID {
            continue;
        }
        for c in service.characteristics().await.map_err(err)? {
            match c.uuid().await.map_err(err)? {
                u if u == RX_CHARACTERISTIC_UUID => rx = Some(c),
                u if u == TX_CHARACTERISTIC_UUID => tx = Some(c),
                _ => {}
            }
        }
    }
    let (Some(rx), Some(tx)) = (rx, tx) else {
        return Err(ConnectError::Platform("the device has no Pollen GATT service".into()));
    };
    if gives_way(own, dev.address(), settle_until, has_link).await {
        return Err(peer_connected_first());
    }
    let reader = tx.notify_io().await.map_err(err)?;
    // A peer whose RX takes Write Requests gets the link's first value as one, and the write socket is acquired
    // after it (see `link_io::send_gatt`); other peers get Write Commands from the start.
    let (writer, first_write, mtu) = if rx.flags().await.map_err(err)?.write {
        let mtu = att_mtu(rx.mtu().await.map_err(err)?);
        (None, Some(rx), mtu)
    } else {
        let writer = Arc::new(rx.write_io().await.map_err(err)?);
        let mtu = att_mtu(writer.mtu());
        (Some(writer), None, mtu)
    };
    let link = {
        let mut s = lock(shared);
        let link = s.new_link(device, Role::Central);
        if let Some(t) = s.links.get_mut(&link) {
            t.gatt = writer;
            t.first_write = first_write;
        }
        link
    };
    let task = spawn_gatt_reader(shared.clone(), link, reader, events.clone());
    if let Some(t) = lock(shared).links.get_mut(&link) {
        t.tasks.push(task);
    }
    let _ = events.send(DriverEvent::Connected { link, device, role: Role::Central, att_mtu: mtu });
    Ok(())
}

async fn open_channel(adapter: &Adapter, peer: Address, psm: u16) -> Result<bluer::l2cap::Stream, String> {
    let own = adapter.address().await.map_err(|e| e.to_string())?;
    let own_type = match adapter.address_type().await.map_err(|e| e.to_string())? {
        AddressType::LeRandom => AddressType::LeRandom,
        _ => AddressType::LePublic,
    };
    let peer_type = adapter.device(peer).map_err(|e| e.to_string())?.address_type().await.map_err(|e| e.to_string())?;
    let socket = Socket::new_stream().map_err(|e| e.to_string())?;
    socket.set_recv_mtu(super::L2CAP_RECV_MTU).map_err(|e| e.to_string())?;
    // Several adapters share one kernel: bind to our own so the channel leaves from the right one.
    socket.bind(SocketAddr::new(own, own_type, 0)).map_err(|e| e.to_string())?;
    socket.connect(SocketAddr::new(peer, peer_type, psm)).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::advert::ADVERT_LEN;

    /// Measured in the virtual lab: BlueZ 5.66 sends the compact Pollen advertisement as 31 bytes (Flags, then the
    /// 128-bit service data with the 10-byte payload), which is all a legacy advertisement holds.
    #[test]
    fn only_the_compact_pollen_advertisement_fits_a_legacy_controller() {
        let adv = Advertisement { service_uuid: POLLEN_SERVICE_UUID, service_data: Bytes::from(vec![0; ADVERT_LEN]) };
        assert_eq!(advertising_data_len(&adv, false), LEGACY_ADV_DATA_MAX);
        assert!(advertising_data_len(&adv, true) > LEGACY_ADV_DATA_MAX);
        assert!(
            advertising_data_len(&adv, true) <= EXTENDED_ADV_DATA_MAX,
            "an extended advertisement takes the UUID list too"
        );
    }
}
