//! Link benchmark: stack efficiency of libp2p (noise + yamux) over the BLE transport, as a ratio of the link model's
//! airtime-limited capacity, and the setup cost in link round trips.
//!
//! ```text
//! cargo run --release -p pollen-ble --example linkbench
//! ```
//!
//! Everything runs on the simulated medium in tokio's paused (virtual) clock, so the figures are ratios of simulated
//! radio time and do not depend on how busy this machine is. Connection intervals are Android's high-priority range:
//! 15 ms on LE 1M and 11.25 ms on LE 2M.

#[path = "../tests/common/codec.rs"]
mod codec;
#[path = "../tests/common/stack.rs"]
mod stack;

use std::error::Error;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade::Version;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{request_response, PeerId, StreamProtocol, Swarm, SwarmBuilder, Transport};
use pollen_ble::session::Bearer;
use pollen_ble::sim::{MediumConfig, NodeConfig, Quirks, SimMedium, SimProfile};
use pollen_ble::{BleConfig, BleHandle, BleTransport};
use pollen_radio_model::ble::Phy;
use tokio::sync::mpsc;
use tokio::time::Instant;

type BoxError = Box<dyn Error + Send + Sync>;

const TRANSFER: usize = 1024 * 1024;
const STREAM_PROTOCOL: StreamProtocol = StreamProtocol::new("/pollen-linkbench/stream/1");
const RR_PROTOCOL: StreamProtocol = StreamProtocol::new("/pollen-linkbench/rr/1");

#[derive(NetworkBehaviour)]
struct Bench {
    stream: libp2p_stream::Behaviour,
    rr: request_response::Behaviour<codec::BytesCodec>,
    ble: pollen_ble::discovery::Behaviour,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    bearer: Bearer,
    phy: Phy,
    mtu: u16,
}

fn profile(case: Case) -> SimProfile {
    let ci = match case.phy {
        Phy::Le1M => Duration::from_millis(15),
        Phy::Le2M => Duration::from_micros(11_250),
    };
    SimProfile {
        phy_2m: case.phy == Phy::Le2M,
        max_att_mtu: case.mtu,
        conn_interval: ci,
        l2cap: case.bearer == Bearer::L2capCoc,
        ..SimProfile::android()
    }
}

/// Two nodes 2 m apart on a fresh medium, with swarms running in their own tasks.
struct Pair {
    medium: SimMedium,
    a: mpsc::UnboundedReceiver<SwarmEvent<BenchEvent>>,
    a_control: libp2p_stream::Control,
    a_rr: mpsc::UnboundedSender<Vec<u8>>,
    a_handle: BleHandle,
    b_id: PeerId,
    b_control: libp2p_stream::Control,
}

fn build(case: Case, medium: &SimMedium, x: f64, seed: u64) -> Result<(Swarm<Bench>, BleHandle), BoxError> {
    let node = NodeConfig { position: (x, 0.0), profile: profile(case), quirks: Quirks::default() };
    let driver = medium.add_node(node)?;
    let mut config = BleConfig { seed: Some(seed), ..BleConfig::default() };
    config.session.l2cap = case.bearer == Bearer::L2capCoc;
    let transport = BleTransport::spawn(driver, config);
    let handle = transport.handle();
    let discovery = transport.discovery(x == 0.0);
    let swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(|key| stack::ble_stack(transport, key))?
        .with_behaviour(|_| Bench {
            stream: libp2p_stream::Behaviour::new(),
            rr: request_response::Behaviour::new(
                [(RR_PROTOCOL, request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(3600)),
            ),
            ble: discovery,
        })?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(3600))
                .with_substream_upgrade_protocol_override(Version::V1Lazy)
        })
        .build();
    Ok((swarm, handle))
}

