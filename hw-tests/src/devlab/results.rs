//! What a device-lab run found: per host the reports, a tally and the errors; `devlab.json` and `devlab.md`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::config::{Backend, HostConfig};
use crate::report::{md_cell, scenario_table, Outcome, ScenarioReport, Tally};
use crate::throughput;

/// Prefix of the rows the runner adds for its own failures (`devlab_connect`, `devlab_suite`, …).
pub const RUNNER_ROW_PREFIX: &str = "devlab_";

/// A command the runner runs on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reaching the host (`ssh … true`, `<exec prefix> true`).
    Connect,
    /// Copying the binary (scp).
    Upload,
    /// `pollen-hw-tests --version`.
    Binary,
    /// `pollen-hw-tests suite`.
    Suite,
    /// `pollen-hw-tests throughput`.
    Throughput,
}

impl Step {
    /// Short name, also the suffix of its failure row (`devlab_suite`).
    pub fn name(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Upload => "upload",
            Step::Binary => "binary",
            Step::Suite => "suite",
            Step::Throughput => "throughput",
        }
    }
}

/// How a command on a host ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// Exit status (`None`: killed by a signal or by the runner's timeout).
    pub status: Option<i32>,
    /// Whether the runner stopped it at its time limit.
    pub timed_out: bool,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// The last lines it wrote to stderr.
    pub stderr_tail: Vec<String>,
}

impl Captured {
    /// `exit status 2`, `killed by a signal`, ….
    pub fn status_text(&self) -> String {
        match self.status {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_string(),
        }
    }

    /// The last few stderr lines joined, for error messages.
    pub fn stderr_summary(&self, lines: usize) -> String {
        let tail = &self.stderr_tail[self.stderr_tail.len().saturating_sub(lines)..];
        let text = tail.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" / ");
        if text.is_empty() {
            "no output on stderr".to_string()
        } else {
            text
        }
    }
}

/// One host's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    /// The host's name in `lab.toml`.
    pub name: String,
    /// How it was reached (`ssh pi@pi4`, `exec ip netns exec pollen-h1`, `local`).
    pub target: String,
    /// The backend it ran.
    pub backend: Backend,
    /// Whether the runner reached it at all.
    pub reachable: bool,
    /// What `pollen-hw-tests --version` said there.
    pub version: Option<String>,
    /// Wall-clock time spent on the host, seconds.
    pub seconds: f64,
    /// Counts over `reports`, the runner's failure rows included.
    pub tally: Tally,
    /// Everything that went wrong outside a scenario (each also a FAIL row in `reports`).
    pub errors: Vec<String>,
    /// Scenario and throughput reports, then the runner's failure rows.
    pub reports: Vec<ScenarioReport>,
}

impl HostResult {
    /// An empty result for `host`, assumed reachable until a step says otherwise.
    pub fn new(host: &HostConfig) -> Self {
        Self {
            name: host.name.clone(),
            target: host.reach.describe(),
            backend: host.backend,
            reachable: true,
            version: None,
            seconds: 0.0,
            tally: Tally::default(),
            errors: Vec::new(),
            reports: Vec::new(),
        }
    }

    /// Records a failure of `step` outside any scenario: an error and a FAIL row `devlab_<step>`.
    pub fn fail(&mut self, step: Step, message: String) {
        let message = format!("{}: {message}", step.name());
        self.reports.push(ScenarioReport {
            name: format!("{RUNNER_ROW_PREFIX}{}", step.name()),
            lab: self.name.clone(),
            outcome: Outcome::Fail(message.clone()),
            seconds: 0.0,
            metrics: Default::default(),
            labels: Default::default(),
        });
        self.errors.push(message);
        self.tally = Tally::of(&self.reports);
    }

    /// Marks the host unreachable, with why.
    pub fn unreachable(&mut self, message: String) {
        self.reachable = false;
        self.fail(Step::Connect, format!("unreachable: {message}"));
    }

