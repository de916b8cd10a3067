//! How fast the mobility layer turns movement into contacts: random waypoint, 10,000 nodes, one simulated hour,
//! 1 s ticks, BLE range. Prints simulated seconds per wall-clock second (a ratio, so noisy machines compare).
//!
//! ```text
//! cargo run --release -p pollen-sim --example contacts_bench [nodes] [seconds] [side_m] [range_m]
//! ```
//!
//! Defaults: 10,000 nodes, 3600 s, a 4 km × 4 km area (625 phones/km²), the LE 1M range of the default path loss.

use std::time::Instant;

use pollen_radio_model::ble::Phy;
use pollen_radio_model::propagation::PathLoss;
use pollen_sim::contacts::contacts_from_mobility;
use pollen_sim::mobility::{Field, Mobility, RandomWaypoint, RandomWaypointConfig};
use pollen_sim::model::SECOND;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn run(name: &str, model: &mut dyn Mobility, seconds: u64, range: f64) {
    let nodes = model.nodes();
    let start = Instant::now();
    let trace = contacts_from_mobility(model, seconds * SECOND, range, SECOND);
    let wall = start.elapsed().as_secs_f64();
    let ups = trace.events.iter().filter(|e| e.up).count();
    // Time-averaged number of pairs in range, per node: how dense the run is.
    let open_ms: i128 =
        trace.events.iter().map(|e| (i128::from(trace.duration) - i128::from(e.t)) * if e.up { 1 } else { -1 }).sum();
    let degree = 2.0 * open_ms as f64 / trace.duration.max(1) as f64 / f64::from(nodes.max(1));
    println!(
        "{name}: nodes {nodes}, simulated {seconds} s, range {range:.1} m, tick 1 s, events {} ({ups} contacts, \
         mean degree {degree:.1}), {:.0} sim-s per wall-s, {:.2e} node-ticks per wall-s, 1 h of this run fits the 60 s budget {:.0}×",
        trace.events.len(),
        seconds as f64 / wall,
        nodes as f64 * seconds as f64 / wall,
        // (sim seconds per wall second) ÷ (3600 sim s / 60 wall s)
        seconds as f64 / wall / 60.0,
    );
}

fn main() {
    let nodes: u32 = arg(1, 10_000);
    let seconds: u64 = arg(2, 3600);
    let side: f64 = arg(3, 4000.0);
    let range: f64 = arg(4, PathLoss::default().range_m(Phy::Le1M));
    let cfg = RandomWaypointConfig { nodes, area: (side, side), speed: (0.5, 1.5), pause: (0.0, 120.0) };
    match RandomWaypoint::new(cfg, 1) {
        Ok(mut m) => run("random waypoint", &mut m, seconds, range),
        Err(e) => eprintln!("random waypoint: {e}"),
    }
    match Field::new(nodes, 1) {
        Ok(mut f) => run("field", &mut f, seconds, range),
        Err(e) => eprintln!("field: {e}"),
    }
}
