//! The `sim` backend: a simulated BLE medium that many [`SimDriver`]s share.
//!
//! It schedules every exchange of every connection event with the airtime rules of
//! [`pollen_radio_model::ble`], so throughput, latency and back-pressure come out of the same model the benchmark
//! divides by. It models advertising and scan windows, range and RSSI from distance, connection setup latency,
//! MTU negotiation, PHY/DLE/connection interval, write-queue depth, link loss with the supervision timeout, the
//! concurrent-link limit, and per-node platform quirks ([`Quirks`]).
//!
//! Time is tokio's clock, so a test under `#[tokio::test(start_paused = true)]` runs hours of radio time in
//! milliseconds, deterministically for a given seed.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use pollen_ble::sim::{MediumConfig, NodeConfig, SimMedium};
//! let medium = SimMedium::new(MediumConfig::default());
//! let phone_a = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
//! let phone_b = medium.add_node(NodeConfig::ios((3.0, 0.0))).unwrap();
//! # let _ = (phone_a, phone_b);
//! # }
//! ```

mod air;
mod driver;
mod world;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub use driver::SimDriver;
use pollen_radio_model::ble::{AdvertiseMode, LinkParams, ModelError, ScanMode, SetupLatency};
use pollen_radio_model::propagation::PathLoss;
use tokio::sync::Notify;
use tokio::time::Instant;
use world::World;

use crate::driver::{DeviceId, LinkId};

/// Medium-wide settings.
#[derive(Debug, Clone)]
pub struct MediumConfig {
    /// Seed of every random choice the medium makes.
    pub seed: u64,
    /// Propagation model for RSSI and range.
    pub path_loss: PathLoss,
    /// Link supervision timeout: how long a silent link lasts before the platform reports it gone. AOSP's default
    /// is 20 s (`BTM_BLE_CONN_TIMEOUT_DEF` = 2000 × 10 ms).
    pub supervision_timeout: Duration,
    /// Time from a host handing data to its controller until the data can go on air. A reply can therefore not
    /// leave in the connection event that carried the request, as on real controllers.
    pub host_turnaround: Duration,
    /// Probability that an advertising packet is missed by a scanner listening at the time.
    pub advert_loss: f64,
    /// Probability that an exchange's packets are corrupted and retransmitted in the next exchange.
    pub packet_error_rate: f64,
    /// Half-width of the uniform noise added to reported RSSI, dB.
    pub rssi_noise_db: f64,
}

impl Default for MediumConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            path_loss: PathLoss::default(),
            supervision_timeout: Duration::from_secs(20),
            host_turnaround: Duration::from_millis(1),
            advert_loss: 0.05,
            packet_error_rate: 0.0,
            rssi_noise_db: 3.0,
        }
    }
}

/// The radio and stack of one simulated device.
#[derive(Debug, Clone, PartialEq)]
pub struct SimProfile {
    /// Largest ATT MTU the stack negotiates.
    pub max_att_mtu: u16,
    /// Supports LE 2M.
    pub phy_2m: bool,
    /// Supports the Data Length Extension.
    pub dle: bool,
    /// Connection interval requested as central (and the minimum accepted as peripheral).
    pub conn_interval: Duration,
    /// Cap on exchanges per connection event, if the controller has one.
    pub max_exchanges_per_event: Option<u16>,
    /// Concurrent links the stack allows (about 7 on stock Android).
    pub max_links: usize,
    /// Write-without-response / notification queue, in values.
    pub gatt_queue_depth: usize,
    /// L2CAP send queue, in SDUs.
    pub l2cap_queue_depth: usize,
    /// Supports L2CAP CoC.
    pub l2cap: bool,
    /// Advertising interval.
    pub advertise: AdvertiseMode,
    /// Scan duty cycle.
    pub scan: ScanMode,
    /// Connection setup time distribution.
    pub setup_latency: SetupLatency,
}

impl SimProfile {
    /// A recent Android phone: MTU 517, 2M, DLE, high-priority 15 ms interval, 7 links.
    pub fn android() -> Self {
        Self {
            max_att_mtu: 517,
            phy_2m: true,
            dle: true,
            conn_interval: Duration::from_millis(15),
            max_exchanges_per_event: None,
            max_links: 7,
            gatt_queue_depth: 16,
            l2cap_queue_depth: 8,
            l2cap: true,
            advertise: AdvertiseMode::LowLatency,
            scan: ScanMode::LowLatency,
            setup_latency: SetupLatency::ANDROID,
        }
    }