    /// Takes in the output of a `suite` or `throughput` run with `--json -`: its reports when stdout holds them, and
    /// a failure row when the run went wrong in a way its reports do not show (no JSON, a crash, a timeout, status 1
    /// without a failed scenario, or no scenario at all).
    pub fn absorb(&mut self, step: Step, run: &Captured) {
        if run.timed_out {
            self.fail(step, format!("timed out; last output: {}", run.stderr_summary(3)));
            return;
        }
        let reports: Vec<ScenarioReport> = match serde_json::from_slice(&run.stdout) {
            Ok(reports) => reports,
            Err(e) => {
                let why = format!("no JSON report on stdout ({}; {e}): {}", run.status_text(), run.stderr_summary(3));
                self.fail(step, why);
                return;
            }
        };
        let failed = reports.iter().any(|r| matches!(r.outcome, Outcome::Fail(_)));
        let empty = reports.is_empty();
        self.reports.extend(reports);
        self.tally = Tally::of(&self.reports);
        match run.status {
            _ if empty => self.fail(step, "ran no scenario (does the filter match any name?)".into()),
            Some(0) => {}
            Some(1) if failed => {}
            Some(1) => self.fail(step, "exit status 1 but no scenario failed".into()),
            _ => self.fail(step, format!("{}: {}", run.status_text(), run.stderr_summary(3))),
        }
    }
}

/// A whole device-lab run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabRun {
    /// The lab's title.
    pub title: String,
    /// The `lab.toml` it ran.
    pub config: String,
    /// When it started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Wall-clock duration, seconds.
    pub seconds: f64,
    /// Every host was reached and nothing failed.
    pub ok: bool,
    /// Counts over every host.
    pub tally: Tally,
    /// Per host, in `lab.toml` order.
    pub hosts: Vec<HostResult>,
}

/// Writing the results failed.
#[derive(Debug, Error)]
pub enum WriteError {
    /// Creating the folder or writing a file.
    #[error("writing {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Serialising the JSON.
    #[error("encoding devlab.json: {0}")]
    Json(#[from] serde_json::Error),
}

impl LabRun {
    /// Aggregates `hosts`.
    pub fn new(title: String, config: String, started_unix: u64, seconds: f64, hosts: Vec<HostResult>) -> Self {
        let mut tally = Tally::default();
        for host in &hosts {
            tally.add(host.tally);
        }
        let ok = tally.failed == 0 && hosts.iter().all(|h| h.reachable && h.errors.is_empty());
        Self { title, config, started_unix, seconds, ok, tally, hosts }
    }

    /// The Markdown report: a summary per host, the throughput table by MTU and PHY across hosts, then one table
    /// of scenario results per host.
    pub fn markdown(&self) -> String {
        let mut out = format!("# Device lab: {}\n\n", md_cell(&self.title));
        out.push_str(&format!(
            "Config `{}`, {} hosts, {:.0} s: **{}**.\n\n",
            self.config,
            self.hosts.len(),
            self.seconds,
            self.tally
        ));
        out.push_str("| host | reached by | backend | status | passed | failed | skipped | seconds |\n");
        out.push_str("|---|---|---|---|---|---|---|---|\n");
        for h in &self.hosts {
            let status = if !h.reachable {
                "UNREACHABLE"
            } else if h.tally.failed > 0 || !h.errors.is_empty() {
                "FAIL"
            } else {
                "PASS"
            };
            out.push_str(&format!(
                "| {} | {} | {} | {status} | {} | {} | {} | {:.1} |\n",
                md_cell(&h.name),
                md_cell(&h.target),
                h.backend.as_str(),
                h.tally.passed,
                h.tally.failed,
                h.tally.skipped,
                h.seconds
            ));
        }
        let rows: Vec<(&str, &ScenarioReport)> =
            self.hosts.iter().flat_map(|h| h.reports.iter().map(move |r| (h.name.as_str(), r))).collect();
        out.push_str("\n## Throughput by MTU and PHY\n\n");
        match throughput::markdown_table("host", &rows) {
            Some(table) => out.push_str(&table),
            None => out.push_str("No host ran the throughput matrix.\n"),
        }
        for h in &self.hosts {
            out.push_str(&format!("\n## {}\n\n", md_cell(&h.name)));
            out.push_str(&format!("Reached by `{}`, backend {}", h.target, h.backend.as_str()));
            if let Some(version) = &h.version {
                out.push_str(&format!(", binary `{}`", md_cell(version)));
            }
            out.push_str(&format!(": {}.\n\n", h.tally));
            for e in &h.errors {
                out.push_str(&format!("- error: {}\n", md_cell(e)));
            }
            if !h.errors.is_empty() {
                out.push('\n');
            }
            out.push_str(&scenario_table(&h.reports));
        }
        out
    }

