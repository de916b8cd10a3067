//! The conformance suite on the simulated medium: every scenario must pass, in virtual time.

use pollen_ble::sim::MediumConfig;
use pollen_hw_tests::lab::SimLab;
use pollen_hw_tests::report::Outcome;
use pollen_hw_tests::suite;

async fn passes(name: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut lab = SimLab::new(MediumConfig::default());
    let report = suite::run(&mut lab, name).await;
    println!("{report}");
    assert_eq!(report.outcome, Outcome::Pass, "{report}");
}

#[tokio::test(start_paused = true)]
async fn discover_handshake() {
    passes("discover_handshake").await;
}

#[tokio::test(start_paused = true)]
async fn transfer_gatt() {
    passes("transfer_gatt").await;
}

#[tokio::test(start_paused = true)]
async fn transfer_l2cap() {
    passes("transfer_l2cap").await;
}

#[tokio::test(start_paused = true)]
async fn mtu_differs_per_side() {
    passes("mtu_differs_per_side").await;
}

#[tokio::test(start_paused = true)]
async fn link_drop_reconnect() {
    passes("link_drop_reconnect").await;
}

#[tokio::test(start_paused = true)]
async fn simultaneous_dial() {
    passes("simultaneous_dial").await;
}

#[tokio::test(start_paused = true)]
async fn relay_chain() {
    passes("relay_chain").await;
}

/// The relay with one radio toward each side, as in the virtual lab (btvirt controllers hold one link each).
#[tokio::test(start_paused = true)]
async fn relay_chain_with_a_two_radio_relay() {
    let mut lab = SimLab::new(MediumConfig::default()).with_relay_plan([vec![0], vec![1, 2], vec![3]]);
    let report = suite::run(&mut lab, "relay_chain").await;
    assert_eq!(report.outcome, Outcome::Pass, "{report}");
}

#[test]
fn every_scenario_has_a_test_here() {
    let source = include_str!("conformance_sim.rs");
    for name in suite::SCENARIOS {
        assert!(source.contains(&format!("passes(\"{name}\")")), "scenario {name} is not run on the sim lab");
    }
}
