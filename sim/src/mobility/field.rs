//! The built-in disaster-site scenario ("field").

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::RngExt;

use super::walker::{Plan, Walker};
use super::{distance, in_disk, pick, secs, stream_rng, uniform, Mobility, MobilityError};
use crate::model::{NodeId, Position, Time};

/// Nodes the base 1 km² site is sized for.
const BASE_NODES: f64 = 60.0;
/// Side of the base site, metres.
const BASE_SIDE_M: f64 = 1000.0;
/// Relay points per 60 nodes.
const RELAYS_PER_BASE: f64 = 4.0;
/// Share of nodes that are rescuers.
const RESCUER_SHARE: f64 = 0.2;
/// Civilians per cluster (about).
const CIVILIANS_PER_CLUSTER: f64 = 11.0;
/// Radius civilians wander in around their cluster centre, metres.
const CLUSTER_RADIUS_M: f64 = 25.0;
/// Least distance between cluster centres, metres.
const CLUSTER_GAP_M: f64 = 200.0;
/// Least distance from a cluster centre to a relay point, metres.
const RELAY_GAP_M: f64 = 150.0;
/// How close to a relay point a rescuer stands, metres.
const RELAY_RADIUS_M: f64 = 8.0;
/// A rescuer picks its next stop among this many nearest candidates.
const NEAREST: usize = 3;
/// The field model refuses more nodes than this (its layout search is quadratic in the number of clusters).
const MAX_FIELD_NODES: u32 = 100_000;
/// Random stream of the layout (node streams are the node ids).
const LAYOUT_STREAM: u64 = u64::MAX;

const CIVILIAN_SPEED: (f64, f64) = (0.1, 0.5);
const CIVILIAN_PAUSE: (f64, f64) = (60.0, 600.0);
const RESCUER_SPEED: (f64, f64) = (0.8, 1.6);
const RESCUER_PAUSE_CLUSTER: (f64, f64) = (120.0, 600.0);
const RESCUER_PAUSE_RELAY: (f64, f64) = (60.0, 300.0);

/// What a node is in the [`Field`] scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldRole {
    /// A static relay point.
    Relay,
    /// A rescuer walking between relay points and clusters.
    Rescuer,
    /// A civilian in a cluster.
    Civilian,
}

impl FieldRole {
    /// `"relay"`, `"rescuer"` or `"civilian"`: the role names the map uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldRole::Relay => "relay",
            FieldRole::Rescuer => "rescuer",
            FieldRole::Civilian => "civilian",
        }
    }
}

/// Where a rescuer last stopped.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    Relay(usize),
    Cluster(usize),
    Nowhere,
}

#[derive(Debug)]
enum Agent {
    Fixed,
    Rescuer { walker: Walker, at: Anchor },
    Civilian { walker: Walker, cluster: usize },
}

#[derive(Debug, Clone)]
struct Layout {
    side: f64,
    relays: Vec<Position>,
    clusters: Vec<Position>,
    /// For each relay, its nearest clusters.
    relay_to_clusters: Vec<Vec<usize>>,
    /// For each cluster, its nearest relays.
    cluster_to_relays: Vec<Vec<usize>>,
    /// For each cluster, its nearest other clusters.
    cluster_to_clusters: Vec<Vec<usize>>,
}

/// The built-in disaster-site scenario ("field").
///
/// A site of about 1 km² for 60 nodes (the side grows with √nodes so density stays the same for larger runs):
/// - **relays** (≈ 4 per 60 nodes, ids first): static relay points — drop boxes, a command post — spread over the
///   site on a jittered grid;
/// - **rescuers** (≈ 20 % of nodes, ids next): start at a relay point and walk (0.8–1.6 m/s) between relay points and
///   casualty clusters, pausing 2–10 min at a cluster and 1–5 min at a relay; from a cluster they go on to one of the
///   nearest relays or clusters, from a relay to one of the nearest clusters;
/// - **civilians** (the rest, ids last): in groups of about 11 (3–5 groups at 60 nodes), each group wandering slowly
///   (0.1–0.5 m/s, pauses 1–10 min) inside a 25 m disk around its cluster centre.
///
/// Cluster centres lie at least 200 m from each other and 150 m from relay points, well beyond BLE range (≈ 53 m
/// on LE 1M with the default path loss), while a cluster's 50 m diameter keeps the group within range of itself.
/// So at BLE range the site is a set of islands — the civilian groups, the relay points — that only walking rescuers
/// connect, which is the store-carry-forward case Pollen is for.
///
/// Node ids: relays first, then rescuers, then civilians (dealt round-robin to the clusters). At most 100,000 nodes
/// (the layout search is quadratic in the number of clusters).
#[derive(Debug)]
pub struct Field {
    layout: Layout,
    roles: Vec<FieldRole>,
    agents: Vec<Agent>,
    positions: Vec<Position>,
    now: Time,
}