    /// Writes `devlab.json` and `devlab.md` into `folder` (created if needed); returns their paths.
    pub fn write(&self, folder: &Path) -> Result<(PathBuf, PathBuf), WriteError> {
        std::fs::create_dir_all(folder).map_err(|source| WriteError::Io { path: folder.into(), source })?;
        let json = folder.join("devlab.json");
        let md = folder.join("devlab.md");
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(&json, text).map_err(|source| WriteError::Io { path: json.clone(), source })?;
        std::fs::write(&md, self.markdown()).map_err(|source| WriteError::Io { path: md.clone(), source })?;
        Ok((json, md))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::devlab::config::LabConfig;

    fn host(name: &str, reach: &str) -> HostConfig {
        let text = format!("[[host]]\nname = \"{name}\"\n{reach}\nbackend = \"sim\"\n");
        let lab = LabConfig::parse(&text, Path::new("/lab.toml")).expect("valid host");
        lab.hosts[0].clone()
    }

    fn report(name: &str, outcome: Outcome) -> ScenarioReport {
        ScenarioReport {
            name: name.into(),
            lab: "sim".into(),
            outcome,
            seconds: 2.0,
            metrics: BTreeMap::new(),
            labels: BTreeMap::new(),
        }
    }

    fn ran(status: i32, reports: &[ScenarioReport]) -> Captured {
        Captured {
            status: Some(status),
            timed_out: false,
            stdout: serde_json::to_vec(reports).expect("encodes"),
            stderr_tail: vec!["PASS …".into()],
        }
    }

    #[test]
    fn reports_are_taken_in_and_counted() {
        let mut h = HostResult::new(&host("h1", "exec = [\"ip\", \"netns\", \"exec\", \"pollen-h1\"]"));
        h.absorb(Step::Suite, &ran(0, &[report("discover_handshake", Outcome::Pass)]));
        h.absorb(
            Step::Throughput,
            &ran(
                1,
                &[report("throughput_l2cap", Outcome::Fail("slow".into())), report("x", Outcome::Skip("n/a".into()))],
            ),
        );
        assert_eq!(h.reports.len(), 3);
        assert_eq!(h.tally, Tally { passed: 1, failed: 1, skipped: 1 });
        assert!(h.errors.is_empty(), "a failed scenario is not a runner error: {:?}", h.errors);
        assert!(h.reachable);
    }

    #[test]
    fn broken_runs_become_failure_rows() {
        let mut h = HostResult::new(&host("h1", "local = true"));
        let garbage = Captured {
            status: Some(2),
            stdout: b"PASS not json".to_vec(),
            stderr_tail: vec!["error: this build has no BlueZ backend".into()],
            ..Captured::default()
        };
        h.absorb(Step::Suite, &garbage);
        h.absorb(Step::Throughput, &ran(1, &[report("throughput_l2cap", Outcome::Pass)]));
        h.absorb(Step::Suite, &ran(0, &[]));
        h.absorb(Step::Suite, &Captured { timed_out: true, ..Captured::default() });
        h.absorb(Step::Suite, &ran(139, &[report("relay_chain", Outcome::Pass)]));
        let names: Vec<&str> = h.reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "devlab_suite",
                "throughput_l2cap",
                "devlab_throughput",
                "devlab_suite",
                "devlab_suite",
                "relay_chain",
                "devlab_suite"
            ]
        );
        assert_eq!(h.tally, Tally { passed: 2, failed: 5, skipped: 0 });
        assert!(h.errors[0].starts_with("suite: no JSON report on stdout (exit status 2;"), "{}", h.errors[0]);
        assert!(h.errors[0].ends_with("error: this build has no BlueZ backend"), "{}", h.errors[0]);
        assert_eq!(h.errors[1], "throughput: exit status 1 but no scenario failed");
        assert!(h.errors[2].contains("ran no scenario"));
        assert!(h.errors[3].contains("timed out"));
        assert!(h.errors[4].starts_with("suite: exit status 139"));
    }

