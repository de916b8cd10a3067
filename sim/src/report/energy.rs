//! Energy plots: energy per node (one small panel per router, nodes sorted) and the energy-budget sweep.

use std::fmt::Write as _;

use super::common::{
    downsample, escape, fmt_num, fmt_pct, fmt_short, median_sorted, ordered_routers, sorted_finite, POLLEN,
};
use super::plots::{H, MAX_POINTS, W};
use super::svg::{open, single, Axis, Key, Mark, Panel, Rect, TickFmt, XAxis, CLOSE};
use crate::results::SimResults;

/// Size of one small panel of the energy-per-node plot, and panels per row.
const CELL_W: f64 = 330.0;
const CELL_H: f64 = 250.0;
const COLS: usize = 4;

/// Energy spent by each node, sorted from most to least, one panel per router on a shared scale.
pub(crate) fn energy_per_node(results: &SimResults) -> String {
    let routers = ordered_routers(results);
    let title = "Energy per node";
    if routers.is_empty() {
        let x = XAxis::Linear(Axis::nice(0.0, 1.0, "nodes, most energy first", TickFmt::Number));
        return single(W, H, title, &[], x, y_axis(0.0), |p| p.note("no router results"));
    }
    let sorted: Vec<Vec<f64>> = routers.iter().map(|r| sorted_finite(&r.result.energy_per_node_j)).collect();
    let max_e = sorted.iter().filter_map(|v| v.last()).copied().fold(0.0, f64::max);
    let max_n = sorted.iter().map(Vec::len).max().unwrap_or(0);
    let rows = routers.len().div_ceil(COLS);
    let mut out = open(CELL_W * COLS as f64, CELL_H * rows as f64, title);
    for (k, (r, energy)) in routers.iter().zip(&sorted).enumerate() {
        let cell = Rect { x: (k % COLS) as f64 * CELL_W, y: (k / COLS) as f64 * CELL_H, w: CELL_W, h: CELL_H };
        let caption = match energy.last() {
            None => r.label(),
            Some(&max) => {
                format!("{} · median {} J · max {} J", r.label(), fmt_num(median_sorted(energy)), fmt_num(max))
            }
        };
        let x = Axis::nice(0.0, max_n as f64, "nodes, most energy first", TickFmt::Number);
        let mut p = Panel::new(cell, &caption, &[], XAxis::Linear(x), y_axis(max_e));
        if energy.is_empty() {
            p.note("no energy figures");
        } else {
            // Descending steps: the node at rank i spent energy[n-1-i].
            let n = energy.len();
            let steps: Vec<(f64, f64)> = energy.iter().rev().enumerate().map(|(i, &e)| (i as f64, e)).collect();
            let mut d = format!("M{:.1} {:.1}", p.px(0.0), p.py(0.0));
            for (i, e) in downsample(&steps, MAX_POINTS) {
                let _ = write!(d, "L{:.1} {:.1}L{:.1} {:.1}", p.px(i), p.py(e), p.px(i + 1.0), p.py(e));
            }
            let _ = write!(d, "L{:.1} {:.1}Z", p.px(n as f64), p.py(0.0));
            let c = escape(r.colour);
            let _ = write!(p.out, "<path d=\"{d}\" fill=\"{c}\" fill-opacity=\"0.35\" stroke=\"{c}\"/>");
        }
        out.push_str(&p.out);
    }
    out.push_str(CLOSE);
    out
}

fn y_axis(max: f64) -> Axis {
    Axis::nice(0.0, max, "energy (J)", TickFmt::Number)
}

