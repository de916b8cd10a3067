//! `pollen-hw-tests`: run the conformance suite on a backend, in the virtual lab, or on a device lab.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use pollen_ble::sim::MediumConfig;
use pollen_hw_tests::lab::SimLab;
use pollen_hw_tests::report::{ScenarioReport, Tally};
use pollen_hw_tests::suite;

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
        /// Also write the reports as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
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
        Command::Suite {
            backend,
            filter,
            adapters,
            json,
        } => {
            let reports = match backend {
                Backend::Sim => {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .start_paused(true)
                        .build()?;
                    runtime.block_on(async {
                        let mut lab = SimLab::new(MediumConfig::default());
                        suite::run_all(&mut lab, filter.as_deref()).await
                    })
                }
                Backend::Bluez => run_bluez(filter.as_deref(), &adapters)?,
            };
            finish(&reports, json)
        }
    }
}

#[cfg(feature = "bluez")]
fn run_bluez(filter: Option<&str>, adapters: &[String]) -> Result<Vec<ScenarioReport>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut lab = pollen_hw_tests::bluez_lab::BluezLab::new(adapters)
            .await
            .context("opening the BlueZ adapters")?;
        Ok(suite::run_all(&mut lab, filter).await)
    })
}

#[cfg(not(feature = "bluez"))]
fn run_bluez(_: Option<&str>, _: &[String]) -> Result<Vec<ScenarioReport>> {
    anyhow::bail!("this build has no BlueZ backend: rebuild with `--features bluez`")
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
