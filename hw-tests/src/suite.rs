//! The conformance scenarios. Each one builds fresh nodes from the lab, drives them through the [`Node`] API and
//! checks what every BLE backend must do.

use std::collections::BTreeMap;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::PeerId;
use pollen_ble::session::Bearer;
use pollen_ble::BleConfig;
use tokio::time::Instant;

use crate::lab::{scaled, Lab, NodeSpec};
use crate::node::{Node, NodeEvent, NodeOptions};
use crate::report::{Outcome, ScenarioReport};
use crate::LabError;

/// Every scenario, in the order the suite runs them.
pub const SCENARIOS: &[&str] = &[
    "discover_handshake",
    "transfer_gatt",
    "transfer_l2cap",
    "mtu_differs_per_side",
    "link_drop_reconnect",
    "simultaneous_dial",
    "relay_chain",
];

/// Bytes moved each way by the transfer scenarios.
pub const TRANSFER_BYTES: u64 = 4 * 1024 * 1024;

pub(crate) type Metrics = BTreeMap<String, f64>;

/// Runs one scenario by name on a freshly reset lab.
pub async fn run<L: Lab>(lab: &mut L, name: &str) -> ScenarioReport {
    let start = Instant::now();
    let mut metrics = Metrics::new();
    let result = match lab.reset().await {
        Err(e) => Err(e),
        Ok(()) => match name {
            "discover_handshake" => discover_handshake(lab, &mut metrics).await,
            "transfer_gatt" => transfer(lab, &mut metrics, false).await,
            "transfer_l2cap" => transfer(lab, &mut metrics, true).await,
            "mtu_differs_per_side" => mtu_differs_per_side(lab, &mut metrics).await,
            "link_drop_reconnect" => link_drop_reconnect(lab, &mut metrics).await,
            "simultaneous_dial" => simultaneous_dial(lab, &mut metrics).await,
            "relay_chain" => relay_chain(lab, &mut metrics).await,
            other => Err(LabError::Unsupported(format!("no scenario named {other}"))),
        },
    };
    let outcome = match result {
        Ok(()) => Outcome::Pass,
        Err(LabError::Unsupported(why)) => Outcome::Skip(why),
        Err(e) => Outcome::Fail(e.to_string()),
    };
    let outcome = match (outcome, lab.health().await) {
        (outcome, None) => outcome,
        (Outcome::Fail(detail), Some(problem)) => Outcome::Fail(format!("{detail}; {problem}")),
        (_, Some(problem)) => Outcome::Fail(problem),
    };
    ScenarioReport {
        name: name.to_string(),
        lab: lab.name().to_string(),
        outcome,
        seconds: start.elapsed().as_secs_f64(),
        metrics,
        labels: BTreeMap::new(),
    }
}

/// Runs every scenario whose name contains `filter` (all when `None`), printing each result line as it finishes.
pub async fn run_all<L: Lab>(lab: &mut L, filter: Option<&str>) -> Vec<ScenarioReport> {
    run_each(lab, filter, |report| println!("{report}")).await
}

/// Runs every scenario whose name contains `filter` (all when `None`) and hands each report to `on_report` as it
/// finishes.
pub async fn run_each<L: Lab>(
    lab: &mut L,
    filter: Option<&str>,
    mut on_report: impl FnMut(&ScenarioReport),
) -> Vec<ScenarioReport> {
    let mut reports = Vec::new();
    for name in SCENARIOS.iter().filter(|n| filter.is_none_or(|f| n.contains(f))) {
        let report = run(lab, name).await;
        tracing::info!("{report}");
        on_report(&report);
        reports.push(report);
    }
    reports
}

pub(crate) fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), LabError> {
    if ok {
        Ok(())
    } else {
        Err(LabError::Check(what()))
    }
}

async fn spawn_node<L: Lab>(lab: &mut L, index: usize, spec: NodeSpec, options: NodeOptions) -> Result<Node, LabError> {
    spawn_multi(lab, &[index], spec, options).await
}

/// A node driving several of the lab's radios (one BLE transport each).
async fn spawn_multi<L: Lab>(
    lab: &mut L,
    radios: &[usize],
    spec: NodeSpec,
    options: NodeOptions,
) -> Result<Node, LabError> {
    let mut drivers = Vec::new();
    for &index in radios {
        if index >= lab.caps().nodes {
            return Err(LabError::Unsupported(format!("needs {} radios, the lab has {}", index + 1, lab.caps().nodes)));
        }
        drivers.push(lab.driver(index, &spec).await?);
    }
    Node::spawn(drivers, options)
}

