//! `pollen-hw-tests`: run the conformance suite on a backend, in the virtual lab, or on a device lab.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use pollen_ble::sim::MediumConfig;
use pollen_hw_tests::devlab::{self, HostResult, LabConfig, LabRun, RunContext};
use pollen_hw_tests::lab::{Lab, SimLab};
use pollen_hw_tests::report::{ScenarioReport, Tally};
use pollen_hw_tests::{suite, throughput};

mod vlab;

/// `--version`: the package version plus the radio backends compiled in (a device lab checks it on every host).
const VERSION: &str = if cfg!(feature = "btleplug") {
    concat!(env!("CARGO_PKG_VERSION"), " (backends: sim, bluez, btleplug)")
} else if cfg!(feature = "bluez") {
    concat!(env!("CARGO_PKG_VERSION"), " (backends: sim, bluez)")
} else {
    concat!(env!("CARGO_PKG_VERSION"), " (backends: sim)")
};

#[derive(Parser)]
#[command(about = "Pollen's BLE conformance suite and lab runners", version = VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// The simulated medium (virtual time).
    Sim,
    /// BlueZ adapters on this machine (feature `bluez`).
    Bluez,
    /// btleplug as a central-only node 0 against BlueZ adapters as the other nodes (feature `btleplug`).
    Btleplug,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the suite here on one backend; prints one PASS/FAIL line per scenario and a tally.
    Suite {
        #[arg(long, value_enum, default_value_t = Backend::Sim)]
        backend: Backend,
        /// Only scenarios whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// BlueZ adapters to use as nodes 0, 1, 2 … (default: every adapter found).
        #[arg(long, value_delimiter = ',')]
        adapters: Vec<String>,
        /// Radios of the relay chain's A, B and C, e.g. `0/1,2/3` (the relay gets one radio toward each side).
        #[arg(long, value_parser = parse_relay_plan)]
        relay_plan: Option<RelayPlan>,
        /// Also write the reports as JSON here; `-` writes only the JSON to stdout and the result lines to stderr.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Measures goodput each way between two fresh nodes over GATT at ATT MTU 23, 185, 247 and 517 and over L2CAP
    /// CoC, and reports the ATT MTU and PHY in use; one line per case and a tally.
    Throughput {
        #[arg(long, value_enum, default_value_t = Backend::Sim)]
        backend: Backend,
        /// Only cases whose name contains this (`gatt`, `mtu185`, `l2cap`).
        #[arg(long)]
        filter: Option<String>,
        /// BlueZ adapters to use as nodes 0 and 1 (default: every adapter found).
        #[arg(long, value_delimiter = ',')]
        adapters: Vec<String>,
        /// Bytes moved each way per case.
        #[arg(long, default_value_t = throughput::DEFAULT_BYTES)]
        bytes: u64,
        /// Also write the reports as JSON here; `-` writes only the JSON to stdout and the result lines to stderr.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The device lab: runs `suite` and `throughput` on every host of a lab.toml (over ssh, or behind a command
    /// prefix such as `ip netns exec`) and writes devlab.json and devlab.md.
    Devlab {
        /// The lab description (see hw-tests/README.md).
        #[arg(long)]
        config: PathBuf,
        /// Where devlab.json and devlab.md go.
        #[arg(long, default_value = "devlab-results")]
        out: PathBuf,
        /// Only these hosts (repeatable; default: all).
        #[arg(long)]
        host: Vec<String>,
        /// The binary to upload and to run on exec/local hosts without `binary` (default: this executable).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// The virtual radio lab: boots a QEMU guest with real bluetoothd on btvirt controllers and runs the suite there
    /// with the BlueZ backend, plus BlueZ's l2test as a throughput baseline. Needs root (installs QEMU on first use).
    Vlab {
        /// Only scenarios whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Where the guest image, the shared binary and outputs live.
        #[arg(long, env = "POLLEN_VLAB_CACHE", default_value = "/var/tmp/pollen-vlab")]
        cache: PathBuf,
        /// Upper bound on the guest's run, seconds.
        #[arg(long, default_value_t = 2400)]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// What to run on a lab.
enum Job {
    Suite { filter: Option<String> },
    Throughput { filter: Option<String>, bytes: u64 },
}

impl Job {
    async fn run<L: Lab>(&self, lab: &mut L, human: Human) -> Vec<ScenarioReport> {
        match self {
            Job::Suite { filter } => suite::run_each(lab, filter.as_deref(), |r| human.line(r)).await,
            Job::Throughput { filter, bytes } => {
                throughput::run_matrix(lab, *bytes, filter.as_deref(), |r| human.line(r)).await
            }
        }
    }
}

/// Where the human result lines go: stdout, or stderr when stdout carries the JSON (`--json -`).
#[derive(Clone, Copy)]
struct Human {
    to_stderr: bool,
}

impl Human {
    fn for_json(json: Option<&Path>) -> Self {
        Self { to_stderr: json.is_some_and(|p| p == Path::new("-")) }
    }

    fn line(&self, text: impl std::fmt::Display) {
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Suite { backend, filter, adapters, relay_plan, json } => {
            let plan = relay_plan.map(|p| p.0).unwrap_or_else(pollen_hw_tests::lab::default_relay_plan);
            run_job(&Job::Suite { filter }, backend, &adapters, plan, json)
        }
        Command::Throughput { backend, filter, adapters, bytes, json } => {
            if bytes == 0 {
                bail!("--bytes must be at least 1");
            }
            let plan = pollen_hw_tests::lab::default_relay_plan();
            run_job(&Job::Throughput { filter, bytes }, backend, &adapters, plan, json)
        }
        Command::Vlab { filter, cache, timeout } => vlab::run(&vlab::VlabOptions { cache, filter, timeout_s: timeout }),
        Command::Devlab { config, out, host, binary } => run_devlab(&config, &out, &host, binary),
    }
}

fn run_job(
    job: &Job,
    backend: Backend,
    adapters: &[String],
    plan: [Vec<usize>; 3],
    json: Option<PathBuf>,
) -> Result<bool> {
    let human = Human::for_json(json.as_deref());
    let reports = match backend {
        Backend::Sim => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
            runtime.block_on(async {
                let mut lab = SimLab::new(MediumConfig::default()).with_relay_plan(plan);
                job.run(&mut lab, human).await
            })
        }
        Backend::Bluez => run_bluez(job, adapters, plan, human)?,
        Backend::Btleplug => run_btleplug(job, adapters, human)?,
    };
    finish(&reports, json, human)
}

#[cfg(feature = "bluez")]
fn run_bluez(job: &Job, adapters: &[String], plan: [Vec<usize>; 3], human: Human) -> Result<Vec<ScenarioReport>> {
    // Two workers: the nodes' crypto and framing run on both cores, as two separate devices would.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let lab = pollen_hw_tests::bluez_lab::BluezLab::new(adapters).await.context("opening the BlueZ adapters")?;
        let mut lab = lab.with_relay_plan(plan);
        let reports = job.run(&mut lab, human).await;
        // Let the last nodes' drivers close their sockets before their D-Bus connections (see SESSION_LINGER).
        tokio::time::sleep(pollen_ble::bluez::SESSION_LINGER + std::time::Duration::from_millis(500)).await;
        Ok(reports)
    })
}

#[cfg(not(feature = "bluez"))]
fn run_bluez(_: &Job, _: &[String], _: [Vec<usize>; 3], _: Human) -> Result<Vec<ScenarioReport>> {
    anyhow::bail!("this build has no BlueZ backend: rebuild with `--features bluez`")
}

/// Node 0 on btleplug (the first of `adapters` by name), the others on BlueZ.
#[cfg(feature = "btleplug")]
fn run_btleplug(job: &Job, adapters: &[String], human: Human) -> Result<Vec<ScenarioReport>> {
    // Two workers: the nodes' crypto and framing run on both cores, as two separate devices would.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let mut lab = pollen_hw_tests::btleplug_lab::BtleplugLab::new(adapters)
            .await
            .context("opening the adapters of the btleplug lab")?;
        let reports = job.run(&mut lab, human).await;
        // The BlueZ peers' drivers close their sockets before their D-Bus connections (see SESSION_LINGER).
        tokio::time::sleep(pollen_ble::bluez::SESSION_LINGER + std::time::Duration::from_millis(500)).await;
        Ok(reports)
    })
}

