//! From positions to contacts: which pairs are within radio range, sampled at a fixed tick, as up/down events.
//!
//! Pairs are found with a grid whose cells are one range wide, so each node compares itself only with nodes in its
//! own and the eight surrounding cells: the cost grows with nodes × neighbours, not nodes². The grid is dense when
//! the nodes' extent is modest and hashed into a table sized by the node count when it is not, so memory stays
//! bounded whatever the coordinates (an ns-2 trace may span tens of kilometres).
//!
//! Across ticks, [`contacts_from_mobility`] keeps a Verlet list: the grid search runs with the range plus a skin of
//! half a range and yields candidate pairs; each tick only the candidates are measured. The list is rebuilt as soon
//! as any node has moved more than half the skin since the last build, which guarantees no pair can come into
//! range unseen (two nodes that each moved at most skin/2 closed their gap by at most one skin). The result is
//! exactly the per-tick search's, without needing to know how fast the model moves.

use crate::mobility::Mobility;
use crate::model::{ContactEvent, ContactTrace, NodeId, Position, Snapshot, Time};

/// Samples `mobility` every `tick` ms from 0 to `duration` (inclusive) and returns the contacts: a pair is in contact
/// while the distance between the two is at most `range_m` metres.
///
/// Events come in time order; at one instant all downs come before all ups (so a link slot freed at that tick is
/// free for a new contact), each group sorted by pair. Contacts still up at `duration` stay open (no final down).
/// The model should be fresh (at time 0); the cost grows with nodes × ticks. A `tick` of 0 is taken as 1 ms; a
/// `range_m` that is not a positive finite number gives no contacts.
pub fn contacts_from_mobility<M: Mobility + ?Sized>(
    mobility: &mut M,
    duration: Time,
    range_m: f64,
    tick: Time,
) -> ContactTrace {
    let tick = tick.max(1);
    let nodes = mobility.nodes();
    let mut pairs = VerletPairs::new(range_m);
    let mut prev: Vec<(NodeId, NodeId)> = Vec::new();
    let mut cur: Vec<(NodeId, NodeId)> = Vec::new();
    let mut events = Vec::new();
    let mut ups = Vec::new();
    let mut t: Time = 0;
    loop {
        mobility.advance(t);
        pairs.links(mobility.positions(), &mut cur);
        diff(&prev, &cur, t, &mut events, &mut ups);
        std::mem::swap(&mut prev, &mut cur);
        match t.checked_add(tick) {
            Some(next) if next <= duration => t = next,
            _ => break,
        }
    }
    tracing::debug!(
        nodes,
        duration,
        range_m,
        tick,
        events = events.len(),
        rebuilds = pairs.rebuilds,
        "contacts extracted"
    );
    ContactTrace { nodes, duration, events }
}

/// How long a BLE link outlives a fade: Pollen's link session declares a silent link dead after 6 s
/// (`docs/ble-link.md`, liveness), and the platform's supervision timeout is longer still. Two phones that drift out
/// of range and back within this time keep their link.
pub const LINK_GRACE_MS: Time = 6_000;

/// Joins contacts of a pair separated by at most `grace` ms: the link survives the gap, so the pair's down and
/// following up are dropped. Without this, two phones standing at the edge of range would set up a new link every
/// tick, which no radio does (and which would dominate the cost of a crowded run).
pub fn bridge_gaps(trace: ContactTrace, grace: Time) -> ContactTrace {
    let mut out: Vec<Option<ContactEvent>> = Vec::with_capacity(trace.events.len());
    let mut pending_down: std::collections::HashMap<(NodeId, NodeId), usize> = std::collections::HashMap::new();
    for event in trace.events {
        let pair = (event.a, event.b);
        if event.up {
            let bridged = pending_down.remove(&pair).and_then(|i| {
                let down = out[i].as_ref()?;
                (event.t.saturating_sub(down.t) <= grace).then_some(i)
            });
            match bridged {
                Some(i) => out[i] = None,
                None => out.push(Some(event)),
            }
        } else {
            pending_down.insert(pair, out.len());
            out.push(Some(event));
        }
    }
    ContactTrace { nodes: trace.nodes, duration: trace.duration, events: out.into_iter().flatten().collect() }
}

