//! `pollen`: run a node, import a file, fetch a file, run the field simulator.

mod sim_cmd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use libp2p::Multiaddr;
use pollen::{BleBackend, Cid, GetUpdate, Node, NodeConfig};

#[derive(Parser)]
#[command(name = "pollen", version, about = "A content-addressed mesh for nearby devices")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BleMode {
    /// No Bluetooth.
    Off,
    /// A private simulated radio (for trying the BLE stack without hardware).
    Sim,
    /// The default BlueZ adapter (needs a build with `--features bluez`).
    Bluez,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a node until SIGTERM or Ctrl-C. Prints one JSON line with its PeerId and listen addresses.
    Node {
        /// Address to listen on, e.g. /ip4/0.0.0.0/tcp/4001 (repeatable).
        #[arg(long)]
        listen: Vec<Multiaddr>,
        /// Store directory (blocks and the node's identity).
        #[arg(long, default_value = "pollen-store")]
        store: PathBuf,
        /// Bluetooth LE radio.
        #[arg(long, value_enum, default_value_t = BleMode::Off)]
        ble: BleMode,
    },
    /// Imports a file into a store and prints its root CID (the same CID Helia's addBytes gives).
    Put {
        /// The file.
        file: PathBuf,
        /// Store directory.
        #[arg(long, default_value = "pollen-store")]
        store: PathBuf,
    },
    /// Fetches a file by CID from a peer (Pollen, Helia, kubo: anything speaking Bitswap 1.2.0).
    Get {
        /// The root CID.
        cid: String,
        /// The peer to fetch from (repeatable), e.g. /ip4/127.0.0.1/tcp/4001.
        #[arg(long, required = true)]
        peer: Vec<Multiaddr>,
        /// Where to write the file.
        #[arg(long)]
        out: PathBuf,
        /// Store directory (a temporary one by default).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Runs the field simulator: Pollen and baselines on the same contacts; prints a summary, writes an HTML report.
    Sim(sim_cmd::SimArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Command::Sim(args) = cli.command {
        // The simulator runs on plain threads; it needs no async runtime.
        return report(sim_cmd::run(args));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pollen: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    report(runtime.block_on(run(cli)))
}

/// Prints an error as one line and turns the result into the exit code.
fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pollen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A bad flag value is reported on one line that names the flag (clap's own message adds a usage hint below it);
/// help, version and structural mistakes keep clap's full output.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            // clap lists the accepted values on a later line; keep them on this one.
            match e.get(clap::error::ContextKind::ValidValue) {
                Some(clap::error::ContextValue::Strings(valid)) => {
                    eprintln!("pollen: {first} (possible values: {})", valid.join(", "))
                }
                _ => eprintln!("pollen: {first}"),
            }
            ExitCode::from(2)
        }
        _ => e.exit(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Node { listen, store, ble } => node(listen, store, ble).await,
        Command::Put { file, store } => put(file, store).await,
        Command::Get { cid, peer, out, store, timeout } => get(&cid, peer, out, store, timeout).await,
        Command::Sim(args) => sim_cmd::run(args),
    }
}

fn ble_backend(mode: BleMode) -> Result<Option<BleBackend>> {
    match mode {
        BleMode::Off => Ok(None),
        BleMode::Sim => {
            let medium = pollen_ble::sim::SimMedium::new(pollen_ble::sim::MediumConfig::default());
            let driver = medium.add_node(pollen_ble::sim::NodeConfig::android((0.0, 0.0)))?;
            Ok(Some(BleBackend::Sim(driver)))
        }
        BleMode::Bluez => bluez_backend(),
    }
}

#[cfg(feature = "bluez")]
fn bluez_backend() -> Result<Option<BleBackend>> {
    let driver = futures::executor::block_on(pollen_ble::bluez::BluezDriver::open(None))
        .context("opening the default BlueZ adapter")?;
    Ok(Some(BleBackend::Bluez(driver)))
}

#[cfg(not(feature = "bluez"))]
fn bluez_backend() -> Result<Option<BleBackend>> {
    bail!("this pollen was built without BlueZ: rebuild with `cargo build --release -p pollen --features bluez`")
}

async fn node(listen: Vec<Multiaddr>, store: PathBuf, ble: BleMode) -> Result<()> {
    let mut config = NodeConfig::new(store);
    let expected = listen.len() + usize::from(ble != BleMode::Off);
    config.listen = listen;
    config.ble = ble_backend(ble)?;
    let node = Node::start(config).await?;
    let addrs = node.wait_listening(expected, Duration::from_secs(10)).await?;
    let line = serde_json::json!({
        "peer_id": node.peer_id().to_string(),
        "listen": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    });
    println!("{line}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    node.shutdown().await;
    Ok(())
}

async fn put(file: PathBuf, store: PathBuf) -> Result<()> {
    if !file.is_file() {
        bail!("{} is not a readable file", file.display());
    }
    let node = Node::start(NodeConfig::new(store)).await?;
    let result = node.put_file(file.clone()).await;
    node.shutdown().await;
    let cid = result.with_context(|| format!("importing {}", file.display()))?;
    println!("{cid}");
    Ok(())
}

async fn get(cid: &str, peers: Vec<Multiaddr>, out: PathBuf, store: Option<PathBuf>, timeout: u64) -> Result<()> {
    let root = Cid::try_from(cid).map_err(|e| anyhow!("bad CID {cid:?}: {e}"))?;
    let temporary = store.is_none();
    let store = store.unwrap_or_else(|| std::env::temp_dir().join(format!("pollen-get-{}", std::process::id())));
    let node = Node::start(NodeConfig::new(store.clone())).await?;
    let result = tokio::time::timeout(Duration::from_secs(timeout), fetch(&node, root, peers)).await;
    node.shutdown().await;
    if temporary {
        let _ = std::fs::remove_dir_all(&store);
    }
    let bytes = result.map_err(|_| anyhow!("timed out after {timeout} s"))??;
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("pollen: wrote {} bytes to {}", bytes.len(), out.display());
    Ok(())
}

async fn fetch(node: &Node, root: Cid, peers: Vec<Multiaddr>) -> Result<Vec<u8>> {
    let mut reached = 0;
    for peer in peers {
        match node.dial(peer.clone()).await {
            Ok(id) => {
                reached += 1;
                tracing::info!(%id, %peer, "connected");
            }
            Err(e) => eprintln!("pollen: cannot reach {peer}: {e}"),
        }
    }
    if reached == 0 {
        bail!("no peer reachable");
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut updates = Box::pin(node.get(root));
    while let Some(update) = updates.next().await {
        match update {
            GetUpdate::Progress(p) => {
                if let Some(size) = p.file_size {
                    bar.set_length(size);
                }
                bar.set_position(p.bytes);
                bar.set_message(format!("{}/{} blocks", p.blocks, p.blocks_known));
            }
            GetUpdate::Done(bytes) => {
                bar.finish_and_clear();
                return Ok(bytes);
            }
            GetUpdate::Failed(error) => {
                bar.abandon();
                bail!("fetching {root}: {error}");
            }
        }
    }
    bail!("the node stopped during the fetch")
}
