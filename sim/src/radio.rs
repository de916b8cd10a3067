//! The radios a phone brings to the field: range, capacity, setup delay, concurrent links and power draw.
//!
//! BLE figures come from `pollen-radio-model` (the same link model the BLE transport's sim backend and the link
//! benchmark use), so a change there moves the field simulator too. Wi-Fi Direct has no link model of its own in
//! Pollen yet; its figures are quoted below with their sources.

use std::time::Duration;

use pollen_radio_model::ble::{Bearer, LinkParams, Phy, SetupLatency};
use pollen_radio_model::propagation::PathLoss;
use serde::{Deserialize, Serialize};

use crate::model::Time;

/// Which radio carries the links of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RadioKind {
    /// Bluetooth LE, L2CAP CoC bearer (Pollen's bulk path).
    Ble,
    /// Wi-Fi Direct (P2P group, TCP).
    WifiDirect,
}

/// Power draw of one radio, milliwatts at the battery, attributable to Pollen (the phone's idle floor excluded).
///
/// Chip figures: Nordic nRF52840 Product Specification v1.7, §5.4 radio current (RX 1 Mbit/s 4.6 mA, TX 0 dBm
/// 4.8 mA, 3 V, DC/DC on) for BLE; Camps-Mur, Garcia-Saavedra, Serrano, "Device-to-device communications with Wi-Fi
/// Direct: overview and experimentation", IEEE Wireless Communications 20(3), 2013, for Wi-Fi Direct group formation
/// times; Halperin et al., "Demystifying 802.11n power consumption", HotPower 2010, for Wi-Fi active and idle power
/// (≈ 1.3 W receiving, ≈ 0.8–0.9 W idle-listening on an Intel 5300). A phone's Bluetooth controller and the host wake
/// ups it causes cost about twice the bare radio; that factor is an assumption, stated here so it can be changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerProfile {
    /// Scanning with the receiver on 100 % of the time.
    pub scan_continuous_mw: f64,
    /// One advertising event (three channels), microjoules.
    pub advertise_event_uj: f64,
    /// Holding one idle connection (empty connection events, or a Wi-Fi group's beacons and power save).
    pub connected_mw: f64,
    /// Moving data (radio at full duty plus the host CPU for the stack and Noise), for sender and receiver alike.
    pub transfer_mw: f64,
    /// One connection setup (connect, MTU and service discovery, or P2P group formation), millijoules.
    pub setup_mj: f64,
}

/// Everything the simulator needs to know about one radio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RadioProfile {
    /// Which radio.
    pub kind: RadioKind,
    /// Distance within which two phones connect, metres.
    pub range_m: f64,
    /// Payload capacity of one link, each direction, bytes per second.
    pub rate_bytes_per_s: f64,
    /// Fastest connection setup, ms.
    pub setup_best_ms: Time,
    /// Mean connection setup, ms.
    pub setup_mean_ms: Time,
    /// Slowest connection setup, ms.
    pub setup_worst_ms: Time,
    /// Links one phone holds at once.
    pub max_links: usize,
    /// Power draw.
    pub power: PowerProfile,
}

/// A 3.85 V, 3000 mAh phone battery, joules (11.55 Wh).
pub const BATTERY_J: f64 = 3.85 * 3.0 * 3600.0;

/// Concurrent BLE connections one Android phone holds reliably; the controller's hard limit is often 7, and the
/// airtime of each link shrinks as more share the radio, so the simulator uses the conservative figure.
const BLE_MAX_LINKS: usize = 4;

impl RadioProfile {
    /// BLE between two phones: LE 1M PHY (the PHY every phone supports, and the longer-range one), data length
    /// extension, 30 ms connection interval (Android's balanced default), L2CAP CoC. Range and rate come from the
    /// link and path-loss models of `pollen-radio-model`; setup times are the Android figures quoted there.
    pub fn ble() -> Self {
        let rate = LinkParams::new(Phy::Le1M, true, 247, Duration::from_millis(30))
            .map(|l| l.capacity_bps(Bearer::L2capCoc) / 8.0)
            // The parameters above are constants inside the model's valid range; a failure would be a model bug,
            // and the 1M PHY's well-known ~ 90 kB/s is the right fallback.
            .unwrap_or(90_000.0);
        let setup = SetupLatency::ANDROID;
        let ms = |d: Duration| d.as_millis() as Time;
        let radio_mw = 3.0 * 4.7; // mean of the nRF52840's RX and TX current at 3 V
        Self {
            kind: RadioKind::Ble,
            range_m: PathLoss::default().range_m(Phy::Le1M),
            rate_bytes_per_s: rate,
            setup_best_ms: ms(setup.best),
            setup_mean_ms: ms(setup.mean),
            setup_worst_ms: ms(setup.worst),
            max_links: BLE_MAX_LINKS,
            power: PowerProfile {
                scan_continuous_mw: 2.0 * radio_mw,
                // 3 channels × ~1 ms (376 µs ADV_IND plus ramp-up and the listen for requests), doubled for the host.
                advertise_event_uj: 2.0 * radio_mw * 3.0,
                // 2 empty packets of ~80 µs plus wake-up, every 30 ms: about 1 % duty, doubled for the host.
                connected_mw: 2.0 * radio_mw * 0.01 * 3.0,
                // Radio at full duty, plus about 100 mW of application CPU for the stack and Noise.
                transfer_mw: 2.0 * radio_mw + 100.0,
                setup_mj: (2.0 * radio_mw + 100.0) * setup.mean.as_secs_f64(),
            },
        }
    }

