//! The energy-budget policy: the application says "spend at most X % of the battery per hour", and the policy
//! turns that into how often the phone scans and advertises, whether it relays for others, and how many copies it
//! carries for them.
//!
//! Costs are the caller's: measured on the device, or taken from a model (the field simulator passes its radio
//! profile). The policy spends the budget in order of what matters most for delivery:
//!
//! 1. the node's own traffic and the setup of the contacts it expects (not optional);
//! 2. being findable: advertising at least once a second;
//! 3. relaying for others, when the budget covers the bytes it expects to carry for them with room to spare;
//! 4. everything left goes to scanning, up to continuous: a higher scan duty finds more of the short contacts.
//!
//! ```
//! use pollen_router::energy::{plan, Demand, EnergyBudget, RadioCosts};
//!
//! let costs = RadioCosts {
//!     scan_continuous_mw: 28.0, advertise_event_uj: 85.0, transfer_mw: 128.0, setup_mj: 111.0,
//!     rate_bytes_per_s: 90_000.0,
//! };
//! let demand = Demand { contacts_per_hour: 20.0, own_bytes_per_hour: 2e6, relay_bytes_per_hour: 20e6 };
//! let frugal = plan(EnergyBudget::percent_per_hour(0.01), &costs, &demand);
//! let generous = plan(EnergyBudget::percent_per_hour(1.0), &costs, &demand);
//! assert!(!frugal.relay && generous.relay);
//! assert!(frugal.scan_duty < generous.scan_duty);
//! ```

/// A 3.85 V, 3000 mAh battery, joules: the default when the platform does not report capacity.
pub const TYPICAL_BATTERY_J: f64 = 3.85 * 3.0 * 3600.0;

/// Lowest scan duty the policy plans: below it, contacts of a few seconds are missed nearly always.
pub const MIN_SCAN_DUTY: f64 = 0.02;

/// How much of the battery the application lets Pollen spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyBudget {
    /// Battery capacity, joules.
    pub battery_j: f64,
    /// Share of it per hour, percent.
    pub pct_per_hour: f64,
}

impl EnergyBudget {
    /// `pct` percent per hour of a typical phone battery.
    pub fn percent_per_hour(pct: f64) -> Self {
        Self { battery_j: TYPICAL_BATTERY_J, pct_per_hour: pct }
    }

    /// The budget as average power, milliwatts.
    pub fn milliwatts(&self) -> f64 {
        (self.battery_j * self.pct_per_hour.max(0.0) / 100.0 / 3600.0) * 1000.0
    }
}

/// What the radio costs, at the battery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RadioCosts {
    /// Scanning continuously, milliwatts.
    pub scan_continuous_mw: f64,
    /// One advertising event, microjoules.
    pub advertise_event_uj: f64,
    /// Moving data, milliwatts.
    pub transfer_mw: f64,
    /// One connection setup, millijoules.
    pub setup_mj: f64,
    /// Link payload rate, bytes per second.
    pub rate_bytes_per_s: f64,
}

impl RadioCosts {
    fn transfer_mw_for(&self, bytes_per_hour: f64) -> f64 {
        self.transfer_mw * bytes_per_hour / self.rate_bytes_per_s.max(1.0) / 3600.0
    }
}

/// What the node expects to face: from its own recent history on a phone, from the scenario in the simulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Contacts that reach a connection, per hour.
    pub contacts_per_hour: f64,
    /// The node's own messages, sent and received, bytes per hour.
    pub own_bytes_per_hour: f64,
    /// Bytes it would carry for others if it relayed, per hour.
    pub relay_bytes_per_hour: f64,
}

/// What the policy decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DutyPlan {
    /// Fraction of time the scanner listens.
    pub scan_duty: f64,
    /// Advertising interval, ms.
    pub advertise_interval_ms: u32,
    /// Relay wants and carry copies for others (feeds [`crate::gossip::RouterConfig::relay`]).
    pub relay: bool,
    /// Copies carried for others at once (feeds [`crate::gossip::RouterConfig::max_carries`]).
    pub max_carries: usize,
    /// Planned average power, milliwatts.
    pub planned_mw: f64,
    /// Whether the plan fits the budget; false when even the minimum (own traffic, slowest scanning) exceeds it.
    pub within_budget: bool,
}

/// Copies a relaying node carries at most, whatever the budget.
const MAX_CARRIES: usize = 256;

/// Relaying needs its expected cost plus this much again in reserve, so a busy hour does not blow the budget.
const RELAY_HEADROOM: f64 = 2.0;

