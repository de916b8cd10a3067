//! The throughput matrix on the simulated medium: every case passes, at the ATT MTU it asked for, on the PHY the
//! medium negotiated, close to the link model's capacity.

use pollen_ble::sim::MediumConfig;
use pollen_hw_tests::lab::SimLab;
use pollen_hw_tests::report::Outcome;
use pollen_hw_tests::throughput;

#[tokio::test(start_paused = true)]
async fn the_matrix_passes_on_the_sim_lab() {
    let mut lab = SimLab::new(MediumConfig::default());
    let reports = throughput::run_matrix(&mut lab, 128 * 1024, None, |r| println!("{r}")).await;
    assert_eq!(reports.len(), throughput::matrix().len());
    for r in &reports {
        assert_eq!(r.outcome, Outcome::Pass, "{r}");
        assert_eq!(r.labels.get("phy").map(String::as_str), Some("2M"), "{r}");
        let metric = |k: &str| r.metrics.get(k).copied().unwrap_or_else(|| panic!("{r} lacks {k}"));
        if let Some(&requested) = r.metrics.get("mtu_requested") {
            assert_eq!(metric("att_mtu"), requested, "{r}");
        }
        // Goodput ÷ the model's airtime-limited capacity: the stack costs something, but not much.
        for ratio in [metric("efficiency_ab"), metric("efficiency_ba")] {
            assert!((0.5..=1.05).contains(&ratio), "{r}");
        }
    }
    let goodput = |name: &str| reports.iter().find(|r| r.name == name).and_then(|r| r.metrics.get("goodput_ab_bps"));
    assert!(goodput("throughput_gatt_mtu23") < goodput("throughput_gatt_mtu185"), "a bigger MTU carries more");
}
