//! One simulation: a scenario becomes contacts, a workload becomes messages, and every router runs on both.

use std::sync::Arc;

use pollen_router::energy::{plan, Demand, EnergyBudget, RadioCosts};
use pollen_router::gossip::RouterConfig;

use crate::contacts::{bridge_gaps, contacts_from_mobility, snapshot, LINK_GRACE_MS};
use crate::energy::{DutyCycle, EnergyModel};
use crate::engine::{Engine, LinkConfig, Protocol, Tally};
use crate::metrics::router_result;
use crate::mobility::{Field, FieldRole, Mobility, MobilityError, Ns2Trace, RandomWaypoint, RandomWaypointConfig};
use crate::model::{ContactTrace, MessageSpec, NodeId, Snapshot, Time, SECOND};
use crate::radio::{RadioProfile, BATTERY_J};
use crate::results::{EnergyPoint, RouterResult, SimResults};
use crate::routers::{oracle, DirectDelivery, PollenNode, PollenShared, SprayAndWait};
use crate::workload::{Workload, WorkloadError};

/// Where the contacts come from.
#[derive(Debug, Clone)]
pub enum Scenario {
    /// The built-in disaster site ([`Field`]) with this many nodes.
    Field {
        /// Nodes.
        nodes: u32,
    },
    /// Random waypoint.
    RandomWaypoint(RandomWaypointConfig),
    /// An ns-2 movement trace.
    Movement(Ns2Trace),
    /// A contact trace (ONE connectivity events), with the messages it carried, if any. Contacts here are
    /// connections: no discovery or setup delay is added.
    Contacts {
        /// The contacts.
        trace: ContactTrace,
        /// Messages from the file (`C` events); empty to use the workload generator.
        messages: Vec<MessageSpec>,
    },
}

/// Which routers a run includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterSet {
    /// The ideal epidemic oracle.
    pub oracle: bool,
    /// Direct delivery.
    pub direct: bool,
    /// Binary spray-and-wait.
    pub spray_and_wait: bool,
    /// The battery-budget sweep (Pollen under several budgets).
    pub energy_sweep: bool,
}

impl RouterSet {
    /// Pollen and every baseline and the sweep.
    pub const ALL: RouterSet = RouterSet { oracle: true, direct: true, spray_and_wait: true, energy_sweep: true };
    /// Pollen alone ("router mode", for scale runs).
    pub const POLLEN_ONLY: RouterSet =
        RouterSet { oracle: false, direct: false, spray_and_wait: false, energy_sweep: false };
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Name shown in the report.
    pub name: String,
    /// The contacts' source.
    pub scenario: Scenario,
    /// Simulated time (a contact trace's own duration is used if this is 0).
    pub duration: Time,
    /// Seed of every random choice.
    pub seed: u64,
    /// Generated traffic (ignored when a contact trace brings messages).
    pub workload: Workload,
    /// Buffer per node, bytes.
    pub buffer_bytes: u64,
    /// The radio (its rate may be overridden for contact traces).
    pub radio: RadioProfile,
    /// Radio range for mobility scenarios, metres (defaults to the radio's).
    pub range_m: f64,
    /// Positions are sampled this often to find contacts, ms.
    pub tick_ms: Time,
    /// Copies Pollen's sources spray.
    pub pollen_copies: u32,
    /// How many hops Pollen's wants travel from the wanting node.
    pub pollen_want_hops: u8,
    /// Copies of the spray-and-wait baseline.
    pub baseline_copies: u32,
    /// Scan and advertise duty of the main runs.
    pub duty: DutyCycle,
    /// Battery budgets (% per hour) of the sweep.
    pub energy_budgets: Vec<f64>,
    /// Which routers run besides Pollen.
    pub routers: RouterSet,
}

