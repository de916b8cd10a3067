//! `pollen-hw-tests vlab`: the virtual radio lab. Builds the suite with the BlueZ and btleplug backends, boots a
//! QEMU guest running real bluetoothd over btvirt controllers (scripts in `hw-tests/vlab/`), runs the suite there
//! on BlueZ, then again with btleplug as the central-only node 0, plus BlueZ's `l2test`, and reports per-scenario
//! lines, the throughput ratios and a tally.
//!
//! `POLLEN_VLAB_BACKENDS` (default `bluez btleplug`) picks the suite runs in the guest, e.g. `btleplug` alone while
//! debugging that backend.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use pollen_hw_tests::report::{Outcome, ScenarioReport, Tally};

/// Options of a lab run.
pub struct VlabOptions {
    /// Where the guest image and outputs are cached (outside the repository).
    pub cache: PathBuf,
    /// Only scenarios whose name contains this.
    pub filter: Option<String>,
    /// Upper bound on the guest's run, seconds.
    pub timeout_s: u64,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Where cargo puts build output: `CARGO_TARGET_DIR` (relative to the workspace root when relative), else
/// `<workspace>/target`. The build below inherits the same environment, so this is where the binary lands.
fn target_dir(root: &Path, cargo_target_dir: Option<std::ffi::OsString>) -> PathBuf {
    match cargo_target_dir.filter(|d| !d.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Host programs the lab scripts run (install-host.sh installs their packages).
const HOST_TOOLS: &[&str] = &["qemu-system-x86_64", "debootstrap", "cpio", "depmod", "modprobe", "apt-cache"];

/// The host programs (and the static busybox the initramfs copies) that are not installed.
fn missing_host_tools() -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).collect();
    let mut missing: Vec<String> =
        HOST_TOOLS.iter().filter(|t| !dirs.iter().any(|d| d.join(t).is_file())).map(|t| t.to_string()).collect();
    if !Path::new("/bin/busybox").is_file() {
        missing.push("/bin/busybox".into());
    }
    missing
}

fn step(what: &str) {
    println!("vlab: {what}");
}

fn run_checked(command: &mut Command, what: &str) -> Result<()> {
    let status = command.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    Ok(())
}

/// Builds, boots, runs and reports. Returns whether every scenario passed.
pub fn run(options: &VlabOptions) -> Result<bool> {
    let root = repo_root();
    let scripts = root.join("hw-tests/vlab");
    let missing = missing_host_tools();
    // A guest not built yet needs fresh apt lists too (build-guest.sh asks apt-cache for the current kernel package).
    let unbuilt = !options.cache.join("kernel/.done").exists() || !options.cache.join("rootfs/usr/bin/btvirt").exists();
    if !missing.is_empty() || unbuilt {
        let why = if missing.is_empty() { "guest not built yet".to_string() } else { format!("missing {missing:?}") };
        step(&format!("installing host packages (qemu, debootstrap, busybox; {why})"));
        run_checked(Command::new("bash").arg(scripts.join("install-host.sh")).stdin(Stdio::null()), "install-host.sh")?;
    }
    step("building the guest image (cached after the first run)");
    run_checked(
        Command::new("bash").arg(scripts.join("build-guest.sh")).env("POLLEN_VLAB_CACHE", &options.cache),
        "build-guest.sh",
    )?;
    step("building the suite with the BlueZ and btleplug backends");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_checked(
        Command::new(cargo).current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "pollen-hw-tests",
            "--features",
            "bluez,btleplug",
        ]),
        "cargo build --features bluez,btleplug",
    )?;
    let share = options.cache.join("share");
    std::fs::create_dir_all(&share)?;
    let binary = target_dir(&root, std::env::var_os("CARGO_TARGET_DIR")).join("release/pollen-hw-tests");
    std::fs::copy(&binary, share.join("pollen-hw-tests")).with_context(|| format!("copying {}", binary.display()))?;
    let out = options.cache.join("out/conformance");
    step(&format!("booting the guest (console in {})", out.join("console.log").display()));
    let mut guest = Command::new("bash");
    guest
        .arg(scripts.join("run-guest.sh"))
        .arg(scripts.join("tests/conformance.sh"))
        .arg(options.timeout_s.to_string())
        .env("POLLEN_VLAB_CACHE", &options.cache)
        .env("POLLEN_VLAB_SHARE", &share)
        .env("POLLEN_VLAB_OUT", &out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if let Some(filter) = &options.filter {
        guest.env("POLLEN_SUITE_FILTER", filter);
    }
    let _ = std::fs::remove_dir_all(&out);
    let mut child = guest.spawn().context("starting run-guest.sh")?;
    let mut l2test_lines = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("L2TEST ") {
                l2test_lines.push(rest.to_string());
            }
        }
    }
    let status = child.wait()?;
    // The BlueZ run, then the btleplug run (node 0 central-only against BlueZ), as the guest wrote them.
    let mut reports = read_reports(&out.join("conformance.json"))?;
    reports.extend(read_reports(&out.join("conformance-btleplug.json"))?);
    // The L2CAP throughput case the guest runs between two l2test runs, for the bracketed ratio.
    let bracketed = read_reports(&out.join("throughput-l2cap.json"))?;
    summarize(&reports, &bracketed, &l2test_lines, status.success())
}

/// The reports of one suite run; none when the guest did not write the file.
fn read_reports(path: &Path) -> Result<Vec<ScenarioReport>> {
    match std::fs::read(path) {
        Ok(json) => serde_json::from_slice(&json).with_context(|| format!("parsing {}", path.display())),
        Err(_) => Ok(Vec::new()),
    }
}

