//! Tests of the report on synthetic results.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::common::{FIGURES, ROUTER_ORDER};
use super::svg::{Axis, TickFmt};
use super::{html_report, plots, summary_table, write_report, ReportError, REPORT_FILE, RESULTS_FILE};
use crate::model::{Position, Snapshot};
use crate::results::{EnergyPoint, HopStat, RouterResult, SimResults};

/// A tiny deterministic generator (64-bit LCG) so the fixture needs no seeded RNG crate API.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn router(rng: &mut Lcg, ratio: f64, median_s: f64, tx_per_msg: f64, joules: f64, nodes: usize) -> RouterResult {
    let messages = 1_200usize;
    let duration = 6.0 * 3600.0;
    let delivered = (ratio * messages as f64).round() as usize;
    let mut latencies: Vec<f64> =
        (0..delivered).map(|_| -median_s / std::f64::consts::LN_2 * (1.0 - rng.unit()).ln()).collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    let tau = median_s * 1.8;
    let delivery_over_time =
        (1..=360).map(|m| (m as f64 * 60.0, ratio * (1.0 - (-(m as f64 * 60.0) / tau).exp()))).collect();
    let mut by_hops = Vec::new();
    let mut left = delivered;
    for hops in 1..=7u32 {
        let n = if hops == 7 { left } else { (left as f64 * 0.45).round() as usize };
        left -= n;
        if n > 0 {
            by_hops.push(HopStat { hops, delivered: n, latency_median_s: median_s * (0.4 + 0.35 * f64::from(hops)) });
        }
    }
    let energy_per_node_j: Vec<f64> = (0..nodes).map(|_| joules * (0.3 + 1.4 * rng.unit().powi(2))).collect();
    let total_e: f64 = energy_per_node_j.iter().sum();
    RouterResult {
        delivery_ratio: ratio,
        overhead: tx_per_msg,
        latency_median_s: at(0.5),
        latency_p95_s: at(0.95),
        duplicate_ratio: tx_per_msg / 10.0,
        energy_j_per_kb: total_e / (delivered.max(1) as f64 * 4.0),
        energy_j_per_node_hour: total_e / nodes as f64 / (duration / 3600.0),
        delivered,
        transmissions: (tx_per_msg * delivered as f64) as u64,
        latencies_s: latencies,
        delivery_over_time,
        by_hops,
        energy_per_node_j,
    }
}

/// Results with every router, a snapshot and a sweep, shaped like a real run.
pub(super) fn synthetic() -> SimResults {
    let mut rng = Lcg(7);
    let nodes = 300usize;
    let mut routers = BTreeMap::new();
    routers.insert("pollen".to_owned(), router(&mut rng, 0.82, 1_500.0, 6.5, 900.0, nodes));
    routers.insert("oracle".to_owned(), router(&mut rng, 0.95, 900.0, 1.0, 300.0, nodes));
    routers.insert("direct".to_owned(), router(&mut rng, 0.35, 5_400.0, 1.0, 150.0, nodes));
    routers.insert("spray_and_wait".to_owned(), router(&mut rng, 0.70, 2_100.0, 8.0, 1_000.0, nodes));
    let energy_sweep = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
        .iter()
        .map(|&b: &f64| EnergyPoint {
            budget_pct_per_hour: b,
            delivery_ratio: 0.9 * (1.0 - (-b / 3.0).exp()),
            energy_j_per_node_hour: 420.0 * b.min(8.0) * 0.95,
            spent_pct_per_hour: b.min(8.0) * 0.95,
        })
        .collect();
    let centres = [(300.0, 400.0), (1_500.0, 900.0), (1_000.0, 250.0)];
    let positions: Vec<Position> = (0..nodes)
        .map(|i| {
            let (cx, cy) = centres[i % centres.len()];
            let (r, a) = (260.0 * rng.unit().sqrt(), std::f64::consts::TAU * rng.unit());
            Position { x: cx + r * a.cos(), y: cy + r * a.sin() }
        })
        .collect();
    let mut links = Vec::new();
    for a in 0..nodes {
        for b in a + 1..nodes {
            let (pa, pb) = (positions[a], positions[b]);
            if (pa.x - pb.x).hypot(pa.y - pb.y) < 70.0 {
                links.push((a as u32, b as u32));
            }
        }
    }
    let roles = (0..nodes)
        .map(|i| match i % 10 {
            0 => "relay",
            1 => "rescuer",
            _ => "civilian",
        })
        .map(str::to_owned)
        .collect();
    SimResults {
        scenario: "festival".to_owned(),
        nodes: nodes as u32,
        duration_s: 6.0 * 3600.0,
        seed: 42,
        messages: 1_200,
        contacts: 54_321,
        routers,
        energy_sweep,
        snapshot: Some(Snapshot { t: 3 * 3600 * 1000, positions, links, roles }),
    }
}

