use std::future::poll_fn;
use std::time::Duration;

use pollen_radio_model::ble::{Bearer, Phy};
use tokio::time::{timeout, Instant};

use super::*;
use crate::driver::{
    Advertisement, BleDriver, ConnectError, DisconnectReason, DriverEvent, LinkId, Role, ScanFilter, SendError,
    GATT_ERROR_133, POLLEN_SERVICE_UUID,
};

async fn next(driver: &mut SimDriver) -> DriverEvent {
    poll_fn(|cx| driver.poll_event(cx)).await
}

async fn next_matching(driver: &mut SimDriver, f: impl Fn(&DriverEvent) -> bool) -> DriverEvent {
    loop {
        let e = next(driver).await;
        if f(&e) {
            return e;
        }
    }
}

fn adv() -> Advertisement {
    Advertisement { service_uuid: POLLEN_SERVICE_UUID, service_data: bytes::Bytes::from_static(b"0123456789") }
}

fn filter() -> ScanFilter {
    ScanFilter { service_uuid: POLLEN_SERVICE_UUID }
}

/// Connects `a` (central) to `b` (peripheral) and returns the link.
async fn link(a: &mut SimDriver, b: &mut SimDriver) -> LinkId {
    b.start_advertising(&adv()).unwrap();
    a.connect(b.device_id()).unwrap();
    match next_matching(a, |e| matches!(e, DriverEvent::Connected { .. } | DriverEvent::ConnectFailed { .. })).await {
        DriverEvent::Connected { link, role: Role::Central, .. } => {
            next_matching(b, |e| matches!(e, DriverEvent::Connected { .. })).await;
            link
        }
        other => panic!("connect failed: {other:?}"),
    }
}

fn node_with(profile: SimProfile, position: (f64, f64)) -> NodeConfig {
    NodeConfig { position, profile, quirks: Quirks::default() }
}

#[tokio::test(start_paused = true)]
async fn scanner_in_range_sees_advert_and_out_of_range_does_not() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut near = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
    let mut far = medium.add_node(NodeConfig::android((500.0, 0.0))).unwrap();
    let mut adv_node = medium.add_node(NodeConfig::android((5.0, 0.0))).unwrap();
    near.start_scan(&filter()).unwrap();
    far.start_scan(&filter()).unwrap();
    adv_node.start_advertising(&adv()).unwrap();
    let seen = timeout(Duration::from_secs(2), next(&mut near)).await.expect("advert within 2 s");
    match seen {
        DriverEvent::AdvertisementSeen { device, rssi, service_data } => {
            assert_eq!(device, adv_node.device_id());
            assert!((-60..=-48).contains(&rssi), "rssi {rssi} at 5 m");
            assert_eq!(&service_data[..], b"0123456789");
        }
        other => panic!("{other:?}"),
    }
    assert!(timeout(Duration::from_secs(30), next(&mut far)).await.is_err(), "500 m is out of range");
}

#[tokio::test(start_paused = true)]
async fn connection_setup_takes_android_time_and_negotiates_smaller_mtu() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut a = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
    let mut b = medium.add_node(NodeConfig::ios((2.0, 0.0))).unwrap();
    let t0 = Instant::now();
    let l = link(&mut a, &mut b).await;
    let setup = t0.elapsed();
    assert!(setup >= Duration::from_millis(389) && setup <= Duration::from_secs(3), "{setup:?}");
    let params = medium.link_params(l).unwrap();
    assert_eq!(params.att_mtu(), 185);
    assert_eq!(params.conn_interval(), Duration::from_millis(30), "iOS peripheral imposes its interval");
}

