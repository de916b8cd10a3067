//! The random-waypoint model: each node picks a uniform point in the area, walks there at a uniform speed, pauses
//! for a uniform time, and repeats.

use rand::rngs::StdRng;

use super::walker::{Plan, Walker};
use super::{check_nodes, check_positive, check_range, secs, stream_rng, uniform, Mobility, MobilityError};
use crate::model::{NodeId, Position, Time};

/// Settings of a [`RandomWaypoint`] run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomWaypointConfig {
    /// Number of nodes.
    pub nodes: u32,
    /// Width and height of the area, metres (nodes stay inside `[0, w] × [0, h]`).
    pub area: (f64, f64),
    /// Walking speed range, m/s, `(min, max)`; min must be above zero (a zero minimum makes the mean speed decay
    /// towards zero over a long run, the known flaw of the model).
    pub speed: (f64, f64),
    /// Pause range at each waypoint, seconds, `(min, max)`.
    pub pause: (f64, f64),
}

impl Default for RandomWaypointConfig {
    /// 100 pedestrians on 1 km²: 0.5–1.5 m/s, pauses up to 2 minutes.
    fn default() -> Self {
        Self { nodes: 100, area: (1000.0, 1000.0), speed: (0.5, 1.5), pause: (0.0, 120.0) }
    }
}

/// Random-waypoint mobility. Nodes start at uniform positions and set off at once.
#[derive(Debug)]
pub struct RandomWaypoint {
    cfg: RandomWaypointConfig,
    walkers: Vec<Walker>,
    positions: Vec<Position>,
    now: Time,
}

impl RandomWaypoint {
    /// A model for `cfg`, seeded with `seed`.
    pub fn new(cfg: RandomWaypointConfig, seed: u64) -> Result<Self, MobilityError> {
        check_nodes(cfg.nodes)?;
        check_positive("area width", cfg.area.0)?;
        check_positive("area height", cfg.area.1)?;
        check_range("speed", cfg.speed, true)?;
        check_range("pause", cfg.pause, false)?;
        let (walkers, positions) = (0..cfg.nodes)
            .map(|i| {
                let mut rng = stream_rng(seed, u64::from(i));
                let start =
                    Position { x: uniform(&mut rng, (0.0, cfg.area.0)), y: uniform(&mut rng, (0.0, cfg.area.1)) };
                (Walker::new(start, 0.0, rng), start)
            })
            .unzip();
        Ok(Self { cfg, walkers, positions, now: 0 })
    }

    /// The configuration.
    pub fn config(&self) -> &RandomWaypointConfig {
        &self.cfg
    }
}

impl Mobility for RandomWaypoint {
    fn nodes(&self) -> u32 {
        self.cfg.nodes
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
        let cfg = self.cfg;
        let plan = |rng: &mut StdRng, _here: Position| Plan {
            target: Position { x: uniform(rng, (0.0, cfg.area.0)), y: uniform(rng, (0.0, cfg.area.1)) },
            speed: uniform(rng, cfg.speed),
            pause: uniform(rng, cfg.pause),
        };
        for (w, p) in self.walkers.iter_mut().zip(&mut self.positions) {
            *p = w.at(ts, plan);
        }
    }

    fn positions(&self) -> &[Position] {
        &self.positions
    }

    fn role(&self, node: NodeId) -> &str {
        if node < self.cfg.nodes {
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

    fn cfg(nodes: u32) -> RandomWaypointConfig {
        RandomWaypointConfig { nodes, area: (200.0, 100.0), speed: (1.0, 2.0), pause: (0.0, 10.0) }
    }

    #[test]
    fn stays_inside_and_moves_no_faster_than_max_speed() {
        let mut m = RandomWaypoint::new(cfg(20), 7).unwrap();
        let mut last = m.positions().to_vec();
        for s in 1..=600 {
            m.advance(s * SECOND);
            for (p, q) in m.positions().iter().zip(&last) {
                assert!((0.0..=200.0).contains(&p.x) && (0.0..=100.0).contains(&p.y));
                assert!(super::super::distance(*p, *q) <= 2.0 + 1e-9);
            }
            last = m.positions().to_vec();
        }
    }

    #[test]
    fn same_seed_same_path_and_independent_of_tick() {
        let mut a = RandomWaypoint::new(cfg(10), 3).unwrap();
        let mut b = RandomWaypoint::new(cfg(10), 3).unwrap();
        let mut c = RandomWaypoint::new(cfg(10), 4).unwrap();
        for s in 0..=300 {
            a.advance(s * SECOND);
        }
        b.advance(300 * SECOND);
        c.advance(300 * SECOND);
        assert_eq!(a.positions(), b.positions());
        assert_ne!(a.positions(), c.positions());
        // Going backwards is ignored.
        b.advance(10 * SECOND);
        assert_eq!(b.now(), 300 * SECOND);
        assert_eq!(a.positions(), b.positions());
    }

    #[test]
    fn rejects_bad_settings() {
        let bad = |f: fn(&mut RandomWaypointConfig)| {
            let mut c = cfg(3);
            f(&mut c);
            RandomWaypoint::new(c, 1).is_err()
        };
        assert!(bad(|c| c.area.0 = 0.0));
        assert!(bad(|c| c.area.1 = f64::NAN));
        assert!(bad(|c| c.speed = (0.0, 1.0)));
        assert!(bad(|c| c.speed = (2.0, 1.0)));
        assert!(bad(|c| c.pause = (-1.0, 1.0)));
        assert!(bad(|c| c.pause = (0.0, f64::INFINITY)));
        assert!(bad(|c| c.nodes = u32::MAX));
        assert!(!bad(|c| c.pause = (0.0, 0.0)));
        assert_eq!(RandomWaypoint::new(cfg(3), 1).unwrap().role(3), "unknown");
    }
}