fn options(l2cap: bool, auto_dial: bool) -> NodeOptions {
    let mut ble = BleConfig::default();
    ble.session.l2cap = l2cap;
    NodeOptions { ble, auto_dial, relay_server: false }
}

fn is_connected_to(peer: PeerId) -> impl FnMut(&NodeEvent) -> bool {
    move |e| matches!(e, NodeEvent::Connected { peer: p, .. } if *p == peer)
}

/// `a` dials `b` by auto-dial; waits until both see the connection.
async fn connect<L: Lab>(lab: &L, a: &mut Node, b: &mut Node) -> Result<Duration, LabError> {
    let start = Instant::now();
    let within = scaled(lab, Duration::from_secs(30));
    let (pa, pb) = (a.peer_id(), b.peer_id());
    let (ra, rb) = tokio::join!(a.wait_for(within, is_connected_to(pb)), b.wait_for(within, is_connected_to(pa)));
    match (ra, rb) {
        (Ok(_), Ok(_)) => Ok(start.elapsed()),
        (ra, rb) => {
            let side = |r: Result<NodeEvent, LabError>| r.map_or_else(|e| e.to_string(), |_| "connected".into());
            Err(LabError::Check(format!("not connected: {} saw {}, {} saw {}", pa, side(ra), pb, side(rb))))
        }
    }
}

/// Two nodes, node 0 auto-dialing node 1, both advertising.
pub(crate) async fn pair<L: Lab>(lab: &mut L, l2cap: bool, specs: [NodeSpec; 2]) -> Result<(Node, Node), LabError> {
    let [s0, s1] = specs;
    let mut a = spawn_node(lab, 0, s0, options(l2cap, true)).await?;
    let mut b = spawn_node(lab, 1, s1, options(l2cap, false)).await?;
    b.listen();
    if !lab.caps().node0_central_only {
        a.listen();
    }
    connect(lab, &mut a, &mut b).await?;
    Ok((a, b))
}

/// Moves `len` bytes from `from` to `to` and returns the receiver's goodput in bit/s.
pub(crate) async fn bulk<L: Lab>(lab: &L, from: &Node, to: &mut Node, len: u64) -> Result<f64, LabError> {
    // Budget: 50 kbit/s at the least, plus setup.
    let within = scaled(lab, Duration::from_secs(len * 8 / 50_000 + 30));
    let sender = from.peer_id();
    let (sent, received) = tokio::join!(
        tokio::time::timeout(within, from.send_bulk(to.peer_id(), len)),
        to.wait_for(within, |e| matches!(e, NodeEvent::BulkReceived { from, .. } if *from == sender)),
    );
    sent.map_err(|_| LabError::Timeout(within))??;
    match received? {
        NodeEvent::BulkReceived { bytes, intact, goodput_bps, .. } => {
            check(bytes == len && intact, || format!("received {bytes} of {len} bytes, intact={intact}"))?;
            Ok(goodput_bps)
        }
        _ => unreachable!("wait_for matched a BulkReceived"),
    }
}

async fn discover_handshake<L: Lab>(lab: &mut L, metrics: &mut Metrics) -> Result<(), LabError> {
    let (a, b) = pair(lab, false, Default::default()).await?;
    let back = a.echo(b.peer_id(), b"noise + yamux over BLE").await?;
    check(back == b"noise + yamux over BLE", || "echo came back different".into())?;
    metrics.insert("links".into(), a.live_links().len() as f64);
    Ok(())
}

async fn transfer<L: Lab>(lab: &mut L, metrics: &mut Metrics, l2cap: bool) -> Result<(), LabError> {
    if l2cap && !lab.caps().l2cap {
        return Err(LabError::Unsupported("the lab's nodes cannot use L2CAP CoC".into()));
    }
    let spec = NodeSpec { max_att_mtu: None, l2cap };
    let (a, mut b) = pair(lab, l2cap, [spec.clone(), spec]).await?;
    await_bearer(lab, &a, if l2cap { Bearer::L2capCoc } else { Bearer::Gatt }).await?;
    let forward = bulk(lab, &a, &mut b, TRANSFER_BYTES).await?;
    let mut a = a;
    let backward = bulk(lab, &b, &mut a, TRANSFER_BYTES).await?;
    metrics.insert("goodput_ab_bps".into(), forward);
    metrics.insert("goodput_ba_bps".into(), backward);
    Ok(())
}

