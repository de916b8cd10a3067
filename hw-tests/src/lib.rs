//! Pollen's BLE conformance suite, written once against [`pollen_ble::driver::BleDriver`] and the libp2p transport,
//! and the labs it runs in:
//! - [`lab::SimLab`]: the simulated medium, in `cargo test --workspace`;
//! - `BluezLab` (feature `bluez`): real BlueZ adapters, inside the virtual lab (`pollen-hw-tests vlab`) or on a
//!   device-lab host;
//! - `BtleplugLab` (feature `btleplug`): a central-only btleplug node 0 against BlueZ peers, in the same places.
//!
//! Besides the pass/fail [`suite`], [`throughput`] measures goodput by ATT MTU, bearer and PHY, and [`devlab`]
//! runs both on every host of a device lab (`pollen-hw-tests devlab --config lab.toml`).
#![warn(missing_docs)]

#[cfg(feature = "bluez")]
pub mod bluez_lab;
#[cfg(feature = "btleplug")]
pub mod btleplug_lab;
pub mod devlab;
pub mod lab;
pub mod node;
pub mod report;
pub mod suite;
pub mod throughput;

use std::time::Duration;

use thiserror::Error;

/// Why a lab or scenario step failed.
#[derive(Debug, Error)]
pub enum LabError {
    /// A wait ran out.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A wait for an event ran out; `seen` lists the failures the node reported meanwhile.
    #[error("timed out after {within:?} (meanwhile: {seen})")]
    TimeoutSeeing {
        /// How long the wait was.
        within: Duration,
        /// The dial failures and closed connections the node reported during the wait.
        seen: String,
    },
    /// A node's task ended.
    #[error("the node stopped")]
    NodeGone,
    /// Building a node or its swarm failed.
    #[error("setup failed: {0}")]
    Setup(String),
    /// Opening a stream failed.
    #[error("stream: {0}")]
    Stream(String),
    /// I/O on a stream failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The lab cannot do what the scenario needs.
    #[error("unsupported by this lab: {0}")]
    Unsupported(String),
    /// A scenario's check did not hold.
    #[error("{0}")]
    Check(String),
}
