//! Prints the oracle-check figures: the random-waypoint scenario of `SimConfig::rwp_oracle_check`, exported to the
//! ONE connectivity format, read back and replayed, with Pollen's ratios to each baseline.
//!
//! ```text
//! cargo run --release -p pollen-sim --example oracle_check [seed]
//! ```

use pollen_sim::run::{prepare, simulate, Scenario, SimConfig};
use pollen_sim::trace::{read_one, write_one};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let cfg = SimConfig { seed, ..SimConfig::rwp_oracle_check() };
    let prepared = prepare(&cfg, &|_, _| {})?;
    let (trace, messages) = read_one(&write_one(&prepared.trace, &prepared.messages))?;
    let replay = SimConfig { scenario: Scenario::Contacts { trace, messages }, ..cfg };
    let results = simulate(&replay, &prepare(&replay, &|_, _| {})?, &|_, _| {});
    println!("oracle_check seed={seed} contacts={} messages={}", results.contacts, results.messages);
    for (name, r) in &results.routers {
        println!(
            "oracle_check router={name} delivery={:.3} overhead={:.2} latency_median_s={:.0} latency_p95_s={:.0} \
             duplicate_ratio={:.3} energy_j_per_kb={:.4}",
            r.delivery_ratio, r.overhead, r.latency_median_s, r.latency_p95_s, r.duplicate_ratio, r.energy_j_per_kb
        );
    }
    let pollen = &results.routers["pollen"];
    for (name, r) in results.routers.iter().filter(|(n, _)| n.as_str() != "pollen") {
        println!(
            "oracle_check pollen_vs_{name} delivery_ratio={:.3} overhead_ratio={:.3}",
            pollen.delivery_ratio / r.delivery_ratio.max(f64::MIN_POSITIVE),
            pollen.overhead / r.overhead.max(f64::MIN_POSITIVE)
        );
    }
    Ok(())
}