impl SimConfig {
    /// The built-in default: 60 phones on the disaster site for 2 hours, BLE, chat and photo traffic.
    pub fn field_default() -> Self {
        let radio = RadioProfile::ble();
        Self {
            name: "field".into(),
            scenario: Scenario::Field { nodes: 60 },
            duration: 2 * 3_600 * SECOND,
            seed: 1,
            workload: Workload::default(),
            buffer_bytes: 50_000_000,
            range_m: radio.range_m,
            radio,
            tick_ms: SECOND,
            pollen_copies: 4,
            pollen_want_hops: RouterConfig::default().want_hops,
            baseline_copies: 6,
            duty: DutyCycle::default(),
            energy_budgets: vec![0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
            routers: RouterSet::ALL,
        }
    }
}

impl SimConfig {
    /// The oracle-check scenario: random waypoint over classic DTN parameters (126 nodes, 10 m range, 12 h,
    /// 250 kB/s links, 5 MB buffers, 500 kB–1 MB messages every 25–35 s living 5 h: the ONE simulator's default
    /// workload). The 1000 m × 1000 m area is where the ideal oracle delivers at least 0.9 (0.965 with seed 1); in
    /// this setting the 5 MB buffers, not the contacts, bound every router. Pollen sprays 2 copies and its wants
    /// travel 1 hop: a buffer holds only about six messages, so a third copy only evicts another message's copy, and
    /// random-waypoint meetings are memoryless (two nodes that just met are no likelier than any pair to meet again
    /// soon), so a relayed want's freshness says nothing about where the requester is and focus hand-overs and relay
    /// pulls cost transmissions without raising delivery (2 hops: the same delivery at about 1.5× the overhead).
    pub fn rwp_oracle_check() -> Self {
        let mut radio = RadioProfile::ble();
        radio.rate_bytes_per_s = 250_000.0;
        Self {
            name: "random waypoint, 126 nodes, 1 km², 12 h".into(),
            scenario: Scenario::RandomWaypoint(RandomWaypointConfig {
                nodes: 126,
                area: (1_000.0, 1_000.0),
                speed: (0.5, 1.5),
                pause: (0.0, 120.0),
            }),
            duration: 12 * 3_600 * SECOND,
            workload: Workload {
                size: (500_000, 1_000_000),
                interval_ms: (25 * SECOND, 35 * SECOND),
                ttl_ms: 5 * 3_600 * SECOND,
            },
            buffer_bytes: 5_000_000,
            range_m: 10.0,
            radio,
            pollen_copies: 2,
            pollen_want_hops: 1,
            routers: RouterSet { energy_sweep: false, ..RouterSet::ALL },
            ..Self::field_default()
        }
    }
}

/// A run that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The mobility settings are invalid.
    #[error("scenario: {0}")]
    Mobility(#[from] MobilityError),
    /// The workload settings are invalid.
    #[error("workload: {0}")]
    Workload(#[from] WorkloadError),
    /// Some other setting is invalid.
    #[error("{0}")]
    Config(String),
}

/// Progress of a run: (stage, fraction done of that stage).
pub type Progress<'a> = &'a (dyn Fn(&str, f64) + Sync);

/// The contacts, messages and map of a scenario, ready for the routers.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Contacts.
    pub trace: ContactTrace,
    /// Messages, in creation order.
    pub messages: Vec<MessageSpec>,
    /// A map of positions at mid-run (mobility scenarios only).
    pub snapshot: Option<Snapshot>,
    /// Whether contacts are connections already (no discovery and setup delay).
    pub connected_contacts: bool,
}

/// Turns the scenario into contacts and messages.
pub fn prepare(cfg: &SimConfig, progress: Progress) -> Result<Prepared, SimError> {
    if cfg.buffer_bytes == 0 {
        return Err(SimError::Config("buffer must be at least one byte".into()));
    }
    if !(cfg.radio.rate_bytes_per_s >= 1.0 && cfg.radio.rate_bytes_per_s.is_finite()) {
        return Err(SimError::Config(format!(
            "link rate must be at least 1 byte/s, found {}",
            cfg.radio.rate_bytes_per_s
        )));
    }
    progress("contacts", 0.0);
    let (trace, file_messages, snapshot, endpoints, connected) = match &cfg.scenario {
        Scenario::Field { nodes } => {
            let mut model = Field::new(*nodes, cfg.seed)?;
            let phones: Vec<NodeId> = (0..*nodes).filter(|n| model.role_of(*n) != Some(FieldRole::Relay)).collect();
            let trace =
                bridge_gaps(contacts_from_mobility(&mut model, cfg.duration, cfg.range_m, cfg.tick_ms), LINK_GRACE_MS);
            let snap = snapshot(&mut Field::new(*nodes, cfg.seed)?, cfg.duration / 2, cfg.range_m);
            (trace, Vec::new(), Some(snap), phones, false)
        }
        Scenario::RandomWaypoint(rwp) => {
            let trace = contacts_from_mobility(
                &mut RandomWaypoint::new(*rwp, cfg.seed)?,
                cfg.duration,
                cfg.range_m,
                cfg.tick_ms,
            );
            let trace = bridge_gaps(trace, LINK_GRACE_MS);
            let snap = snapshot(&mut RandomWaypoint::new(*rwp, cfg.seed)?, cfg.duration / 2, cfg.range_m);
            (trace, Vec::new(), Some(snap), (0..rwp.nodes).collect(), false)
        }
        Scenario::Movement(ns2) => {
            let trace = contacts_from_mobility(&mut ns2.rewound(), cfg.duration, cfg.range_m, cfg.tick_ms);
            let trace = bridge_gaps(trace, LINK_GRACE_MS);
            let snap = snapshot(&mut ns2.rewound(), cfg.duration / 2, cfg.range_m);
            (trace, Vec::new(), Some(snap), (0..ns2.nodes()).collect(), false)
        }
        Scenario::Contacts { trace, messages } => {
            let mut trace = trace.clone();
            if cfg.duration > 0 {
                trace.duration = cfg.duration;
            }
            let endpoints = (0..trace.nodes).collect();
            (trace, messages.clone(), None, endpoints, true)
        }
    };
    progress("contacts", 1.0);
    let messages = if file_messages.is_empty() {
        cfg.workload.generate(&endpoints, trace.duration, cfg.seed)?
    } else {
        file_messages
    };
    Ok(Prepared { trace, messages, snapshot, connected_contacts: connected })
}

/// Runs every selected router on the prepared scenario.
pub fn simulate(cfg: &SimConfig, prepared: &Prepared, progress: Progress) -> SimResults {
    let ttl = cfg.workload.ttl_ms;
    let link = link_config(cfg, prepared, cfg.duty);
    let nodes = prepared.trace.nodes as usize;
    let energy = energy_model(cfg, cfg.duty);
    let pollen_cfg = pollen_router_config(cfg, true, RouterConfig::default().max_carries);
    let budgets: Vec<f64> = if cfg.routers.energy_sweep { cfg.energy_budgets.clone() } else { Vec::new() };
    let (routers, sweep) = std::thread::scope(|s| {
        let pollen = s.spawn(|| {
            let shared = PollenShared::new(&prepared.messages);
            let nodes_v =
                (0..nodes).map(|i| node_pollen(&pollen_cfg, i, &shared, cfg.pollen_copies, cfg.buffer_bytes)).collect();
            run_one("pollen", &link, energy, prepared, ttl, nodes_v, progress)
        });
        let baselines = s.spawn(|| {
            let mut out = Vec::new();
            if cfg.routers.direct {
                let v = (0..nodes).map(|_| DirectDelivery::new(cfg.buffer_bytes)).collect();
                out.push(("direct", run_one("direct", &link, energy, prepared, ttl, v, progress)));
            }
            if cfg.routers.spray_and_wait {
                let v = (0..nodes).map(|_| SprayAndWait::new(cfg.baseline_copies, cfg.buffer_bytes)).collect();
                out.push(("spray_and_wait", run_one("spray_and_wait", &link, energy, prepared, ttl, v, progress)));
            }
            if cfg.routers.oracle {
                out.push(("oracle", run_oracle(cfg, prepared, &link, energy)));
            }
            let sweep: Vec<EnergyPoint> = budgets.iter().map(|b| sweep_point(cfg, prepared, *b, progress)).collect();
            (out, sweep)
        });
        // A panic in a router is a bug: surface it rather than report a run without that router.
        let pollen = pollen.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        let (baselines, sweep) = baselines.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        let mut routers = std::collections::BTreeMap::new();
        routers.insert("pollen".to_string(), pollen);
        for (name, r) in baselines {
            routers.insert(name.to_string(), r);
        }
        (routers, sweep)
    });
    SimResults {
        scenario: cfg.name.clone(),
        nodes: prepared.trace.nodes,
        duration_s: prepared.trace.duration as f64 / 1000.0,
        seed: cfg.seed,
        messages: prepared.messages.len(),
        contacts: prepared.trace.events.iter().filter(|e| e.up).count(),
        routers,
        energy_sweep: sweep,
        snapshot: prepared.snapshot.clone(),
    }
}

fn node_pollen(cfg: &RouterConfig, i: usize, shared: &Arc<PollenShared>, copies: u32, buffer: u64) -> PollenNode {
    let cfg = RouterConfig { id_seed: cfg.id_seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), ..cfg.clone() };
    PollenNode::new(cfg, Arc::clone(shared), copies, buffer)
}