/// Saturates one bearer and compares the measured goodput with the model's figure for the same link.
async fn measured_goodput(profile: SimProfile, bearer: Bearer) -> (f64, f64) {
    let medium = SimMedium::new(MediumConfig::default());
    let mut a = medium.add_node(node_with(profile.clone(), (0.0, 0.0))).unwrap();
    let mut b = medium.add_node(node_with(profile, (1.0, 0.0))).unwrap();
    let l = link(&mut a, &mut b).await;
    let params = medium.link_params(l).unwrap();
    let size = if bearer == Bearer::L2capCoc {
        let psm = b.listen_l2cap().unwrap();
        a.open_l2cap(l, psm).unwrap();
        match next_matching(&mut a, |e| matches!(e, DriverEvent::L2capOpened { .. })).await {
            DriverEvent::L2capOpened { max_sdu, .. } => max_sdu,
            _ => unreachable!(),
        }
    } else {
        params.att_payload()
    };
    let value = vec![0u8; size];
    let total = 400_000usize;
    let (mut sent, mut received) = (0usize, 0usize);
    let mut first: Option<Instant> = None;
    while received < total {
        while sent < total {
            match a.send(l, bearer, &value) {
                Ok(()) => sent += size,
                Err(SendError::Busy) => break,
                Err(e) => panic!("{e}"),
            }
        }
        tokio::select! {
            e = next(&mut b) => if let DriverEvent::Received { data, .. } = e {
                first.get_or_insert_with(Instant::now);
                received += data.len();
            },
            _ = next_matching(&mut a, |e| matches!(e, DriverEvent::SendReady { .. })) => {}
        }
    }
    // Goodput from the first delivery on, so the initial wait for an anchor point does not count.
    let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(f64::INFINITY);
    ((received - size) as f64 * 8.0 / secs, params.capacity_bps(bearer))
}

#[tokio::test(start_paused = true)]
async fn medium_delivers_the_model_capacity() {
    let two_m = SimProfile { conn_interval: Duration::from_micros(11_250), max_att_mtu: 247, ..SimProfile::android() };
    let one_m_23 = SimProfile { phy_2m: false, max_att_mtu: 23, ..SimProfile::android() };
    for (profile, bearer) in [(two_m.clone(), Bearer::Gatt), (one_m_23, Bearer::Gatt), (two_m, Bearer::L2capCoc)] {
        let (got, model) = measured_goodput(profile, bearer).await;
        let ratio = got / model;
        assert!((0.97..=1.01).contains(&ratio), "{bearer:?}: measured {got:.0} vs model {model:.0} bit/s");
    }
}

#[tokio::test(start_paused = true)]
async fn links_at_the_range_edge_stay_on_1m() {
    let medium = SimMedium::new(MediumConfig::default());
    let path_loss = MediumConfig::default().path_loss;
    let edge = (path_loss.range_m(Phy::Le2M) + path_loss.range_m(Phy::Le1M)) / 2.0;
    let mut a = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
    let mut near = medium.add_node(NodeConfig::android((5.0, 0.0))).unwrap();
    let mut far = medium.add_node(NodeConfig::android((edge, 0.0))).unwrap();
    let l_near = link(&mut a, &mut near).await;
    let l_far = link(&mut a, &mut far).await;
    assert_eq!(medium.link_params(l_near).unwrap().phy(), Phy::Le2M);
    assert_eq!(medium.link_params(l_far).unwrap().phy(), Phy::Le1M);
}

#[tokio::test(start_paused = true)]
async fn android_truncates_and_ios_drops() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut android = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
    let mut ios = medium.add_node(NodeConfig::ios((1.0, 0.0))).unwrap();
    let l = link(&mut android, &mut ios).await;
    // MTU 185: 182 bytes per write. Android cuts a 300-byte write silently.
    android.send(l, Bearer::Gatt, &[7u8; 300]).unwrap();
    match next_matching(&mut ios, |e| matches!(e, DriverEvent::Received { .. })).await {
        DriverEvent::Received { data, .. } => assert_eq!(data.len(), 182),
        _ => unreachable!(),
    }
    assert_eq!(medium.stats().truncated_writes, 1);
    // iOS refuses nothing: past its queue depth, notifications vanish.
    for _ in 0..40 {
        ios.send(l, Bearer::Gatt, &[1u8; 100]).unwrap();
    }
    assert_eq!(medium.stats().dropped_writes, 40 - SimProfile::ios().gatt_queue_depth as u64);
    // Without the quirk an oversized write is refused.
    let mut linux_a = medium.add_node(NodeConfig::linux((0.0, 1.0))).unwrap();
    let mut linux_b = medium.add_node(NodeConfig::linux((0.0, 2.0))).unwrap();
    let l2 = link(&mut linux_a, &mut linux_b).await;
    assert_eq!(linux_a.send(l2, Bearer::Gatt, &[0; 600]), Err(SendError::TooLarge { len: 600, max: 510 }));
    // An Android central writing 514 bytes to BlueZ 5.66 loses the write silently, as measured in the lab.
    let mut big = NodeConfig::android((0.0, 3.0));
    big.profile.max_att_mtu = 517;
    let mut a = medium.add_node(big).unwrap();
    let mut bluez = NodeConfig::linux((0.0, 4.0));
    bluez.profile.max_att_mtu = 517;
    let mut b = medium.add_node(bluez).unwrap();
    let l3 = link(&mut a, &mut b).await;
    let dropped = medium.stats().dropped_writes;
    a.send(l3, Bearer::Gatt, &[9; 514]).unwrap();
    assert_eq!(medium.stats().dropped_writes, dropped + 1);
}

