//! The summary tables (figures by router, latency by hop count, the energy sweep) and their fixed-width text form.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::common::{
    fmt_count, fmt_num, fmt_pct, fmt_ratio, fmt_secs, fmt_short, ordered_routers, printable, Router, FIGURES, NONE,
    POLLEN,
};
use crate::results::SimResults;

/// What a column of a [`Grid`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Column {
    /// Row labels or other plain values.
    Plain,
    /// One router's figures.
    Router {
        /// Router key.
        name: String,
        /// Its plot colour.
        colour: &'static str,
    },
    /// Pollen's figure ÷ a baseline's.
    Ratio,
}

/// A table as strings: what both the terminal and the HTML show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grid {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows, each as long as `headers`.
    pub rows: Vec<Vec<String>>,
    /// What each column holds (for styling the HTML).
    pub columns: Vec<Column>,
    /// Shown instead of the rows when there are none.
    pub empty: &'static str,
}

impl Grid {
    /// Writes the table with every column padded to its widest cell, the first left-aligned, the rest right-aligned.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.rows.is_empty() {
            let _ = writeln!(out, "  ({})", self.empty);
            return out;
        }
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let line = |out: &mut String, cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = " ".repeat(w.saturating_sub(width(cell)));
                if i == 0 {
                    let _ = write!(text, "  {cell}{pad}");
                } else {
                    let _ = write!(text, "  {pad}{cell}");
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&mut out, &self.headers);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for row in &self.rows {
            line(&mut out, row);
        }
        out
    }
}

/// Every figure for every router, Pollen first, with "pollen ÷ baseline" columns for the figures that have them.
pub(crate) fn figures_grid(results: &SimResults) -> Grid {
    let routers = ordered_routers(results);
    let pollen = routers.iter().find(|r| r.name == POLLEN).copied();
    let baselines: Vec<Router<'_>> =
        if pollen.is_some() { routers.iter().filter(|r| r.name != POLLEN).copied().collect() } else { Vec::new() };

    let mut headers = vec!["figure".to_owned()];
    let mut columns = vec![Column::Plain];
    for r in &routers {
        headers.push(printable(r.name));
        columns.push(Column::Router { name: r.name.to_owned(), colour: r.colour });
    }
    for b in &baselines {
        headers.push(format!("pollen ÷ {}", printable(b.name)));
        columns.push(Column::Ratio);
    }

    let rows = if routers.is_empty() {
        Vec::new()
    } else {
        FIGURES
            .iter()
            .map(|f| {
                let mut row = vec![f.label.to_owned()];
                row.extend(routers.iter().map(|r| f.format(r.result)));
                for b in &baselines {
                    let cell = match (pollen, f.ratio) {
                        (Some(p), true) => fmt_ratio((f.value)(p.result), (f.value)(b.result)),
                        _ => String::new(),
                    };
                    row.push(cell);
                }
                row
            })
            .collect()
    };
    Grid { headers, rows, columns, empty: "no router results" }
}

/// Messages delivered and their median latency by hop count, one column per router.
pub(crate) fn hops_grid(results: &SimResults) -> Grid {
    let routers = ordered_routers(results);
    let hops: BTreeSet<u32> = routers.iter().flat_map(|r| r.result.by_hops.iter().map(|h| h.hops)).collect();
    let mut headers = vec!["hops".to_owned()];
    let mut columns = vec![Column::Plain];
    for r in &routers {
        headers.push(printable(r.name));
        columns.push(Column::Router { name: r.name.to_owned(), colour: r.colour });
    }
    let rows = hops
        .iter()
        .map(|&h| {
            let mut row = vec![h.to_string()];
            for r in &routers {
                // Several entries for one hop count should not happen; add them up if they do.
                let stats: Vec<_> = r.result.by_hops.iter().filter(|s| s.hops == h).collect();
                let cell = match stats.as_slice() {
                    [] => NONE.to_owned(),
                    [s] => format!("{} · {}", fmt_count(s.delivered as f64), fmt_secs(s.latency_median_s)),
                    many => {
                        let n: usize = many.iter().map(|s| s.delivered).sum();
                        format!("{} · {}", fmt_count(n as f64), NONE)
                    }
                };
                row.push(cell);
            }
            row
        })
        .collect();
    Grid { headers, rows, columns, empty: "no deliveries" }
}

/// Pollen's delivery and energy at each battery budget, in budget order.
pub(crate) fn sweep_grid(results: &SimResults) -> Grid {
    let headers = ["budget (%/h)", "delivery ratio", "energy (J/node/h)", "spent (%/h)"].map(str::to_owned).to_vec();
    let mut points = results.energy_sweep.clone();
    points.sort_by(|a, b| a.budget_pct_per_hour.total_cmp(&b.budget_pct_per_hour));
    let rows = points
        .iter()
        .map(|p| {
            vec![
                fmt_short(p.budget_pct_per_hour),
                fmt_pct(p.delivery_ratio),
                fmt_num(p.energy_j_per_node_hour),
                fmt_num(p.spent_pct_per_hour),
            ]
        })
        .collect();
    Grid { columns: vec![Column::Plain; headers.len()], headers, rows, empty: "energy sweep not run" }
}

/// One line describing the run: scenario, nodes, duration, seed, messages, contacts.
pub(crate) fn run_line(results: &SimResults) -> String {
    format!(
        "scenario {} · {} nodes · {} simulated · seed {} · {} messages · {} contacts",
        printable(&results.scenario),
        results.nodes,
        fmt_secs(results.duration_s),
        results.seed,
        fmt_count(results.messages as f64),
        fmt_count(results.contacts as f64)
    )
}

/// The terminal summary of a run: the run line, then figures by router (Pollen first, each baseline after, and Pollen's
/// delivery and overhead as ratios to each baseline), then latency by hop count, then the energy sweep.
///
/// Missing routers are left out, numbers that are not finite show as "—"; the output only depends on `results`.
pub fn summary_table(results: &SimResults) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", run_line(results));
    let _ = writeln!(out);
    let _ = writeln!(out, "Figures by router");
    out.push_str(&figures_grid(results).to_text());
    let _ = writeln!(out);
    let _ = writeln!(out, "By hop count (messages delivered · median latency)");
    out.push_str(&hops_grid(results).to_text());
    let _ = writeln!(out);
    let _ = writeln!(out, "Energy sweep (Pollen)");
    out.push_str(&sweep_grid(results).to_text());
    out
}
