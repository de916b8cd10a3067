//! `pollen-hw-tests`: run the conformance suite on a backend, in the virtual lab, or on a device lab.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use pollen_ble::sim::MediumConfig;
use pollen_hw_tests::lab::SimLab;
use pollen_hw_tests::report::{ScenarioReport, Tally};
use pollen_hw_tests::suite;

mod vlab;

#[derive(Parser)]
#[command(about = "Pollen's BLE conformance suite and lab runners")]
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
        /// Also write the reports as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
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

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Suite { backend, filter, adapters, relay_plan, json } => {
            let plan = relay_plan.map(|p| p.0).unwrap_or_else(pollen_hw_tests::lab::default_relay_plan);
            let reports = match backend {
                Backend::Sim => {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
                    runtime.block_on(async {
                        let mut lab = SimLab::new(MediumConfig::default()).with_relay_plan(plan);
                        suite::run_all(&mut lab, filter.as_deref()).await
                    })
                }
                Backend::Bluez => run_bluez(filter.as_deref(), &adapters, plan)?,
            };
            finish(&reports, json)
        }
        Command::Vlab { filter, cache, timeout } => vlab::run(&vlab::VlabOptions { cache, filter, timeout_s: timeout }),
    }
}

#[cfg(feature = "bluez")]
fn run_bluez(filter: Option<&str>, adapters: &[String], plan: [Vec<usize>; 3]) -> Result<Vec<ScenarioReport>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let lab = pollen_hw_tests::bluez_lab::BluezLab::new(adapters).await.context("opening the BlueZ adapters")?;
        let mut lab = lab.with_relay_plan(plan);
        Ok(suite::run_all(&mut lab, filter).await)
    })
}

#[cfg(not(feature = "bluez"))]
fn run_bluez(_: Option<&str>, _: &[String], _: [Vec<usize>; 3]) -> Result<Vec<ScenarioReport>> {
    anyhow::bail!("this build has no BlueZ backend: rebuild with `--features bluez`")
}

/// Radios of A, B and C for the relay chain.
#[derive(Clone, Debug)]
struct RelayPlan([Vec<usize>; 3]);

fn parse_relay_plan(s: &str) -> Result<RelayPlan, String> {
    let parts: Vec<Vec<usize>> = s
        .split('/')
        .map(|p| p.split(',').map(|n| n.trim().parse::<usize>().map_err(|e| format!("{p}: {e}"))).collect())
        .collect::<Result<_, _>>()?;
    let plan: [Vec<usize>; 3] = parts.try_into().map_err(|_| "expected three groups: A/B/C".to_string())?;
    if plan.iter().any(Vec::is_empty) {
        return Err("every node needs at least one radio".into());
    }
    Ok(RelayPlan(plan))
}

fn finish(reports: &[ScenarioReport], json: Option<PathBuf>) -> Result<bool> {
    let tally = Tally::of(reports);
    println!("{tally}");
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(tally.failed == 0)
}
