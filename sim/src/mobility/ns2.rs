//! Replay of an ns-2 movement file: initial positions plus timed `setdest` commands.

use super::{secs, Mobility};
use crate::model::{NodeId, Position, Time};

/// One `$ns_ at <t> "$node_(i) setdest <x> <y> <speed>"` command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ns2Move {
    /// When the command fires, seconds.
    pub t: f64,
    /// Destination, metres.
    pub to: Position,
    /// Speed towards it, m/s (0: stay where it is).
    pub speed: f64,
}

/// The motion a node is in: left `from` at `since`, heading for `to` at `speed`.
#[derive(Debug, Clone, Copy)]
struct Segment {
    from: Position,
    since: f64,
    to: Position,
    speed: f64,
}

impl Segment {
    fn at(&self, t: f64) -> Position {
        let dx = self.to.x - self.from.x;
        let dy = self.to.y - self.from.y;
        let dist = dx.hypot(dy);
        if self.speed <= 0.0 || dist <= 0.0 || !dist.is_finite() {
            return self.from;
        }
        let f = ((t - self.since) * self.speed / dist).clamp(0.0, 1.0);
        if f >= 1.0 {
            return self.to;
        }
        Position { x: self.from.x + dx * f, y: self.from.y + dy * f }
    }
}

/// An ns-2 movement trace as a [`Mobility`] model, ns-2 semantics: a node starts at its `set X_`/`set Y_` position;
/// each `setdest` fires at its time and sends the node from wherever it is then, in a straight line at the given
/// speed, towards the destination, where it stops; a later `setdest` interrupts an unfinished one. `Z_` is ignored
/// (the ground is flat). Build one with [`read_ns2`](crate::trace::read_ns2) or [`Ns2Trace::new`].
#[derive(Debug, Clone)]
pub struct Ns2Trace {
    initial: Vec<Position>,
    moves: Vec<Vec<Ns2Move>>,
    next: Vec<usize>,
    segments: Vec<Segment>,
    positions: Vec<Position>,
    now: Time,
}

impl Ns2Trace {
    /// A trace from the initial position of each node and each node's moves. Moves are sorted by time (stably, so
    /// of two moves at the same instant the later one in `moves` wins); moves with a non-finite or negative time
    /// or speed, or a non-finite destination, are dropped; `moves` is padded or cut to the number of nodes.
    pub fn new(initial: Vec<Position>, mut moves: Vec<Vec<Ns2Move>>) -> Self {
        moves.resize_with(initial.len(), Vec::new);
        for m in &mut moves {
            m.retain(|m| {
                m.t.is_finite()
                    && m.t >= 0.0
                    && m.speed.is_finite()
                    && m.speed >= 0.0
                    && m.to.x.is_finite()
                    && m.to.y.is_finite()
            });
            m.sort_by(|a, b| a.t.total_cmp(&b.t));
        }
        let segments = initial.iter().map(|p| Segment { from: *p, since: 0.0, to: *p, speed: 0.0 }).collect();
        let mut trace =
            Self { next: vec![0; initial.len()], positions: initial.clone(), initial, moves, segments, now: 0 };
        trace.step(0);
        trace
    }

    /// Initial positions, node `i` at index `i`.
    pub fn initial_positions(&self) -> &[Position] {
        &self.initial
    }

    /// The moves of `node`, in time order (empty past the last node).
    pub fn moves(&self, node: NodeId) -> &[Ns2Move] {
        self.moves.get(node as usize).map_or(&[], Vec::as_slice)
    }

    /// When the last node stops moving, seconds: the time after which every position is fixed.
    pub fn end_time_s(&self) -> f64 {
        let mut end: f64 = 0.0;
        for (node, moves) in self.moves.iter().enumerate() {
            // Replay the node's moves to find where the last one starts.
            let mut seg = Segment { from: self.initial[node], since: 0.0, to: self.initial[node], speed: 0.0 };
            for m in moves {
                seg = Segment { from: seg.at(m.t), since: m.t, to: m.to, speed: m.speed };
            }
            let dist = (seg.to.x - seg.from.x).hypot(seg.to.y - seg.from.y);
            let arrive = if seg.speed > 0.0 { seg.since + dist / seg.speed } else { seg.since };
            if arrive.is_finite() {
                end = end.max(arrive);
            }
        }
        end
    }