/// Appends the changes from `prev` to `cur` (both sorted) at time `t`: downs first, then ups.
fn diff(
    prev: &[(NodeId, NodeId)],
    cur: &[(NodeId, NodeId)],
    t: Time,
    events: &mut Vec<ContactEvent>,
    ups: &mut Vec<ContactEvent>,
) {
    ups.clear();
    let (mut i, mut j) = (0, 0);
    loop {
        match (prev.get(i), cur.get(j)) {
            (None, None) => break,
            (Some(&(a, b)), None) => {
                events.push(ContactEvent { t, a, b, up: false });
                i += 1;
            }
            (None, Some(&(a, b))) => {
                ups.push(ContactEvent { t, a, b, up: true });
                j += 1;
            }
            (Some(&p), Some(&c)) => {
                if p == c {
                    i += 1;
                    j += 1;
                } else if p < c {
                    events.push(ContactEvent { t, a: p.0, b: p.1, up: false });
                    i += 1;
                } else {
                    ups.push(ContactEvent { t, a: c.0, b: c.1, up: true });
                    j += 1;
                }
            }
        }
    }
    events.append(ups);
}

/// Advances `mobility` to `t` and returns positions, the pairs within `range_m`, and roles, for the report's map.
/// To map an instant of a run, build a fresh model with the run's seed: paths do not depend on the sampling tick,
/// so it stands where the contact extraction saw it.
pub fn snapshot<M: Mobility + ?Sized>(mobility: &mut M, t: Time, range_m: f64) -> Snapshot {
    mobility.advance(t);
    let positions = mobility.positions().to_vec();
    Snapshot { t: mobility.now(), links: links_in_range(&positions, range_m), roles: mobility.roles(), positions }
}

/// The pairs `(a, b)`, `a < b`, at most `range_m` metres apart, sorted. Node `i` is at `positions[i]`.
pub fn links_in_range(positions: &[Position], range_m: f64) -> Vec<(NodeId, NodeId)> {
    let mut out = Vec::new();
    Grid::new(range_m).links(positions, &mut out);
    out
}

/// Pairs in range tick after tick, from a candidate list that is rebuilt only when nodes have moved far enough.
struct VerletPairs {
    /// Grid search at range + skin.
    grid: Grid,
    /// Squared range; `None` when the range is not a positive finite number.
    range2: Option<f64>,
    /// Squared half skin: a node that moved further forces a rebuild.
    half_skin2: f64,
    /// Positions at the last rebuild.
    anchor: Vec<Position>,
    /// Pairs within range + skin at the last rebuild, sorted.
    candidates: Vec<(NodeId, NodeId)>,
    /// Rebuilds so far.
    rebuilds: u64,
}

impl VerletPairs {
    fn new(range_m: f64) -> Self {
        let valid = range_m.is_finite() && range_m > 0.0;
        let skin = range_m / 2.0;
        Self {
            grid: Grid::new(range_m + skin),
            range2: valid.then_some(range_m * range_m),
            half_skin2: (skin / 2.0) * (skin / 2.0),
            anchor: Vec::new(),
            candidates: Vec::new(),
            rebuilds: 0,
        }
    }

    /// Fills `out` with the sorted pairs within range.
    fn links(&mut self, positions: &[Position], out: &mut Vec<(NodeId, NodeId)>) {
        out.clear();
        let Some(range2) = self.range2 else { return };
        let stale = self.anchor.len() != positions.len()
            || self.anchor.iter().zip(positions).any(|(a, p)| {
                let (dx, dy) = (p.x - a.x, p.y - a.y);
                // A NaN displacement also counts as too far.
                let d2 = dx * dx + dy * dy;
                d2 > self.half_skin2 || d2.is_nan()
            });
        if stale {
            self.grid.links(positions, &mut self.candidates);
            self.anchor.clear();
            self.anchor.extend_from_slice(positions);
            self.rebuilds += 1;
        }
        // Branch-free filter (whether a candidate is in range is unpredictable): write each, advance on keepers.
        out.resize(self.candidates.len(), (0, 0));
        let mut kept = 0;
        for &(a, b) in &self.candidates {
            let (p, q) = (positions[a as usize], positions[b as usize]);
            let (dx, dy) = (q.x - p.x, q.y - p.y);
            out[kept] = (a, b);
            kept += usize::from(dx * dx + dy * dy <= range2);
        }
        out.truncate(kept);
    }
}

