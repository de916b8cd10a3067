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
