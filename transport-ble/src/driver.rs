//! `BleDriver`: the small trait a platform implements. It advertises, scans, connects, opens L2CAP channels and
//! moves bytes; framing, flow control, deadlines and retries all live in Rust above it ([`crate::session`]).
//!
//! Every method returns at once. Outcomes arrive as [`DriverEvent`]s from [`BleDriver::poll_event`].

use std::task::{Context, Poll};

use bytes::Bytes;
pub use pollen_radio_model::ble::Bearer;
use thiserror::Error;
use uuid::Uuid;

pub use crate::session::Role;

/// The GATT service every Pollen node advertises and serves.
pub const POLLEN_SERVICE_UUID: Uuid = Uuid::from_u128(0x5f9b_34fb_7d4e_4c1a_9a47_0c3e_8b2d_6a10);
/// Characteristic the central writes to (write without response).
pub const RX_CHARACTERISTIC_UUID: Uuid = Uuid::from_u128(0x5f9b_34fb_7d4e_4c1a_9a47_0c3e_8b2d_6a11);
/// Characteristic the peripheral notifies on.
pub const TX_CHARACTERISTIC_UUID: Uuid = Uuid::from_u128(0x5f9b_34fb_7d4e_4c1a_9a47_0c3e_8b2d_6a12);
/// Readable characteristic holding the L2CAP PSM as a little-endian u16 (BlueZ cannot advertise a PSM).
pub const PSM_CHARACTERISTIC_UUID: Uuid = Uuid::from_u128(0x5f9b_34fb_7d4e_4c1a_9a47_0c3e_8b2d_6a13);

/// A remote device as the driver knows it. Drivers map platform handles (MAC addresses, iOS peripheral UUIDs) to
/// these small ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub u64);

/// One connection, unique within the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// What to advertise: the Pollen service UUID and its service data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// The service UUID, normally [`POLLEN_SERVICE_UUID`].
    pub service_uuid: Uuid,
    /// Service data under that UUID ([`crate::advert::AdvertPayload`]).
    pub service_data: Bytes,
}

/// What a scan looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFilter {
    /// Only advertisements of this service are reported.
    pub service_uuid: Uuid,
}

/// What a driver can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// It can scan and connect.
    pub central: bool,
    /// It can advertise and accept connections.
    pub peripheral: bool,
    /// It can listen for and open L2CAP CoC channels.
    pub l2cap: bool,
}

/// Why a connect attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    /// A platform status code, such as Android's GATT_ERROR 133.
    #[error("platform status {0}")]
    Status(i32),
    /// The device is not in radio range.
    #[error("device out of range")]
    OutOfRange,
    /// This side or the remote already holds its maximum number of links.
    #[error("too many concurrent links")]
    TooManyLinks,
    /// A link to that device already exists and the platform will not open a second one.
    #[error("already connected")]
    AlreadyConnected,
    /// The device does not accept connections (not advertising, or powered off).
    #[error("device not connectable")]
    NotConnectable,
    /// The device id is unknown.
    #[error("unknown device")]
    UnknownDevice,
    /// Anything else the platform reported.
    #[error("{0}")]
    Platform(String),
}

/// Android's catch-all GATT_ERROR, returned on most connect failures.
pub const GATT_ERROR_133: i32 = 133;

/// Why a `send` was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// The platform queue is full; wait for [`DriverEvent::SendReady`].
    #[error("send queue full")]
    Busy,
    /// The value exceeds what the bearer carries in one send.
    #[error("value of {len} bytes exceeds the bearer maximum of {max}")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// The link (or its L2CAP channel) does not exist (any more).
    #[error("no such link or channel")]
    NoSuchLink,
    /// Anything else the platform reported.
    #[error("{0}")]
    Platform(String),
}