/// The forward goodput of `scenario` on `lab`, when it passed.
fn goodput(reports: &[ScenarioReport], lab: &str, scenario: &str) -> Option<f64> {
    reports
        .iter()
        .find(|r| r.lab == lab && r.name == scenario && r.outcome == Outcome::Pass)
        .and_then(|r| r.metrics.get("goodput_ab_bps").copied())
}

/// Parses l2test's "<bytes> bytes in <secs> sec, <rate> kB/s" into bit/s. l2test's kB is 1024 bytes
/// (`total / secs / 1024.0` in tools/l2test.c).
pub fn l2test_bps(line: &str) -> Option<f64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| w.eq_ignore_ascii_case("kB/s"))?;
    let rate: f64 = words.get(i.checked_sub(1)?)?.parse().ok()?;
    Some(rate * 8.0 * 1024.0)
}

/// The l2test baseline from the guest's `L2TEST <when> <result>` lines: the mean of the runs tagged `when` that
/// reported a rate. The guest runs l2test right before and right after what it compares, so a host whose load
/// changes moves both sides of the ratio alike.
fn l2test_baseline(lines: &[String], when: &[&str]) -> Option<f64> {
    let rates: Vec<f64> = lines
        .iter()
        .filter(|l| when.iter().any(|w| l.split_whitespace().next() == Some(*w)))
        .filter_map(|l| l2test_bps(l))
        .filter(|r| *r > 0.0)
        .collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

fn ratio_line(path: &str, pollen: Option<f64>, baseline: Option<f64>, what: &str) {
    match (pollen, baseline) {
        (Some(p), Some(b)) if b > 0.0 => println!(
            "vlab throughput path={path} pollen_kbps={:.1} l2test_kbps={:.1} ratio={:.3}",
            p / 1000.0,
            b / 1000.0,
            p / b
        ),
        _ => println!("vlab throughput path={path} unavailable ({what} or l2test did not run)"),
    }
}

fn summarize(
    reports: &[ScenarioReport],
    bracketed: &[ScenarioReport],
    l2test: &[String],
    guest_ok: bool,
) -> Result<bool> {
    println!();
    for r in reports.iter().chain(bracketed) {
        println!("{r}");
    }
    // The suite's transfers against l2test before and after the whole BlueZ suite (minutes apart), and the
    // throughput case that ran right between two l2test runs (the tighter comparison).
    let around_suite = l2test_baseline(l2test, &["before", "after"]);
    ratio_line("l2cap", goodput(reports, "bluez", "transfer_l2cap"), around_suite, "transfer_l2cap");
    ratio_line("gatt", goodput(reports, "bluez", "transfer_gatt"), around_suite, "transfer_gatt");
    let tight = l2test_baseline(l2test, &["after", "post"]);
    ratio_line("l2cap-bracketed", goodput(bracketed, "bluez", "throughput_l2cap"), tight, "throughput_l2cap");
    // btleplug writes through one D-Bus call per value; its GATT goodput over the BlueZ backend's, same boot.
    match (goodput(reports, "btleplug", "transfer_gatt"), goodput(reports, "bluez", "transfer_gatt")) {
        (Some(p), Some(b)) if b > 0.0 => println!(
            "vlab throughput path=gatt-btleplug btleplug_kbps={:.1} bluez_kbps={:.1} ratio={:.3}",
            p / 1000.0,
            b / 1000.0,
            p / b
        ),
        _ => println!("vlab throughput path=gatt-btleplug unavailable (a transfer_gatt run did not pass)"),
    }
    let all: Vec<ScenarioReport> = reports.iter().chain(bracketed).cloned().collect();
    let mut tally = Tally::of(&all);
    if reports.is_empty() || !guest_ok && tally.failed == 0 {
        // The guest died or the suite never reported: count that as a failure, never as a pass.
        println!("FAIL vlab-guest (no complete suite run; see the console log)");
        tally.failed += 1;
    }
    println!("{tally}");
    Ok(tally.failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_l2test_rates() {
        let line = "l2test[348]: 1048576 bytes in 4.97 sec, 206.15 kB/s";
        assert_eq!(l2test_bps(line), Some(206.15 * 8192.0));
        assert_eq!(l2test_bps("none"), None);
        let runs = ["before l2test[1]: 4194304 bytes in 8.00 sec, 512.00 kB/s".to_string(), "after none".to_string()];
        assert_eq!(l2test_baseline(&runs, &["before", "after"]), Some(512.0 * 8192.0));
        let both = [runs[0].clone(), "after l2test[2]: 4194304 bytes in 16.00 sec, 256.00 kB/s".to_string()];
        assert_eq!(l2test_baseline(&both, &["before", "after"]), Some(384.0 * 8192.0));
        assert_eq!(l2test_baseline(&both, &["after", "post"]), Some(256.0 * 8192.0));
        assert_eq!(l2test_baseline(&[], &["before"]), None);
    }

    #[test]
    fn the_binary_is_looked_up_in_cargo_target_dir() {
        let root = Path::new("/ws");
        assert_eq!(target_dir(root, None), Path::new("/ws/target"));
        assert_eq!(target_dir(root, Some("".into())), Path::new("/ws/target"));
        assert_eq!(target_dir(root, Some("/var/t".into())), Path::new("/var/t"));
        assert_eq!(target_dir(root, Some("t2".into())), Path::new("/ws/t2"));
    }

    #[test]
    fn a_silent_guest_is_a_failure() {
        assert!(!summarize(&[], &[], &[], true).unwrap());
    }
}
