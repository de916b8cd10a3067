//! The map: where every node stood at the snapshot, coloured by role, with the links in range as lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::common::{downsample, escape, fmt_count, fmt_secs, PALETTE};
use super::svg::{open, plot_area, Axis, Key, Mark, Panel, Rect, XAxis, CLOSE};
use crate::model::{NodeId, Snapshot};

/// Canvas of the map.
const MAP_W: f64 = 960.0;
const MAP_H: f64 = 620.0;

/// Most links drawn; beyond that an evenly spaced subset is drawn and the caption says so.
const MAX_LINKS: usize = 20_000;

/// Role colours for the roles scenarios use; other roles take palette colours in name order.
fn role_colour(role: &str, index: usize) -> &'static str {
    match role {
        "relay" => "#0072B2",
        "rescuer" => "#D55E00",
        "civilian" => "#009E73",
        "phone" => "#CC79A7",
        _ => PALETTE[(index + 4) % PALETTE.len()],
    }
}

/// The caption line under the map: time, node and link counts.
pub(crate) fn caption(snapshot: &Snapshot) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let n = snapshot.links.len();
    let drawn = n.min(MAX_LINKS);
    let links = if drawn < n {
        format!("{} of {} links drawn", fmt_count(drawn as f64), fmt_count(n as f64))
    } else {
        format!("{} link{}", fmt_count(n as f64), plural(n))
    };
    let nodes = snapshot.positions.len();
    format!("at {} · {} node{} · {links}", fmt_secs(snapshot.t as f64 / 1000.0), fmt_count(nodes as f64), plural(nodes))
}

/// Nodes as dots coloured by role and links as grey lines, with equal scales east and north.
pub(crate) fn map(snapshot: &Snapshot) -> String {
    let title = "Map snapshot";
    let finite = |i: usize| snapshot.positions.get(i).filter(|p| p.x.is_finite() && p.y.is_finite()).copied();
    let points: Vec<_> = (0..snapshot.positions.len()).filter_map(finite).collect();

    // Nodes by role, roles in name order (deterministic colours and legend).
    let mut by_role: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for i in 0..snapshot.positions.len() {
        let role = snapshot.roles.get(i).map_or("unknown", String::as_str);
        by_role.entry(role).or_default().push(i);
    }
    let legend: Vec<Key> = by_role
        .iter()
        .enumerate()
        .map(|(k, (role, nodes))| Key {
            label: format!("{role} ({})", fmt_count(nodes.len() as f64)),
            colour: role_colour(role, k).to_owned(),
            mark: Mark::Dot,
        })
        .collect();

    let outer = Rect { x: 0.0, y: 0.0, w: MAP_W, h: MAP_H };
    let area = plot_area(outer, "", &legend);
    let (x_axis, y_axis) = fit(&points, area);
    let mut p = Panel::new(outer, "", &legend, XAxis::Linear(x_axis), y_axis);

    let mut d = String::new();
    let pairs: Vec<(NodeId, NodeId)> = downsample(&snapshot.links, MAX_LINKS);
    for (a, b) in pairs {
        if let (Some(pa), Some(pb)) = (finite(a as usize), finite(b as usize)) {
            let _ = write!(d, "M{:.1} {:.1}L{:.1} {:.1}", p.px(pa.x), p.py(pa.y), p.px(pb.x), p.py(pb.y));
        }
    }
    if !d.is_empty() {
        let _ = write!(p.out, "<path class=\"link\" d=\"{d}\"/>");
    }

    // Dots as zero-length round-capped strokes: one path per role keeps the SVG small for thousands of nodes.
    let dot = match points.len() {
        0..=100 => 9.0,
        101..=1000 => 6.0,
        _ => 4.0,
    };
    for (k, (role, nodes)) in by_role.iter().enumerate() {
        let mut d = String::new();
        for pos in nodes.iter().filter_map(|&i| finite(i)) {
            let _ = write!(d, "M{:.1} {:.1}h0", p.px(pos.x), p.py(pos.y));
        }
        if !d.is_empty() {
            let _ = write!(
                p.out,
                "<path class=\"dots\" d=\"{d}\" stroke=\"{}\" stroke-width=\"{dot}\"><title>{}</title></path>",
                role_colour(role, k),
                escape(role)
            );
        }
    }
    if points.is_empty() {
        p.note("no positions");
    }
    let mut out = open(MAP_W, MAP_H, title);
    out.push_str(&p.out);
    out.push_str(CLOSE);
    out
}

/// Axes (metres) that show every point with the same scale east and north, filling `area`.
fn fit(points: &[crate::model::Position], area: Rect) -> (Axis, Axis) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for p in points {
        x0 = x0.min(p.x);
        x1 = x1.max(p.x);
        y0 = y0.min(p.y);
        y1 = y1.max(p.y);
    }
    if points.is_empty() {
        (x0, x1, y0, y1) = (0.0, 100.0, 0.0, 100.0);
    }
    // A margin so edge dots are not cut, and at least 20 m each way so one node still gets a sensible scale.
    let span = (x1 - x0).max(y1 - y0);
    let pad = span * 0.04;
    let (w, h) = ((x1 - x0).max(20.0) + 2.0 * pad, (y1 - y0).max(20.0) + 2.0 * pad);
    let scale = (area.w / w.max(1e-9)).min(area.h / h.max(1e-9));
    let (half_w, half_h) = (area.w / scale / 2.0, area.h / scale / 2.0);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    (Axis::fitted(cx - half_w, cx + half_w, "east (m)"), Axis::fitted(cy - half_h, cy + half_h, "north (m)"))
}
