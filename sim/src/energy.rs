//! Energy accounting: what each phone's radio spends on scanning, advertising, holding links, setting them up and
//! moving bytes. Figures come from [`crate::radio::PowerProfile`]; duty cycles from the energy-budget plan.

use serde::{Deserialize, Serialize};

use crate::model::{NodeId, Time};
use crate::radio::PowerProfile;

/// How often a phone scans and advertises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DutyCycle {
    /// Fraction of time the scanner listens (Android: 0.1 low power, 0.25 balanced, 1.0 low latency).
    pub scan_duty: f64,
    /// Advertising interval, ms.
    pub advertise_interval_ms: Time,
}

impl Default for DutyCycle {
    /// Android's balanced scan and advertise modes.
    fn default() -> Self {
        Self { scan_duty: 0.25, advertise_interval_ms: 250 }
    }
}

/// Power figures, link rate and duty cycle of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyModel {
    /// Power draw per state.
    pub power: PowerProfile,
    /// Link payload rate, bytes per second (transfer energy is power × airtime).
    pub rate_bytes_per_s: f64,
    /// Scan and advertise duty.
    pub duty: DutyCycle,
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeEnergy {
    joules: f64,
    links: u32,
    since: Time,
}

/// Accumulates each node's energy as the engine reports link and transfer events.
#[derive(Debug, Clone)]
pub struct EnergyMeter {
    model: EnergyModel,
    nodes: Vec<NodeEnergy>,
}

impl EnergyMeter {
    /// A meter for `n` nodes, all idle at time 0.
    pub fn new(model: EnergyModel, n: usize) -> Self {
        Self { model, nodes: vec![NodeEnergy::default(); n] }
    }

    fn settle(&mut self, now: Time, node: NodeId) {
        let connected_mw = self.model.power.connected_mw;
        if let Some(e) = self.nodes.get_mut(node as usize) {
            let dt = now.saturating_sub(e.since) as f64 / 1000.0;
            e.joules += f64::from(e.links) * connected_mw / 1000.0 * dt;
            e.since = now;
        }
    }

    /// A link of `node` came up: setup cost, and one more link to keep alive.
    pub fn link_up(&mut self, now: Time, node: NodeId) {
        self.settle(now, node);
        let setup_j = self.model.power.setup_mj / 1000.0;
        if let Some(e) = self.nodes.get_mut(node as usize) {
            e.links += 1;
            e.joules += setup_j;
        }
    }

    /// A link of `node` went down.
    pub fn link_down(&mut self, now: Time, node: NodeId) {
        self.settle(now, node);
        if let Some(e) = self.nodes.get_mut(node as usize) {
            e.links = e.links.saturating_sub(1);
        }
    }

    /// `bytes` went on air from `sender` to `receiver`; both radios and hosts work for the airtime.
    pub fn transfer(&mut self, sender: NodeId, receiver: NodeId, bytes: u64) {
        let joules = self.model.power.transfer_mw / 1000.0 * bytes as f64 / self.model.rate_bytes_per_s;
        for node in [sender, receiver] {
            if let Some(e) = self.nodes.get_mut(node as usize) {
                e.joules += joules;
            }
        }
    }

    /// Closes the books at the end of the run: links still up, and the scanning and advertising of the whole run.
    pub fn finish(&mut self, duration: Time) {
        let secs = duration as f64 / 1000.0;
        let duty = self.model.duty;
        let background_j = duty.scan_duty.clamp(0.0, 1.0) * self.model.power.scan_continuous_mw / 1000.0 * secs
            + secs * 1000.0 / duty.advertise_interval_ms.max(1) as f64 * self.model.power.advertise_event_uj / 1e6;
        for node in 0..self.nodes.len() as NodeId {
            self.settle(duration, node);
        }
        for e in &mut self.nodes {
            e.joules += background_j;
        }
    }

    /// Joules per node so far.
    pub fn per_node_joules(&self) -> Vec<f64> {
        self.nodes.iter().map(|e| e.joules).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radio::RadioProfile;

    fn meter(n: usize) -> EnergyMeter {
        let radio = RadioProfile::ble();
        EnergyMeter::new(
            EnergyModel { power: radio.power, rate_bytes_per_s: radio.rate_bytes_per_s, duty: DutyCycle::default() },
            n,
        )
    }

    #[test]
    fn idle_nodes_pay_only_for_discovery() {
        let mut m = meter(2);
        m.finish(3_600_000);
        let j = m.per_node_joules();
        assert_eq!(j[0], j[1]);
        // Balanced scanning on BLE costs a few tens of joules an hour, well under 1 % of a battery.
        assert!((5.0..100.0).contains(&j[0]), "{}", j[0]);
    }

    #[test]
    fn links_and_transfers_add_to_both_ends() {
        let mut idle = meter(3);
        idle.finish(60_000);
        let base = idle.per_node_joules()[0];
        let mut m = meter(3);
        m.link_up(0, 0);
        m.link_up(0, 1);
        m.transfer(0, 1, 1_000_000);
        m.link_down(30_000, 0);
        m.link_down(30_000, 1);
        m.finish(60_000);
        let j = m.per_node_joules();
        assert!(j[0] > base && (j[0] - j[1]).abs() < 1e-9);
        assert_eq!(j[2], base);
    }
}
