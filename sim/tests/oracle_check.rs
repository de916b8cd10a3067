//! The oracle check: on a random-waypoint contact trace exported to the ONE connectivity format and read back,
//! the ideal oracle delivers at least 0.9, the importer loses nothing, and Pollen beats spray-and-wait(6) on delivery
//! and on transmissions per delivered message.
//! Run with `--nocapture` to see the ratios; `cargo run --release -p pollen-sim --example oracle_check` prints them
//! too.

use pollen_sim::run::{prepare, simulate, Scenario, SimConfig};
use pollen_sim::trace::{read_one, write_one};

#[test]
fn random_waypoint_trace_round_trips_and_pollen_beats_spray_and_wait_on_both_axes() {
    let cfg = SimConfig::rwp_oracle_check();
    let prepared = match prepare(&cfg, &|_, _| {}) {
        Ok(p) => p,
        Err(e) => panic!("the oracle-check scenario must prepare: {e}"),
    };
    let text = write_one(&prepared.trace, &prepared.messages);
    let (trace, messages) = read_one(&text).unwrap_or_else(|e| panic!("re-reading our own export: {e}"));
    assert_eq!(trace.nodes, prepared.trace.nodes);
    assert_eq!(trace.events, prepared.trace.events, "every contact survives the ONE round trip");
    assert_eq!(messages, prepared.messages, "every message survives the ONE round trip");

    let replay = SimConfig { scenario: Scenario::Contacts { trace, messages }, ..cfg.clone() };
    let imported = prepare(&replay, &|_, _| {}).unwrap_or_else(|e| panic!("the imported trace must prepare: {e}"));
    let results = simulate(&replay, &imported, &|_, _| {});
    let get = |name: &str| results.routers.get(name).unwrap_or_else(|| panic!("{name} ran"));
    let (pollen, oracle, snw, direct) = (get("pollen"), get("oracle"), get("spray_and_wait"), get("direct"));
    eprintln!(
        "oracle_check contacts={} messages={} oracle={:.3} pollen={:.3} spray_and_wait={:.3} direct={:.3}",
        results.contacts,
        results.messages,
        oracle.delivery_ratio,
        pollen.delivery_ratio,
        snw.delivery_ratio,
        direct.delivery_ratio
    );
    eprintln!(
        "oracle_check pollen_vs_oracle={:.3} pollen_vs_snw_delivery={:.3} pollen_overhead={:.2} snw_overhead={:.2}",
        pollen.delivery_ratio / oracle.delivery_ratio,
        pollen.delivery_ratio / snw.delivery_ratio,
        pollen.overhead,
        snw.overhead
    );
    assert!(oracle.delivery_ratio >= 0.9, "the area is chosen so the oracle delivers ≥ 0.9: {}", oracle.delivery_ratio);
    assert!(pollen.delivery_ratio > direct.delivery_ratio, "Pollen must beat direct delivery");
    assert!(
        pollen.delivery_ratio > snw.delivery_ratio,
        "Pollen must deliver more than spray-and-wait(6): {} vs {}",
        pollen.delivery_ratio,
        snw.delivery_ratio
    );
    assert!(
        pollen.overhead < snw.overhead,
        "Pollen must send fewer transmissions per delivered message than spray-and-wait(6): {} vs {}",
        pollen.overhead,
        snw.overhead
    );
}