/// Pollen's router settings in the simulator: wants live as long as the message, at most half an hour (a want
/// older than that says little about where its requester is now), done notices as long as a message (after that
/// nobody holds the copies they would free), carries are bounded by what the buffer holds, and replicas fill the
/// buffer room nothing useful holds.
fn pollen_router_config(cfg: &SimConfig, relay: bool, max_carries: usize) -> RouterConfig {
    let want_ttl = cfg.workload.ttl_ms.min(WANT_TTL_CAP_MS);
    RouterConfig {
        want_hops: cfg.pollen_want_hops,
        want_ttl_ms: u32::try_from(want_ttl).unwrap_or(u32::MAX),
        id_seed: cfg.seed,
        relay,
        max_carries,
        done_ttl_ms: u32::try_from(cfg.workload.ttl_ms).unwrap_or(u32::MAX),
        replicas_per_custody: 8,
        ..RouterConfig::default()
    }
}

/// Longest want lifetime in the simulator, ms.
const WANT_TTL_CAP_MS: Time = 1_800 * SECOND;

fn link_config(cfg: &SimConfig, prepared: &Prepared, duty: DutyCycle) -> LinkConfig {
    let mut radio = cfg.radio.clone();
    let discovery_mean_ms = if prepared.connected_contacts {
        radio.setup_best_ms = 0;
        radio.setup_mean_ms = 0;
        radio.setup_worst_ms = 0;
        0
    } else {
        discovery_mean_ms(duty)
    };
    LinkConfig { radio, discovery_mean_ms, seed: cfg.seed }
}

