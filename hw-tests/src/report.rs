//! Scenario outcomes and their text, JSON and Markdown forms.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    /// All checks held.
    Pass,
    /// A check failed, with why.
    Fail(String),
    /// The lab cannot run it, with why.
    Skip(String),
}

/// One scenario's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// Lab name.
    pub lab: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Lab time the scenario took, seconds.
    pub seconds: f64,
    /// Measured figures (goodput in bit/s, times in seconds, counts).
    pub metrics: BTreeMap<String, f64>,
    /// Facts that are not numbers, e.g. `phy = "2M"` or `path = "gatt"` of a throughput row.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl fmt::Display for ScenarioReport {
    /// The line the lab runners parse: `PASS name (lab) 12.3s key=value …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, detail) = match &self.outcome {
            Outcome::Pass => ("PASS", String::new()),
            Outcome::Fail(why) => ("FAIL", format!(" — {why}")),
            Outcome::Skip(why) => ("SKIP", format!(" — {why}")),
        };
        write!(f, "{word} {} ({}) {:.1}s", self.name, self.lab, self.seconds)?;
        for (k, v) in &self.metrics {
            write!(f, " {k}={v:.1}")?;
        }
        for (k, v) in &self.labels {
            write!(f, " {k}={v}")?;
        }
        write!(f, "{detail}")
    }
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl Tally {
    /// Counts `reports`.
    pub fn of(reports: &[ScenarioReport]) -> Self {
        let mut t = Tally::default();
        for r in reports {
            match r.outcome {
                Outcome::Pass => t.passed += 1,
                Outcome::Fail(_) => t.failed += 1,
                Outcome::Skip(_) => t.skipped += 1,
            }
        }
        t
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// Markdown for a run: the table of scenarios, then (when the run measured any) the throughput table by path, MTU
/// and PHY.
pub fn markdown(reports: &[ScenarioReport]) -> String {
    let mut out = scenario_table(reports);
    let rows: Vec<(&str, &ScenarioReport)> = reports.iter().map(|r| (r.lab.as_str(), r)).collect();
    if let Some(table) = crate::throughput::markdown_table("lab", &rows) {
        out.push('\n');
        out.push_str(&table);
    }
    out
}

/// Makes `text` safe inside a Markdown table cell: no column breaks, no line breaks.
pub fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// A Markdown table of reports: one row per scenario and lab, with goodput columns in kbit/s.
pub fn scenario_table(reports: &[ScenarioReport]) -> String {
    let mut out = String::from("| scenario | lab | result | seconds | figures |\n|---|---|---|---|---|\n");
    for r in reports {
        let result = match &r.outcome {
            Outcome::Pass => "PASS".to_string(),
            Outcome::Fail(why) => format!("FAIL: {}", md_cell(why)),
            Outcome::Skip(why) => format!("SKIP: {}", md_cell(why)),
        };
        let mut figures: Vec<String> = r
            .metrics
            .iter()
            .map(|(k, v)| match k.strip_suffix("_bps") {
                Some(name) => format!("{name} {:.1} kbit/s", v / 1000.0),
                None => format!("{k} {v:.2}"),
            })
            .collect();
        figures.extend(r.labels.iter().map(|(k, v)| format!("{k} {}", md_cell(v))));
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} |\n",
            md_cell(&r.name),
            md_cell(&r.lab),
            result,
            r.seconds,
            figures.join(", ")
        ));
    }
    out
}