/// Waits until `node`'s first live link sends on `expected` (the L2CAP channel opens a few connection events after
/// link-up).
pub(crate) async fn await_bearer<L: Lab>(lab: &L, node: &Node, expected: Bearer) -> Result<(), LabError> {
    let deadline = Instant::now() + scaled(lab, Duration::from_secs(5));
    while node.live_links().first().map(|l| l.bearer) != Some(expected) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bearer = node.live_links().first().map(|l| l.bearer);
    check(bearer == Some(expected), || format!("stream runs on {bearer:?}, expected {expected:?}"))
}

async fn mtu_differs_per_side<L: Lab>(lab: &mut L, metrics: &mut Metrics) -> Result<(), LabError> {
    let specs = [NodeSpec { max_att_mtu: Some(517), l2cap: false }, NodeSpec { max_att_mtu: Some(185), l2cap: false }];
    let (mut a, mut b) = pair(lab, false, specs).await?;
    let len = 512 * 1024;
    metrics.insert("goodput_ab_bps".into(), bulk(lab, &a, &mut b, len).await?);
    metrics.insert("goodput_ba_bps".into(), bulk(lab, &b, &mut a, len).await?);
    Ok(())
}

async fn link_drop_reconnect<L: Lab>(lab: &mut L, metrics: &mut Metrics) -> Result<(), LabError> {
    let (mut a, mut b) = pair(lab, false, Default::default()).await?;
    let liveness = BleConfig::default().session.liveness_timeout;
    let transfer_budget = scaled(lab, Duration::from_secs(120));
    let detect_slack = scaled(lab, Duration::from_secs(2));
    // Start a transfer, then take node 1's radio away once it is under way.
    let sending = a.send_bulk(b.peer_id(), TRANSFER_BYTES);
    let under_way = scaled(lab, Duration::from_secs(60));
    let cut = async {
        let deadline = Instant::now() + under_way;
        while a.links().iter().map(|l| l.stats.data_bytes_sent).max().unwrap_or(0) < 64 * 1024 {
            if Instant::now() >= deadline {
                return Err(LabError::Timeout(under_way));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lab.interrupt(1).await?;
        Ok::<_, LabError>(Instant::now())
    };
    let sending = tokio::time::timeout(transfer_budget, sending);
    let (sent, cut_at) = tokio::join!(sending, cut);
    let cut_at = cut_at?;
    check(!matches!(sent, Ok(Ok(()))), || "the transfer finished over a cut link".into())?;
    let within = liveness + detect_slack;
    let closed =
        |peer: PeerId| move |e: &NodeEvent| matches!(e, NodeEvent::ConnectionClosed { peer: p, .. } if *p == peer);
    let (pa, pb) = (a.peer_id(), b.peer_id());
    let (ca, cb) = tokio::join!(a.wait_for(within, closed(pb)), b.wait_for(within, closed(pa)));
    for (side, closed) in [("dialer", ca?), ("listener", cb?)] {
        check(matches!(closed, NodeEvent::ConnectionClosed { error: Some(_), .. }), || {
            format!("{side} saw a clean close, expected an error: {closed:?}")
        })?;
    }
    metrics.insert("detect_s".into(), cut_at.elapsed().as_secs_f64());
    lab.restore(1).await?;
    a.dial(b.ble_address());
    let reconnect_start = Instant::now();
    connect(lab, &mut a, &mut b).await?;
    metrics.insert("reconnect_s".into(), reconnect_start.elapsed().as_secs_f64());
    let back = a.echo(b.peer_id(), b"after the outage").await?;
    check(back == b"after the outage", || "echo after reconnect came back different".into())
}

async fn simultaneous_dial<L: Lab>(lab: &mut L, metrics: &mut Metrics) -> Result<(), LabError> {
    if lab.caps().node0_central_only {
        return Err(LabError::Unsupported("node 0 cannot accept connections, so it cannot be dialed".into()));
    }
    let mut a = spawn_node(lab, 0, NodeSpec::default(), options(false, false)).await?;
    let mut b = spawn_node(lab, 1, NodeSpec::default(), options(false, false)).await?;
    a.listen();
    b.listen();
    // Let both scanners see the other's advertisement, then dial at the same instant.
    tokio::time::sleep(scaled(lab, Duration::from_secs(2))).await;
    a.dial(b.ble_address());
    b.dial(a.ble_address());
    let redials = redial_until_connected(lab, &a, &b).await;
    metrics.insert("redials".into(), f64::from(redials));
    connect(lab, &mut a, &mut b).await?;
    tokio::time::sleep(scaled(lab, Duration::from_secs(8))).await;
    let (ca, cb) = (a.connections().await, b.connections().await);
    check(ca.established == 1 && cb.established == 1, || {
        format!("connections after the race: {} and {}", ca.established, cb.established)
    })?;
    let (la, lb) = (a.live_links().len(), b.live_links().len());
    check(la == 1 && lb == 1, || format!("live links after the race: {la} and {lb}"))?;
    metrics.insert("links".into(), la as f64);
    let back = a.echo(b.peer_id(), b"one link").await?;
    check(back == b"one link", || "echo over the surviving link failed".into())
}

/// On real BlueZ both dials of a race can fail: both LE connects hang, and the kernels keep failing each retry for
/// longer than the driver's connect budget (hw-tests/vlab/NOTES.md, finding 16). Then node 0 dials again, as an
/// application would, at most twice, each time one dial's budget passed with no connection on either side. Returns
/// how many redials it took; the scenario reports them.
async fn redial_until_connected<L: Lab>(lab: &L, a: &Node, b: &Node) -> u32 {
    const MAX_REDIALS: u32 = 2;
    let budget = scaled(lab, Duration::from_secs(6));
    let mut redials = 0;
    let mut next = Instant::now() + budget;
    loop {
        if a.connections().await.established > 0 || b.connections().await.established > 0 {
            return redials;
        }
        if Instant::now() >= next {
            if redials == MAX_REDIALS {
                return redials;
            }
            a.dial(b.ble_address());
            redials += 1;
            next = Instant::now() + budget;
        }
        tokio::time::sleep(scaled(lab, Duration::from_millis(100))).await;
    }
}

async fn relay_chain<L: Lab>(lab: &mut L, metrics: &mut Metrics) -> Result<(), LabError> {
    if lab.caps().node0_central_only {
        return Err(LabError::Unsupported("the relay needs every node to accept connections".into()));
    }
    let [ra, rb, rc] = lab.relay_plan();
    let mut a = spawn_multi(lab, &ra, NodeSpec::default(), options(false, false)).await?;
    let relay_options = NodeOptions { relay_server: true, ..options(false, false) };
    let mut b = spawn_multi(lab, &rb, NodeSpec::default(), relay_options).await?;
    let mut c = spawn_multi(lab, &rc, NodeSpec::default(), options(false, false)).await?;
    for n in [&a, &b, &c] {
        n.listen();
    }
    tokio::time::sleep(scaled(lab, Duration::from_secs(2))).await;
    // B's last radio faces C, its first faces A (the same radio when the lab has one per node).
    let b_addresses = b.ble_addresses();
    let toward_c = b_addresses[b_addresses.len() - 1].clone().with(Protocol::P2p(b.peer_id()));
    let toward_a = b_addresses[0].clone().with(Protocol::P2p(b.peer_id()));
    // C reserves a slot on B, over its own BLE link to B.
    c.dial(toward_c.clone());
    connect(lab, &mut c, &mut b).await?;
    c.listen_via(toward_c);
    c.wait_for(scaled(lab, Duration::from_secs(30)), |e| matches!(e, NodeEvent::RelayReserved)).await?;
    // A reaches C through B: two BLE hops, A–B and B–C.
    let start = Instant::now();
    let circuit = toward_a.with(Protocol::P2pCircuit).with(Protocol::P2p(c.peer_id()));
    a.dial(circuit);
    let connected = a.wait_for(scaled(lab, Duration::from_secs(60)), is_connected_to(c.peer_id())).await?;
    let relayed =
        matches!(&connected, NodeEvent::Connected { address, .. } if address.iter().any(|p| p == Protocol::P2pCircuit));
    check(relayed, || format!("A reached C directly, not through the relay: {connected:?}"))?;
    let back = a.echo(c.peer_id(), b"two hops").await?;
    check(back == b"two hops", || "echo through the relay came back different".into())?;
    metrics.insert("circuit_s".into(), start.elapsed().as_secs_f64());
    Ok(())
}
