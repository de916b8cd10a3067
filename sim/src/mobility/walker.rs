//! A node that walks from waypoint to waypoint: the shared engine of random waypoint and the field scenario.

use rand::rngs::StdRng;

use super::distance;
use crate::model::Position;

/// Shortest leg, seconds: guarantees progress even when a plan asks for no travel and no pause.
const MIN_LEG_S: f64 = 1e-3;

/// What a node does next: walk to `target` at `speed` m/s, then stay `pause` seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub target: Position,
    pub speed: f64,
    pub pause: f64,
}

/// One leg: leave `from` at `depart`, reach `to` at `arrive`, stay there until `until` (seconds).
#[derive(Debug, Clone, Copy)]
struct Leg {
    from: Position,
    to: Position,
    depart: f64,
    arrive: f64,
    until: f64,
}

impl Leg {
    fn at(&self, t: f64) -> Position {
        if t >= self.arrive || self.arrive <= self.depart {
            return self.to;
        }
        let f = ((t - self.depart) / (self.arrive - self.depart)).clamp(0.0, 1.0);
        Position { x: self.from.x + (self.to.x - self.from.x) * f, y: self.from.y + (self.to.y - self.from.y) * f }
    }
}

/// A walking node with its own random stream.
#[derive(Debug)]
pub(crate) struct Walker {
    leg: Leg,
    rng: StdRng,
}

impl Walker {
    /// A node standing at `start` until `wait` seconds, then following its plans.
    pub fn new(start: Position, wait: f64, rng: StdRng) -> Self {
        let wait = if wait.is_finite() { wait.max(0.0) } else { 0.0 };
        Self { leg: Leg { from: start, to: start, depart: 0.0, arrive: 0.0, until: wait }, rng }
    }

    /// The position at `t` seconds (`t` must not go backwards; earlier times give the current leg's position).
    /// `plan` is asked for the next leg, given the random stream and the waypoint just reached.
    pub fn at(&mut self, t: f64, mut plan: impl FnMut(&mut StdRng, Position) -> Plan) -> Position {
        while t >= self.leg.until {
            let here = self.leg.to;
            let p = plan(&mut self.rng, here);
            let travel = if p.speed > 0.0 && p.speed.is_finite() { distance(here, p.target) / p.speed } else { 0.0 };
            let travel = if travel.is_finite() { travel } else { 0.0 };
            let pause = if p.pause.is_finite() { p.pause.max(0.0) } else { 0.0 };
            let depart = self.leg.until;
            let target = if travel > 0.0 { p.target } else { here };
            let arrive = depart + travel;
            self.leg = Leg { from: here, to: target, depart, arrive, until: (arrive + pause).max(depart + MIN_LEG_S) };
        }
        self.leg.at(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobility::stream_rng;

    #[test]
    fn walks_at_speed_then_pauses() {
        let mut w = Walker::new(Position { x: 0.0, y: 0.0 }, 0.0, stream_rng(1, 1));
        let mut plans = 0;
        let mut plan = |_: &mut StdRng, here: Position| {
            plans += 1;
            Plan { target: Position { x: here.x + 10.0, y: 0.0 }, speed: 2.0, pause: 5.0 }
        };
        assert_eq!(w.at(0.0, &mut plan), Position { x: 0.0, y: 0.0 });
        assert_eq!(w.at(2.5, &mut plan), Position { x: 5.0, y: 0.0 });
        assert_eq!(w.at(7.0, &mut plan), Position { x: 10.0, y: 0.0 });
        // 10 s = 5 s walking + 5 s pause: the second leg starts.
        assert_eq!(w.at(11.0, &mut plan), Position { x: 12.0, y: 0.0 });
        assert_eq!(plans, 2);
    }

    #[test]
    fn degenerate_plans_still_progress() {
        let mut w = Walker::new(Position { x: 1.0, y: 1.0 }, f64::NAN, stream_rng(1, 2));
        let p = w.at(1000.0, |_, here| Plan { target: here, speed: 0.0, pause: f64::NAN });
        assert_eq!(p, Position { x: 1.0, y: 1.0 });
    }
}
