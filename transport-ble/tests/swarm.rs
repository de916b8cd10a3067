//! Two and three rust-libp2p swarms over the simulated BLE medium.
//!
//! Time is tokio's paused clock. libp2p's own handlers (identify, ping) wait on `futures-timer`, which runs on real
//! time; while they wait, tokio advances the virtual clock, so only phases without such waits (the transfers, the
//! liveness deadline) are timed here.

mod common;

use common::{pattern, swarm, Node, NodeEvent};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, ping, request_response, Swarm};
use pollen_ble::sim::{MediumConfig, NodeConfig, SimMedium};
use pollen_ble::BleConfig;
use tokio::time::Instant;

const MIB: usize = 1024 * 1024;

/// Polls every swarm, handing each event (with the index of its swarm) to `on`, until `on` returns true.
async fn run_until(
    swarms: &mut [&mut Swarm<Node>],
    mut on: impl FnMut(usize, &mut [&mut Swarm<Node>], SwarmEvent<NodeEvent>) -> bool,
) {
    loop {
        let (event, i, _) = futures::future::select_all(swarms.iter_mut().map(|s| s.select_next_some())).await;
        if on(i, swarms, event) {
            return;
        }
    }
}

fn listen(s: &mut Swarm<Node>) {
    s.listen_on("/memory/0".parse().unwrap()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn ping_identify_and_a_mebibyte_each_way() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let (mut a, ha) = swarm(medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap(), BleConfig::default(), true);
    let (mut b, _) = swarm(medium.add_node(NodeConfig::android((3.0, 0.0))).unwrap(), BleConfig::default(), false);
    listen(&mut a);
    listen(&mut b);
    let ids = [*a.local_peer_id(), *b.local_peer_id()];
    let request = pattern(MIB, 1);
    let response = pattern(MIB, 2);
    let (mut pinged, mut identified) = ([false; 2], [false; 2]);
    let mut times: Vec<Instant> = Vec::new();
    let mut got: Option<Vec<u8>> = None;
    run_until(&mut [&mut a, &mut b], |i, swarms, e| {
        match e {
            SwarmEvent::Behaviour(NodeEvent::Ping(ping::Event { result: Ok(_), .. })) => pinged[i] = true,
            SwarmEvent::Behaviour(NodeEvent::Identify(identify::Event::Received { peer_id, .. })) => {
                assert_eq!(peer_id, ids[1 - i]);
                identified[i] = true;
                if identified == [true, true] && times.is_empty() {
                    times.push(Instant::now());
                    swarms[0].behaviour_mut().rr.send_request(&ids[1], request.clone());
                }
            }
            SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::Message { message, .. })) => match message {
                request_response::Message::Request { request: r, channel, .. } => {
                    times.push(Instant::now());
                    assert!(r == request, "request corrupted");
                    swarms[i].behaviour_mut().rr.send_response(channel, response.clone()).unwrap();
                }
                request_response::Message::Response { response: r, .. } => {
                    times.push(Instant::now());
                    got = Some(r);
                    return true;
                }
            },
            SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::OutboundFailure { error, .. })) => {
                panic!("request failed: {error}")
            }
            _ => {}
        }
        false
    })
    .await;
    assert!(got.unwrap() == response, "response corrupted");
    assert!(pinged.iter().any(|p| *p), "ping ran");
    // Both transfers moved to L2CAP (2M PHY, 15 ms interval: about 1.33 Mbit/s) and 1 MiB needs about 6.3 s.
    let links = ha.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].bearer, pollen_ble::session::Bearer::L2capCoc);
    for phase in times.windows(2) {
        let secs = (phase[1] - phase[0]).as_secs_f64();
        assert!((6.0..8.0).contains(&secs), "1 MiB took {secs} s");
    }
}

/// Runs the swarms for `duration` of virtual time, handing events to `on`.
async fn run_for(
    swarms: &mut [&mut Swarm<Node>],
    duration: std::time::Duration,
    on: impl FnMut(usize, &mut [&mut Swarm<Node>], SwarmEvent<NodeEvent>) -> bool,
) {
    let _ = tokio::time::timeout(duration, run_until(swarms, on)).await;
}

fn established(s: &Swarm<Node>) -> u32 {
    s.network_info().connection_counters().num_established()
}

