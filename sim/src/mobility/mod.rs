//! Where the nodes are: mobility models that move every node through simulated time.
//!
//! Every model is deterministic: the same configuration and seed give the same positions at the same instants. Each
//! node draws from its own random stream (seeded from the run's seed and the node id), so a node's path does not
//! depend on how often the model is sampled: advancing in 1 s ticks or jumping straight to `t` gives the same
//! position at `t`. A fresh model with the same seed therefore reproduces the positions a contact extraction saw,
//! which is how the report's map [`Snapshot`](crate::model::Snapshot) is taken.
//!
//! Models:
//! - [`RandomWaypoint`]: the classic random-waypoint model over a rectangle;
//! - [`Field`]: the built-in disaster-site scenario (static relay points, rescuers, clustered civilians);
//! - [`Ns2Trace`]: replay of an ns-2 movement file (BonnMotion, SUMO), read by [`read_ns2`](crate::trace::read_ns2).

mod field;
mod ns2;
mod rwp;
mod walker;

pub use field::{Field, FieldRole};
pub use ns2::{Ns2Move, Ns2Trace};
pub use rwp::{RandomWaypoint, RandomWaypointConfig};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::model::{NodeId, Position, Time, SECOND};

/// The most nodes a model or trace may hold (bounds memory for hostile input).
pub const MAX_NODES: u32 = 1_000_000;

/// A mobility model: moves nodes forward through simulated time and reports where they are.
pub trait Mobility {
    /// Number of nodes; ids are `0..nodes()`.
    fn nodes(&self) -> u32;

    /// The instant the positions describe (0 before the first [`advance`](Mobility::advance)).
    fn now(&self) -> Time;

    /// Moves every node to where it is at time `t`. Models only move forward: a `t` earlier than
    /// [`now`](Mobility::now) leaves the positions as they are.
    fn advance(&mut self, t: Time);

    /// Positions at [`now`](Mobility::now); node `i` at index `i`.
    fn positions(&self) -> &[Position];

    /// What node `node` is, for colouring the map: `"phone"`, or the [`Field`] roles `"relay"`, `"rescuer"`,
    /// `"civilian"`. Ids out of range give `"unknown"`.
    fn role(&self, node: NodeId) -> &str;

    /// Every node's role, index = node id.
    fn roles(&self) -> Vec<String> {
        (0..self.nodes()).map(|i| self.role(i).to_string()).collect()
    }
}

/// A mobility configuration that cannot be simulated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MobilityError {
    /// A size or speed that must be positive is not.
    #[error("{what} must be a finite number greater than zero, found {value}")]
    NotPositive {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A `(min, max)` range is negative, not finite, or inverted.
    #[error("{what} must be a range of finite, non-negative numbers with min ≤ max, found {min}..{max}")]
    BadRange {
        /// Which setting.
        what: &'static str,
        /// Lower end.
        min: f64,
        /// Upper end.
        max: f64,
    },
    /// More nodes than the model can hold ([`MAX_NODES`], or less for some models).
    #[error("{nodes} nodes is more than the {max} this model can hold")]
    TooManyNodes {
        /// Requested node count.
        nodes: u32,
        /// The model's limit.
        max: u32,
    },
}

/// Checks a node count against [`MAX_NODES`].
pub(crate) fn check_nodes(nodes: u32) -> Result<(), MobilityError> {
    if nodes > MAX_NODES {
        return Err(MobilityError::TooManyNodes { nodes, max: MAX_NODES });
    }
    Ok(())
}

/// Checks a `(min, max)` range: finite, non-negative, min ≤ max; if `positive`, min > 0 too.
pub(crate) fn check_range(what: &'static str, (min, max): (f64, f64), positive: bool) -> Result<(), MobilityError> {
    let ok = min.is_finite() && max.is_finite() && min >= 0.0 && min <= max && (!positive || min > 0.0);
    if ok {
        Ok(())
    } else {
        Err(MobilityError::BadRange { what, min, max })
    }
}

/// Checks a single value is finite and positive.
pub(crate) fn check_positive(what: &'static str, value: f64) -> Result<(), MobilityError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(MobilityError::NotPositive { what, value })
    }
}

/// SplitMix64 finaliser: spreads seeds so that nearby (seed, stream) pairs give unrelated generators.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream number `stream` of a run seeded with `seed` (streams: one per node, plus layout streams).
pub(crate) fn stream_rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(mix(seed ^ mix(stream)))
}

/// Uniform in `[lo, hi]` (exactly `lo` when `lo == hi`); never panics.
pub(crate) fn uniform(rng: &mut StdRng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// A uniform index in `0..len` (0 when `len` is 0).
pub(crate) fn pick(rng: &mut StdRng, len: usize) -> usize {
    if len <= 1 {
        0
    } else {
        rng.random_range(0..len)
    }
}

/// A uniform point in the disk of `radius` around `center`.
pub(crate) fn in_disk(rng: &mut StdRng, center: Position, radius: f64) -> Position {
    let r = radius * rng.random::<f64>().sqrt();
    let a = std::f64::consts::TAU * rng.random::<f64>();
    Position { x: center.x + r * a.cos(), y: center.y + r * a.sin() }
}

/// Euclidean distance.
pub(crate) fn distance(a: Position, b: Position) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// Milliseconds to seconds.
pub(crate) fn secs(t: Time) -> f64 {
    t as f64 / SECOND as f64
}