/// A uniform grid of cells one range wide, rebuilt every tick into reused buffers.
///
/// When the nodes' bounding box spans a modest number of cells (up to 16 per node) the grid is dense: cells are
/// numbered row by row, so the three cells of a row that a node must search are contiguous and a node scans three
/// runs of a position array sorted by cell. Otherwise (nodes scattered over a huge extent) cells are hashed into a
/// table of about two buckets per node and a node visits the distinct buckets of its nine cells.
struct Grid {
    /// Cell side (a hair over the range, so rounding can never put two nodes in range two cells apart).
    cell: f64,
    /// Squared range; `None` when the range is not a positive finite number.
    range2: Option<f64>,
    /// Bucket `k` holds slots `start[k]..start[k + 1]` of `ids`, `xs`, `ys`.
    start: Vec<u32>,
    /// Node ids sorted by bucket, ascending within a bucket.
    ids: Vec<NodeId>,
    /// Their x coordinates.
    xs: Vec<f64>,
    /// Their y coordinates.
    ys: Vec<f64>,
    /// Each node's cell (dense: padded column and row; hashed: cell coordinates); `None` if not finite.
    cells: Vec<Option<(i64, i64)>>,
    /// Each node's bucket.
    keys: Vec<usize>,
    /// Next free slot of each bucket while filling.
    fill: Vec<u32>,
    /// Neighbours found for one node.
    found: Vec<NodeId>,
}

/// How cells map to buckets this tick.
#[derive(Clone, Copy)]
enum Shape {
    /// `cols × rows` cells (one padding column each side), origin at `(x0, y0)`.
    Dense { x0: f64, y0: f64, cols: usize, rows: usize },
    /// Hashed into `2^bits` buckets.
    Hashed { bits: u32 },
}

impl Grid {
    fn new(range_m: f64) -> Self {
        let valid = range_m.is_finite() && range_m > 0.0;
        Self {
            cell: if valid { range_m * (1.0 + 1e-9) } else { 1.0 },
            range2: valid.then_some(range_m * range_m),
            start: Vec::new(),
            ids: Vec::new(),
            xs: Vec::new(),
            ys: Vec::new(),
            cells: Vec::new(),
            keys: Vec::new(),
            fill: Vec::new(),
            found: Vec::new(),
        }
    }

