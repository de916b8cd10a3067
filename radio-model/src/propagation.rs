//! Received signal strength and range from distance: the log-distance path-loss model.
//!
//! RSSI(d) = P_tx − PL(1 m) − 10 · n · log10(d / 1 m). Free-space loss at 1 m and 2.44 GHz is 40.2 dB; an exponent
//! n = 3 stands for bodies, pockets and clutter around phones. Receiver sensitivity differs by PHY (2M needs about
//! 3 dB more signal than 1M for the same error rate), so 2M links reach less far.

use crate::ble::Phy;

/// A log-distance path-loss model with the transmitter power and receiver sensitivities of a phone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathLoss {
    /// Transmit power, dBm.
    pub tx_power_dbm: f64,
    /// Path loss at 1 m, dB.
    pub loss_at_1m_db: f64,
    /// Path-loss exponent.
    pub exponent: f64,
    /// Weakest signal the receiver decodes on LE 1M, dBm.
    pub sensitivity_1m_dbm: f64,
    /// Weakest signal the receiver decodes on LE 2M, dBm.
    pub sensitivity_2m_dbm: f64,
}

impl Default for PathLoss {
    fn default() -> Self {
        Self {
            tx_power_dbm: 0.0,
            loss_at_1m_db: 40.2,
            exponent: 3.0,
            sensitivity_1m_dbm: -92.0,
            sensitivity_2m_dbm: -89.0,
        }
    }
}

impl PathLoss {
    /// Mean RSSI at `distance_m` metres (distances under 10 cm are treated as 10 cm).
    pub fn rssi_dbm(&self, distance_m: f64) -> f64 {
        let d = distance_m.max(0.1);
        self.tx_power_dbm - self.loss_at_1m_db - 10.0 * self.exponent * d.log10()
    }

    /// Whether a signal of `rssi_dbm` is decodable on `phy`.
    pub fn decodable(&self, rssi_dbm: f64, phy: Phy) -> bool {
        rssi_dbm >= self.sensitivity(phy)
    }

    /// The distance at which the mean RSSI reaches the sensitivity of `phy`.
    pub fn range_m(&self, phy: Phy) -> f64 {
        let margin = self.tx_power_dbm - self.loss_at_1m_db - self.sensitivity(phy);
        10f64.powf(margin / (10.0 * self.exponent))
    }

    fn sensitivity(&self, phy: Phy) -> f64 {
        match phy {
            Phy::Le1M => self.sensitivity_1m_dbm,
            Phy::Le2M => self.sensitivity_2m_dbm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_matches_rssi_threshold() {
        let m = PathLoss::default();
        for phy in [Phy::Le1M, Phy::Le2M] {
            let r = m.range_m(phy);
            assert!(m.decodable(m.rssi_dbm(r * 0.99), phy));
            assert!(!m.decodable(m.rssi_dbm(r * 1.01), phy));
        }
        assert!(m.range_m(Phy::Le2M) < m.range_m(Phy::Le1M));
        // Phones in pockets: tens of metres, not hundreds.
        assert!((20.0..80.0).contains(&m.range_m(Phy::Le1M)));
    }

    #[test]
    fn rssi_falls_with_distance() {
        let m = PathLoss::default();
        assert!(m.rssi_dbm(1.0) > m.rssi_dbm(10.0));
        assert!((m.rssi_dbm(1.0) - (-40.2)).abs() < 1e-9);
        assert_eq!(m.rssi_dbm(0.0), m.rssi_dbm(0.1));
    }
}
