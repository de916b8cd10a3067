//! The simulator's shared vocabulary: node ids, time, contacts, messages, positions.

use serde::{Deserialize, Serialize};

/// A simulated device, numbered from 0.
pub type NodeId = u32;

/// Simulated time in milliseconds since the start of the run.
pub type Time = u64;

/// Milliseconds per second.
pub const SECOND: Time = 1_000;

/// Two nodes start or stop being in radio range of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    /// When.
    pub t: Time,
    /// One node (the smaller id).
    pub a: NodeId,
    /// The other node (the larger id).
    pub b: NodeId,
    /// In range (`true`) or out of range.
    pub up: bool,
}

/// Who meets whom, when: the input every router and baseline runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTrace {
    /// Number of nodes (ids are `0..nodes`).
    pub nodes: u32,
    /// Length of the run.
    pub duration: Time,
    /// Events sorted by time; for each pair, up and down alternate starting with up.
    pub events: Vec<ContactEvent>,
}

/// A message created by the workload: `src` sends `size` bytes to `dst` at `created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSpec {
    /// Unique id.
    pub id: u64,
    /// Sender.
    pub src: NodeId,
    /// Addressee.
    pub dst: NodeId,
    /// Bytes.
    pub size: u64,
    /// Creation time.
    pub created: Time,
}

/// A point on the simulated ground, metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// East.
    pub x: f64,
    /// North.
    pub y: f64,
}

/// Where every node stood at one instant, for the report's map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When.
    pub t: Time,
    /// Position of node `i` at index `i`.
    pub positions: Vec<Position>,
    /// Pairs in range at that instant.
    pub links: Vec<(NodeId, NodeId)>,
    /// What each node is (for colouring the map): e.g. "relay", "rescuer", "civilian", "phone".
    pub roles: Vec<String>,
}