#[tokio::test(start_paused = true)]
async fn link_dropped_mid_transfer_errors_within_liveness_deadline_then_redial_works() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let node_a = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
    let node_b = medium.add_node(NodeConfig::android((3.0, 0.0))).unwrap();
    let (dev_a, dev_b) = (node_a.device_id(), node_b.device_id());
    let config = BleConfig::default();
    let liveness = config.session.liveness_timeout;
    let (mut a, ha) = swarm(node_a, config.clone(), true);
    let (mut b, hb) = swarm(node_b, config, false);
    listen(&mut a);
    listen(&mut b);
    let b_id = *b.local_peer_id();
    let b_addr = hb.local_address();

    // Connect, then start a 1 MiB request and cut the radio once a third of it is on its way.
    run_until(&mut [&mut a, &mut b], |_, _, e| {
        matches!(e, SwarmEvent::Behaviour(NodeEvent::Identify(identify::Event::Received { .. })))
    })
    .await;
    a.behaviour_mut().rr.send_request(&b_id, pattern(MIB, 3));
    let cut_at = std::sync::Arc::new(std::sync::Mutex::new(None));
    let watcher = {
        let (medium, cut_at) = (medium.clone(), cut_at.clone());
        tokio::spawn(async move {
            while ha.links().first().is_none_or(|l| l.stats.data_bytes_sent < 350_000) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            medium.set_blocked(dev_a, dev_b, true);
            *cut_at.lock().unwrap() = Some(Instant::now());
        })
    };
    let mut closed: [Option<Instant>; 2] = [None, None];
    let mut request_failed = false;
    run_until(&mut [&mut a, &mut b], |i, _, e| {
        match e {
            SwarmEvent::ConnectionClosed { cause, .. } => {
                assert!(cause.is_some(), "a dropped link must surface as an error");
                closed[i] = Some(Instant::now());
            }
            SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::OutboundFailure { .. })) => {
                request_failed = true;
            }
            SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::Message { .. })) => {
                panic!("the request cannot complete over a cut link")
            }
            _ => {}
        }
        closed.iter().all(Option::is_some) && request_failed
    })
    .await;
    watcher.await.unwrap();
    let cut_at = cut_at.lock().unwrap().expect("link was cut");
    for (side, at) in closed.iter().enumerate() {
        let after = at.unwrap() - cut_at;
        assert!(after <= liveness + std::time::Duration::from_millis(100), "side {side} noticed after {after:?}");
    }

    // The wall comes down; a redial succeeds and a request goes through.
    medium.set_blocked(dev_a, dev_b, false);
    a.dial(b_addr).unwrap();
    let mut answered = false;
    run_until(&mut [&mut a, &mut b], |i, swarms, e| {
        match e {
            SwarmEvent::ConnectionEstablished { .. } if i == 0 => {
                swarms[0].behaviour_mut().rr.send_request(&b_id, b"again".to_vec());
            }
            SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::Message { message, .. })) => match message {
                request_response::Message::Request { channel, .. } => {
                    swarms[i].behaviour_mut().rr.send_response(channel, b"ok".to_vec()).unwrap();
                }
                request_response::Message::Response { response, .. } => {
                    assert_eq!(response, b"ok");
                    answered = true;
                }
            },
            _ => {}
        }
        answered
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn three_swarms_connect_pairwise_with_one_link_each() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let positions = [(0.0, 0.0), (4.0, 0.0), (2.0, 3.0)];
    let mut devices = Vec::new();
    let mut swarms = Vec::new();
    for (i, p) in positions.into_iter().enumerate() {
        let driver = medium.add_node(NodeConfig::android(p)).unwrap();
        devices.push(driver.device_id());
        let config = BleConfig { seed: Some(i as u64 + 10), ..BleConfig::default() };
        let (mut s, _) = swarm(driver, config, true);
        listen(&mut s);
        swarms.push(s);
    }
    let [s0, s1, s2] = &mut swarms[..] else { unreachable!() };
    let mut refs = [s0, s1, s2];
    run_until(&mut refs, |_, swarms, _| swarms.iter().all(|s| s.connected_peers().count() == 2)).await;
    // Let duplicate links from the three-way simultaneous dialing settle.
    run_for(&mut refs, std::time::Duration::from_secs(10), |_, _, _| false).await;
    for s in refs.iter() {
        assert_eq!(s.connected_peers().count(), 2);
        assert_eq!(established(s), 2, "one connection per peer");
    }
    for (x, y) in [(0, 1), (0, 2), (1, 2)] {
        assert_eq!(medium.links_between(devices[x], devices[y]).len(), 1, "one radio link between {x} and {y}");
    }
}

#[tokio::test(start_paused = true)]
async fn simultaneous_dials_leave_exactly_one_link() {
    common::init_tracing();
    let mut duplicates_resolved = 0;
    for seed in 0..6u64 {
        let medium = SimMedium::new(MediumConfig { seed, ..MediumConfig::default() });
        let na = medium.add_node(NodeConfig::android((0.0, 0.0))).unwrap();
        let nb = medium.add_node(NodeConfig::android((1.0, 0.0))).unwrap();
        let (da, db) = (na.device_id(), nb.device_id());
        let (mut a, ha) = swarm(na, BleConfig { seed: Some(seed * 2), ..BleConfig::default() }, false);
        let (mut b, hb) = swarm(nb, BleConfig { seed: Some(seed * 2 + 1), ..BleConfig::default() }, false);
        listen(&mut a);
        listen(&mut b);
        // Both learn of each other, then dial at the same instant.
        run_for(&mut [&mut a, &mut b], std::time::Duration::from_secs(1), |_, _, _| false).await;
        a.dial(hb.local_address()).unwrap();
        b.dial(ha.local_address()).unwrap();
        run_for(&mut [&mut a, &mut b], std::time::Duration::from_secs(12), |_, _, e| {
            if matches!(e, SwarmEvent::OutgoingConnectionError { .. } | SwarmEvent::ConnectionClosed { .. }) {
                duplicates_resolved += 1;
            }
            false
        })
        .await;
        assert_eq!(medium.links_between(da, db).len(), 1, "seed {seed}: one radio link survives");
        assert_eq!(established(&a), 1, "seed {seed}");
        assert_eq!(established(&b), 1, "seed {seed}");
        let live: Vec<_> = ha.links().into_iter().filter(|l| !l.closed).collect();
        assert_eq!(live.len(), 1, "seed {seed}: {live:?}");
    }
    // Android stacks accept the second link, so the race really happened and was resolved.
    assert!(duplicates_resolved >= 6, "only {duplicates_resolved} duplicate connections were resolved");
}