/// Pollen's delivery ratio against energy per node and hour at each battery budget, with this run's routers as
/// single points for comparison.
pub(crate) fn energy_sweep(results: &SimResults) -> String {
    let routers = ordered_routers(results);
    let mut sweep = results.energy_sweep.clone();
    sweep.sort_by(|a, b| a.budget_pct_per_hour.total_cmp(&b.budget_pct_per_hour));
    let sweep_pts: Vec<(f64, f64, f64)> = sweep
        .iter()
        .map(|p| (p.energy_j_per_node_hour, p.delivery_ratio, p.budget_pct_per_hour))
        .filter(|(e, d, _)| e.is_finite() && d.is_finite())
        .collect();
    let run_pts: Vec<(f64, f64)> =
        routers.iter().map(|r| (r.result.energy_j_per_node_hour, r.result.delivery_ratio)).collect();
    let max_e = sweep_pts
        .iter()
        .map(|p| p.0)
        .chain(run_pts.iter().filter(|p| p.1.is_finite()).map(|p| p.0))
        .filter(|e| e.is_finite())
        .fold(0.0, f64::max);
    // Headroom so the last point and its label do not sit on the edge.
    let x = Axis::nice(0.0, max_e * 1.08, "energy per node and hour (J)", TickFmt::Number);
    let y = Axis::percent("delivery ratio");
    let pollen_colour = routers.iter().find(|r| r.name == POLLEN).map_or("#D55E00", |r| r.colour);
    let mut keys =
        vec![Key { label: "Pollen, budget sweep".to_owned(), colour: pollen_colour.to_owned(), mark: Mark::Line }];
    keys.extend(routers.iter().map(|r| Key { label: r.label(), colour: r.colour.to_owned(), mark: Mark::Diamond }));
    single(W, H, "Delivery versus energy across battery budgets", &keys, XAxis::Linear(x), y, |p| {
        let line: Vec<(f64, f64)> = sweep_pts.iter().map(|&(e, d, _)| (e, d)).collect();
        p.line(&line, pollen_colour, false);
        let mut labels = Labels::default();
        for &(e, d, budget) in &sweep_pts {
            let (cx, cy) = (p.px(e), p.py(d));
            let _ = write!(
                p.out,
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4\" fill=\"{c}\"><title>budget {b} %/h: {dr}, {en} J/node/h\
                 </title></circle>",
                c = escape(pollen_colour),
                b = fmt_short(budget),
                dr = fmt_pct(d),
                en = fmt_num(e),
            );
            labels.blocked.push(Box { x0: cx - 5.0, y0: cy - 5.0, x1: cx + 5.0, y1: cy + 5.0 });
        }
        for &(e, d, budget) in &sweep_pts {
            labels.place(p, p.px(e), p.py(d), &format!("{} %/h", fmt_short(budget)));
        }
        for (r, &(e, d)) in routers.iter().zip(&run_pts) {
            if !(e.is_finite() && d.is_finite()) {
                continue;
            }
            let (cx, cy) = (p.px(e), p.py(d));
            let _ = write!(
                p.out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"white\" stroke=\"{c}\" stroke-width=\"2\" \
                 transform=\"rotate(45 {cx:.1} {cy:.1})\"><title>{l} (this run): {dr}, {en} J/node/h</title></rect>",
                cx - 4.5,
                cy - 4.5,
                c = escape(r.colour),
                l = escape(&r.label()),
                dr = fmt_pct(d),
                en = fmt_num(e),
            );
        }
        if sweep_pts.is_empty() {
            p.note("energy sweep not run");
        }
    })
}

/// An axis-aligned box in SVG units.
#[derive(Debug, Clone, Copy)]
struct Box {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Box {
    fn overlaps(&self, o: &Box) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// Point labels that avoid each other and the points: each label takes the first free spot around its point, or is
/// left out (the point's tooltip still has it).
#[derive(Debug, Default)]
struct Labels {
    blocked: Vec<Box>,
}

impl Labels {
    fn place(&mut self, p: &mut Panel, cx: f64, cy: f64, text: &str) {
        let w = 6.5 * text.chars().count() as f64;
        // (x of the text's left edge, baseline y): below right, above left, right, left, above, below.
        let spots = [
            (cx + 6.0, cy + 16.0),
            (cx - 6.0 - w, cy - 8.0),
            (cx + 8.0, cy + 4.0),
            (cx - 8.0 - w, cy + 4.0),
            (cx - w / 2.0, cy - 9.0),
            (cx - w / 2.0, cy + 18.0),
        ];
        let area = p.area;
        for (x, y) in spots {
            let b = Box { x0: x - 1.0, y0: y - 11.0, x1: x + w + 1.0, y1: y + 3.0 };
            let inside = b.x0 >= area.x && b.x1 <= area.x + area.w && b.y0 >= area.y && b.y1 <= area.y + area.h;
            if inside && !self.blocked.iter().any(|o| o.overlaps(&b)) {
                self.blocked.push(b);
                let _ = write!(p.out, "<text class=\"tick\" x=\"{x:.1}\" y=\"{y:.1}\">{}</text>", escape(text));
                return;
            }
        }
    }
}
