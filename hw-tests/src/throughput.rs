//! The throughput matrix: bulk goodput each way between two fresh nodes over GATT at each ATT MTU cap of
//! [`MTU_CAPS`] and over L2CAP CoC, with the ATT MTU and PHY the link actually used.
//!
//! Each case becomes a [`ScenarioReport`] named `throughput_gatt_mtu185`, `throughput_l2cap` …, carrying its figures
//! as metrics (`goodput_ab_bps`, `goodput_ba_bps`, `mtu_requested`, `att_mtu`, and on labs that model the link
//! `capacity_bps`, `efficiency_ab`, `efficiency_ba`) and labels (`path`, `phy`; `phy = "unknown"` when the lab
//! cannot observe it). [`markdown_table`] turns such reports into the table by path, MTU and PHY.

use std::collections::BTreeMap;

use pollen_ble::session::Bearer;
use tokio::time::Instant;

use crate::lab::{Lab, NodeSpec};
use crate::report::{md_cell, Outcome, ScenarioReport};
use crate::suite::{await_bearer, bulk, check, pair, Metrics};
use crate::LabError;

/// ATT MTU caps of the GATT rows: the default, iOS's usual value, a common Android value and the maximum.
pub const MTU_CAPS: [u16; 4] = [23, 185, 247, 517];

/// Bytes moved each way per case unless told otherwise.
pub const DEFAULT_BYTES: u64 = 1024 * 1024;

/// Name prefix of every throughput report.
pub const PREFIX: &str = "throughput_";

/// Label value for a PHY the lab cannot observe.
pub const UNKNOWN: &str = "unknown";

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// GATT or L2CAP CoC.
    pub bearer: Bearer,
    /// The ATT MTU both nodes are capped to (`None`: what the lab negotiates by itself).
    pub mtu_cap: Option<u16>,
}

impl Case {
    /// The report name: `throughput_gatt_mtu185`, `throughput_l2cap`.
    pub fn name(&self) -> String {
        match self.mtu_cap {
            Some(cap) => format!("{PREFIX}{}_mtu{cap}", self.bearer.label()),
            None => format!("{PREFIX}{}", self.bearer.label()),
        }
    }
}

/// The matrix: GATT at every cap of [`MTU_CAPS`], then L2CAP CoC at the lab's own MTU.
pub fn matrix() -> Vec<Case> {
    let gatt = MTU_CAPS.iter().map(|&cap| Case { bearer: Bearer::Gatt, mtu_cap: Some(cap) });
    gatt.chain(std::iter::once(Case { bearer: Bearer::L2capCoc, mtu_cap: None })).collect()
}

/// Runs every case whose name contains `filter` (all when `None`), `bytes` each way, on a freshly reset lab each;
/// hands each report to `on_report` as it finishes.
pub async fn run_matrix<L: Lab>(
    lab: &mut L,
    bytes: u64,
    filter: Option<&str>,
    mut on_report: impl FnMut(&ScenarioReport),
) -> Vec<ScenarioReport> {
    let mut reports = Vec::new();
    for case in matrix().into_iter().filter(|c| filter.is_none_or(|f| c.name().contains(f))) {
        let report = run_case(lab, case, bytes).await;
        tracing::info!("{report}");
        on_report(&report);
        reports.push(report);
    }
    reports
}

/// Runs one case on a freshly reset lab.
pub async fn run_case<L: Lab>(lab: &mut L, case: Case, bytes: u64) -> ScenarioReport {
    let start = Instant::now();
    let mut metrics = Metrics::new();
    let mut labels = BTreeMap::from([
        ("path".to_string(), case.bearer.label().to_string()),
        ("phy".to_string(), UNKNOWN.to_string()),
    ]);
    if let Some(cap) = case.mtu_cap {
        metrics.insert("mtu_requested".into(), f64::from(cap));
    }
    let result = match lab.reset().await {
        Err(e) => Err(e),
        Ok(()) => measure(lab, case, bytes, &mut metrics, &mut labels).await,
    };
    let outcome = match result {
        Ok(()) => Outcome::Pass,
        Err(LabError::Unsupported(why)) => Outcome::Skip(why),
        Err(e) => Outcome::Fail(e.to_string()),
    };
    ScenarioReport {
        name: case.name(),
        lab: lab.name().to_string(),
        outcome,
        seconds: start.elapsed().as_secs_f64(),
        metrics,
        labels,
    }
}

async fn measure<L: Lab>(
    lab: &mut L,
    case: Case,
    bytes: u64,
    metrics: &mut Metrics,
    labels: &mut BTreeMap<String, String>,
) -> Result<(), LabError> {
    let l2cap = case.bearer == Bearer::L2capCoc;
    if l2cap && !lab.caps().l2cap {
        return Err(LabError::Unsupported("the lab's nodes cannot use L2CAP CoC".into()));
    }
    let spec = NodeSpec { max_att_mtu: case.mtu_cap, l2cap };
    let (mut a, mut b) = pair(lab, l2cap, [spec.clone(), spec]).await?;
    await_bearer(lab, &a, case.bearer).await?;
    let forward = bulk(lab, &a, &mut b, bytes).await?;
    metrics.insert("goodput_ab_bps".into(), forward);
    let backward = bulk(lab, &b, &mut a, bytes).await?;
    metrics.insert("goodput_ba_bps".into(), backward);
    // Read the link after the transfers: by then every MTU exchange has settled.
    let link = a.live_links().first().map(|l| l.link).ok_or_else(|| LabError::Check("no live link".into()))?;
    let radio = lab.link_radio(0, link);
    if let Some(phy) = radio.phy {
        labels.insert("phy".into(), phy.label().to_string());
    }
    if let Some(mtu) = radio.att_mtu {
        metrics.insert("att_mtu".into(), f64::from(mtu));
    }
    if let Some(params) = radio.params {
        let capacity = params.capacity_bps(case.bearer);
        metrics.insert("capacity_bps".into(), capacity);
        if capacity > 0.0 {
            metrics.insert("efficiency_ab".into(), forward / capacity);
            metrics.insert("efficiency_ba".into(), backward / capacity);
        }
    }
    if let (Some(cap), Some(mtu)) = (case.mtu_cap, radio.att_mtu) {
        check(mtu <= cap, || format!("the link uses ATT MTU {mtu}, above the cap of {cap}"))?;
    }
    Ok(())
}

