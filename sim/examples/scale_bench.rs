//! The scale benchmark: 10,000 phones for one simulated hour in router mode (Pollen alone, every node running the
//! real router core), random waypoint at the density of a crowded site, BLE radios, chat and photo traffic of about
//! one message per phone per hour. Prints simulated seconds per wall-clock second, how much of the 60 s budget the
//! run used, and the peak resident memory (ratios and sizes, so a slow machine still compares).
//!
//! ```text
//! cargo run --release -p pollen-sim --example scale_bench [nodes] [seconds] [side_m]
//! ```

use std::time::Instant;

use pollen_sim::mobility::RandomWaypointConfig;
use pollen_sim::model::SECOND;
use pollen_sim::run::{prepare, simulate, RouterSet, Scenario, SimConfig};
use pollen_sim::workload::Workload;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Peak resident set size of this process, bytes (Linux `VmHWM`; `None` elsewhere).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn main() {
    let nodes: u32 = arg(1, 10_000);
    let seconds: u64 = arg(2, 3_600);
    let side: f64 = arg(3, 4_000.0);
    let mut cfg = SimConfig::field_default();
    // The built-in field scenario grown to `nodes` phones (the site grows with it, so density stays that of the
    // 60-phone default); SCALE_RWP=1 uses random waypoint on a `side` m square instead.
    cfg.scenario = if std::env::var_os("SCALE_RWP").is_some() {
        Scenario::RandomWaypoint(RandomWaypointConfig {
            nodes,
            area: (side, side),
            speed: (0.5, 1.5),
            pause: (0.0, 120.0),
        })
    } else {
        Scenario::Field { nodes }
    };
    cfg.duration = seconds * SECOND;
    // About one message per phone per hour, spread over the run.
    let per_message_ms = (3_600 * SECOND / u64::from(nodes.max(1))).max(1);
    cfg.workload = Workload {
        size: (1_000, 300_000),
        interval_ms: (per_message_ms / 2, per_message_ms * 3 / 2),
        ttl_ms: 3_600 * SECOND,
    };
    cfg.routers = RouterSet::POLLEN_ONLY;
    cfg.pollen_want_hops = std::env::var("XHOPS").ok().and_then(|v| v.parse().ok()).unwrap_or(cfg.pollen_want_hops);
    let start = Instant::now();
    let prepared = match prepare(&cfg, &|_, _| {}) {
        Ok(p) => p,
        Err(error) => {
            eprintln!("scale_bench: {error}");
            std::process::exit(2);
        }
    };
    let contacts_s = start.elapsed().as_secs_f64();
    let results = simulate(&cfg, &prepared, &|_, _| {});
    let wall = start.elapsed().as_secs_f64();
    let pollen = &results.routers["pollen"];
    println!(
        "scale nodes={nodes} sim_s={seconds} contacts={} messages={} delivery={:.3} overhead={:.2}",
        results.contacts, results.messages, pollen.delivery_ratio, pollen.overhead
    );
    println!(
        "scale sim_s_per_wall_s={:.0} budget_used={:.2} contacts_share={:.2}",
        seconds as f64 / wall,
        // The goal is one simulated hour per 60 wall seconds.
        wall / (60.0 * seconds as f64 / 3_600.0),
        contacts_s / wall,
    );
    match peak_rss_bytes() {
        Some(b) => println!(
            "scale peak_rss_mib={:.0} bytes_per_node={:.0}",
            b as f64 / 1_048_576.0,
            b as f64 / f64::from(nodes.max(1))
        ),
        None => println!("scale peak_rss_mib=unknown"),
    }
}