impl Field {
    /// A field of `nodes` nodes (60 is the reference size), laid out and moved from `seed`.
    pub fn new(nodes: u32, seed: u64) -> Result<Self, MobilityError> {
        if nodes > MAX_FIELD_NODES {
            return Err(MobilityError::TooManyNodes { nodes, max: MAX_FIELD_NODES });
        }
        let n = f64::from(nodes);
        let relays = if nodes == 0 { 0 } else { ((n * RELAYS_PER_BASE / BASE_NODES).round() as u32).clamp(1, nodes) };
        let rescuers = ((n * RESCUER_SHARE).round() as u32).min(nodes - relays);
        let civilians = nodes - relays - rescuers;
        let groups = if civilians == 0 {
            0
        } else {
            ((f64::from(civilians) / CIVILIANS_PER_CLUSTER).round() as u32).max(civilians.min(3))
        };
        let side = BASE_SIDE_M * (n.max(BASE_NODES) / BASE_NODES).sqrt();
        let mut rng = stream_rng(seed, LAYOUT_STREAM);
        let layout = Layout::new(&mut rng, side, relays as usize, groups as usize);

        let mut roles = Vec::with_capacity(nodes as usize);
        let mut agents = Vec::with_capacity(nodes as usize);
        let mut positions = Vec::with_capacity(nodes as usize);
        for i in 0..nodes {
            let mut rng = stream_rng(seed, u64::from(i));
            if i < relays {
                roles.push(FieldRole::Relay);
                agents.push(Agent::Fixed);
                positions.push(layout.relays[i as usize]);
            } else if i < relays + rescuers {
                let r = ((i - relays) % relays.max(1)) as usize;
                let (start, at) = match layout.relays.get(r) {
                    Some(p) => (in_disk(&mut rng, *p, RELAY_RADIUS_M), Anchor::Relay(r)),
                    None => (Position { x: side / 2.0, y: side / 2.0 }, Anchor::Nowhere),
                };
                let wait = uniform(&mut rng, RESCUER_PAUSE_RELAY);
                roles.push(FieldRole::Rescuer);
                agents.push(Agent::Rescuer { walker: Walker::new(start, wait, rng), at });
                positions.push(start);
            } else {
                let cluster = ((i - relays - rescuers) % groups.max(1)) as usize;
                let centre = layout.clusters.get(cluster).copied().unwrap_or(Position { x: side / 2.0, y: side / 2.0 });
                let start = in_disk(&mut rng, centre, CLUSTER_RADIUS_M);
                let wait = uniform(&mut rng, (0.0, CIVILIAN_PAUSE.1));
                roles.push(FieldRole::Civilian);
                agents.push(Agent::Civilian { walker: Walker::new(start, wait, rng), cluster });
                positions.push(start);
            }
        }
        Ok(Self { layout, roles, agents, positions, now: 0 })
    }

    /// Side of the square site, metres.
    pub fn side_m(&self) -> f64 {
        self.layout.side
    }

    /// The relay points; relay node `i` stands at index `i`.
    pub fn relay_points(&self) -> &[Position] {
        &self.layout.relays
    }

    /// Centres of the civilian clusters.
    pub fn cluster_centres(&self) -> &[Position] {
        &self.layout.clusters
    }

    /// The role of `node` (`None` past the last node).
    pub fn role_of(&self, node: NodeId) -> Option<FieldRole> {
        self.roles.get(node as usize).copied()
    }

    /// The cluster a civilian belongs to (`None` for other roles).
    pub fn cluster_of(&self, node: NodeId) -> Option<usize> {
        match self.agents.get(node as usize) {
            Some(Agent::Civilian { cluster, .. }) => Some(*cluster),
            _ => None,
        }
    }
}