/// Whether `report` is a row of the throughput matrix.
pub fn is_throughput(report: &ScenarioReport) -> bool {
    report.name.starts_with(PREFIX)
}

/// The throughput table over `rows` (`(first column, report)`; reports that are not throughput rows are left out),
/// or `None` when there are none. `first` names the first column, e.g. `host` or `lab`.
pub fn markdown_table(first: &str, rows: &[(&str, &ScenarioReport)]) -> Option<String> {
    let rows: Vec<_> = rows.iter().filter(|(_, r)| is_throughput(r)).collect();
    if rows.is_empty() {
        return None;
    }
    let mut out = format!(
        "| {} | lab | path | MTU requested | ATT MTU | PHY | a→b kbit/s | b→a kbit/s | a→b ÷ model | result |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        md_cell(first)
    );
    for (key, r) in rows {
        let metric = |k: &str| r.metrics.get(k).copied();
        let label = |k: &str| r.labels.get(k).map_or_else(|| UNKNOWN.to_string(), |v| md_cell(v));
        let kbps = |k: &str| metric(k).map_or_else(|| "—".to_string(), |v| format!("{:.1}", v / 1000.0));
        let whole = |k: &str| metric(k).map_or_else(|| "—".to_string(), |v| format!("{v:.0}"));
        let requested = match metric("mtu_requested") {
            Some(v) => format!("{v:.0}"),
            None => "default".to_string(),
        };
        let result = match &r.outcome {
            Outcome::Pass => "PASS".to_string(),
            Outcome::Fail(why) => format!("FAIL: {}", md_cell(why)),
            Outcome::Skip(why) => format!("SKIP: {}", md_cell(why)),
        };
        let ratio = metric("efficiency_ab").map_or_else(|| "—".to_string(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "| {} | {} | {} | {requested} | {} | {} | {} | {} | {ratio} | {result} |\n",
            md_cell(key),
            md_cell(&r.lab),
            label("path"),
            whole("att_mtu"),
            label("phy"),
            kbps("goodput_ab_bps"),
            kbps("goodput_ba_bps"),
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_covers_every_cap_and_l2cap() {
        let names: Vec<String> = matrix().iter().map(Case::name).collect();
        assert_eq!(
            names,
            [
                "throughput_gatt_mtu23",
                "throughput_gatt_mtu185",
                "throughput_gatt_mtu247",
                "throughput_gatt_mtu517",
                "throughput_l2cap"
            ]
        );
    }

    fn row(name: &str, outcome: Outcome, metrics: &[(&str, f64)], labels: &[(&str, &str)]) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            lab: "sim".into(),
            outcome,
            seconds: 1.0,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn the_table_shows_path_mtu_phy_and_goodput() {
        let pass = row(
            "throughput_gatt_mtu185",
            Outcome::Pass,
            &[
                ("mtu_requested", 185.0),
                ("att_mtu", 185.0),
                ("goodput_ab_bps", 1_200_000.0),
                ("goodput_ba_bps", 1_100_000.0),
                ("efficiency_ab", 0.8567),
            ],
            &[("path", "gatt"), ("phy", "2M")],
        );
        let bluez = row(
            "throughput_l2cap",
            Outcome::Pass,
            &[("goodput_ab_bps", 300_000.0), ("goodput_ba_bps", 250_000.0)],
            &[("path", "l2cap"), ("phy", "unknown")],
        );
        let failed = row(
            "throughput_gatt_mtu23",
            Outcome::Fail("timed out | late".into()),
            &[("mtu_requested", 23.0)],
            &[("path", "gatt")],
        );
        let other = row("discover_handshake", Outcome::Pass, &[], &[]);
        let rows = [("h1", &pass), ("h2", &bluez), ("h3", &failed), ("h1", &other)];
        let table = markdown_table("host", &rows).expect("throughput rows");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[0].starts_with("| host | lab | path | MTU requested | ATT MTU | PHY | a→b kbit/s | b→a kbit/s"));
        assert_eq!(lines[2], "| h1 | sim | gatt | 185 | 185 | 2M | 1200.0 | 1100.0 | 0.857 | PASS |");
        assert_eq!(lines[3], "| h2 | sim | l2cap | default | — | unknown | 300.0 | 250.0 | — | PASS |");
        assert_eq!(lines[4], "| h3 | sim | gatt | 23 | — | unknown | — | — | — | FAIL: timed out \\| late |");
        assert_eq!(markdown_table("host", &[("h1", &other)]), None);
    }
}