impl Pair {
    fn new(case: Case) -> Result<Self, BoxError> {
        let medium = SimMedium::new(MediumConfig::default());
        let (mut a, a_handle) = build(case, &medium, 0.0, 1)?;
        let (mut b, _) = build(case, &medium, 2.0, 2)?;
        a.listen_on("/memory/0".parse()?)?;
        b.listen_on("/memory/0".parse()?)?;
        let b_id = *b.local_peer_id();
        let a_control = a.behaviour().stream.new_control();
        let b_control = b.behaviour().stream.new_control();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (rr_tx, mut rr_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    e = a.select_next_some() => if events_tx.send(e).is_err() { return },
                    Some(req) = rr_rx.recv() => { a.behaviour_mut().rr.send_request(&b_id, req); }
                }
            }
        });
        tokio::spawn(async move {
            while let Some(e) = b.next().await {
                if let SwarmEvent::Behaviour(BenchEvent::Rr(request_response::Event::Message {
                    message: request_response::Message::Request { channel, request, .. },
                    ..
                })) = e
                {
                    let _ = b.behaviour_mut().rr.send_response(channel, request);
                }
            }
        });
        Ok(Self { medium, a: events, a_control, a_rr: rr_tx, a_handle, b_id, b_control })
    }

    async fn connected(&mut self) -> Result<Instant, BoxError> {
        while let Some(e) = self.a.recv().await {
            if let SwarmEvent::ConnectionEstablished { .. } = e {
                return Ok(Instant::now());
            }
        }
        Err("swarm ended before connecting".into())
    }

    /// Sends a request as soon as the connection is up; returns when its response arrived.
    async fn first_response(&mut self) -> Result<Instant, BoxError> {
        self.connected().await?;
        self.a_rr.send(vec![1])?;
        while let Some(e) = self.a.recv().await {
            match e {
                SwarmEvent::Behaviour(BenchEvent::Rr(request_response::Event::Message { .. })) => {
                    return Ok(Instant::now())
                }
                SwarmEvent::Behaviour(BenchEvent::Rr(request_response::Event::OutboundFailure { error, .. })) => {
                    return Err(error.into())
                }
                _ => {}
            }
        }
        Err("swarm ended".into())
    }
}

/// Streams `TRANSFER` bytes from a to b; returns (model capacity, receiver goodput) in bit/s.
async fn goodput(case: Case) -> Result<(f64, f64), BoxError> {
    let mut pair = Pair::new(case)?;
    let mut incoming = pair.b_control.accept(STREAM_PROTOCOL)?;
    let receiver = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.ok_or("no inbound stream")?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut first: Option<(Instant, usize)> = None;
        let mut total = 0usize;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n;
            first.get_or_insert((Instant::now(), n));
        }
        let (t0, n0) = first.ok_or("empty transfer")?;
        Ok::<_, BoxError>(((total - n0) as f64 * 8.0) / t0.elapsed().as_secs_f64())
    });
    pair.connected().await?;
    let mut stream = pair.a_control.open_stream(pair.b_id, STREAM_PROTOCOL).await?;
    stream.write_all(&vec![0x5a; TRANSFER]).await?;
    stream.close().await?;
    let goodput = receiver.await??;
    let links = pair.a_handle.links();
    let link = links.first().ok_or("no link")?;
    if link.bearer != case.bearer {
        return Err(format!("link ran on {:?}, expected {:?}", link.bearer, case.bearer).into());
    }
    let params = pair.medium.link_params(link.link).ok_or("link gone")?;
    Ok((params.capacity_bps(case.bearer), goodput))
}

/// Link-up to first response byte: over the bare link session, and through noise + yamux + request-response.
async fn setup_cost(case: Case) -> Result<(Duration, Duration, Duration), BoxError> {
    let bare = bare_request_response(case).await?;
    let mut pair = Pair::new(case)?;
    let answered = pair.first_response().await?;
    let up = pair.a_handle.links().first().ok_or("no link")?.established_at;
    let rtt = pair.medium.link_params(pair.a_handle.links()[0].link).ok_or("link gone")?.rtt();
    Ok((bare, answered - up, rtt))
}

