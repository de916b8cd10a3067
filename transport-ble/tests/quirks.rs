//! The transport against the platform quirks of the sim medium, rotation, and hostile peers.

mod common;

use std::future::poll_fn;
use std::time::Duration;

use common::{pattern, swarm, Node, NodeEvent};
use futures::StreamExt;
use libp2p::core::transport::{ListenerId, Transport, TransportEvent};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{request_response, Swarm};
use pollen_ble::driver::{BleDriver, DriverEvent, Role};
use pollen_ble::sim::{MediumConfig, NodeConfig, SimMedium};
use pollen_ble::{BleConfig, BleError, BleTransport};

async fn exchange(a: &mut Swarm<Node>, b: &mut Swarm<Node>, size: usize) {
    let b_id = *b.local_peer_id();
    let (request, response) = (pattern(size, 5), pattern(size, 6));
    let mut sent = false;
    loop {
        tokio::select! {
            e = a.select_next_some() => match e {
                SwarmEvent::ConnectionEstablished { .. } if !sent => {
                    sent = true;
                    a.behaviour_mut().rr.send_request(&b_id, request.clone());
                }
                SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::Message {
                    message: request_response::Message::Response { response: r, .. }, ..
                })) => {
                    assert!(r == response);
                    return;
                }
                SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::OutboundFailure { error, .. })) => {
                    panic!("{error}")
                }
                _ => {}
            },
            e = b.select_next_some() => if let SwarmEvent::Behaviour(NodeEvent::Rr(request_response::Event::Message {
                message: request_response::Message::Request { request: r, channel, .. }, ..
            })) = e {
                assert!(r == request);
                b.behaviour_mut().rr.send_response(channel, response.clone()).unwrap();
            },
        }
    }
}

#[tokio::test(start_paused = true)]
async fn android_and_iphone_quirks_cost_no_data() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let mut android = NodeConfig::android((0.0, 0.0));
    android.quirks.late_mtu_report = Some(Duration::from_millis(800));
    let (mut a, _) = swarm(medium.add_node(android).unwrap(), BleConfig::default(), true);
    let (mut b, _) = swarm(medium.add_node(NodeConfig::ios((2.0, 0.0))).unwrap(), BleConfig::default(), false);
    a.listen_on("/memory/0".parse().unwrap()).unwrap();
    b.listen_on("/memory/0".parse().unwrap()).unwrap();
    exchange(&mut a, &mut b, 300 * 1024).await;
    let stats = medium.stats();
    // The session waits for "ready" (so iOS drops nothing) and sizes writes to the smaller MTU view (so Android
    // truncates nothing, even while it still reports MTU 23).
    assert_eq!(stats.dropped_writes, 0);
    assert_eq!(stats.truncated_writes, 0);
    assert!(stats.gatt_bytes + stats.l2cap_bytes > 600 * 1024);
}

/// BlueZ 5.66 as measured in the virtual lab: EATT reorders GATT values and long writes vanish. The session's
/// reorder window and the backend's MTU cap keep the transfer whole.
#[tokio::test(start_paused = true)]
async fn bluez_reordering_and_write_cap_cost_no_data() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let mut config = BleConfig::default();
    config.session.l2cap = false;
    let (mut a, _) = swarm(medium.add_node(NodeConfig::linux((0.0, 0.0))).unwrap(), config.clone(), true);
    let (mut b, _) = swarm(medium.add_node(NodeConfig::linux((2.0, 0.0))).unwrap(), config, false);
    a.listen_on("/memory/0".parse().unwrap()).unwrap();
    b.listen_on("/memory/0".parse().unwrap()).unwrap();
    exchange(&mut a, &mut b, 200 * 1024).await;
    let stats = medium.stats();
    assert!(stats.reordered_values > 10, "the model reordered: {stats:?}");
    assert_eq!(stats.dropped_writes, 0);
}

#[tokio::test(start_paused = true)]
async fn gatt_133_fails_the_dial_with_a_typed_error_and_a_redial_works() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let mut flaky = NodeConfig::android((0.0, 0.0));
    flaky.quirks.gatt_133_rate = 0.5;
    let (mut a, _) = swarm(medium.add_node(flaky).unwrap(), BleConfig::default(), false);
    let (mut b, hb) = swarm(medium.add_node(NodeConfig::android((2.0, 0.0))).unwrap(), BleConfig::default(), false);
    b.listen_on("/memory/0".parse().unwrap()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            tokio::select! { _ = a.select_next_some() => {}, _ = b.select_next_some() => {} }
        }
    })
    .await;
    let (mut failures, mut connected) = (0, false);
    while !connected {
        a.dial(hb.local_address()).unwrap();
        loop {
            tokio::select! {
                e = a.select_next_some() => match e {
                    SwarmEvent::ConnectionEstablished { .. } => { connected = true; break; }
                    SwarmEvent::OutgoingConnectionError { error: DialError::Transport(errors), .. } => {
                        let text = format!("{errors:?}");
                        assert!(text.contains("133"), "{text}");
                        failures += 1;
                        break;
                    }
                    _ => {}
                },
                _ = b.select_next_some() => {}
            }
        }
        assert!(failures < 20, "GATT 133 every time");
    }
    assert!(medium.stats().gatt_133 >= failures);
}