    /// Wi-Fi Direct between two phones: 2.4 GHz, about 30 Mbit/s of TCP goodput at room scale, group formation
    /// 1.5–6 s with a 3 s mean (Camps-Mur et al. 2013), range from the log-distance model with 15 dBm transmit power
    /// and −75 dBm needed for that rate.
    pub fn wifi_direct() -> Self {
        let path = PathLoss { tx_power_dbm: 15.0, sensitivity_1m_dbm: -75.0, ..PathLoss::default() };
        Self {
            kind: RadioKind::WifiDirect,
            range_m: path.range_m(Phy::Le1M),
            rate_bytes_per_s: 30e6 / 8.0,
            setup_best_ms: 1_500,
            setup_mean_ms: 3_000,
            setup_worst_ms: 6_000,
            // A group owner serves a handful of clients; phones rarely sustain more than one group.
            max_links: 4,
            power: PowerProfile {
                // Discovery still runs on BLE (Wi-Fi P2P find costs far more): the same scanner as the BLE radio.
                scan_continuous_mw: 2.0 * 3.0 * 4.7,
                advertise_event_uj: 2.0 * 3.0 * 4.7 * 3.0,
                // Halperin et al.: idle listening ≈ 0.8 W without power save; phones' PSM cuts it to about a third.
                connected_mw: 270.0,
                transfer_mw: 1_300.0,
                setup_mj: 1_300.0 * 3.0,
            },
        }
    }

    /// Milliseconds to carry `bytes` over one link.
    pub fn transfer_ms(&self, bytes: u64) -> Time {
        ((bytes as f64 / self.rate_bytes_per_s) * 1000.0).ceil() as Time
    }

    /// Maps a uniform sample in [0, 1) to a setup time, with the same truncated-exponential shape as the BLE model.
    pub fn sample_setup_ms(&self, u: f64) -> Time {
        let latency = SetupLatency {
            best: Duration::from_millis(self.setup_best_ms),
            mean: Duration::from_millis(self.setup_mean_ms.max(self.setup_best_ms + 1)),
            worst: Duration::from_millis(self.setup_worst_ms.max(self.setup_mean_ms + 1)),
        };
        latency.sample(u).as_millis() as Time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ble_figures_come_from_the_link_model() {
        let ble = RadioProfile::ble();
        assert!((50.0..60.0).contains(&ble.range_m), "{}", ble.range_m);
        assert!((60_000.0..130_000.0).contains(&ble.rate_bytes_per_s), "{}", ble.rate_bytes_per_s);
        assert_eq!(ble.setup_mean_ms, 867);
    }

    #[test]
    fn wifi_direct_is_faster_and_costlier_than_ble() {
        let (ble, wifi) = (RadioProfile::ble(), RadioProfile::wifi_direct());
        assert!(wifi.rate_bytes_per_s > 20.0 * ble.rate_bytes_per_s);
        assert!(wifi.setup_mean_ms > ble.setup_mean_ms);
        assert!(wifi.power.transfer_mw > 5.0 * ble.power.transfer_mw);
        // Per byte, Wi-Fi is still cheaper: that is the point of the bandwidth upgrade.
        let per_byte = |r: &RadioProfile| r.power.transfer_mw / r.rate_bytes_per_s;
        assert!(per_byte(&wifi) < per_byte(&ble));
    }

    #[test]
    fn setup_samples_stay_within_bounds() {
        let ble = RadioProfile::ble();
        for i in 0..100 {
            let t = ble.sample_setup_ms(i as f64 / 100.0);
            assert!((ble.setup_best_ms..=ble.setup_worst_ms).contains(&t), "{t}");
        }
    }
}