impl Layout {
    fn new(rng: &mut StdRng, side: f64, relays: usize, clusters: usize) -> Self {
        // Relay points: a jittered grid over the site, cells taken in a shuffled order.
        let k = (relays as f64).sqrt().ceil().max(1.0) as usize;
        let cell = side / k as f64;
        let mut cells: Vec<(usize, usize)> = (0..k * k).map(|c| (c % k, c / k)).collect();
        for i in (1..cells.len()).rev() {
            cells.swap(i, rng.random_range(0..=i));
        }
        let relay_points: Vec<Position> = cells
            .iter()
            .take(relays)
            .map(|&(cx, cy)| Position {
                x: (cx as f64 + 0.5) * cell + uniform(rng, (-cell / 5.0, cell / 5.0)),
                y: (cy as f64 + 0.5) * cell + uniform(rng, (-cell / 5.0, cell / 5.0)),
            })
            .collect();

        // Cluster centres: random, kept apart from each other and from relay points (best of 200 tries).
        let mut near = Neighbourhood::new(CLUSTER_GAP_M.max(RELAY_GAP_M));
        for p in &relay_points {
            near.insert(*p, true);
        }
        let margin = (CLUSTER_RADIUS_M + 20.0).min(side / 2.0);
        let mut centres = Vec::with_capacity(clusters);
        for _ in 0..clusters {
            let mut best = (f64::NEG_INFINITY, Position { x: side / 2.0, y: side / 2.0 });
            for _ in 0..200 {
                let p = Position { x: uniform(rng, (margin, side - margin)), y: uniform(rng, (margin, side - margin)) };
                let score = near.clearance(p);
                if score > best.0 {
                    best = (score, p);
                }
                if score >= 1.0 {
                    break;
                }
            }
            near.insert(best.1, false);
            centres.push(best.1);
        }

        let nearest = |from: Position, to: &[Position], skip: Option<usize>| -> Vec<usize> {
            let mut d: Vec<(f64, usize)> =
                to.iter().enumerate().filter(|(j, _)| Some(*j) != skip).map(|(j, q)| (distance(from, *q), j)).collect();
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.into_iter().take(NEAREST).map(|(_, j)| j).collect()
        };
        Layout {
            side,
            relay_to_clusters: relay_points.iter().map(|p| nearest(*p, &centres, None)).collect(),
            cluster_to_relays: centres.iter().map(|p| nearest(*p, &relay_points, None)).collect(),
            cluster_to_clusters: centres.iter().enumerate().map(|(i, p)| nearest(*p, &centres, Some(i))).collect(),
            relays: relay_points,
            clusters: centres,
        }
    }

    fn to_cluster(&self, rng: &mut StdRng, c: usize) -> (Plan, Anchor) {
        let centre = self.clusters[c];
        let plan = Plan {
            target: in_disk(rng, centre, CLUSTER_RADIUS_M),
            speed: uniform(rng, RESCUER_SPEED),
            pause: uniform(rng, RESCUER_PAUSE_CLUSTER),
        };
        (plan, Anchor::Cluster(c))
    }

    fn to_relay(&self, rng: &mut StdRng, r: usize) -> (Plan, Anchor) {
        let plan = Plan {
            target: in_disk(rng, self.relays[r], RELAY_RADIUS_M),
            speed: uniform(rng, RESCUER_SPEED),
            pause: uniform(rng, RESCUER_PAUSE_RELAY),
        };
        (plan, Anchor::Relay(r))
    }

    fn wander(&self, rng: &mut StdRng) -> (Plan, Anchor) {
        let target = Position { x: uniform(rng, (0.0, self.side)), y: uniform(rng, (0.0, self.side)) };
        (Plan { target, speed: uniform(rng, RESCUER_SPEED), pause: uniform(rng, RESCUER_PAUSE_RELAY) }, Anchor::Nowhere)
    }