async fn next(t: &mut BleTransport) -> TransportEvent<<BleTransport as Transport>::ListenerUpgrade, BleError> {
    poll_fn(|cx| std::pin::Pin::new(&mut *t).poll(cx)).await
}

#[tokio::test(start_paused = true)]
async fn ephemeral_id_rotates_and_the_new_address_is_dialable() {
    let medium = SimMedium::new(MediumConfig::default());
    let config = BleConfig { rotation_interval: Duration::from_secs(60), ..BleConfig::default() };
    let mut listener = BleTransport::spawn(medium.add_node(NodeConfig::linux((0.0, 0.0))).unwrap(), config);
    let mut dialer = BleTransport::spawn(medium.add_node(NodeConfig::linux((2.0, 0.0))).unwrap(), BleConfig::default());
    let id = ListenerId::next();
    listener.listen_on(id, "/memory/0".parse().unwrap()).unwrap();
    let first = match next(&mut listener).await {
        TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
        _ => panic!("expected the listen address"),
    };
    let start = tokio::time::Instant::now();
    let expired = match next(&mut listener).await {
        TransportEvent::AddressExpired { listen_addr, .. } => listen_addr,
        _ => panic!("expected a rotation"),
    };
    assert_eq!(expired, first);
    assert!(start.elapsed() <= Duration::from_secs(61));
    let second = match next(&mut listener).await {
        TransportEvent::NewAddress { listen_addr, .. } => listen_addr,
        _ => panic!("expected the new address"),
    };
    assert_ne!(first, second);
    // Give the dialer's scanner time to see the new advertisement, then dial it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let opts = libp2p::core::transport::DialOpts {
        role: libp2p::core::Endpoint::Dialer,
        port_use: libp2p::core::transport::PortUse::New,
    };
    let dial = tokio::spawn(dialer.dial(second, opts).unwrap());
    let incoming = loop {
        if let TransportEvent::Incoming { upgrade, .. } = next(&mut listener).await {
            break upgrade;
        }
    };
    dial.await.unwrap().expect("dial the rotated address");
    incoming.await.expect("incoming link");
    // An address nobody advertises is declined, so another transport of the swarm may try it.
    let bogus = pollen_ble::ble_multiaddr(pollen_ble::advert::EphemeralId(42));
    assert!(matches!(dialer.dial(bogus, opts), Err(libp2p::TransportError::MultiaddrNotSupported(_))));
    // So is a second listen: one advertiser per transport.
    let again = listener.listen_on(ListenerId::next(), "/memory/0".parse().unwrap());
    assert!(matches!(again, Err(libp2p::TransportError::MultiaddrNotSupported(_))));
}

/// A peer that sends garbage after connecting loses its link; the node keeps serving others.
#[tokio::test(start_paused = true)]
async fn rogue_peer_is_cut_off_and_the_node_keeps_working() {
    common::init_tracing();
    let medium = SimMedium::new(MediumConfig::default());
    let (mut victim, hv) = swarm(medium.add_node(NodeConfig::linux((0.0, 0.0))).unwrap(), BleConfig::default(), false);
    victim.listen_on("/memory/0".parse().unwrap()).unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(300), victim.select_next_some()).await;
    let mut rogue = medium.add_node(NodeConfig::linux((1.0, 0.0))).unwrap();
    let victim_device = pollen_ble::driver::DeviceId(0);
    rogue.connect(victim_device).unwrap();
    let link = loop {
        let e = tokio::select! {
            e = poll_fn(|cx| rogue.poll_event(cx)) => e,
            _ = victim.select_next_some() => continue,
        };
        if let DriverEvent::Connected { link, role: Role::Central, .. } = e {
            break link;
        }
    };
    // A frame header that claims 1000 payload bytes in a 20-byte write, then an oversized value.
    rogue.send(link, pollen_ble::session::Bearer::Gatt, &[0x03, 0xe8, 1, 2, 3]).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = victim.select_next_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    assert!(hv.links().iter().all(|l| l.closed), "{:?}", hv.links());
    assert!(medium.links_between(victim_device, rogue.device_id()).is_empty(), "victim dropped the link");
    // An honest peer still gets through.
    let (mut honest, _) = swarm(medium.add_node(NodeConfig::linux((0.0, 1.0))).unwrap(), BleConfig::default(), true);
    honest.listen_on("/memory/0".parse().unwrap()).unwrap();
    exchange(&mut honest, &mut victim, 10_000).await;
}
