//! The routers a run compares: Pollen (the real `pollen-router` core) and the baselines.

mod buffer;
mod direct;
mod oracle;
mod pollen;
mod spray;

pub use buffer::Buffer;
pub use direct::DirectDelivery;
pub use oracle::{oracle, OracleOutcome};
pub use pollen::{PollenNode, PollenShared};
pub use spray::SprayAndWait;