    /// A rescuer's next stop after `at`.
    fn rescuer_next(&self, rng: &mut StdRng, at: Anchor) -> (Plan, Anchor) {
        let choose = |rng: &mut StdRng, list: &[usize]| list.get(pick(rng, list.len())).copied();
        match at {
            Anchor::Relay(r) => match self.relay_to_clusters.get(r).and_then(|l| choose(rng, l)) {
                Some(c) => self.to_cluster(rng, c),
                None => self.wander(rng),
            },
            Anchor::Cluster(c) => {
                let relay = self.cluster_to_relays.get(c).and_then(|l| choose(rng, l));
                let other = self.cluster_to_clusters.get(c).and_then(|l| choose(rng, l));
                match (relay, other) {
                    (Some(r), Some(o)) => {
                        if rng.random::<bool>() {
                            self.to_relay(rng, r)
                        } else {
                            self.to_cluster(rng, o)
                        }
                    }
                    (Some(r), None) => self.to_relay(rng, r),
                    (None, Some(o)) => self.to_cluster(rng, o),
                    (None, None) => self.wander(rng),
                }
            }
            Anchor::Nowhere => {
                if !self.relays.is_empty() {
                    let r = pick(rng, self.relays.len());
                    self.to_relay(rng, r)
                } else if !self.clusters.is_empty() {
                    let c = pick(rng, self.clusters.len());
                    self.to_cluster(rng, c)
                } else {
                    self.wander(rng)
                }
            }
        }
    }

    fn civilian_next(&self, rng: &mut StdRng, cluster: usize) -> Plan {
        let centre = self.clusters.get(cluster).copied().unwrap_or(Position { x: self.side / 2.0, y: self.side / 2.0 });
        Plan {
            target: in_disk(rng, centre, CLUSTER_RADIUS_M),
            speed: uniform(rng, CIVILIAN_SPEED),
            pause: uniform(rng, CIVILIAN_PAUSE),
        }
    }
}

/// Points in coarse cells, to keep cluster centres apart without comparing against every point.
struct Neighbourhood {
    cell: f64,
    cells: HashMap<(i64, i64), Vec<(Position, bool)>>,
}

impl Neighbourhood {
    fn new(cell: f64) -> Self {
        Self { cell, cells: HashMap::new() }
    }

    fn key(&self, p: Position) -> (i64, i64) {
        ((p.x / self.cell).floor() as i64, (p.y / self.cell).floor() as i64)
    }

    fn insert(&mut self, p: Position, relay: bool) {
        let k = self.key(p);
        self.cells.entry(k).or_default().push((p, relay));
    }

    /// How far `p` is from the points near it, as a fraction of the gap it must keep (≥ 1: far enough).
    fn clearance(&self, p: Position) -> f64 {
        let (kx, ky) = self.key(p);
        let mut worst = f64::INFINITY;
        for dx in -1..=1 {
            for dy in -1..=1 {
                for (q, relay) in self.cells.get(&(kx + dx, ky + dy)).into_iter().flatten() {
                    let gap = if *relay { RELAY_GAP_M } else { CLUSTER_GAP_M };
                    worst = worst.min(distance(p, *q) / gap);
                }
            }
        }
        worst
    }
}

impl Mobility for Field {
    fn nodes(&self) -> u32 {
        self.roles.len() as u32
    }

    fn now(&self) -> Time {
        self.now
    }

    fn advance(&mut self, t: Time) {
        if t < self.now {
            return;
        }
        self.now = t;
        let ts = secs(t);
        let layout = &self.layout;
        for (agent, pos) in self.agents.iter_mut().zip(&mut self.positions) {
            match agent {
                Agent::Fixed => {}
                Agent::Rescuer { walker, at } => {
                    *pos = walker.at(ts, |rng, _| {
                        let (plan, next) = layout.rescuer_next(rng, *at);
                        *at = next;
                        plan
                    });
                }
                Agent::Civilian { walker, cluster } => {
                    let c = *cluster;
                    *pos = walker.at(ts, |rng, _| layout.civilian_next(rng, c));
                }
            }
        }
    }

    fn positions(&self) -> &[Position] {
        &self.positions
    }

    fn role(&self, node: NodeId) -> &str {
        self.role_of(node).map_or("unknown", FieldRole::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use pollen_radio_model::ble::Phy;
    use pollen_radio_model::propagation::PathLoss;

    use super::*;
    use crate::contacts::{contacts_from_mobility, snapshot};
    use crate::model::SECOND;

    fn components(n: usize, links: &[(NodeId, NodeId)]) -> Vec<usize> {
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                p[i] = p[p[i]];
                i = p[i];
            }
            i
        }
        let mut parent: Vec<usize> = (0..n).collect();
        for &(a, b) in links {
            let (ra, rb) = (root(&mut parent, a as usize), root(&mut parent, b as usize));
            parent[ra] = rb;
        }
        let mut size = vec![0; n];
        for i in 0..n {
            size[root(&mut parent, i)] += 1;
        }
        let mut sizes: Vec<usize> = size.into_iter().filter(|&s| s > 0).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes
    }

