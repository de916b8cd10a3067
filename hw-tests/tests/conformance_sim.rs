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

/// A wait that runs out names the failures the node reported meanwhile, so a lab's FAIL line says what went wrong.
#[tokio::test(start_paused = true)]
async fn a_timed_out_wait_reports_the_failed_dial() {
    use std::time::Duration;

    use pollen_hw_tests::lab::{Lab, NodeSpec};
    use pollen_hw_tests::node::{Node, NodeEvent, NodeOptions};
    use pollen_hw_tests::LabError;

    let mut lab = SimLab::new(MediumConfig::default());
    lab.reset().await.unwrap();
    let mut a = Node::spawn(vec![lab.driver(0, &NodeSpec::default()).await.unwrap()], NodeOptions::default()).unwrap();
    // Node 1 exists but never advertises, so the dial cannot succeed.
    let b = Node::spawn(vec![lab.driver(1, &NodeSpec::default()).await.unwrap()], NodeOptions::default()).unwrap();
    a.dial(b.ble_address());
    let outcome = a.wait_for(Duration::from_secs(60), |e| matches!(e, NodeEvent::Connected { .. })).await;
    match outcome {
        Err(LabError::TimeoutSeeing { seen, .. }) => assert!(seen.contains("dial failed"), "{seen}"),
        other => panic!("expected a timeout naming the failed dial, got {other:?}"),
    }
}
