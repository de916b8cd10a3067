//! What the phones send: messages between random pairs at a configurable rate, size and lifetime.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model::{MessageSpec, NodeId, Time, SECOND};

/// A workload that cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    /// A range with min > max, or a zero where a positive value is needed.
    #[error("{what}: {detail}")]
    Bad {
        /// Which setting.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Fewer than two nodes can send, so there is no pair.
    #[error("at least two nodes must be able to send messages, found {0}")]
    TooFewEndpoints(usize),
}

/// Random-pair traffic: a new message every `interval` (drawn per message), of `size` bytes, living `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Message size range, bytes (inclusive).
    pub size: (u64, u64),
    /// Time between consecutive messages, ms (inclusive range).
    pub interval_ms: (Time, Time),
    /// Lifetime of a message, ms: delivery after it does not count, and every copy is dropped.
    pub ttl_ms: Time,
}

impl Workload {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let bad = |what, detail: String| Err(WorkloadError::Bad { what, detail });
        if self.size.0 == 0 || self.size.0 > self.size.1 {
            return bad(
                "message size",
                format!("{}-{} bytes is not a range of positive sizes", self.size.0, self.size.1),
            );
        }
        if self.interval_ms.0 == 0 || self.interval_ms.0 > self.interval_ms.1 {
            let (a, b) = self.interval_ms;
            return bad("message interval", format!("{a}-{b} ms is not a range of positive intervals"));
        }
        if self.ttl_ms == 0 {
            return bad("ttl", "must be positive".into());
        }
        Ok(())
    }

    /// Messages created in `[0, duration)` between distinct random members of `endpoints`, seeded.
    pub fn generate(&self, endpoints: &[NodeId], duration: Time, seed: u64) -> Result<Vec<MessageSpec>, WorkloadError> {
        self.validate()?;
        if endpoints.len() < 2 {
            return Err(WorkloadError::TooFewEndpoints(endpoints.len()));
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0x776f_726b_6c6f_6164);
        let mut out = Vec::new();
        let mut t = rng.random_range(self.interval_ms.0..=self.interval_ms.1);
        while t < duration {
            let src = endpoints[rng.random_range(0..endpoints.len())];
            let mut dst = src;
            while dst == src {
                dst = endpoints[rng.random_range(0..endpoints.len())];
            }
            let size = rng.random_range(self.size.0..=self.size.1);
            out.push(MessageSpec { id: out.len() as u64, src, dst, size, created: t });
            t += rng.random_range(self.interval_ms.0..=self.interval_ms.1);
        }
        Ok(out)
    }
}

impl Default for Workload {
    /// Chat-sized traffic with photos: 1 kB–300 kB every 20–40 s, living 2 h.
    fn default() -> Self {
        Self { size: (1_000, 300_000), interval_ms: (20 * SECOND, 40 * SECOND), ttl_ms: 2 * 3600 * SECOND }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_messages_follow_the_ranges() {
        let w = Workload { size: (500_000, 1_000_000), interval_ms: (25_000, 35_000), ttl_ms: 5 * 3_600_000 };
        let nodes: Vec<NodeId> = (0..10).collect();
        let msgs = w.generate(&nodes, 12 * 3_600_000, 1).unwrap();
        // 12 h at one message per 30 s on average.
        assert!((1_300..1_600).contains(&msgs.len()), "{}", msgs.len());
        for pair in msgs.windows(2) {
            let gap = pair[1].created - pair[0].created;
            assert!((25_000..=35_000).contains(&gap));
        }
        assert!(msgs.iter().all(|m| m.src != m.dst && (500_000..=1_000_000).contains(&m.size)));
        assert_eq!(msgs, w.generate(&nodes, 12 * 3_600_000, 1).unwrap(), "seeded");
    }

    #[test]
    fn bad_ranges_are_refused() {
        let w = Workload { size: (10, 5), ..Workload::default() };
        assert!(w.generate(&[0, 1], 1_000, 0).is_err());
        assert!(matches!(Workload::default().generate(&[3], 1_000, 0), Err(WorkloadError::TooFewEndpoints(1))));
    }
}
