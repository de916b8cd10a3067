//! Hostile peers speaking Pollen's want gossip over loopback TCP: one serves a block whose bytes do not match its
//! CID, one floods wants at a thousand times any sane rate. The node must drop the first, and stay bounded and
//! useful under the second.

mod common;
use common::loopback_node;

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade::Version;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use pollen::{GetUpdate, Node};
use pollen_router::gossip::wire::{EnvelopeDecoder, WireMessage};
use pollen_router::gossip::{Control, HaveEntry, WantEntry};
use pollen_router::net::WANT_PROTOCOL;
use pollen_router::unixfs::{cid_v1_sha256, RAW_CODEC};

const WITHIN: Duration = Duration::from_secs(30);

#[derive(NetworkBehaviour)]
struct Evil {
    identify: identify::Behaviour,
    streams: libp2p_stream::Behaviour,
}

/// A peer that lists `/pollen/want/1.0.0` in identify (so the node treats it as a mesh neighbour), connected to
/// `target`.
async fn evil_peer(target: &Node) -> (Swarm<Evil>, libp2p_stream::IncomingStreams, PeerId) {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|key| Evil {
            identify: identify::Behaviour::new(identify::Config::new("ipfs/0.1.0".into(), key.public())),
            streams: libp2p_stream::Behaviour::new(),
        })
        .expect("behaviour")
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(60))
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    let incoming = swarm.behaviour().streams.new_control().accept(WANT_PROTOCOL).expect("accept");
    let addr: Multiaddr = target.wait_listening(1, WITHIN).await.expect("listening")[0].clone();
    swarm.dial(addr).expect("dial");
    let peer = tokio::time::timeout(WITHIN, async {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } = swarm.select_next_some().await {
                return peer_id;
            }
        }
    })
    .await
    .expect("connected");
    (swarm, incoming, peer)
}

async fn next_message(stream: &mut libp2p::Stream, decoder: &mut EnvelopeDecoder) -> Option<WireMessage> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(msg) = decoder.next_message().expect("valid envelope") {
            return Some(msg);
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => decoder.push(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_peer_serving_a_bad_block_is_disconnected_and_the_block_never_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let victim = loopback_node(&dir).await;
    let real = b"the real block".to_vec();
    let cid = cid_v1_sha256(RAW_CODEC, &real);
    let (mut swarm, mut incoming, victim_id) = evil_peer(&victim).await;
    let mut control = swarm.behaviour().streams.new_control();
    // Answer every want with HAVE, every request with a block of the wrong bytes.
    let liar = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.expect("the node opened its stream");
        let mut out = control.open_stream(victim_id, WANT_PROTOCOL).await.expect("stream to the node");
        let mut decoder = EnvelopeDecoder::default();
        while let Some(msg) = next_message(&mut stream, &mut decoder).await {
            let reply = match msg {
                WireMessage::Control(Control::Want(w)) if w.iter().any(|e| e.cid == cid) => {
                    WireMessage::Control(Control::Have(vec![HaveEntry { cid, hops: 0, copies: 0 }]))
                }
                WireMessage::Control(Control::Request(r)) if r.iter().any(|e| e.cid == cid) => {
                    WireMessage::Block { cid, data: b"forged bytes!!".to_vec().into() }
                }
                _ => continue,
            };
            if out.write_all(&reply.encode_framed()).await.is_err() {
                return;
            }
        }
    });
    let _get = Box::pin(victim.get(cid));
    let closed = tokio::time::timeout(WITHIN, async {
        loop {
            if let SwarmEvent::ConnectionClosed { .. } = swarm.select_next_some().await {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the node kept talking to a peer that forged a block");
    assert!(!victim.has(cid).await.expect("has"), "a forged block reached the store");
    liar.abort();
    victim.shutdown().await;
}

#[tokio::test]
async fn a_want_flood_stays_bounded_while_an_honest_transfer_completes() {
    let (dir_a, dir_b) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
    let victim = loopback_node(&dir_a).await;
    let honest = loopback_node(&dir_b).await;
    let file: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let root = honest.put(file.clone()).await.expect("put");
    let honest_addr = honest.wait_listening(1, WITHIN).await.expect("listening")[0].clone();
    victim.dial(honest_addr).await.expect("dial the honest node");

    let (swarm, _incoming, victim_id) = evil_peer(&victim).await;
    let mut control = swarm.behaviour().streams.new_control();
    let driver = tokio::spawn(swarm.for_each(|_| async {}));
    // 200 messages of 1000 fresh wants each, as fast as the connection takes them.
    let flood = tokio::spawn(async move {
        let mut out = control.open_stream(victim_id, WANT_PROTOCOL).await.expect("stream");
        for burst in 0..200u32 {
            let wants = (0..1000u32)
                .map(|i| {
                    let n = burst * 1000 + i;
                    WantEntry {
                        cid: cid_v1_sha256(RAW_CODEC, &n.to_be_bytes()),
                        id: u64::from(n),
                        hops_left: 6,
                        ttl_ms: 120_000,
                    }
                })
                .collect();
            if out.write_all(&WireMessage::Control(Control::Want(wants)).encode_framed()).await.is_err() {
                return;
            }
        }
    });
    let mut updates = Box::pin(victim.get(root));
    let got = tokio::time::timeout(WITHIN, async {
        while let Some(update) = updates.next().await {
            match update {
                GetUpdate::Done(bytes) => return bytes,
                GetUpdate::Failed(e) => panic!("get failed: {e}"),
                GetUpdate::Progress(_) => {}
            }
        }
        panic!("the node stopped")
    })
    .await
    .expect("the honest transfer completed under the flood");
    assert!(got == file);
    let _ = tokio::time::timeout(WITHIN, flood).await;
    let router = victim.stats().await.expect("stats");
    let net = victim.net_stats().await.expect("stats");
    assert!(router.wants_rate_limited + router.wants_table_full > 100_000, "{router:?}");
    assert!(net.want_table <= 2_048 + 16, "want table grew to {}", net.want_table);
    driver.abort();
    victim.shutdown().await;
    honest.shutdown().await;
}