    #[test]
    fn sixty_nodes_have_the_documented_roles() {
        let f = Field::new(60, 1).unwrap();
        let count = |r| (0..60).filter(|&i| f.role_of(i) == Some(r)).count();
        assert_eq!((count(FieldRole::Relay), count(FieldRole::Rescuer), count(FieldRole::Civilian)), (4, 12, 44));
        assert_eq!(f.cluster_centres().len(), 4);
        assert_eq!(f.side_m(), 1000.0);
        assert_eq!(f.roles().iter().filter(|r| *r == "rescuer").count(), 12);
        assert_eq!(f.role(60), "unknown");
        for (i, c) in f.cluster_centres().iter().enumerate() {
            for (j, d) in f.cluster_centres().iter().enumerate().skip(i + 1) {
                assert!(distance(*c, *d) >= CLUSTER_GAP_M, "clusters {i} and {j} too close");
            }
            for r in f.relay_points() {
                assert!(distance(*c, *r) >= RELAY_GAP_M);
            }
        }
    }

    #[test]
    fn sixty_nodes_form_islands_that_rescuers_bridge() {
        let range = PathLoss::default().range_m(Phy::Le1M);
        for seed in 1..=3 {
            // Islands at every sampled instant: several groups, none holding most nodes, most nodes not alone.
            let mut f = Field::new(60, seed).unwrap();
            for minute in (0..=120).step_by(10) {
                let s = snapshot(&mut f, minute * 60 * SECOND, range);
                let sizes = components(60, &s.links);
                let groups = sizes.iter().filter(|&&s| s >= 3).count();
                let alone = sizes.iter().filter(|&&s| s == 1).count();
                assert!(groups >= 3, "seed {seed} minute {minute}: {sizes:?}");
                assert!(sizes[0] <= 30, "seed {seed} minute {minute}: one blob {sizes:?}");
                assert!(alone <= 30, "seed {seed} minute {minute}: mostly isolated {sizes:?}");
            }

            // Over two hours, civilians of different clusters never meet directly; rescuers meet several clusters.
            let mut f = Field::new(60, seed).unwrap();
            let trace = contacts_from_mobility(&mut f, 7200 * SECOND, range, SECOND);
            let mut met: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); 60];
            for e in trace.events.iter().filter(|e| e.up) {
                match (f.cluster_of(e.a), f.cluster_of(e.b)) {
                    (Some(ca), Some(cb)) => assert_eq!(ca, cb, "seed {seed}: civilians of two clusters met"),
                    (Some(c), None) if f.role_of(e.b) == Some(FieldRole::Rescuer) => {
                        met[e.b as usize].insert(c);
                    }
                    (None, Some(c)) if f.role_of(e.a) == Some(FieldRole::Rescuer) => {
                        met[e.a as usize].insert(c);
                    }
                    _ => {}
                }
            }
            let bridging = met.iter().filter(|m| m.len() >= 2).count();
            let visited: BTreeSet<usize> = met.iter().flatten().copied().collect();
            assert!(bridging >= 6, "seed {seed}: only {bridging} rescuers met two clusters");
            assert_eq!(visited.len(), f.cluster_centres().len(), "seed {seed}: a cluster nobody visits");
            let relay_contacts = trace.events.iter().filter(|e| e.up && e.a < 4).count();
            assert!(relay_contacts > 0, "seed {seed}: relays never reached");
        }
    }

    #[test]
    fn deterministic_and_any_size_works() {
        let mut a = Field::new(60, 9).unwrap();
        let mut b = Field::new(60, 9).unwrap();
        for s in 0..=600 {
            a.advance(s * SECOND);
        }
        b.advance(600 * SECOND);
        assert_eq!(a.positions(), b.positions());
        for n in [0, 1, 2, 3, 5, 7, 20, 1000] {
            let mut f = Field::new(n, 1).unwrap();
            f.advance(3600 * SECOND);
            assert_eq!(f.positions().len(), n as usize);
            assert!(f.positions().iter().all(|p| p.x.is_finite() && p.y.is_finite()));
        }
        let big = Field::new(10_000, 1).unwrap();
        assert!((big.side_m() - 12_910.0).abs() < 1.0, "{}", big.side_m());
        assert!(Field::new(MAX_FIELD_NODES + 1, 1).is_err());
    }
}