/// Maps a battery budget to duty cycles and relay participation. See the [module documentation](self).
pub fn plan(budget: EnergyBudget, costs: &RadioCosts, demand: &Demand) -> DutyPlan {
    let budget_mw = budget.milliwatts();
    let essential_mw =
        costs.transfer_mw_for(demand.own_bytes_per_hour) + demand.contacts_per_hour * costs.setup_mj / 3600.0;
    let advertise_interval_ms = advertise_interval_for(budget_mw - essential_mw, costs);
    let advertise_mw = costs.advertise_event_uj / f64::from(advertise_interval_ms);
    let floor_mw = essential_mw + advertise_mw + MIN_SCAN_DUTY * costs.scan_continuous_mw;
    let relay_mw = costs.transfer_mw_for(demand.relay_bytes_per_hour);
    let relay = budget_mw >= floor_mw + RELAY_HEADROOM * relay_mw;
    let spent_mw = essential_mw + advertise_mw + if relay { relay_mw } else { 0.0 };
    let scan_duty =
        ((budget_mw - spent_mw) / costs.scan_continuous_mw.max(f64::MIN_POSITIVE)).clamp(MIN_SCAN_DUTY, 1.0);
    let max_carries = if relay {
        // Each carried copy is about one message's worth of relay traffic; carry as many as the spare budget pays.
        let spare_mw = budget_mw - spent_mw - scan_duty * costs.scan_continuous_mw;
        let per_carry_mw = relay_mw / 8.0;
        let affordable = if per_carry_mw > 0.0 { 8.0 + spare_mw / per_carry_mw } else { MAX_CARRIES as f64 };
        (affordable.max(1.0) as usize).min(MAX_CARRIES)
    } else {
        0
    };
    let planned_mw = spent_mw + scan_duty * costs.scan_continuous_mw;
    DutyPlan {
        scan_duty,
        advertise_interval_ms,
        relay,
        max_carries,
        planned_mw,
        within_budget: planned_mw <= budget_mw + 1e-9,
    }
}

/// Android's advertise modes (100, 250, 1000 ms): the fastest that costs under a tenth of what is available.
fn advertise_interval_for(available_mw: f64, costs: &RadioCosts) -> u32 {
    [100, 250].into_iter().find(|&ms| costs.advertise_event_uj / f64::from(ms) <= available_mw / 10.0).unwrap_or(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn costs() -> RadioCosts {
        RadioCosts {
            scan_continuous_mw: 28.0,
            advertise_event_uj: 85.0,
            transfer_mw: 128.0,
            setup_mj: 111.0,
            rate_bytes_per_s: 90_000.0,
        }
    }

    fn demand() -> Demand {
        Demand { contacts_per_hour: 20.0, own_bytes_per_hour: 2e6, relay_bytes_per_hour: 20e6 }
    }

    #[test]
    fn a_generous_budget_scans_continuously_and_relays() {
        let p = plan(EnergyBudget::percent_per_hour(5.0), &costs(), &demand());
        assert_eq!(p.scan_duty, 1.0);
        assert_eq!(p.advertise_interval_ms, 100);
        assert!(p.relay && p.max_carries > 8 && p.within_budget);
    }

    #[test]
    fn a_tiny_budget_keeps_only_the_minimum_and_says_so() {
        let p = plan(EnergyBudget::percent_per_hour(0.001), &costs(), &demand());
        assert_eq!(p.scan_duty, MIN_SCAN_DUTY);
        assert_eq!(p.advertise_interval_ms, 1_000);
        assert!(!p.relay && p.max_carries == 0);
        assert!(!p.within_budget);
    }

    proptest! {
        #[test]
        fn more_budget_never_means_less_service(a in 0.0f64..3.0, b in 0.0f64..3.0) {
            let (lo, hi) = (a.min(b), a.max(b));
            let p = plan(EnergyBudget::percent_per_hour(lo), &costs(), &demand());
            let q = plan(EnergyBudget::percent_per_hour(hi), &costs(), &demand());
            // Turning relaying on may take budget from scanning; otherwise scanning only grows.
            if p.relay == q.relay {
                prop_assert!(p.scan_duty <= q.scan_duty);
            }
            prop_assert!(p.advertise_interval_ms >= q.advertise_interval_ms);
            prop_assert!(!p.relay || q.relay);
            prop_assert!(p.max_carries <= q.max_carries);
            // A plan that fits spends no more than allowed.
            if q.within_budget {
                prop_assert!(q.planned_mw <= EnergyBudget::percent_per_hour(hi).milliwatts() + 1e-6);
            }
        }
    }
}
