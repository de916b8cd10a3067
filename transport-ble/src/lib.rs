//! Pollen's Bluetooth LE transport for rust-libp2p.
#![warn(missing_docs)]

pub mod frame;
pub mod session;