    fn hash(bits: u32, (cx, cy): (i64, i64)) -> usize {
        let h = (cx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (cy as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        (h.wrapping_mul(0xFF51_AFD7_ED55_8CCD) >> (64 - bits)) as usize
    }

    /// Picks dense or hashed for this tick's positions; `None` if no position is finite.
    fn shape(&self, positions: &[Position]) -> Option<(Shape, usize)> {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for p in positions.iter().filter(|p| p.x.is_finite() && p.y.is_finite()) {
            x0 = x0.min(p.x);
            y0 = y0.min(p.y);
            x1 = x1.max(p.x);
            y1 = y1.max(p.y);
        }
        if x0 > x1 {
            return None;
        }
        let n = positions.len();
        let span_x = ((x1 - x0) / self.cell).floor();
        let span_y = ((y1 - y0) / self.cell).floor();
        let limit = (16 * n).max(1 << 16) as f64;
        if (span_x + 3.0) * (span_y + 1.0) <= limit {
            let (cols, rows) = (span_x as usize + 3, span_y as usize + 1);
            Some((Shape::Dense { x0, y0, cols, rows }, cols * rows))
        } else {
            let bits = (2 * n).next_power_of_two().max(16).trailing_zeros();
            Some((Shape::Hashed { bits }, 1 << bits))
        }
    }

    /// Fills `out` with the sorted pairs in range.
    fn links(&mut self, positions: &[Position], out: &mut Vec<(NodeId, NodeId)>) {
        out.clear();
        let Some(range2) = self.range2 else { return };
        let n = positions.len();
        if n < 2 {
            return;
        }
        let Some((shape, buckets)) = self.shape(positions) else { return };
        let cell = self.cell;

        // Counting sort of the finite nodes into buckets; ids stay ascending within a bucket.
        self.start.clear();
        self.start.resize(buckets + 1, 0);
        self.cells.clear();
        self.keys.clear();
        for p in positions {
            if !(p.x.is_finite() && p.y.is_finite()) {
                self.cells.push(None);
                self.keys.push(usize::MAX);
                continue;
            }
            // Float-to-int casts saturate; the dense clamps only guard against rounding at the far edge.
            let (c, k) = match shape {
                Shape::Dense { x0, y0, cols, rows } => {
                    let cx = (((p.x - x0) / cell).floor() as usize).min(cols - 3) + 1;
                    let cy = (((p.y - y0) / cell).floor() as usize).min(rows - 1);
                    ((cx as i64, cy as i64), cy * cols + cx)
                }
                Shape::Hashed { bits } => {
                    let c = ((p.x / cell).floor() as i64, (p.y / cell).floor() as i64);
                    (c, Self::hash(bits, c))
                }
            };
            self.cells.push(Some(c));
            self.keys.push(k);
            self.start[k + 1] += 1;
        }
        for k in 0..buckets {
            self.start[k + 1] += self.start[k];
        }
        let placed = self.start[buckets] as usize;
        self.ids.clear();
        self.ids.resize(placed, 0);
        self.xs.clear();
        self.xs.resize(placed, 0.0);
        self.ys.clear();
        self.ys.resize(placed, 0.0);
        self.fill.clear();
        self.fill.extend_from_slice(&self.start[..buckets]);
        for (i, (&k, p)) in self.keys.iter().zip(positions).enumerate() {
            if k == usize::MAX {
                continue;
            }
            let s = self.fill[k] as usize;
            self.ids[s] = i as NodeId;
            self.xs[s] = p.x;
            self.ys[s] = p.y;
            self.fill[k] += 1;
        }

        let mut runs = [(0usize, 0usize); 9];
        for (i, p) in positions.iter().enumerate() {
            let Some((cx, cy)) = self.cells[i] else { continue };
            // The slot runs holding the node's own and the eight surrounding cells.
            let mut nruns = 0;
            match shape {
                Shape::Dense { cols, rows, .. } => {
                    let (cx, cy) = (cx as usize, cy as usize);
                    for row in cy.saturating_sub(1)..=(cy + 1).min(rows - 1) {
                        let base = row * cols;
                        runs[nruns] = (self.start[base + cx - 1] as usize, self.start[base + cx + 2] as usize);
                        nruns += 1;
                    }
                }
                Shape::Hashed { bits } => {
                    let mut seen = [usize::MAX; 9];
                    for dx in -1..=1i64 {
                        for dy in -1..=1i64 {
                            let k = Self::hash(bits, (cx.wrapping_add(dx), cy.wrapping_add(dy)));
                            // Distinct cells may share a bucket: visit each bucket once.
                            if seen[..nruns].contains(&k) {
                                continue;
                            }
                            seen[nruns] = k;
                            runs[nruns] = (self.start[k] as usize, self.start[k + 1] as usize);
                            nruns += 1;
                        }
                    }
                }
            }
            let me = i as NodeId;
            let candidates: usize = runs[..nruns].iter().map(|(lo, hi)| hi - lo).sum();
            if self.found.len() < candidates {
                self.found.resize(candidates, 0);
            }
            // Branch-free: every candidate is written, and the count only advances for a keeper (whether a
            // candidate is kept is a coin toss for the branch predictor, and mispredictions dominated the cost).
            let mut kept = 0;
            for &(lo, hi) in &runs[..nruns] {
                let slots = self.ids[lo..hi].iter().zip(&self.xs[lo..hi]).zip(&self.ys[lo..hi]);
                for ((&j, &x), &y) in slots {
                    let (dx, dy) = (x - p.x, y - p.y);
                    // Only larger ids: each pair is found once, from its smaller end.
                    let keep = (j > me) & (dx * dx + dy * dy <= range2);
                    self.found[kept] = j;
                    kept += usize::from(keep);
                }
            }
            let found = &mut self.found[..kept];
            found.sort_unstable();
            out.extend(found.iter().map(|&j| (me, j)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobility::{RandomWaypoint, RandomWaypointConfig};
    use crate::model::SECOND;

    fn brute(positions: &[Position], range: f64) -> Vec<(NodeId, NodeId)> {
        let mut out = Vec::new();
        for i in 0..positions.len() {
            for j in i + 1..positions.len() {
                let (dx, dy) = (positions[j].x - positions[i].x, positions[j].y - positions[i].y);
                if dx * dx + dy * dy <= range * range {
                    out.push((i as NodeId, j as NodeId));
                }
            }
        }
        out
    }

    #[test]
    fn grid_matches_brute_force_including_boundaries_and_far_coordinates() {
        let pts: Vec<Position> = [(0.0, 0.0), (10.0, 0.0), (20.0, 0.0), (10.0, 10.0), (-5.0, -5.0), (1e7, 1e7)]
            .into_iter()
            .chain([(1e7 + 3.0, 1e7 + 4.0), (-1e9, 3.0), (f64::NAN, 0.0), (0.0, 10.0)])
            .map(|(x, y)| Position { x, y })
            .collect();
        for range in [0.5, 5.0, 10.0, 14.2, 50.0] {
            assert_eq!(links_in_range(&pts, range), brute(&pts, range), "range {range}");
        }
        assert!(links_in_range(&pts, 0.0).is_empty());
        assert!(links_in_range(&pts, f64::NAN).is_empty());
        assert!(links_in_range(&pts[..1], 10.0).is_empty());
    }

    #[test]
    fn dense_and_hashed_grids_match_brute_force() {
        use rand::RngExt;
        let mut rng = crate::mobility::stream_rng(42, 0);
        for round in 0..60 {
            let n = rng.random_range(2..200usize);
            let range = rng.random_range(0.5..40.0);
            // Even rounds: one box (dense grid). Odd rounds: clumps a million metres apart (hashed grid).
            let spread = if round % 2 == 0 { 300.0 } else { 1e6 };
            let pts: Vec<Position> = (0..n)
                .map(|_| {
                    let clump = (rng.random_range(0..4) as f64) * spread;
                    Position { x: clump + rng.random_range(-50.0..50.0), y: -clump + rng.random_range(-50.0..50.0) }
                })
                .collect();
            assert_eq!(links_in_range(&pts, range), brute(&pts, range), "round {round}");
        }
    }

    #[test]
    fn events_alternate_and_replay_to_the_brute_force_link_set() {
        let cfg = RandomWaypointConfig { nodes: 40, area: (300.0, 300.0), speed: (0.5, 3.0), pause: (0.0, 30.0) };
        let mut m = RandomWaypoint::new(cfg, 11).unwrap();
        let trace = contacts_from_mobility(&mut m, 600 * SECOND, 30.0, 5 * SECOND);
        assert_eq!(trace.nodes, 40);
        assert!(trace.events.windows(2).all(|w| w[0].t <= w[1].t));
        // Replay and compare with brute force at every tick.
        let mut fresh = RandomWaypoint::new(cfg, 11).unwrap();
        let mut open = std::collections::BTreeSet::new();
        let mut k = 0;
        for t in (0..=600).step_by(5).map(|s| s * SECOND) {
            while let Some(e) = trace.events.get(k).filter(|e| e.t == t) {
                assert!(e.a < e.b);
                if e.up {
                    assert!(open.insert((e.a, e.b)), "double up {e:?}");
                } else {
                    assert!(open.remove(&(e.a, e.b)), "down without up {e:?}");
                }
                k += 1;
            }
            fresh.advance(t);
            assert_eq!(open.iter().copied().collect::<Vec<_>>(), brute(fresh.positions(), 30.0), "t={t}");
        }
        assert_eq!(k, trace.events.len());
    }

    #[test]
    fn degenerate_arguments_do_not_hang_or_panic() {
        let cfg = RandomWaypointConfig { nodes: 3, area: (10.0, 10.0), speed: (1.0, 1.0), pause: (0.0, 0.0) };
        let mut m = RandomWaypoint::new(cfg, 1).unwrap();
        let t = contacts_from_mobility(&mut m, 5, 20.0, 0);
        assert_eq!(t.events.len(), 3); // all three pairs up at 0, area smaller than range
        let mut m = RandomWaypoint::new(cfg, 1).unwrap();
        assert!(contacts_from_mobility(&mut m, 10 * SECOND, -1.0, Time::MAX).events.is_empty());
        let mut m = RandomWaypoint::new(cfg, 1).unwrap();
        let s = snapshot(&mut m, 3 * SECOND, 20.0);
        assert_eq!((s.t, s.positions.len(), s.links.len()), (3 * SECOND, 3, 3));
        assert_eq!(s.roles, vec!["phone"; 3]);
    }

    #[test]
    fn short_fades_keep_the_link_and_long_ones_end_it() {
        let ev = |t: Time, a: NodeId, b: NodeId, up: bool| ContactEvent { t, a, b, up };
        let trace = ContactTrace {
            nodes: 3,
            duration: 100 * SECOND,
            events: vec![
                ev(0, 0, 1, true),
                ev(SECOND, 1, 2, true),
                ev(10 * SECOND, 0, 1, false),
                ev(12 * SECOND, 0, 1, true), // back after 2 s: the same link
                ev(20 * SECOND, 1, 2, false),
                ev(40 * SECOND, 1, 2, true), // back after 20 s: a new contact
                ev(50 * SECOND, 0, 1, false),
            ],
        };
        let bridged = bridge_gaps(trace, LINK_GRACE_MS);
        assert_eq!(
            bridged.events,
            vec![
                ev(0, 0, 1, true),
                ev(SECOND, 1, 2, true),
                ev(20 * SECOND, 1, 2, false),
                ev(40 * SECOND, 1, 2, true),
                ev(50 * SECOND, 0, 1, false),
            ]
        );
    }
}
