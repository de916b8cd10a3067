//! Transport configuration and errors.

use std::time::Duration;

use thiserror::Error;

use crate::advert::{EphemeralId, MAX_ROTATION};
use crate::driver::{ConnectError, DriverError};
use crate::session::{LinkError, SessionConfig};

/// Configuration of a [`crate::BleTransport`].
#[derive(Debug, Clone)]
pub struct BleConfig {
    /// Link session tunables (keep-alive, liveness, windows, L2CAP).
    pub session: SessionConfig,
    /// How often the advertised ephemeral ID changes; clamped to at most 15 minutes.
    pub rotation_interval: Duration,
    /// Scan for peers (needs the central role).
    pub scan: bool,
    /// How long a sighting keeps an ephemeral ID dialable.
    pub sighting_ttl: Duration,
    /// Sightings of one peer are reported to the discovery behaviour at most this often.
    pub sighting_report_interval: Duration,
    /// A dial fails when the link is not up after this long.
    pub connect_timeout: Duration,
    /// Seed for ephemeral IDs; `None` draws from the OS. Tests and the simulator set it for repeatable runs.
    pub seed: Option<u64>,
}

impl Default for BleConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            rotation_interval: Duration::from_secs(10 * 60),
            scan: true,
            sighting_ttl: Duration::from_secs(15 * 60),
            sighting_report_interval: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            seed: None,
        }
    }
}

impl BleConfig {
    pub(crate) fn rotation(&self) -> Duration {
        self.rotation_interval.clamp(Duration::from_secs(1), MAX_ROTATION)
    }
}

/// Errors of the BLE transport.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BleError {
    /// No recent advertisement carries this ephemeral ID.
    #[error("no BLE peer with ephemeral id {0:016x} seen recently")]
    UnknownPeer(u64),
    /// The platform could not connect.
    #[error("connect failed: {0}")]
    Connect(#[from] ConnectError),
    /// The link did not come up within the connect timeout.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// A link to that device already exists.
    #[error("already connected to that device")]
    AlreadyConnected,
    /// The transport already listens (advertises); it has one listener.
    #[error("the BLE transport already has a listener")]
    ListenerExists,
    /// The driver cannot do what was asked.
    #[error("driver: {0}")]
    Driver(#[from] DriverError),
    /// The link failed.
    #[error("link: {0}")]
    Link(#[from] LinkError),
    /// The engine task is gone (its future was dropped).
    #[error("the BLE engine is not running")]
    EngineGone,
}

/// The multiaddr for an ephemeral ID: `/memory/<id>` (see `docs/ble-link.md` §5).
pub fn ble_multiaddr(id: EphemeralId) -> libp2p_core::Multiaddr {
    libp2p_core::Multiaddr::empty().with(libp2p_core::multiaddr::Protocol::Memory(id.0))
}

/// The ephemeral ID in a `/memory/<id>` multiaddr, optionally followed by `/p2p/<peer id>` (as the swarm and the
/// relay client pass it). `/memory/0` means "any" (listen).
pub fn parse_ble_multiaddr(addr: &libp2p_core::Multiaddr) -> Option<u64> {
    use libp2p_core::multiaddr::Protocol;
    let mut it = addr.iter();
    match (it.next(), it.next(), it.next()) {
        (Some(Protocol::Memory(id)), None, None) | (Some(Protocol::Memory(id)), Some(Protocol::P2p(_)), None) => {
            Some(id)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiaddr_mapping() {
        let id = EphemeralId(0xfeed);
        let addr = ble_multiaddr(id);
        assert_eq!(addr.to_string(), "/memory/65261");
        assert_eq!(parse_ble_multiaddr(&addr), Some(0xfeed));
        let with_peer: libp2p_core::Multiaddr =
            "/memory/7/p2p/12D3KooWGpdAidqjrrbEhHRghCgQzGHjbAs5YuWJbg52Jsa9cbdA".parse().unwrap();
        assert_eq!(parse_ble_multiaddr(&with_peer), Some(7));
        for other in ["/ip4/1.2.3.4/tcp/1", "/memory/1/memory/2", "/memory/3/p2p-circuit"] {
            assert_eq!(parse_ble_multiaddr(&other.parse().unwrap()), None, "{other}");
        }
    }
}