    /// An iPhone: MTU 185, 30 ms interval (iOS accepts ≥ 15 ms in 15 ms steps).
    pub fn ios() -> Self {
        Self {
            max_att_mtu: 185,
            conn_interval: Duration::from_millis(30),
            advertise: AdvertiseMode::Balanced,
            ..Self::android()
        }
    }

    /// A Linux box with BlueZ defaults: 30 ms interval (BlueZ's `le_min_conn_interval` = 24 × 1.25 ms). The ATT MTU
    /// is 513, what the `bluez` backend reports so that no write exceeds the 510 bytes BlueZ 5.66 accepts.
    pub fn linux() -> Self {
        Self { conn_interval: Duration::from_millis(30), max_att_mtu: 513, ..Self::android() }
    }
}

/// Platform quirks, each toggled per node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quirks {
    /// Android: a write longer than the ATT payload is cut to it silently instead of refused.
    pub truncate_oversized_writes: bool,
    /// iOS: a write issued while the queue is full is dropped silently instead of refused.
    pub drop_writes_when_full: bool,
    /// Probability that a connect fails with GATT status 133.
    pub gatt_133_rate: f64,
    /// Both nodes connecting to each other at once yields two links (one in each role) instead of one.
    pub simultaneous_connect_duplicates: bool,
    /// Linux: the kernel pauses the node's advertising while it initiates an LE connection, so a peer cannot
    /// connect to it meanwhile. Of two nodes connecting to each other at once, the attempt that completes first
    /// fails ([`crate::driver::ConnectError::NotConnectable`]); the other lands once the first has ended. (On a
    /// radio the first runs until the kernel's connect timeout; btvirt in the virtual lab fails both at once, NOTES
    /// finding 16.)
    pub pauses_advertising_while_initiating: bool,
    /// The platform reports ATT MTU 23 at connect and the negotiated MTU only this much later.
    pub late_mtu_report: Option<Duration>,
    /// BlueZ 5.66: a write-without-response longer than this is dropped silently by the receiving bluetoothd
    /// (its length check counted the handle; fixed in 5.69). Measured in the virtual lab: 510.
    pub drop_writes_over: Option<usize>,
    /// BlueZ with EATT spreads GATT traffic over several ATT bearers: values this node receives arrive up to this
    /// much later than their airtime says, so they overtake each other (seen in the virtual lab).
    pub gatt_reorder_jitter: Option<Duration>,
    /// BlueZ as a peripheral (every version up to upstream master): a link's first write makes bluetoothd acquire
    /// the application's write socket, a D-Bus round trip of about this long. Writes that arrive meanwhile are
    /// handed over when it is done, each with its own length but the bytes of the newest one (`gatt-database.c`
    /// keeps them by pointer into its ATT receive buffer), and a Write Request is answered only then. Seen in the
    /// virtual lab as "header declares 62 payload bytes, 17 arrived" on the first link of every dial.
    pub acquire_write_delay: Option<Duration>,
    /// This node's driver, as a central, writes a link's first GATT value as a Write Request and sends nothing more
    /// until its response, so a BlueZ peripheral (see `acquire_write_delay`) receives every value intact. Pollen's
    /// `bluez` and `btleplug` drivers do this.
    pub first_write_request: bool,
}

/// The write-socket acquisition of [`NodeConfig::linux`]: one D-Bus round trip between bluetoothd and the app.
pub const ACQUIRE_WRITE_DELAY: Duration = Duration::from_millis(10);

/// A device to add to the medium.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Position in metres.
    pub position: (f64, f64),
    /// Radio and stack.
    pub profile: SimProfile,
    /// Quirks.
    pub quirks: Quirks,
}

impl NodeConfig {
    /// An Android phone at `position` with Android's quirks except GATT 133 (which tests turn on explicitly).
    pub fn android(position: (f64, f64)) -> Self {
        Self {
            position,
            profile: SimProfile::android(),
            quirks: Quirks {
                truncate_oversized_writes: true,
                simultaneous_connect_duplicates: true,
                ..Quirks::default()
            },
        }
    }

    /// An iPhone at `position` with iOS's write-drop quirk.
    pub fn ios(position: (f64, f64)) -> Self {
        Self {
            position,
            profile: SimProfile::ios(),
            quirks: Quirks { drop_writes_when_full: true, ..Quirks::default() },
        }
    }