#[tokio::test(start_paused = true)]
async fn gatt_133_and_the_link_limit() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut flaky = NodeConfig::android((0.0, 0.0));
    flaky.quirks.gatt_133_rate = 1.0;
    let mut a = medium.add_node(flaky).unwrap();
    let mut b = medium.add_node(NodeConfig::android((1.0, 0.0))).unwrap();
    b.start_advertising(&adv()).unwrap();
    a.connect(b.device_id()).unwrap();
    let e = next_matching(&mut a, |e| matches!(e, DriverEvent::ConnectFailed { .. })).await;
    assert!(matches!(e, DriverEvent::ConnectFailed { error: ConnectError::Status(GATT_ERROR_133), .. }));

    let mut hub = medium.add_node(NodeConfig::android((0.0, 5.0))).unwrap();
    let mut spokes = Vec::new();
    for i in 0..8 {
        let mut s = medium.add_node(NodeConfig::android((i as f64, 6.0))).unwrap();
        s.start_advertising(&adv()).unwrap();
        hub.connect(s.device_id()).unwrap();
        spokes.push(s);
    }
    let (mut up, mut refused) = (0, 0);
    while up + refused < 8 {
        match next(&mut hub).await {
            DriverEvent::Connected { .. } => up += 1,
            DriverEvent::ConnectFailed { error: ConnectError::TooManyLinks, .. } => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((up, refused), (7, 1));
}

#[tokio::test(start_paused = true)]
async fn simultaneous_connects_give_two_links_only_with_the_quirk() {
    for quirk in [true, false] {
        let medium = SimMedium::new(MediumConfig::default());
        let mut ca = NodeConfig::linux((0.0, 0.0));
        ca.quirks.simultaneous_connect_duplicates = quirk;
        ca.quirks.pauses_advertising_while_initiating = false;
        let cb = NodeConfig { position: (1.0, 0.0), ..ca.clone() };
        let mut a = medium.add_node(ca).unwrap();
        let mut b = medium.add_node(cb).unwrap();
        a.start_advertising(&adv()).unwrap();
        b.start_advertising(&adv()).unwrap();
        a.connect(b.device_id()).unwrap();
        b.connect(a.device_id()).unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let links = medium.links_between(a.device_id(), b.device_id());
        assert_eq!(links.len(), if quirk { 2 } else { 1 }, "quirk={quirk}");
    }
}

/// Linux pauses advertising while it initiates: of two nodes connecting to each other at once, the attempt that
/// completes first finds the peer not connectable, and the other one lands.
#[tokio::test(start_paused = true)]
async fn a_linux_node_initiating_is_not_connectable() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut a = medium.add_node(NodeConfig::linux((0.0, 0.0))).unwrap();
    let mut b = medium.add_node(NodeConfig::linux((1.0, 0.0))).unwrap();
    a.start_advertising(&adv()).unwrap();
    b.start_advertising(&adv()).unwrap();
    a.connect(b.device_id()).unwrap();
    b.connect(a.device_id()).unwrap();
    let connected = |e: &DriverEvent| matches!(e, DriverEvent::Connected { .. } | DriverEvent::ConnectFailed { .. });
    let (ea, eb) = (next_matching(&mut a, connected).await, next_matching(&mut b, connected).await);
    let failed = [&ea, &eb]
        .iter()
        .filter(|e| matches!(e, DriverEvent::ConnectFailed { error: ConnectError::NotConnectable, .. }))
        .count();
    assert_eq!(failed, 1, "{ea:?} {eb:?}");
    assert_eq!(medium.links_between(a.device_id(), b.device_id()).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn silent_link_ends_after_supervision_timeout_unless_it_recovers() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut central = NodeConfig::linux((0.0, 0.0));
    // Both writes go out at once, the second before the first could be answered through the wall.
    central.quirks.first_write_request = false;
    let mut a = medium.add_node(central).unwrap();
    let mut b = medium.add_node(NodeConfig::linux((1.0, 0.0))).unwrap();
    let l = link(&mut a, &mut b).await;
    medium.set_blocked(a.device_id(), b.device_id(), true);
    a.send(l, Bearer::Gatt, b"lost in the wall").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Back before the timeout: the queued value still arrives.
    medium.set_blocked(a.device_id(), b.device_id(), false);
    let e = timeout(Duration::from_secs(1), next_matching(&mut b, |e| matches!(e, DriverEvent::Received { .. }))).await;
    assert!(e.is_ok());
    medium.set_position(b.device_id(), (900.0, 0.0));
    a.send(l, Bearer::Gatt, b"out of range").unwrap();
    let t0 = Instant::now();
    let e = next_matching(&mut a, |e| matches!(e, DriverEvent::Disconnected { .. })).await;
    assert_eq!(e, DriverEvent::Disconnected { link: l, reason: DisconnectReason::SupervisionTimeout });
    let waited = t0.elapsed();
    assert!(waited <= Duration::from_secs(20) && waited >= Duration::from_secs(19), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn late_mtu_report_and_rejected_profiles() {
    let medium = SimMedium::new(MediumConfig::default());
    let mut late = NodeConfig::android((0.0, 0.0));
    late.quirks.late_mtu_report = Some(Duration::from_millis(300));
    let mut a = medium.add_node(NodeConfig::android((1.0, 0.0))).unwrap();
    let mut b = medium.add_node(late).unwrap();
    b.start_advertising(&adv()).unwrap();
    a.connect(b.device_id()).unwrap();
    assert!(matches!(next(&mut b).await, DriverEvent::Connected { att_mtu: 23, .. }));
    assert!(matches!(next(&mut b).await, DriverEvent::MtuChanged { att_mtu: 517, .. }));
    let bad = SimProfile { conn_interval: Duration::from_millis(8), ..SimProfile::android() };
    assert!(medium.add_node(node_with(bad, (0.0, 0.0))).is_err());
}

/// A BlueZ peripheral acquires its write socket on a link's first write and meanwhile keeps later writes by pointer
/// into its ATT receive buffer: the virtual lab saw the 19-byte HELLO arrive with the bytes of the data frame written
/// right after it. A central that sends its first value as a Write Request and waits for the response (Pollen's
/// BlueZ and btleplug drivers) gets every value through intact.
#[tokio::test(start_paused = true)]
async fn bluez_peripheral_corrupts_writes_until_the_first_is_answered() {
    for request in [false, true] {
        let medium = SimMedium::new(MediumConfig::default());
        let mut central = NodeConfig::linux((0.0, 0.0));
        central.quirks.first_write_request = request;
        let mut peripheral = NodeConfig::linux((1.0, 0.0));
        // No EATT reordering: the two writes reach the peripheral in the order they were sent.
        peripheral.quirks.gatt_reorder_jitter = None;
        let mut a = medium.add_node(central).unwrap();
        let mut b = medium.add_node(peripheral).unwrap();
        let l = link(&mut a, &mut b).await;
        let (hello, data) = ([1u8; 19], [2u8; 64]);
        a.send(l, Bearer::Gatt, &hello).unwrap();
        if request {
            assert_eq!(a.send(l, Bearer::Gatt, &data), Err(SendError::Busy), "waits for the first write's response");
            let ready = next_matching(&mut a, |e| matches!(e, DriverEvent::SendReady { .. })).await;
            assert_eq!(ready, DriverEvent::SendReady { link: l, bearer: Bearer::Gatt });
        }
        a.send(l, Bearer::Gatt, &data).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            if let DriverEvent::Received { data, .. } =
                next_matching(&mut b, |e| matches!(e, DriverEvent::Received { .. })).await
            {
                got.push(data.to_vec());
            }
        }
        if request {
            assert_eq!(got, [hello.to_vec(), data.to_vec()]);
            assert_eq!(medium.stats().corrupted_writes, 0);
        } else {
            // The HELLO's length, the data frame's bytes.
            assert_eq!(got, [vec![2u8; 19], data.to_vec()]);
            assert_eq!(medium.stats().corrupted_writes, 1);
        }
    }
}
