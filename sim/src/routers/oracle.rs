//! The ideal epidemic oracle: for every message, the earliest arrival over time-respecting paths of the contact
//! trace, with infinite buffers and every contact free for it alone. Nothing can deliver more, or sooner.
//!
//! A hop needs the link set up (the radio's fastest setup) and the whole message on air before the contact ends.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::model::{ContactTrace, MessageSpec, NodeId, Time};

/// What the oracle achieves.
#[derive(Debug, Clone, PartialEq)]
pub struct OracleOutcome {
    /// Per message: (delivery time, hops of the earliest path), if reachable within the TTL.
    pub deliveries: Vec<Option<(Time, u32)>>,
    /// Transmissions along the delivered paths (an oracle sends nothing else).
    pub transmissions: u64,
}

/// A usable stretch of one contact: from link-up to link-down, seen from one end.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Time,
    end: Time,
    peer: NodeId,
}

fn windows(trace: &ContactTrace, setup_ms: Time) -> Vec<Vec<Window>> {
    let mut open = std::collections::HashMap::new();
    let mut out = vec![Vec::new(); trace.nodes as usize];
    let close = |a: NodeId, b: NodeId, start: Time, end: Time, out: &mut Vec<Vec<Window>>| {
        let start = start + setup_ms;
        if start < end {
            out[a as usize].push(Window { start, end, peer: b });
            out[b as usize].push(Window { start, end, peer: a });
        }
    };
    for e in &trace.events {
        if e.a >= trace.nodes || e.b >= trace.nodes {
            continue;
        }
        if e.up {
            open.entry((e.a, e.b)).or_insert(e.t);
        } else if let Some(start) = open.remove(&(e.a, e.b)) {
            close(e.a, e.b, start, e.t, &mut out);
        }
    }
    let mut still_open: Vec<((NodeId, NodeId), Time)> = open.into_iter().collect();
    still_open.sort();
    for ((a, b), start) in still_open {
        close(a, b, start, trace.duration, &mut out);
    }
    for w in &mut out {
        w.sort_by_key(|w| (w.start, w.end, w.peer));
    }
    out
}

/// Runs the oracle over `trace` for `messages` living `ttl`, with links taking `setup_ms` to come up and carrying
/// `rate_bytes_per_s`.
pub fn oracle(
    trace: &ContactTrace,
    messages: &[MessageSpec],
    ttl: Time,
    setup_ms: Time,
    rate_bytes_per_s: f64,
) -> OracleOutcome {
    let windows = windows(trace, setup_ms);
    let n = trace.nodes as usize;
    let mut deliveries = Vec::with_capacity(messages.len());
    let mut transmissions = 0;
    let mut best: Vec<(Time, u32)> = vec![(Time::MAX, 0); n];
    let mut touched: Vec<usize> = Vec::new();
    for m in messages {
        let (src, dst) = (m.src as usize, m.dst as usize);
        if src >= n || dst >= n {
            deliveries.push(None);
            continue;
        }
        let airtime = ((m.size as f64 / rate_bytes_per_s) * 1000.0).ceil() as Time;
        let deadline = (m.created + ttl).min(trace.duration);
        for i in touched.drain(..) {
            best[i] = (Time::MAX, 0);
        }
        let mut heap = BinaryHeap::new();
        best[src] = (m.created, 0);
        touched.push(src);
        heap.push(Reverse((m.created, 0u32, src)));
        let mut found = None;
        while let Some(Reverse((t, hops, u))) = heap.pop() {
            if (t, hops) > best[u] {
                continue;
            }
            if u == dst {
                found = Some((t, hops));
                break;
            }
            for w in &windows[u] {
                if w.start > deadline {
                    break;
                }
                let depart = t.max(w.start);
                let arrive = depart + airtime;
                let v = w.peer as usize;
                if arrive > w.end || arrive > deadline || (arrive, hops + 1) >= best[v] {
                    continue;
                }
                if best[v].0 == Time::MAX {
                    touched.push(v);
                }
                best[v] = (arrive, hops + 1);
                heap.push(Reverse((arrive, hops + 1, v)));
            }
        }
        if let Some((_, hops)) = found {
            transmissions += u64::from(hops);
        }
        deliveries.push(found);
    }
    OracleOutcome { deliveries, transmissions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContactEvent;

    fn ev(t: Time, a: NodeId, b: NodeId, up: bool) -> ContactEvent {
        ContactEvent { t, a, b, up }
    }

    #[test]
    fn finds_the_earliest_time_respecting_path() {
        // 0–1 meet at 10 s, 1–2 at 20 s; 0–2 directly only at 100 s. The two-hop path arrives first.
        let trace = ContactTrace {
            nodes: 3,
            duration: 200_000,
            events: vec![
                ev(10_000, 0, 1, true),
                ev(15_000, 0, 1, false),
                ev(20_000, 1, 2, true),
                ev(25_000, 1, 2, false),
                ev(100_000, 0, 2, true),
                ev(105_000, 0, 2, false),
            ],
        };
        let msg = MessageSpec { id: 0, src: 0, dst: 2, size: 1_000, created: 0 };
        let out = oracle(&trace, &[msg], 150_000, 0, 1_000.0);
        assert_eq!(out.deliveries, vec![Some((21_000, 2))]);
        // Time runs forward only: the 1–2 contact before 0–1 would not help.
        let late = MessageSpec { created: 16_000, ..msg };
        assert_eq!(oracle(&trace, &[late], 150_000, 0, 1_000.0).deliveries, vec![Some((101_000, 1))]);
    }

    #[test]
    fn a_contact_too_short_for_the_message_is_no_path() {
        let trace =
            ContactTrace { nodes: 2, duration: 60_000, events: vec![ev(1_000, 0, 1, true), ev(2_000, 0, 1, false)] };
        let msg = MessageSpec { id: 0, src: 0, dst: 1, size: 5_000, created: 0 };
        assert_eq!(oracle(&trace, &[msg], 60_000, 0, 1_000.0).deliveries, vec![None]);
        assert_eq!(oracle(&trace, &[MessageSpec { size: 500, ..msg }], 60_000, 0, 1_000.0).transmissions, 1);
    }
}
