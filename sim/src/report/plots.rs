//! Delivery and latency plots: delivery over time, latency CDF, delivered messages and median latency by hop count.

use std::collections::BTreeSet;

use super::common::{downsample, fmt_count, fmt_secs, ordered_routers, sorted_finite, time_unit, Router};
use super::svg::{single, Axis, Key, Mark, TickFmt, XAxis};
use crate::results::SimResults;

/// Canvas width of a plot, SVG user units.
pub(crate) const W: f64 = 640.0;
/// Canvas height of a plot.
pub(crate) const H: f64 = 360.0;
/// Most points drawn per line.
pub(crate) const MAX_POINTS: usize = 500;

/// Legend entries for `routers`: line samples, or colour swatches for bar charts.
pub(crate) fn router_keys(routers: &[Router<'_>], bars: bool) -> Vec<Key> {
    routers
        .iter()
        .map(|r| Key {
            label: r.label(),
            colour: r.colour.to_owned(),
            mark: if bars { Mark::Swatch } else { Mark::line(r.dashed) },
        })
        .collect()
}

/// Share of all messages delivered over time, one line per router.
pub(crate) fn delivery_over_time(results: &SimResults) -> String {
    let routers = ordered_routers(results);
    let data_end = routers
        .iter()
        .flat_map(|r| r.result.delivery_over_time.iter().map(|p| p.0))
        .filter(|t| t.is_finite())
        .fold(0.0, f64::max);
    let end = if results.duration_s.is_finite() { results.duration_s.max(data_end) } else { data_end };
    let (div, unit) = time_unit(end);
    let x = Axis::nice(0.0, end / div, format!("simulated time ({unit})"), TickFmt::Number);
    let y = Axis::percent("messages delivered (% of created)");
    single(W, H, "Delivery over time", &router_keys(&routers, false), XAxis::Linear(x), y, |p| {
        let mut drawn = false;
        for r in &routers {
            let mut pts: Vec<(f64, f64)> = r
                .result
                .delivery_over_time
                .iter()
                .filter(|(t, f)| t.is_finite() && f.is_finite())
                .map(|&(t, f)| (t / div, f))
                .collect();
            if pts.is_empty() {
                continue;
            }
            if pts[0].0 > 0.0 {
                pts.insert(0, (0.0, 0.0));
            }
            p.line(&downsample(&pts, MAX_POINTS), r.colour, r.dashed);
            drawn = true;
        }
        if !drawn {
            p.note("no delivery series");
        }
    })
}

/// Cumulative distribution of the latency of delivered messages, one line per router.
pub(crate) fn latency_cdf(results: &SimResults) -> String {
    let routers = ordered_routers(results);
    let sorted: Vec<Vec<f64>> = routers.iter().map(|r| sorted_finite(&r.result.latencies_s)).collect();
    let max = sorted.iter().filter_map(|v| v.last()).copied().fold(0.0, f64::max);
    let min = sorted.iter().filter_map(|v| v.first()).copied().fold(f64::INFINITY, f64::min);
    let x = Axis::log_duration(min, max, "latency (log scale)");
    let y = Axis::percent("delivered messages with latency ≤ x");
    single(W, H, "Latency CDF", &router_keys(&routers, false), XAxis::Linear(x), y, |p| {
        let mut drawn = false;
        for (r, lat) in routers.iter().zip(&sorted) {
            let Some(&first) = lat.first() else { continue };
            let n = lat.len() as f64;
            let mut pts = vec![(first, 0.0)];
            pts.extend(lat.iter().enumerate().map(|(i, &l)| (l, (i + 1) as f64 / n)));
            p.line(&downsample(&pts, MAX_POINTS), r.colour, r.dashed);
            drawn = true;
        }
        if !drawn {
            p.note("no deliveries");
        }
    })
}

/// Which figure of a hop-count bar chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HopFigure {
    /// Messages delivered.
    Delivered,
    /// Their median latency.
    Latency,
}

/// Grouped bars by hop count, one bar per router: messages delivered or their median latency.
pub(crate) fn by_hops(results: &SimResults, figure: HopFigure) -> String {
    let routers = ordered_routers(results);
    let hops: Vec<u32> = routers
        .iter()
        .flat_map(|r| r.result.by_hops.iter().map(|h| h.hops))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let value = |r: &Router<'_>, h: u32| -> f64 {
        let stats = r.result.by_hops.iter().filter(|s| s.hops == h);
        match figure {
            HopFigure::Delivered => stats.map(|s| s.delivered as f64).sum(),
            HopFigure::Latency => stats.map(|s| s.latency_median_s).find(|v| v.is_finite()).unwrap_or(f64::NAN),
        }
    };
    let max =
        routers.iter().flat_map(|r| hops.iter().map(|&h| value(r, h))).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let (div, y) = match figure {
        HopFigure::Delivered => (1.0, Axis::nice(0.0, max, "messages delivered", TickFmt::Number)),
        HopFigure::Latency => {
            let (div, unit) = time_unit(max);
            (div, Axis::nice(0.0, max / div, format!("median latency ({unit})"), TickFmt::Number))
        }
    };
    let title = match figure {
        HopFigure::Delivered => "Messages delivered by hop count",
        HopFigure::Latency => "Median latency by hop count",
    };
    let x = XAxis::Categories {
        labels: hops.iter().map(u32::to_string).collect(),
        label: "hops of the first copy to arrive".to_owned(),
    };
    single(W, H, title, &router_keys(&routers, true), x, y, |p| {
        for (i, &h) in hops.iter().enumerate() {
            for (j, r) in routers.iter().enumerate() {
                let v = value(r, h);
                let tip = match figure {
                    HopFigure::Delivered => format!("{} · {h} hops · {} delivered", r.label(), fmt_count(v)),
                    HopFigure::Latency => format!("{} · {h} hops · median {}", r.label(), fmt_secs(v)),
                };
                p.bar(i, j, routers.len(), v / div, r.colour, &tip);
            }
        }
        if hops.is_empty() {
            p.note("no deliveries");
        }
    })
}
