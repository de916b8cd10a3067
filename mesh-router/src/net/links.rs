//! Stream tasks: one outbound stream per neighbour (want gossip, or Bitswap for IPFS peers) fed by a bounded queue,
//! and readers that turn inbound streams into messages for the behaviour.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p_identity::PeerId;
use libp2p_stream::{Control, IncomingStreams, OpenStreamError};
use libp2p_swarm::{Stream, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use super::handler::RemoteSupport;
use crate::bitswap::{BitswapMessage, FrameDecoder};
use crate::gossip::wire::{EnvelopeDecoder, WireMessage};

/// The want-gossip protocol.
pub const WANT_PROTOCOL: StreamProtocol = StreamProtocol::new(crate::gossip::wire::PROTOCOL_ID);
/// Bitswap 1.2.0.
pub const BITSWAP_PROTOCOL: StreamProtocol = StreamProtocol::new(crate::bitswap::PROTOCOL_ID);
/// Encoded messages queued per neighbour before sends are dropped (the router's timeouts recover).
pub const SEND_QUEUE: usize = 256;
const READ_CHUNK: usize = 64 * 1024;

/// Which protocol a neighbour speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/pollen/want/1.0.0`.
    Pollen,
    /// `/ipfs/bitswap/1.2.0`.
    Bitswap,
}

/// What stream tasks tell the behaviour.
pub(super) enum Inbound {
    /// An outbound stream is open: the neighbour speaks `dialect`; encoded messages go into `tx`.
    Opened { peer: PeerId, dialect: Dialect, tx: mpsc::Sender<Vec<u8>> },
    /// The neighbour speaks neither protocol.
    Unsupported { peer: PeerId },
    /// A want-gossip message.
    Pollen { peer: PeerId, msg: WireMessage },
    /// A Bitswap message.
    Bitswap { peer: PeerId, msg: Box<BitswapMessage> },
    /// A stream carried garbage: the peer broke the protocol.
    Malformed { peer: PeerId, error: String },
}

/// How long a new connection waits for the remote's protocols (identify) before probing without them.
pub(super) const IDENTIFY_WAIT: Duration = Duration::from_secs(5);

/// Opens the outbound stream to a newly connected peer: want gossip if it speaks it, else Bitswap.
///
/// Which one is decided by `support`, the remote's protocols as identify reported them (see `handler`): a swarm
/// that negotiates substreams lazily (`V1Lazy`) cannot find out by trying, because a lazily opened stream is "open"
/// before the remote accepted or refused its protocol, so the first protocol tried would always win and a Helia node
/// would be written want gossip. Without a report within [`IDENTIFY_WAIT`] (a swarm without identify) the protocols
/// are tried in order, which is exact with `V1` negotiation and picks want gossip with `V1Lazy`.
pub(super) fn spawn_connect(
    mut control: Control,
    peer: PeerId,
    support: oneshot::Receiver<RemoteSupport>,
    inbox: mpsc::UnboundedSender<Inbound>,
) {
    tokio::spawn(async move {
        let want = (WANT_PROTOCOL, Dialect::Pollen);
        let bitswap = (BITSWAP_PROTOCOL, Dialect::Bitswap);
        let candidates = match tokio::time::timeout(IDENTIFY_WAIT, support).await {
            Ok(Ok(RemoteSupport { want: true, .. })) => vec![want],
            Ok(Ok(RemoteSupport { bitswap: true, .. })) => vec![bitswap],
            Ok(Ok(_)) => Vec::new(),
            Ok(Err(_)) | Err(_) => {
                tracing::debug!(%peer, "no protocol report from identify, probing");
                vec![want, bitswap]
            }
        };
        for (protocol, dialect) in candidates {
            match control.open_stream(peer, protocol.clone()).await {
                Ok(stream) => {
                    let (tx, rx) = mpsc::channel(SEND_QUEUE);
                    tokio::spawn(write_loop(control, peer, protocol, stream, rx));
                    let _ = inbox.send(Inbound::Opened { peer, dialect, tx });
                    return;
                }
                Err(OpenStreamError::UnsupportedProtocol(_)) => continue,
                Err(error) => {
                    tracing::debug!(%peer, %error, "opening a router stream failed");
                    return;
                }
            }
        }
        let _ = inbox.send(Inbound::Unsupported { peer });
    });
}

/// Writes queued messages; a stream the peer closed is reopened once per message (Helia closes idle streams).
async fn write_loop(
    mut control: Control,
    peer: PeerId,
    protocol: StreamProtocol,
    stream: Stream,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let mut stream = Some(stream);
    while let Some(message) = rx.recv().await {
        for attempt in 0..2 {
            let s = match stream.as_mut() {
                Some(s) => s,
                None => match control.open_stream(peer, protocol.clone()).await {
                    Ok(s) => stream.insert(s),
                    Err(error) => {
                        tracing::debug!(%peer, %error, "reopening a router stream failed");
                        return;
                    }
                },
            };
            let written = async {
                s.write_all(&message).await?;
                s.flush().await
            }
            .await;
            match written {
                Ok(()) => break,
                Err(error) if attempt == 0 => {
                    tracing::debug!(%peer, %error, "router stream broke, reopening");
                    stream = None;
                }
                Err(_) => return,
            }
        }
    }
    if let Some(mut s) = stream {
        let _ = s.close().await;
    }
}

/// Accepts inbound streams of both protocols and reads them.
pub(super) fn spawn_accept(incoming: IncomingStreams, dialect: Dialect, inbox: mpsc::UnboundedSender<Inbound>) {
    tokio::spawn(async move {
        let mut incoming = incoming;
        while let Some((peer, stream)) = incoming.next().await {
            tokio::spawn(read_loop(peer, stream, dialect, inbox.clone()));
        }
    });
}

async fn read_loop(peer: PeerId, mut stream: Stream, dialect: Dialect, inbox: mpsc::UnboundedSender<Inbound>) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pollen = EnvelopeDecoder::default();
    let mut bitswap = FrameDecoder::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let result = match dialect {
            Dialect::Pollen => {
                pollen.push(&buf[..n]);
                drain_pollen(peer, &mut pollen, &inbox)
            }
            Dialect::Bitswap => {
                bitswap.push(&buf[..n]);
                drain_bitswap(peer, &mut bitswap, &inbox)
            }
        };
        if let Err(error) = result {
            let _ = inbox.send(Inbound::Malformed { peer, error });
            return;
        }
    }
}

fn drain_pollen(
    peer: PeerId,
    decoder: &mut EnvelopeDecoder,
    inbox: &mpsc::UnboundedSender<Inbound>,
) -> Result<(), String> {
    while let Some(msg) = decoder.next_message().map_err(|e| e.to_string())? {
        let _ = inbox.send(Inbound::Pollen { peer, msg });
    }
    Ok(())
}

fn drain_bitswap(
    peer: PeerId,
    decoder: &mut FrameDecoder,
    inbox: &mpsc::UnboundedSender<Inbound>,
) -> Result<(), String> {
    while let Some(msg) = decoder.next_message().map_err(|e| e.to_string())? {
        let _ = inbox.send(Inbound::Bitswap { peer, msg: Box::new(msg) });
    }
    Ok(())
}