/// A driver command that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DriverError {
    /// The platform or backend cannot do this (for example a central-only backend asked to advertise).
    #[error("unsupported by this driver: {0}")]
    Unsupported(&'static str),
    /// The link does not exist.
    #[error("no such link")]
    NoSuchLink,
    /// Anything else the platform reported.
    #[error("{0}")]
    Platform(String),
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// This side asked for it.
    Local,
    /// The remote side disconnected.
    Remote,
    /// The supervision timeout expired (range, interference, the peer vanished).
    SupervisionTimeout,
    /// The adapter was powered off.
    PoweredOff,
    /// Anything else the platform reported.
    Other(String),
}

/// Something the platform reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverEvent {
    /// A scan saw an advertisement matching the filter.
    AdvertisementSeen {
        /// The advertiser.
        device: DeviceId,
        /// Received signal strength, dBm.
        rssi: i16,
        /// The service data under the Pollen UUID.
        service_data: Bytes,
    },
    /// A link is up and both directions can carry data (GATT discovered and notifications enabled).
    Connected {
        /// The new link.
        link: LinkId,
        /// The remote device.
        device: DeviceId,
        /// This side's role on the link.
        role: Role,
        /// ATT MTU as the platform reports it now (≤ 23 when not negotiated yet).
        att_mtu: u16,
    },
    /// A [`BleDriver::connect`] failed.
    ConnectFailed {
        /// The device that was dialed.
        device: DeviceId,
        /// Why.
        error: ConnectError,
    },
    /// The platform reports another ATT MTU for the link.
    MtuChanged {
        /// The link.
        link: LinkId,
        /// The new ATT MTU.
        att_mtu: u16,
    },
    /// An L2CAP CoC of the link is open on both sides.
    L2capOpened {
        /// The link.
        link: LinkId,
        /// Largest SDU one send may carry.
        max_sdu: usize,
    },
    /// Opening an L2CAP channel failed; the link stays on GATT.
    L2capFailed {
        /// The link.
        link: LinkId,
        /// What the platform said.
        reason: String,
    },
    /// Bytes arrived: one ATT value on GATT, a chunk of the channel's stream on L2CAP.
    Received {
        /// The link.
        link: LinkId,
        /// Which bearer.
        bearer: Bearer,
        /// The bytes.
        data: Bytes,
    },
    /// A bearer that refused a send with [`SendError::Busy`] can take more.
    SendReady {
        /// The link.
        link: LinkId,
        /// Which bearer.
        bearer: Bearer,
    },
    /// The link is gone.
    Disconnected {
        /// The link.
        link: LinkId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// A BLE platform: the sim medium, BlueZ, Android, iOS.
pub trait BleDriver: Send + 'static {
    /// What this driver supports.
    fn capabilities(&self) -> Capabilities;
    /// Starts (or updates) connectable advertising with the GATT service behind it.
    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), DriverError>;
    /// Stops advertising.
    fn stop_advertising(&mut self) -> Result<(), DriverError>;
    /// Starts scanning; matching advertisements arrive as [`DriverEvent::AdvertisementSeen`].
    fn start_scan(&mut self, filter: &ScanFilter) -> Result<(), DriverError>;
    /// Stops scanning.
    fn stop_scan(&mut self) -> Result<(), DriverError>;
    /// Connects to a device as central; the outcome arrives as `Connected` or `ConnectFailed`.
    fn connect(&mut self, device: DeviceId) -> Result<(), DriverError>;
    /// Listens for L2CAP CoC connections and returns the PSM to publish.
    fn listen_l2cap(&mut self) -> Result<u16, DriverError>;
    /// Opens an L2CAP CoC to the peripheral of `link`; the outcome arrives as `L2capOpened` or `L2capFailed`.
    fn open_l2cap(&mut self, link: LinkId, psm: u16) -> Result<(), DriverError>;
    /// Sends one value: at most ATT MTU − 3 bytes on GATT, at most the SDU size on L2CAP.
    fn send(&mut self, link: LinkId, bearer: Bearer, data: &[u8]) -> Result<(), SendError>;
    /// Tears the link down.
    fn disconnect(&mut self, link: LinkId);
    /// The next event, or `Pending` (waking `cx` when one arrives).
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<DriverEvent>;
}