    /// A fresh copy rewound to time 0 (models only move forward; use this to replay from the start).
    pub fn rewound(&self) -> Self {
        Self::new(self.initial.clone(), self.moves.clone())
    }

    fn step(&mut self, t: Time) {
        let ts = secs(t);
        for node in 0..self.initial.len() {
            let moves = &self.moves[node];
            let seg = &mut self.segments[node];
            let next = &mut self.next[node];
            while let Some(m) = moves.get(*next).filter(|m| m.t <= ts) {
                *seg = Segment { from: seg.at(m.t), since: m.t, to: m.to, speed: m.speed };
                *next += 1;
            }
            self.positions[node] = seg.at(ts);
        }
    }
}

impl Mobility for Ns2Trace {
    fn nodes(&self) -> u32 {
        self.initial.len() as u32
    }

    fn now(&self) -> Time {
        self.now
    }

    fn advance(&mut self, t: Time) {
        if t < self.now {
            return;
        }
        self.now = t;
        self.step(t);
    }

    fn positions(&self) -> &[Position] {
        &self.positions
    }

    fn role(&self, node: NodeId) -> &str {
        if (node as usize) < self.initial.len() {
            "phone"
        } else {
            "unknown"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SECOND;

    fn p(x: f64, y: f64) -> Position {
        Position { x, y }
    }

    #[test]
    fn moves_linearly_and_stops_at_destination() {
        let mut t = Ns2Trace::new(
            vec![p(0.0, 0.0), p(5.0, 5.0)],
            vec![vec![Ns2Move { t: 10.0, to: p(100.0, 0.0), speed: 2.0 }]],
        );
        assert_eq!(t.positions(), &[p(0.0, 0.0), p(5.0, 5.0)]);
        t.advance(10 * SECOND);
        assert_eq!(t.positions()[0], p(0.0, 0.0));
        t.advance(20 * SECOND);
        assert_eq!(t.positions()[0], p(20.0, 0.0));
        t.advance(500 * SECOND);
        assert_eq!(t.positions()[0], p(100.0, 0.0));
        assert_eq!(t.positions()[1], p(5.0, 5.0));
        assert_eq!(t.end_time_s(), 60.0);
    }

    #[test]
    fn later_setdest_interrupts_from_current_position() {
        let mut t = Ns2Trace::new(
            vec![p(0.0, 0.0)],
            vec![vec![
                Ns2Move { t: 5.0, to: p(5.0, 100.0), speed: 1.0 },
                Ns2Move { t: 0.0, to: p(100.0, 0.0), speed: 1.0 },
            ]],
        );
        t.advance(5 * SECOND);
        assert_eq!(t.positions()[0], p(5.0, 0.0));
        t.advance(15 * SECOND);
        let q = t.positions()[0];
        assert!((q.x - 5.0).abs() < 1e-9 && (q.y - 10.0).abs() < 1e-9, "{q:?}");
        // Jumping straight to the end gives the same place as stepping.
        let mut u = t.rewound();
        u.advance(15 * SECOND);
        assert_eq!(u.positions()[0], q);
        assert_eq!(t.moves(0).len(), 2);
        assert!(t.moves(7).is_empty());
    }

    #[test]
    fn zero_speed_holds_position_and_bad_moves_are_dropped() {
        let mut t = Ns2Trace::new(
            vec![p(1.0, 1.0)],
            vec![vec![
                Ns2Move { t: 1.0, to: p(9.0, 9.0), speed: 0.0 },
                Ns2Move { t: f64::NAN, to: p(9.0, 9.0), speed: 1.0 },
                Ns2Move { t: 2.0, to: p(f64::INFINITY, 9.0), speed: 1.0 },
            ]],
        );
        t.advance(100 * SECOND);
        assert_eq!(t.positions()[0], p(1.0, 1.0));
        assert_eq!(t.moves(0).len(), 1);
    }
}
