use super::*;
use proptest::prelude::*;

fn ms(v: f64) -> Duration {
    Duration::from_micros((v * 1000.0) as u64)
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected * tolerance
}

#[test]
fn airtime_of_full_and_empty_packets() {
    assert_eq!(packet_airtime_us(Phy::Le1M, 251), 2088);
    assert_eq!(packet_airtime_us(Phy::Le1M, 0), 80);
    assert_eq!(packet_airtime_us(Phy::Le2M, 251), 1048);
    assert_eq!(packet_airtime_us(Phy::Le2M, 0), 44);
    assert_eq!(packet_airtime_us(Phy::Le1M, 27), 296);
}

/// The continuous limits are the physical figures of `shared/DESIGN.md`.
#[test]
fn continuous_limits_match_design_figures() {
    let cases = [
        (Phy::Le1M, true, 247, Bearer::Gatt, 791.0),
        (Phy::Le2M, true, 247, Bearer::Gatt, 1402.0),
        (Phy::Le1M, false, 23, Bearer::Gatt, 237.0),
        (Phy::Le2M, true, 247, Bearer::L2capCoc, 1443.0),
    ];
    for (phy, dle, mtu, bearer, kbps) in cases {
        let link = LinkParams::new(phy, dle, mtu, ms(15.0)).unwrap();
        let got = link.continuous_capacity_bps(bearer) / 1000.0;
        assert!(close(got, kbps, 0.01), "{phy:?} dle={dle} mtu={mtu} {bearer:?}: {got} vs {kbps}");
    }
}

/// With Android's high-priority connection intervals the event-boundary loss stays within 2 %.
#[test]
fn quantised_capacity_near_physical_at_android_intervals() {
    let cases = [
        (Phy::Le1M, 247, ms(15.0), Bearer::Gatt, 791.0),
        (Phy::Le2M, 247, ms(11.25), Bearer::Gatt, 1402.0),
        (Phy::Le2M, 247, ms(11.25), Bearer::L2capCoc, 1443.0),
        (Phy::Le1M, 23, ms(15.0), Bearer::Gatt, 237.0),
    ];
    for (phy, mtu, ci, bearer, kbps) in cases {
        let link = LinkParams::new(phy, true, mtu, ci).unwrap();
        let got = link.capacity_bps(bearer) / 1000.0;
        assert!(close(got, kbps, 0.02), "{phy:?} mtu={mtu} {bearer:?}: {got} vs {kbps}");
        assert!(got <= link.continuous_capacity_bps(bearer) / 1000.0 + 1e-9);
    }
}

#[test]
fn exchange_cap_limits_capacity() {
    let free = LinkParams::new(Phy::Le2M, true, 247, ms(30.0)).unwrap();
    let capped = free.with_max_exchanges_per_event(Some(4)).unwrap();
    let expected = 4.0 * 244.0 * 8.0 / 0.030;
    assert!(close(capped.capacity_bps(Bearer::Gatt), expected, 1e-9));
    assert!(capped.capacity_bps(Bearer::Gatt) < free.capacity_bps(Bearer::Gatt));
}

#[test]
fn fragments_of_att_pdus_and_sdus() {
    let dle = LinkParams::new(Phy::Le2M, true, 517, ms(15.0)).unwrap();
    assert_eq!(dle.gatt_pdu_fragments(), vec![251, 251, 19]);
    let legacy = LinkParams::new(Phy::Le1M, false, 185, ms(15.0)).unwrap();
    assert_eq!(legacy.gatt_pdu_fragments().iter().sum::<usize>(), 189);
    assert!(legacy.gatt_pdu_fragments().iter().all(|&f| f <= 27));
    assert_eq!(dle.l2cap_sdu_fragments(dle.l2cap_sdu_max()), vec![251; 4]);
}

#[test]
fn rejects_out_of_spec_parameters() {
    assert_eq!(LinkParams::new(Phy::Le1M, true, 22, ms(15.0)), Err(ModelError::AttMtu(22)));
    assert_eq!(LinkParams::new(Phy::Le1M, true, 518, ms(15.0)), Err(ModelError::AttMtu(518)));
    assert!(LinkParams::new(Phy::Le1M, true, 23, ms(7.0)).is_err());
    assert!(LinkParams::new(Phy::Le1M, true, 23, ms(8.0)).is_err());
    let ok = LinkParams::new(Phy::Le1M, true, 23, ms(7.5)).unwrap();
    assert_eq!(ok.with_max_exchanges_per_event(Some(0)), Err(ModelError::ZeroExchanges));
    assert_eq!(ok.with_l2cap_mps(10), Err(ModelError::Mps(10)));
}

#[test]
fn setup_latency_reproduces_android_figures() {
    let model = SetupLatency::ANDROID;
    let n = 100_000;
    let samples: Vec<Duration> = (0..n).map(|i| model.sample((i as f64 + 0.5) / n as f64)).collect();
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64;
    assert!(close(mean, 0.867, 0.01), "mean {mean}");
    assert!(samples.iter().all(|s| *s >= model.best && *s <= model.worst));
    assert_eq!(model.sample(0.0), model.best);
}

#[test]
fn scan_and_advertise_modes() {
    let (w, i) = ScanMode::LowLatency.window_interval();
    assert_eq!(w, i);
    let (w, i) = ScanMode::LowPower.window_interval();
    assert!(w < i);
    assert!(AdvertiseMode::LowLatency.interval() < AdvertiseMode::LowPower.interval());
}

proptest! {
    /// Capacity never exceeds the airtime limit, grows with the PHY rate, and is positive for every legal MTU.
    #[test]
    fn capacity_bounded_by_airtime(mtu in 23u16..=517, steps in 6u32..=80, dle: bool) {
        let ci = Duration::from_micros(u64::from(steps) * 1250);
        let one = LinkParams::new(Phy::Le1M, dle, mtu, ci).unwrap();
        let two = LinkParams::new(Phy::Le2M, dle, mtu, ci).unwrap();
        for bearer in [Bearer::Gatt, Bearer::L2capCoc] {
            let c1 = one.capacity_bps(bearer);
            prop_assert!(c1 > 0.0);
            prop_assert!(c1 <= one.continuous_capacity_bps(bearer) * (1.0 + 1e-9));
            prop_assert!(two.capacity_bps(bearer) > c1);
        }
    }
}