#[cfg(not(feature = "btleplug"))]
fn run_btleplug(_: &Job, _: &[String], _: Human) -> Result<Vec<ScenarioReport>> {
    anyhow::bail!("this build has no btleplug backend: rebuild with `--features bluez,btleplug`")
}

/// Radios of A, B and C for the relay chain.
#[derive(Clone, Debug)]
struct RelayPlan([Vec<usize>; 3]);

fn parse_relay_plan(s: &str) -> Result<RelayPlan, String> {
    pollen_hw_tests::lab::parse_relay_plan(s).map(RelayPlan).map_err(|e| e.to_string())
}

fn finish(reports: &[ScenarioReport], json: Option<PathBuf>, human: Human) -> Result<bool> {
    let tally = Tally::of(reports);
    human.line(tally);
    match json {
        Some(path) if path == Path::new("-") => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, reports)?;
            writeln!(out)?;
            out.flush()?;
        }
        Some(path) => std::fs::write(&path, serde_json::to_string_pretty(reports)?)
            .with_context(|| format!("writing {}", path.display()))?,
        None => {}
    }
    Ok(tally.failed == 0)
}

fn run_devlab(config: &Path, out: &Path, only: &[String], binary: Option<PathBuf>) -> Result<bool> {
    let lab = LabConfig::load(config)?;
    if let Some(unknown) = only.iter().find(|n| !lab.hosts.iter().any(|h| &h.name == *n)) {
        bail!("--host {unknown}: no such host in {}", config.display());
    }
    let hosts: Vec<_> = lab.hosts.iter().filter(|h| only.is_empty() || only.contains(&h.name)).collect();
    let local_binary = match binary {
        Some(b) => b,
        None => std::env::current_exe().context("finding this executable")?,
    };
    let context = RunContext { local_binary };
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let start = Instant::now();
    println!(
        "devlab: {} hosts from {}{}",
        hosts.len(),
        lab.path.display(),
        if lab.parallel { ", in parallel" } else { "" }
    );
    let run_one = |host: &devlab::HostConfig| {
        println!("devlab: {}: {} ({} backend)", host.name, host.reach.describe(), host.backend.as_str());
        let result = devlab::run_host(host, &context, &|line| println!("[{}] {line}", host.name));
        report_host(&result);
        result
    };
    let results: Vec<HostResult> = if lab.parallel {
        std::thread::scope(|scope| {
            let running: Vec<_> = hosts.iter().map(|h| scope.spawn(move || run_one(h))).collect();
            running.into_iter().zip(&hosts).map(|(t, h)| t.join().unwrap_or_else(|_| panicked(h))).collect()
        })
    } else {
        hosts.iter().map(|h| run_one(h)).collect()
    };
    let run = LabRun::new(
        lab.title.clone(),
        lab.path.display().to_string(),
        started_unix,
        start.elapsed().as_secs_f64(),
        results,
    );
    let (json, md) = run.write(out)?;
    println!("devlab: wrote {} and {}", json.display(), md.display());
    let unreachable: Vec<&str> = run.hosts.iter().filter(|h| !h.reachable).map(|h| h.name.as_str()).collect();
    if !unreachable.is_empty() {
        println!("devlab: unreachable hosts: {}", unreachable.join(", "));
    }
    println!("{}", run.tally);
    Ok(run.ok)
}

fn report_host(result: &HostResult) {
    let state = if result.reachable { "" } else { " UNREACHABLE" };
    println!("devlab: {}:{state} {} in {:.1}s", result.name, result.tally, result.seconds);
    for e in &result.errors {
        println!("devlab: {}: error: {e}", result.name);
    }
}

/// A host thread that panicked still yields a FAIL row.
fn panicked(host: &devlab::HostConfig) -> HostResult {
    let mut result = HostResult::new(host);
    result.fail(devlab::Step::Connect, "the runner's thread for this host panicked".into());
    result
}
