//! Turns what the engine counted into the figures a report shows.

use crate::engine::Tally;
use crate::model::{MessageSpec, Time, SECOND};
use crate::results::{HopStat, RouterResult};

/// The value at quantile `q` (0–1) of an ascending slice (nearest rank); 0 for an empty slice.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Figures of one router from its tally and per-node energy, over a run of `duration`.
pub fn router_result(
    tally: &Tally,
    energy_per_node_j: Vec<f64>,
    messages: &[MessageSpec],
    duration: Time,
) -> RouterResult {
    let delivered: Vec<(usize, Time, u32)> =
        tally.deliveries.iter().enumerate().filter_map(|(i, d)| d.map(|(t, hops)| (i, t, hops))).collect();
    let latency_s = |&(i, t, _): &(usize, Time, u32)| (t - messages[i].created) as f64 / 1000.0;
    let mut latencies: Vec<f64> = delivered.iter().map(latency_s).collect();
    latencies.sort_by(f64::total_cmp);
    let delivered_bytes: u64 = delivered.iter().map(|(i, _, _)| messages[*i].size).sum();
    let total_j: f64 = energy_per_node_j.iter().sum();
    let node_hours = energy_per_node_j.len() as f64 * duration as f64 / 3_600_000.0;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };

    let mut times: Vec<Time> = delivered.iter().map(|(_, t, _)| *t).collect();
    times.sort_unstable();
    let step = 60 * SECOND;
    let mut delivery_over_time = Vec::new();
    let mut done = 0;
    let mut t = 0;
    while t <= duration {
        while done < times.len() && times[done] <= t {
            done += 1;
        }
        delivery_over_time.push((t as f64 / 1000.0, ratio(done as f64, messages.len() as f64)));
        t += step;
    }

    let max_hops = delivered.iter().map(|(_, _, h)| *h).max().unwrap_or(0);
    let by_hops = (1..=max_hops)
        .filter_map(|hops| {
            let mut l: Vec<f64> = delivered.iter().filter(|d| d.2 == hops).map(latency_s).collect();
            l.sort_by(f64::total_cmp);
            (!l.is_empty()).then(|| HopStat { hops, delivered: l.len(), latency_median_s: quantile(&l, 0.5) })
        })
        .collect();

    RouterResult {
        delivery_ratio: ratio(delivered.len() as f64, messages.len() as f64),
        overhead: ratio(tally.block_transmissions as f64, delivered.len() as f64),
        latency_median_s: quantile(&latencies, 0.5),
        latency_p95_s: quantile(&latencies, 0.95),
        duplicate_ratio: ratio(tally.duplicate_bytes as f64, tally.useful_bytes as f64),
        energy_j_per_kb: ratio(total_j, delivered_bytes as f64 / 1000.0),
        energy_j_per_node_hour: ratio(total_j, node_hours),
        delivered: delivered.len(),
        transmissions: tally.block_transmissions,
        latencies_s: latencies,
        delivery_over_time,
        by_hops,
        energy_per_node_j,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.0);
        assert_eq!(quantile(&v, 0.95), 4.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn figures_follow_from_the_tally() {
        let messages: Vec<MessageSpec> =
            (0..4).map(|i| MessageSpec { id: i, src: 0, dst: 1, size: 1_000, created: i * 1_000 }).collect();
        let tally = Tally {
            deliveries: vec![Some((11_000, 1)), Some((31_000, 2)), None, None],
            block_transmissions: 6,
            duplicate_bytes: 1_000,
            useful_bytes: 4_000,
            ..Tally::default()
        };
        let r = router_result(&tally, vec![1.0, 1.0], &messages, 3_600_000);
        assert_eq!(r.delivery_ratio, 0.5);
        assert_eq!(r.overhead, 3.0);
        assert_eq!(r.latencies_s, vec![11.0, 30.0]);
        assert_eq!(r.duplicate_ratio, 0.25);
        assert_eq!(r.energy_j_per_kb, 1.0);
        assert_eq!(r.energy_j_per_node_hour, 1.0);
        assert_eq!(r.by_hops.len(), 2);
        assert_eq!(r.delivery_over_time.last().map(|p| p.1), Some(0.5));
    }
}