    fn sample_run() -> LabRun {
        let mut h1 = HostResult::new(&host("h1", "exec = [\"ip\", \"netns\", \"exec\", \"pollen-h1\"]"));
        h1.version = Some("pollen-hw-tests 0.1.0".into());
        let mut tp = report("throughput_gatt_mtu185", Outcome::Pass);
        tp.metrics.extend([
            ("mtu_requested".to_string(), 185.0),
            ("att_mtu".to_string(), 185.0),
            ("goodput_ab_bps".to_string(), 1_000_000.0),
            ("goodput_ba_bps".to_string(), 900_000.0),
        ]);
        tp.labels.extend([("path".to_string(), "gatt".to_string()), ("phy".to_string(), "2M".to_string())]);
        h1.absorb(Step::Suite, &ran(0, &[report("discover_handshake", Outcome::Pass)]));
        h1.absorb(Step::Throughput, &ran(0, &[tp]));
        h1.seconds = 3.0;
        let mut far = HostResult::new(&host(
            "far",
            "ssh = \"nobody@127.0.0.1\"\nssh_options = [\"-o\", \"Port=1\"]\nbinary = \"/x\"",
        ));
        far.unreachable("ssh: connect to host 127.0.0.1 port 1: Connection refused".into());
        LabRun::new("netns".into(), "/lab.toml".into(), 1_700_000_000, 4.0, vec![h1, far])
    }

    #[test]
    fn aggregation_counts_every_host_and_unreachable_ones_fail_the_run() {
        let run = sample_run();
        assert_eq!(run.tally, Tally { passed: 2, failed: 1, skipped: 0 });
        assert!(!run.ok);
        let far = &run.hosts[1];
        assert!(!far.reachable);
        assert_eq!(far.reports[0].name, "devlab_connect");
        assert_eq!(far.errors, ["connect: unreachable: ssh: connect to host 127.0.0.1 port 1: Connection refused"]);
        let only_h1 = LabRun::new("t".into(), "c".into(), 0, 1.0, vec![run.hosts[0].clone()]);
        assert!(only_h1.ok);
        let json = serde_json::to_string(&run).expect("encodes");
        let back: LabRun = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, run);
    }

    #[test]
    fn markdown_has_the_summary_throughput_and_per_host_tables() {
        let md = sample_run().markdown();
        let expected = [
            "# Device lab: netns",
            "Config `/lab.toml`, 2 hosts, 4 s: **2 passed, 1 failed**.",
            "| h1 | exec ip netns exec pollen-h1 | sim | PASS | 2 | 0 | 0 | 3.0 |",
            "| far | ssh nobody@127.0.0.1 | sim | UNREACHABLE | 0 | 1 | 0 | 0.0 |",
            "## Throughput by MTU and PHY",
            "| h1 | sim | gatt | 185 | 185 | 2M | 1000.0 | 900.0 | — | PASS |",
            "## h1",
            "Reached by `exec ip netns exec pollen-h1`, backend sim, binary `pollen-hw-tests 0.1.0`: 2 passed, 0 failed.",
            "| discover_handshake | sim | PASS | 2.0 |  |",
            "## far",
            "- error: connect: unreachable: ssh: connect to host 127.0.0.1 port 1: Connection refused",
            "| devlab_connect | far | FAIL: connect: unreachable: ssh: connect to host 127.0.0.1 port 1: Connection refused | 0.0 |  |",
        ];
        let mut at = 0;
        for line in expected {
            match md[at..].find(line) {
                Some(i) => at += i + line.len(),
                None => panic!("missing or out of order: {line}\n---\n{md}"),
            }
        }
    }

    #[test]
    fn results_are_written_as_json_and_markdown() {
        let folder = std::env::temp_dir().join(format!("pollen-devlab-test-{}", std::process::id()));
        let run = sample_run();
        let (json, md) = run.write(&folder).expect("writes");
        let back: LabRun = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("parses");
        assert_eq!(back, run);
        assert_eq!(std::fs::read_to_string(&md).expect("md"), run.markdown());
        let _ = std::fs::remove_dir_all(folder);
    }
}
