//! What a run produces: per-router figures (the JSON and the report are views of this).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Snapshot;

/// Delivery and latency of messages whose delivered copy took `hops` transmissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopStat {
    /// Transmissions from source to destination of the copy that arrived first.
    pub hops: u32,
    /// Messages delivered over that many hops.
    pub delivered: usize,
    /// Their median latency, seconds.
    pub latency_median_s: f64,
}

/// The figures of one router (or baseline) over one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterResult {
    /// Delivered messages ÷ created messages (within their TTL).
    pub delivery_ratio: f64,
    /// Block transmissions ÷ delivered messages.
    pub overhead: f64,
    /// Median latency of delivered messages, seconds.
    pub latency_median_s: f64,
    /// 95th-percentile latency, seconds.
    pub latency_p95_s: f64,
    /// Block bytes received by nodes that already held the block ÷ block bytes that were new to the receiver.
    pub duplicate_ratio: f64,
    /// Energy of all nodes ÷ kilobytes delivered, joules per kB.
    pub energy_j_per_kb: f64,
    /// Energy per node and hour, joules.
    pub energy_j_per_node_hour: f64,
    /// Messages delivered.
    pub delivered: usize,
    /// Block transmissions (completed and cut short).
    pub transmissions: u64,
    /// Latencies of delivered messages, seconds, ascending (for the CDF).
    pub latencies_s: Vec<f64>,
    /// (time in seconds, fraction of all messages delivered by then), one point per minute.
    pub delivery_over_time: Vec<(f64, f64)>,
    /// Delivery and latency by hop count.
    pub by_hops: Vec<HopStat>,
    /// Energy spent by each node, joules.
    pub energy_per_node_j: Vec<f64>,
}

/// One point of the energy-budget sweep: what Pollen delivers when nodes may spend a given share of battery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyPoint {
    /// Battery budget, percent per hour.
    pub budget_pct_per_hour: f64,
    /// Pollen's delivery ratio under that budget.
    pub delivery_ratio: f64,
    /// Energy per node and hour actually spent, joules.
    pub energy_j_per_node_hour: f64,
    /// Battery share actually spent, percent per hour.
    pub spent_pct_per_hour: f64,
}

/// Everything a run produced. Serialised as the `--json` output; deterministic for a given seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimResults {
    /// Scenario name.
    pub scenario: String,
    /// Nodes simulated.
    pub nodes: u32,
    /// Simulated time, seconds.
    pub duration_s: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Messages created.
    pub messages: usize,
    /// Contacts (up events) in the trace.
    pub contacts: usize,
    /// `pollen`, `oracle`, `direct`, `spray_and_wait`.
    pub routers: BTreeMap<String, RouterResult>,
    /// Pollen's delivery and energy across battery budgets.
    pub energy_sweep: Vec<EnergyPoint>,
    /// Positions and links at one instant, for the map (absent for contact-trace runs).
    pub snapshot: Option<Snapshot>,
}