/// Mean delay until one phone hears another: the wait for the next scan window (Android's 4 s scan period) plus
/// half an advertising interval.
fn discovery_mean_ms(duty: DutyCycle) -> Time {
    const SCAN_PERIOD_MS: f64 = 4_096.0;
    let miss = 1.0 - duty.scan_duty.clamp(0.0, 1.0);
    (miss * miss * SCAN_PERIOD_MS / 2.0 + duty.advertise_interval_ms as f64 / 2.0) as Time
}

fn energy_model(cfg: &SimConfig, duty: DutyCycle) -> EnergyModel {
    EnergyModel { power: cfg.radio.power, rate_bytes_per_s: cfg.radio.rate_bytes_per_s, duty }
}

fn run_one<P: Protocol>(
    name: &str,
    link: &LinkConfig,
    energy: EnergyModel,
    prepared: &Prepared,
    ttl: Time,
    nodes: Vec<P>,
    progress: Progress,
) -> RouterResult {
    let engine = Engine::new(link.clone(), energy, &prepared.trace, &prepared.messages, ttl, nodes);
    let (tally, joules, nodes) = engine.run(|f| progress(name, f));
    progress(name, 1.0);
    if let Some(summary) = P::summarize(&nodes) {
        tracing::info!(router = name, "{summary}");
    }
    router_result(&tally, joules, &prepared.messages, prepared.trace.duration)
}