    /// A Linux node with BlueZ 5.66's behaviour as measured in the virtual lab: long writes dropped, GATT values
    /// reordered by EATT, writes corrupted while the peripheral acquires its write socket, advertising paused while
    /// it initiates a connection; and Pollen's BlueZ driver, which writes a link's first value as a Write Request.
    pub fn linux(position: (f64, f64)) -> Self {
        let quirks = Quirks {
            drop_writes_over: Some(510),
            gatt_reorder_jitter: Some(Duration::from_millis(8)),
            acquire_write_delay: Some(ACQUIRE_WRITE_DELAY),
            first_write_request: true,
            pauses_advertising_while_initiating: true,
            ..Quirks::default()
        };
        Self { position, profile: SimProfile::linux(), quirks }
    }
}

/// Counters of what happened on air.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediumStats {
    /// Exchanges (packet pairs) sent.
    pub exchanges: u64,
    /// Application bytes delivered in GATT values.
    pub gatt_bytes: u64,
    /// Application bytes delivered in L2CAP SDUs.
    pub l2cap_bytes: u64,
    /// Writes truncated by the Android quirk.
    pub truncated_writes: u64,
    /// Writes dropped by the iOS quirk.
    pub dropped_writes: u64,
    /// Connect attempts that failed with GATT 133.
    pub gatt_133: u64,
    /// Advertisements delivered to scanners.
    pub adverts_seen: u64,
    /// GATT values delivered later than a value sent after them (EATT reordering).
    pub reordered_values: u64,
    /// Writes a BlueZ peripheral delivered with another write's bytes (see [`Quirks::acquire_write_delay`]).
    pub corrupted_writes: u64,
}

/// A handle to the shared medium. Cloning it is cheap; the medium stops when every handle and driver is gone.
#[derive(Clone)]
pub struct SimMedium {
    world: Arc<Mutex<World>>,
}

impl SimMedium {
    /// Creates the medium and spawns its scheduler on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: MediumConfig) -> Self {
        let notify = Arc::new(Notify::new());
        let world = Arc::new(Mutex::new(World::new(config, notify.clone())));
        tokio::spawn(run(Arc::downgrade(&world), notify));
        Self { world }
    }

    /// Adds a device and returns its driver. Fails when its profile is outside the specification (an interval that
    /// is not a multiple of 1.25 ms, an MTU outside 23..=517, a cap of zero exchanges).
    pub fn add_node(&self, config: NodeConfig) -> Result<SimDriver, ModelError> {
        world::negotiate(&config.profile, &config.profile)?;
        let node = self.lock().add_node(config);
        Ok(SimDriver::new(self.world.clone(), node))
    }

    /// Moves a device. Links that leave range go silent and end after the supervision timeout unless they come back.
    pub fn set_position(&self, device: DeviceId, position: (f64, f64)) {
        self.lock().set_position(device, position, Instant::now());
    }

    /// Puts a wall between two devices (`true`) or removes it: no adverts, no connects, and their links go silent.
    pub fn set_blocked(&self, a: DeviceId, b: DeviceId, blocked: bool) {
        self.lock().set_blocked(a, b, blocked, Instant::now());
    }

    /// Links currently up between two devices.
    pub fn links_between(&self, a: DeviceId, b: DeviceId) -> Vec<LinkId> {
        self.lock().links_between(a, b)
    }

    /// The negotiated parameters of a link.
    pub fn link_params(&self, link: LinkId) -> Option<LinkParams> {
        self.lock().link_params(link)
    }

    /// The link parameters two profiles agree on.
    pub fn negotiate(central: &SimProfile, peripheral: &SimProfile) -> Result<LinkParams, ModelError> {
        world::negotiate(central, peripheral)
    }

    /// Counters.
    pub fn stats(&self) -> MediumStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
}

/// The medium's state is plain data; a panic elsewhere while it was held leaves it consistent, so poisoning is
/// ignored rather than spreading the panic to every driver.
fn lock(world: &Mutex<World>) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn run(world: Weak<Mutex<World>>, notify: Arc<Notify>) {
    loop {
        let next = {
            let Some(world) = world.upgrade() else { return };
            let mut w = lock(&world);
            w.run_due(Instant::now());
            w.next_due()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}

#[cfg(test)]
mod tests;
