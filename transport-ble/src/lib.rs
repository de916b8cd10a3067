//! Pollen's Bluetooth LE transport for rust-libp2p.
#![warn(missing_docs)]

pub mod advert;
pub mod driver;
pub mod frame;
pub mod session;
pub mod sim;