/// Checks that every opened element is closed in order (void elements, `/>`, comments, doctype and the stylesheet's
/// text aside). Unescaped `<` in text shows up as a stray element and fails the check.
fn check_balanced(html: &str) -> Result<(), String> {
    const VOID: [&str; 4] = ["meta", "br", "link", "img"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").ok_or("unclosed comment")?.1;
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or_else(|| format!("</{name}> without opening tag"))?;
            if open != name.trim() {
                return Err(format!("<{open}> closed by </{name}>"));
            }
            continue;
        }
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("").to_ascii_lowercase();
        if name.is_empty() || name.contains(|c: char| !c.is_ascii_alphanumeric()) {
            return Err(format!("bad tag <{tag}>"));
        }
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        if name == "style" {
            rest = rest.split_once("</style>").ok_or("unclosed style")?.1;
            continue;
        }
        stack.push(name);
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

#[test]
fn table_names_every_router_and_figure() {
    let table = summary_table(&synthetic());
    for name in ROUTER_ORDER {
        assert!(table.contains(name), "{name} missing:\n{table}");
    }
    for f in FIGURES {
        assert!(table.contains(f.label), "{} missing:\n{table}", f.label);
    }
    for baseline in ["oracle", "direct", "spray_and_wait"] {
        assert!(table.contains(&format!("pollen ÷ {baseline}")), "ratio to {baseline} missing:\n{table}");
    }
    assert!(table.contains("budget (%/h)") && table.contains("hops"));
    // Pollen is the first router column.
    let header = table.lines().find(|l| l.trim_start().starts_with("figure")).expect("header line");
    let pos = |s: &str| header.find(s).unwrap_or(usize::MAX);
    assert!(pos("pollen") < pos("oracle") && pos("oracle") < pos("direct") && pos("direct") < pos("spray_and_wait"));
    // Delivery ratio 0.82 ÷ 0.95.
    assert!(table.contains("0.863×"), "{table}");
}

#[test]
fn html_has_one_svg_per_plot_and_is_balanced() {
    let html = html_report(&synthetic());
    // Delivery over time, latency CDF, delivered by hops, latency by hops, energy per node, energy sweep, map.
    assert_eq!(html.matches("<svg ").count(), 7);
    assert_eq!(html.matches("</svg>").count(), 7);
    check_balanced(&html).unwrap();
    assert!(!html.contains("<script"), "no scripts");
    assert_eq!(html.matches("http://").count(), 7, "only the SVG namespace");
    assert!(!html.contains("https://"));
    for label in ["Pollen", "Oracle", "Direct", "Spray and wait", "civilian", "rescuer", "relay"] {
        assert!(html.contains(label), "{label} missing");
    }
}

#[test]
fn html_escapes_text() {
    let mut r = synthetic();
    r.scenario = "<script>alert('x')</script> & co".to_owned();
    if let Some(s) = r.snapshot.as_mut() {
        s.roles[0] = "<b>boss</b>".to_owned();
    }
    let stats = r.routers["direct"].clone();
    r.routers.insert("my<router>".to_owned(), stats);
    let html = html_report(&r);
    assert!(!html.contains("<script>"));
    assert!(!html.contains("<b>"));
    assert!(!html.contains("my<router>"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
    check_balanced(&html).unwrap();
    // A fifth router gets a column and a line too.
    assert!(summary_table(&r).contains("pollen ÷ my<router>"));
}

#[test]
fn output_is_deterministic() {
    let a = synthetic();
    let b = synthetic();
    assert_eq!(html_report(&a), html_report(&b));
    assert_eq!(html_report(&a), html_report(&a));
    assert_eq!(summary_table(&a), summary_table(&b));
}

#[test]
fn long_series_are_downsampled() {
    let mut r = synthetic();
    for result in r.routers.values_mut() {
        result.delivery_over_time = (0..100_000).map(|i| (f64::from(i) * 0.2, f64::from(i) / 100_000.0)).collect();
        result.latencies_s = (0..50_000).map(f64::from).collect();
    }
    for svg in [plots::delivery_over_time(&r), plots::latency_cdf(&r)] {
        for path in svg.split("class=\"ln\" d=\"").skip(1) {
            let d = path.split('"').next().unwrap_or("");
            assert!(d.matches('L').count() < plots::MAX_POINTS, "{} points", d.matches('L').count());
        }
    }
    assert!(html_report(&r).len() < 1_500_000, "report too big");
}

fn degenerate_cases() -> Vec<(&'static str, SimResults)> {
    let base = synthetic();
    let mut cases = Vec::new();

    let mut none = base.clone();
    none.routers.clear();
    none.energy_sweep.clear();
    none.snapshot = None;
    cases.push(("no routers", none));

    let mut zero = base.clone();
    for r in zero.routers.values_mut() {
        *r = RouterResult {
            delivery_ratio: 0.0,
            overhead: f64::INFINITY,
            latency_median_s: f64::NAN,
            latency_p95_s: f64::NAN,
            duplicate_ratio: f64::NAN,
            energy_j_per_kb: f64::INFINITY,
            energy_j_per_node_hour: 0.0,
            delivered: 0,
            transmissions: 0,
            latencies_s: Vec::new(),
            delivery_over_time: Vec::new(),
            by_hops: Vec::new(),
            energy_per_node_j: Vec::new(),
        };
    }
    cases.push(("no deliveries", zero));

    let mut one = base.clone();
    one.nodes = 1;
    one.duration_s = 0.0;
    one.messages = 0;
    one.snapshot = Some(Snapshot {
        t: 0,
        positions: vec![Position { x: 5.0, y: 5.0 }],
        links: vec![(0, 0), (0, 9)],
        roles: Vec::new(),
    });
    one.energy_sweep.truncate(1);
    one.routers.remove("oracle");
    cases.push(("one node", one));

    let mut nan = base.clone();
    nan.duration_s = f64::NAN;
    for r in nan.routers.values_mut() {
        r.latencies_s.push(f64::NAN);
        r.delivery_over_time.push((f64::NAN, f64::INFINITY));
        r.energy_per_node_j[0] = f64::NAN;
        r.by_hops.push(HopStat { hops: 3, delivered: 1, latency_median_s: f64::NAN });
        r.delivery_ratio = f64::NAN;
    }
    nan.energy_sweep[0].delivery_ratio = f64::NAN;
    if let Some(s) = nan.snapshot.as_mut() {
        s.positions[0] = Position { x: f64::NAN, y: f64::INFINITY };
        s.positions.truncate(3);
    }
    cases.push(("NaN everywhere", nan));

    let mut no_pollen = base.clone();
    no_pollen.routers.remove("pollen");
    no_pollen.snapshot = Some(Snapshot { t: 0, positions: Vec::new(), links: Vec::new(), roles: Vec::new() });
    cases.push(("no pollen, empty snapshot", no_pollen));

    let mut huge = base;
    huge.duration_s = 1e300;
    for r in huge.routers.values_mut() {
        r.energy_per_node_j = vec![1e308, -1e308, 0.0];
        r.latencies_s = vec![-5.0, 1e300];
    }
    cases.push(("extreme values", huge));
    cases
}

#[test]
fn degenerate_inputs_do_not_panic() {
    for (name, r) in degenerate_cases() {
        let table = summary_table(&r);
        let html = html_report(&r);
        check_balanced(&html).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!html.contains("NaN") && !html.contains("inf"), "{name}: non-finite number printed");
        assert!(!table.contains("NaN") && !table.contains("inf"), "{name}: non-finite number printed:\n{table}");
        let svgs = html.matches("<svg ").count();
        let expected = if r.snapshot.is_some() { 7 } else { 6 };
        assert_eq!(svgs, expected, "{name}");
    }
}

#[test]
fn nice_axes() {
    let a = Axis::nice(0.0, 97.0, "x", TickFmt::Number);
    assert_eq!((a.lo, a.hi, a.step), (0.0, 100.0, 20.0));
    assert_eq!(a.ticks.len(), 6);
    let b = Axis::nice(5.0, 5.0, "x", TickFmt::Number);
    assert!(b.lo < 5.0 && b.hi > 5.0);
    let c = Axis::nice(f64::NAN, 1.0, "x", TickFmt::Number);
    assert_eq!((c.lo, c.hi), (0.0, 1.0));
    assert_eq!(Axis::nice(0.0, 0.3, "x", TickFmt::Number).tick_label(0.1), "0.10");
    assert_eq!(Axis::nice(0.0, 40_000.0, "x", TickFmt::Number).tick_label(20_000.0), "20k");
    assert_eq!(Axis::percent("p").tick_label(0.4), "40 %");
    let wide = Axis::nice(-1e308, 1e308, "x", TickFmt::Number);
    assert!(wide.ticks.iter().all(|t| t.is_finite()) && wide.lo < wide.hi);
    let t = Axis::log_duration(3.0, 5_000.0, "t");
    assert_eq!((t.lo, t.hi), (2.0, 7_200.0));
    let labels: Vec<String> = t.ticks.iter().map(|&v| t.tick_label(v)).collect();
    assert_eq!(labels, ["2 s", "10 s", "1 min", "10 min", "1 h"]);
}

fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pollen-sim-report-{name}-{}", std::process::id()))
}

#[test]
fn write_report_writes_html_and_json() {
    let dir = scratch_dir("write").join("nested");
    let r = synthetic();
    let path = write_report(&dir, &r).unwrap();
    assert_eq!(path, dir.join(REPORT_FILE));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), html_report(&r));
    let json = std::fs::read_to_string(dir.join(RESULTS_FILE)).unwrap();
    let back: SimResults = serde_json::from_str(&json).unwrap();
    assert_eq!(back.scenario, r.scenario);
    assert_eq!(back.routers.len(), 4);
    assert_eq!(back.energy_sweep, r.energy_sweep);
    // Writing again replaces the files.
    write_report(&dir, &r).unwrap();
    let _ = std::fs::remove_dir_all(scratch_dir("write"));
}

#[test]
fn write_report_error_names_the_path() {
    let file = scratch_dir("blocker");
    std::fs::write(&file, b"not a directory").unwrap();
    let dir = file.join("report");
    let err = write_report(&dir, &synthetic()).unwrap_err();
    assert!(matches!(err, ReportError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
    let _ = std::fs::remove_file(&file);
}
