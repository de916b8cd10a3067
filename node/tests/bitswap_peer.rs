//! A Pollen node and a plain Bitswap 1.2.0 peer (identify + Bitswap, no want gossip: what Helia and kubo are) over
//! loopback TCP, in both directions.
//!
//! Regression: the node negotiates substreams lazily (`V1Lazy`), under which opening `/pollen/want/1.0.0` "succeeds"
//! before the remote refuses it, so the router took every peer for a Pollen node and wrote want gossip to Helia.
//! The router now picks the dialect from the protocols identify reports.

mod common;
use common::{loopback_node, pattern};

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade::Version;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder};
use pollen::{Cid, GetUpdate, Node};
use pollen_router::bitswap::{BitswapMessage, FrameDecoder, Presence, Want, WantType};
use pollen_router::net::BITSWAP_PROTOCOL;
use pollen_router::unixfs::{cid_v1_sha256, RAW_CODEC};

const WITHIN: Duration = Duration::from_secs(20);

#[derive(NetworkBehaviour)]
struct Plain {
    identify: identify::Behaviour,
    streams: libp2p_stream::Behaviour,
}

/// A Bitswap-only peer that negotiates lazily too, connected to `node`.
async fn plain_peer(node: &Node) -> (Swarm<Plain>, PeerId) {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .expect("tcp")
        .with_behaviour(|key| Plain {
            identify: identify::Behaviour::new(identify::Config::new("ipfs/0.1.0".into(), key.public())),
            streams: libp2p_stream::Behaviour::new(),
        })
        .expect("behaviour")
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(60))
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    let addr: Multiaddr = node.wait_listening(1, WITHIN).await.expect("listening")[0].clone();
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
    assert_eq!(peer, node.peer_id());
    (swarm, peer)
}

async fn read_message(stream: &mut libp2p::Stream, decoder: &mut FrameDecoder) -> Option<BitswapMessage> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(msg) = decoder.next_message().expect("a valid Bitswap frame") {
            return Some(msg);
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => decoder.push(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn node_answers_a_bitswap_only_peer_in_bitswap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = loopback_node(&dir).await;
    let data = pattern(200_000, 7);
    let cid = node.put(data.clone()).await.expect("put");
    let (swarm, node_id) = plain_peer(&node).await;
    let mut control = swarm.behaviour().streams.new_control();
    let mut incoming = control.accept(BITSWAP_PROTOCOL).expect("accept");
    let driver = tokio::spawn(swarm.for_each(|_| async {}));

    let want = Want { cid, priority: 1, cancel: false, want_type: WantType::Block, send_dont_have: true };
    let mut out = control.open_stream(node_id, BITSWAP_PROTOCOL).await.expect("bitswap stream");
    let frame = BitswapMessage { wants: vec![want], ..Default::default() }.encode_framed().expect("encode");
    out.write_all(&frame).await.expect("write");
    out.close().await.expect("close");

    // The block comes back on a stream the node opens: Bitswap, not want gossip.
    let block = tokio::time::timeout(WITHIN, async {
        while let Some((peer, mut stream)) = incoming.next().await {
            assert_eq!(peer, node_id);
            let mut decoder = FrameDecoder::new();
            while let Some(msg) = read_message(&mut stream, &mut decoder).await {
                if let Some(block) = msg.blocks.into_iter().next() {
                    return block;
                }
            }
        }
        panic!("no more streams");
    })
    .await
    .expect("the node answered in Bitswap");
    assert_eq!(block, (cid, data));
    driver.abort();
    node.shutdown().await;
}

#[tokio::test]
async fn node_fetches_from_a_bitswap_only_peer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = loopback_node(&dir).await;
    let data = pattern(1000, 3);
    let cid: Cid = cid_v1_sha256(RAW_CODEC, &data);
    let (swarm, node_id) = plain_peer(&node).await;
    let mut control = swarm.behaviour().streams.new_control();
    let mut incoming = control.accept(BITSWAP_PROTOCOL).expect("accept");
    let driver = tokio::spawn(swarm.for_each(|_| async {}));

    // Serve like Helia: read each inbound message, answer HAVE to want-have and the block to want-block, each
    // answer on a new stream.
    let server = tokio::spawn(async move {
        let mut served = 0;
        while let Some((_, mut stream)) = incoming.next().await {
            let mut decoder = FrameDecoder::new();
            while let Some(msg) = read_message(&mut stream, &mut decoder).await {
                let mut reply = BitswapMessage::default();
                for w in msg.wants.iter().filter(|w| w.cid == cid && !w.cancel) {
                    match w.want_type {
                        WantType::Have => reply.presences.push((cid, Presence::Have)),
                        WantType::Block => reply.blocks.push((cid, data.clone())),
                    }
                }
                if reply == BitswapMessage::default() {
                    continue;
                }
                served += reply.blocks.len();
                let mut out = control.open_stream(node_id, BITSWAP_PROTOCOL).await.expect("reply stream");
                out.write_all(&reply.encode_framed().expect("encode")).await.expect("write");
                out.close().await.expect("close");
            }
        }
        served
    });

    let mut updates = Box::pin(node.get(cid));
    let bytes = tokio::time::timeout(WITHIN, async {
        while let Some(update) = updates.next().await {
            match update {
                GetUpdate::Done(bytes) => return bytes,
                GetUpdate::Failed(e) => panic!("get failed: {e}"),
                GetUpdate::Progress(_) => {}
            }
        }
        panic!("the node stopped");
    })
    .await
    .expect("the get finished");
    assert_eq!(bytes, pattern(1000, 3));
    server.abort();
    driver.abort();
    node.shutdown().await;
}
