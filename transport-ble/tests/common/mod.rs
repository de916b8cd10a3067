//! Swarms over the simulated BLE medium, for the integration tests.
#![allow(dead_code)]

pub mod codec;
pub mod stack;

use std::time::Duration;

use libp2p::core::upgrade::Version;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, ping, request_response, StreamProtocol, Swarm, SwarmBuilder};
use pollen_ble::sim::SimDriver;
use pollen_ble::{BleConfig, BleHandle, BleTransport};

pub const RR_PROTOCOL: StreamProtocol = StreamProtocol::new("/pollen-test/bytes/1");

#[derive(NetworkBehaviour)]
pub struct Node {
    pub ping: ping::Behaviour,
    pub identify: identify::Behaviour,
    pub rr: request_response::Behaviour<codec::BytesCodec>,
    pub ble: pollen_ble::discovery::Behaviour,
}

/// A swarm over one simulated BLE node; `auto_dial` makes it connect to everything it sees.
pub fn swarm(driver: SimDriver, config: BleConfig, auto_dial: bool) -> (Swarm<Node>, BleHandle) {
    let transport = BleTransport::spawn(driver, config);
    let handle = transport.handle();
    let discovery = transport.discovery(auto_dial);
    let swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| stack::ble_stack(transport, key))
        .expect("transport")
        .with_behaviour(|key| Node {
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(5))),
            identify: identify::Behaviour::new(identify::Config::new("/pollen-test/1".into(), key.public())),
            rr: request_response::Behaviour::new(
                [(RR_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(600)),
            ),
            ble: discovery,
        })
        .expect("behaviour")
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(600))
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    (swarm, handle)
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed).collect()
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
