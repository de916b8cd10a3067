#![doc = include_str!("../README.md")]
//!
//! Layers, bottom up:
//! - [`driver::BleDriver`]: the small platform trait (advertise, scan, connect, L2CAP, send ≤ N bytes, events);
//!   [`sim`] is the simulated medium backend;
//! - [`session::LinkSession`]: the sans-IO link session (framing, credits, keep-alive, L2CAP switch), wire format
//!   in [`frame`] and `docs/ble-link.md`;
//! - [`BleTransport`]: the libp2p `Transport`, with [`discovery::Behaviour`] for finding peers and [`muxer::Config`]
//!   for a yamux sized to BLE links.
#![warn(missing_docs)]

pub mod advert;
#[cfg(feature = "bluez")]
pub mod bluez;
#[cfg(feature = "btleplug")]
pub mod btleplug;
mod config;
pub mod discovery;
pub mod driver;
mod engine;
pub mod frame;
pub mod muxer;
pub mod session;
pub mod sim;
mod stream;
mod transport;

pub use config::{ble_multiaddr, parse_ble_multiaddr, BleConfig, BleError};
pub use engine::{BleEngine, LinkInfo};
pub use stream::BleStream;
pub use transport::{BleHandle, BleTransport};