/// One byte each way over the link session alone, sent the moment the link is up.
async fn bare_request_response(case: Case) -> Result<Duration, BoxError> {
    use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportEvent};
    use libp2p::core::Endpoint;

    let medium = SimMedium::new(MediumConfig::default());
    let node = |x| NodeConfig { position: (x, 0.0), profile: profile(case), quirks: Quirks::default() };
    let mut a = BleTransport::spawn(medium.add_node(node(0.0))?, BleConfig { seed: Some(1), ..Default::default() });
    let mut b = BleTransport::spawn(medium.add_node(node(2.0))?, BleConfig { seed: Some(2), ..Default::default() });
    let handle = a.handle();
    b.listen_on(ListenerId::next(), "/memory/0".parse()?)?;
    let b_addr = b.handle().local_address();
    tokio::spawn(async move {
        while let Some(event) = futures::future::poll_fn(|cx| std::pin::Pin::new(&mut b).poll(cx).map(Some)).await {
            if let TransportEvent::Incoming { upgrade, .. } = event {
                tokio::spawn(async move {
                    let mut s = upgrade.await?;
                    let mut byte = [0u8; 1];
                    s.read_exact(&mut byte).await?;
                    s.write_all(&byte).await?;
                    futures::future::pending::<()>().await;
                    Ok::<_, BoxError>(())
                });
            }
        }
    });
    // Wait for a's scanner to see b.
    let opts = DialOpts { role: Endpoint::Dialer, port_use: PortUse::New };
    let mut stream = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(dial) = a.dial(b_addr.clone(), opts) {
            break dial.await?;
        }
    };
    stream.write_all(&[7]).await?;
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await?;
    let up = handle.links().first().ok_or("no link")?.established_at;
    Ok(up.elapsed())
}

async fn run() -> Result<(), BoxError> {
    let mut cases = Vec::new();
    for phy in [Phy::Le1M, Phy::Le2M] {
        for mtu in [23, 185, 247, 517] {
            cases.push(Case { bearer: Bearer::Gatt, phy, mtu });
        }
    }
    cases.push(Case { bearer: Bearer::L2capCoc, phy: Phy::Le2M, mtu: 247 });
    let mut worst_large = f64::INFINITY;
    let mut worst_small = f64::INFINITY;
    for case in cases {
        let (capacity, goodput) = goodput(case).await?;
        let efficiency = goodput / capacity;
        println!(
            "linkbench path={} phy={} mtu={} capacity_kbps={:.1} goodput_kbps={:.1} efficiency={:.3}",
            case.bearer.label(),
            case.phy.label(),
            case.mtu,
            capacity / 1000.0,
            goodput / 1000.0,
            efficiency
        );
        if case.mtu >= 185 {
            worst_large = worst_large.min(efficiency);
        } else {
            worst_small = worst_small.min(efficiency);
        }
    }
    let case = Case { bearer: Bearer::Gatt, phy: Phy::Le2M, mtu: 247 };
    let (bare, full, rtt) = setup_cost(case).await?;
    let added = (full.as_secs_f64() - bare.as_secs_f64()) / rtt.as_secs_f64();
    println!(
        "# setup on gatt/2M/247: link-up to first response byte {:.1} RTT through noise+yamux+request-response, \
         {:.1} RTT over the bare link session (RTT = {:?})",
        full.as_secs_f64() / rtt.as_secs_f64(),
        bare.as_secs_f64() / rtt.as_secs_f64(),
        rtt
    );
    println!(
        "# targets: efficiency >= 0.92 at MTU >= 185 (worst {worst_large:.3}), >= 0.80 at MTU 23 (worst \
         {worst_small:.3}), added setup <= 2.5 RTT"
    );
    println!("linkbench setup added_rtt={added:.1}");
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(run())
}
