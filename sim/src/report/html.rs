//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, no external assets).

use std::fmt::Write as _;

use super::common::{escape, fmt_count, fmt_secs, ordered_routers, FIGURES, POLLEN};
use super::energy::{energy_per_node, energy_sweep};
use super::map::{caption, map};
use super::plots::{by_hops, delivery_over_time, latency_cdf, HopFigure};
use super::table::{figures_grid, hops_grid, sweep_grid, Column, Grid};
use crate::results::SimResults;

const STYLE: &str = "\
*{box-sizing:border-box}
body{margin:0;background:#f5f5f3;color:#1f1f1f;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 28px 40px}
h1{font-size:26px;margin:0 0 2px}
h2{font-size:19px;margin:0 0 12px}
h3{font-size:15px;margin:18px 0 8px}
.sub{color:#666;margin:0}
.facts{display:flex;flex-wrap:wrap;gap:10px 34px;margin:16px 0 0}
.facts div{min-width:90px}
.facts dt{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#777}
.facts dd{margin:0;font-size:18px;font-weight:600;font-variant-numeric:tabular-nums}
section{background:#fff;border:1px solid #e2e2de;border-radius:10px;padding:18px 22px;margin:18px 0}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:22px 28px}
.wide{grid-column:1/-1}
figure{margin:0}
figcaption{font-weight:600;margin:0 0 4px}
figcaption span{font-weight:400;color:#666;font-size:13px}
svg{width:100%;height:auto;display:block}
.map svg{max-width:1000px}
svg text{font-family:inherit;font-size:12px;fill:#333}
svg .tick{font-size:11.5px;fill:#555}
svg .lab{font-size:12.5px;fill:#333}
svg .ttl{font-size:13px;font-weight:600;fill:#222}
svg .note{font-size:15px;fill:#999}
svg .grid{stroke:#ebebeb;stroke-width:1;fill:none}
svg .ax{stroke:#888;stroke-width:1;fill:none}
svg .ln{fill:none;stroke-width:2.2;stroke-linejoin:round}
svg .link{stroke:#9a9a9a;stroke-opacity:.55;stroke-width:.8;fill:none}
svg .dots{fill:none;stroke-linecap:round}
.tables{display:flex;flex-wrap:wrap;gap:8px 48px;align-items:flex-start}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:14px}
th,td{padding:5px 12px;border-bottom:1px solid #ececea;text-align:right;white-space:nowrap}
th{font-weight:600;background:#fafaf8;border-bottom:2px solid #d9d9d5}
th:first-child,td:first-child{text-align:left}
td.pollen{background:#fff4ec;font-weight:600}
td.ratio,th.ratio{color:#7a3b00;background:#fdfaf5}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
.defs{columns:2 380px;color:#555;font-size:13px;margin:12px 0 0;padding:0}
.defs dt{font-weight:600;display:inline}
.defs dd{display:inline;margin:0}
.defs div{margin:0 0 3px;break-inside:avoid}
footer{color:#888;font-size:12px;text-align:center}
";

/// The report of a run as one self-contained HTML page: a header with the run's parameters, the summary tables and
/// inline SVG plots (delivery over time, latency CDF, delivery and latency by hop count, energy per node, the energy
/// sweep and, when the run has one, the map snapshot).
///
/// All text from `results` is escaped. The output depends only on `results` (no clock, no hash-map order), so
/// identical results give byte-identical pages.
pub fn html_report(results: &SimResults) -> String {
    let scenario = escape(&results.scenario);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Pollen simulation: {scenario}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n"
    );
    header(&mut out, results);

    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
    out.push_str(
        "<p class=\"sub\">Pollen against each baseline on the same contacts; \
         the ratio columns are Pollen's figure divided by the baseline's.</p>\n",
    );
    grid_html(&mut out, &figures_grid(results));
    out.push_str("<dl class=\"defs\">\n");
    for f in &FIGURES {
        let _ = writeln!(out, "<div><dt>{}:</dt> <dd>{}.</dd></div>", escape(f.label), escape(f.help));
    }
    out.push_str("</dl>\n<div class=\"tables\">\n<div>\n<h3>By hop count (messages delivered · median latency)</h3>\n");
    grid_html(&mut out, &hops_grid(results));
    out.push_str("</div>\n<div>\n<h3>Energy sweep (Pollen)</h3>\n");
    grid_html(&mut out, &sweep_grid(results));
    out.push_str("</div>\n</div>\n</section>\n");

    section_start(&mut out, "delivery", "Delivery and latency");
    figure(
        &mut out,
        "Delivery over time",
        "share of all created messages delivered so far",
        &delivery_over_time(results),
    );
    figure(&mut out, "Latency CDF", "delivered messages only", &latency_cdf(results));
    section_end(&mut out);

    section_start(&mut out, "hops", "By hop count");
    figure(&mut out, "Messages delivered by hop count", "", &by_hops(results, HopFigure::Delivered));
    figure(&mut out, "Median latency by hop count", "", &by_hops(results, HopFigure::Latency));
    section_end(&mut out);

    section_start(&mut out, "energy", "Energy");
    wide_figure(
        &mut out,
        "Energy per node",
        "each router on the same scale, nodes sorted from most to least energy",
        &energy_per_node(results),
    );
    figure(
        &mut out,
        "Delivery versus energy",
        "Pollen's delivery ratio at each battery budget (%/h); diamonds are this run's routers",
        &energy_sweep(results),
    );
    section_end(&mut out);

    out.push_str("<section id=\"map\" class=\"map\">\n<h2>Map</h2>\n");
    match &results.snapshot {
        Some(s) => {
            let _ = write!(
                out,
                "<figure>\n<figcaption>Map snapshot <span>{}; colour is role, grey lines are links in range</span>\
                 </figcaption>\n{}\n</figure>\n",
                escape(&caption(s)),
                map(s)
            );
        }
        None => out.push_str("<p class=\"sub\">No map: this run has no positions (contact-trace input).</p>\n"),
    }
    out.push_str("</section>\n");

    let _ = write!(
        out,
        "<footer>pollen-sim {} · figures from results.json of the same run</footer>\n</main>\n</body>\n</html>\n",
        escape(env!("CARGO_PKG_VERSION"))
    );
    out
}

fn header(out: &mut String, results: &SimResults) {
    let routers: Vec<String> = ordered_routers(results).iter().map(|r| r.label()).collect();
    let _ = write!(
        out,
        "<header>\n<h1>Pollen simulation: {}</h1>\n<p class=\"sub\">{}</p>\n<dl class=\"facts\">\n",
        escape(&results.scenario),
        escape(&if routers.is_empty() {
            "No router results".to_owned()
        } else {
            format!("Routers: {}", routers.join(" · "))
        })
    );
    let facts = [
        ("Scenario", escape(&results.scenario)),
        ("Nodes", fmt_count(f64::from(results.nodes))),
        ("Duration", escape(&fmt_secs(results.duration_s))),
        ("Seed", results.seed.to_string()),
        ("Messages", fmt_count(results.messages as f64)),
        ("Contacts", fmt_count(results.contacts as f64)),
    ];
    for (k, v) in facts {
        let _ = writeln!(out, "<div><dt>{k}</dt><dd>{v}</dd></div>");
    }
    out.push_str("</dl>\n</header>\n");
}

fn section_start(out: &mut String, id: &str, title: &str) {
    let _ = write!(out, "<section id=\"{}\">\n<h2>{}</h2>\n<div class=\"plots\">\n", escape(id), escape(title));
}

fn section_end(out: &mut String) {
    out.push_str("</div>\n</section>\n");
}

fn figure(out: &mut String, title: &str, sub: &str, svg: &str) {
    figure_with_class(out, "", title, sub, svg);
}

/// A figure spanning the whole row of the plot grid.
fn wide_figure(out: &mut String, title: &str, sub: &str, svg: &str) {
    figure_with_class(out, " class=\"wide\"", title, sub, svg);
}

fn figure_with_class(out: &mut String, class: &str, title: &str, sub: &str, svg: &str) {
    let sub = if sub.is_empty() { String::new() } else { format!(" <span>{}</span>", escape(sub)) };
    let _ = write!(out, "<figure{class}>\n<figcaption>{}{sub}</figcaption>\n{svg}\n</figure>\n", escape(title));
}

/// A [`Grid`] as an HTML table, router columns headed by their colour, Pollen's column and the ratios shaded.
fn grid_html(out: &mut String, grid: &Grid) {
    if grid.rows.is_empty() {
        let _ = writeln!(out, "<p class=\"sub\">({})</p>", escape(grid.empty));
        return;
    }
    out.push_str("<div class=\"scroll\">\n<table>\n<thead><tr>");
    for (h, column) in grid.headers.iter().zip(&grid.columns) {
        let _ = match column {
            Column::Router { colour, .. } => {
                write!(out, "<th><span class=\"sw\" style=\"background:{}\"></span>{}</th>", escape(colour), escape(h))
            }
            Column::Ratio => write!(out, "<th class=\"ratio\">{}</th>", escape(h)),
            Column::Plain => write!(out, "<th>{}</th>", escape(h)),
        };
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &grid.rows {
        out.push_str("<tr>");
        for (cell, column) in row.iter().zip(&grid.columns) {
            let class = match column {
                Column::Router { name, .. } if name == POLLEN => " class=\"pollen\"",
                Column::Ratio => " class=\"ratio\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}
