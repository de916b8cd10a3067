#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
//!
//! Physical link models shared by every Pollen component that needs to know what a radio can do.
//!
//! One source of truth: the BLE sim backend in `pollen-ble` schedules its packets with [`ble`], the benchmark divides
//! by [`ble::LinkParams::capacity_bps`], and the field simulator takes ranges and rates from here. A figure that
//! changes here changes everywhere at once.
//!
//! ```
//! use pollen_radio_model::ble::{Bearer, LinkParams, Phy};
//! use std::time::Duration;
//!
//! let link = LinkParams::new(Phy::Le2M, true, 247, Duration::from_micros(11_250)).unwrap();
//! let kbps = link.capacity_bps(Bearer::Gatt) / 1000.0;
//! assert!((kbps - 1402.0).abs() < 1402.0 * 0.02, "{kbps}");
//! ```

pub mod ble;
pub mod propagation;