fn run_oracle(cfg: &SimConfig, prepared: &Prepared, link: &LinkConfig, energy: EnergyModel) -> RouterResult {
    let out = oracle(
        &prepared.trace,
        &prepared.messages,
        cfg.workload.ttl_ms,
        link.radio.setup_best_ms,
        link.radio.rate_bytes_per_s,
    );
    // The oracle's energy: discovery for everyone, plus the transfers along its paths.
    let mut meter = crate::energy::EnergyMeter::new(energy, prepared.trace.nodes as usize);
    meter.finish(prepared.trace.duration);
    let mut joules = meter.per_node_joules();
    for (m, d) in prepared.messages.iter().zip(&out.deliveries) {
        if let Some((_, hops)) = d {
            let per_hop = cfg.radio.power.transfer_mw / 1000.0 * m.size as f64 / cfg.radio.rate_bytes_per_s;
            for node in [m.src, m.dst] {
                if let Some(j) = joules.get_mut(node as usize) {
                    *j += per_hop * f64::from(*hops);
                }
            }
        }
    }
    let tally = Tally { deliveries: out.deliveries, block_transmissions: out.transmissions, ..Tally::default() };
    router_result(&tally, joules, &prepared.messages, prepared.trace.duration)
}

/// What one node faces, averaged over the run: the energy policy's input.
fn demand(cfg: &SimConfig, prepared: &Prepared) -> Demand {
    let nodes = f64::from(prepared.trace.nodes.max(1));
    let hours = (prepared.trace.duration as f64 / 3_600_000.0).max(1e-9);
    let contacts = prepared.trace.events.iter().filter(|e| e.up).count() as f64;
    let bytes: f64 = prepared.messages.iter().map(|m| m.size as f64).sum();
    let own = 2.0 * bytes / nodes / hours;
    Demand {
        contacts_per_hour: 2.0 * contacts / nodes / hours,
        own_bytes_per_hour: own,
        relay_bytes_per_hour: own * f64::from(cfg.pollen_copies.max(1)),
    }
}

/// Pollen under a battery budget: the core's policy picks duty cycles and relaying, and the run shows what that buys.
fn sweep_point(cfg: &SimConfig, prepared: &Prepared, pct: f64, progress: Progress) -> EnergyPoint {
    let p = &cfg.radio.power;
    let costs = RadioCosts {
        scan_continuous_mw: p.scan_continuous_mw,
        advertise_event_uj: p.advertise_event_uj,
        transfer_mw: p.transfer_mw,
        setup_mj: p.setup_mj,
        rate_bytes_per_s: cfg.radio.rate_bytes_per_s,
    };
    let budget = EnergyBudget { battery_j: BATTERY_J, pct_per_hour: pct };
    let plan = plan(budget, &costs, &demand(cfg, prepared));
    let duty = DutyCycle { scan_duty: plan.scan_duty, advertise_interval_ms: Time::from(plan.advertise_interval_ms) };
    let router_cfg = pollen_router_config(cfg, plan.relay, plan.max_carries);
    let copies = if plan.relay { cfg.pollen_copies } else { 1 };
    let shared = PollenShared::new(&prepared.messages);
    let nodes = (0..prepared.trace.nodes as usize)
        .map(|i| node_pollen(&router_cfg, i, &shared, copies, cfg.buffer_bytes))
        .collect();
    let stage = format!("budget {pct}%/h");
    let r = run_one(
        &stage,
        &link_config(cfg, prepared, duty),
        energy_model(cfg, duty),
        prepared,
        cfg.workload.ttl_ms,
        nodes,
        progress,
    );
    EnergyPoint {
        budget_pct_per_hour: pct,
        delivery_ratio: r.delivery_ratio,
        energy_j_per_node_hour: r.energy_j_per_node_hour,
        spent_pct_per_hour: r.energy_j_per_node_hour / BATTERY_J * 100.0,
    }
}
