//! A node's message buffer: bounded in bytes, evicting by a router-chosen order when full.

use std::collections::BTreeMap;

use crate::engine::MsgIdx;
use crate::model::Time;

/// One buffered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Bytes.
    pub size: u64,
    /// When it entered this buffer.
    pub since: Time,
}

/// Messages a node stores, within `capacity` bytes.
#[derive(Debug, Clone)]
pub struct Buffer {
    capacity: u64,
    used: u64,
    items: BTreeMap<MsgIdx, Held>,
}

impl Buffer {
    /// An empty buffer of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Self { capacity, used: 0, items: BTreeMap::new() }
    }

    /// Capacity, bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether `msg` is stored.
    pub fn contains(&self, msg: MsgIdx) -> bool {
        self.items.contains_key(&msg)
    }

    /// Stored messages, by index.
    pub fn iter(&self) -> impl Iterator<Item = (MsgIdx, &Held)> {
        self.items.iter().map(|(m, h)| (*m, h))
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Stores `msg`, evicting others in ascending `rank` until it fits. Returns the evicted messages, or `None` (and
    /// changes nothing) when the message is larger than the whole buffer.
    pub fn insert<K: Ord>(
        &mut self,
        msg: MsgIdx,
        size: u64,
        now: Time,
        rank: impl Fn(MsgIdx, &Held) -> K,
    ) -> Option<Vec<MsgIdx>> {
        if size > self.capacity {
            return None;
        }
        if self.items.contains_key(&msg) {
            return Some(Vec::new());
        }
        let mut evicted = Vec::new();
        if self.used + size > self.capacity {
            let mut order: Vec<(K, MsgIdx)> = self.items.iter().map(|(m, h)| (rank(*m, h), *m)).collect();
            order.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            for (_, victim) in order {
                if self.used + size <= self.capacity {
                    break;
                }
                self.remove(victim);
                evicted.push(victim);
            }
        }
        self.items.insert(msg, Held { size, since: now });
        self.used += size;
        Some(evicted)
    }

    /// Drops `msg`; false if it was not stored.
    pub fn remove(&mut self, msg: MsgIdx) -> bool {
        match self.items.remove(&msg) {
            Some(h) => {
                self.used -= h.size;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_in_rank_order_until_the_new_message_fits() {
        let mut b = Buffer::new(1_000);
        let oldest = |_: MsgIdx, h: &Held| h.since;
        assert_eq!(b.insert(0, 400, 0, oldest), Some(vec![]));
        assert_eq!(b.insert(1, 400, 1, oldest), Some(vec![]));
        assert_eq!(b.insert(2, 300, 2, oldest), Some(vec![0]));
        assert!(b.contains(1) && b.contains(2) && !b.contains(0));
        assert_eq!(b.insert(3, 2_000, 3, oldest), None, "larger than the buffer");
        assert_eq!(b.len(), 2);
    }
}
