//! The transport stack the README shows, shared by the tests and the link benchmark.

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{noise, PeerId, Transport};
use pollen_ble::BleTransport;

/// BLE, upgraded lazily with Noise and the link-sized yamux.
pub fn ble_stack(
    transport: BleTransport,
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(transport
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key)?)
        .multiplex(pollen_ble::muxer::Config::default())
        .boxed())
}
