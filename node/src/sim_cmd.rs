//! `pollen sim`: the field simulator on the command line. Flags become a [`SimConfig`] (every flag left unset keeps
//! [`SimConfig::field_default`]'s value), the run shows a progress bar on stderr, and the results go to stdout (the
//! summary table, or JSON with `--json`) and to a report directory (`report.html`, `results.json`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pollen_sim::mobility::RandomWaypointConfig;
use pollen_sim::model::{Time, SECOND};
use pollen_sim::radio::RadioProfile;
use pollen_sim::run::{prepare, simulate, RouterSet, Scenario, SimConfig, SimError};
use pollen_sim::trace::{read_trace_file, TraceFile};
use pollen_sim::workload::WorkloadError;

/// Where the nodes come from when no `--trace` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScenarioKind {
    /// The built-in disaster site: relay points, walking rescuers, clustered civilians.
    Field,
    /// Random waypoint over `--area`.
    Rwp,
}

/// The radio carrying every link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RadioKind {
    /// Bluetooth LE (LE 1M, L2CAP CoC).
    Ble,
    /// Wi-Fi Direct.
    WifiDirect,
}

/// Which routers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Routers {
    /// Pollen, the oracle, direct delivery, spray-and-wait and the energy sweep.
    All,
    /// Pollen alone ("router mode", for big runs).
    Pollen,
}

/// The flags of `pollen sim`. Sizes take k/M/G (×1000) or Ki/Mi/Gi (×1024) suffixes; times take s/m/h/d suffixes
/// (a plain number is seconds).
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// The built-in scenario (ignored with --trace).
    #[arg(long, value_enum, default_value_t = ScenarioKind::Field)]
    pub scenario: ScenarioKind,
    /// Number of nodes [default: 60].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_count)]
    pub nodes: Option<u32>,
    /// Simulated time, e.g. 7200, 2h, 30m [default: 2h; a contact trace's own length].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_duration)]
    pub duration: Option<Time>,
    /// Seed of every random choice: the same seed gives the same results.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replay an ns-2 movement file or a ONE connectivity events file (the format is detected).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Random-waypoint area, metres, e.g. 1000x1000 (--scenario rwp only).
    #[arg(long, value_name = "WxH", allow_hyphen_values = true, value_parser = parse_area)]
    pub area: Option<(f64, f64)>,
    /// Random-waypoint walking speed, m/s, MIN-MAX (--scenario rwp only) [default: 0.5-1.5].
    #[arg(long, value_name = "MIN-MAX", allow_hyphen_values = true, value_parser = parse_speed)]
    pub speed: Option<(f64, f64)>,
    /// Random-waypoint pause at each waypoint, MIN-MAX (--scenario rwp only) [default: 0-120].
    #[arg(long, value_name = "MIN-MAX", allow_hyphen_values = true, value_parser = parse_pause)]
    pub pause: Option<(Time, Time)>,
    /// Message size, bytes: MIN-MAX or one value, e.g. 1k-300k, 500k-1M [default: 1k-300k].
    #[arg(long, value_name = "MIN-MAX", allow_hyphen_values = true, value_parser = parse_size_range)]
    pub msg_size: Option<(u64, u64)>,
    /// Time between messages (network-wide), MIN-MAX or one value [default: 20-40].
    #[arg(long, value_name = "MIN-MAX", allow_hyphen_values = true, value_parser = parse_interval)]
    pub msg_interval: Option<(Time, Time)>,
    /// Message lifetime [default: 2h].
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_duration)]
    pub ttl: Option<Time>,
    /// Buffer per node, bytes [default: 50M].
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true, value_parser = parse_buffer)]
    pub buffer: Option<u64>,
    /// Link capacity, bytes per second each way (contact traces carry none) [default: the radio's].
    #[arg(long, value_name = "BYTES_PER_S", allow_hyphen_values = true, value_parser = parse_rate)]
    pub link_rate: Option<f64>,
    /// Radio range, metres [default: the radio's].
    #[arg(long, value_name = "M", allow_hyphen_values = true, value_parser = parse_range_m)]
    pub range: Option<f64>,
    /// The radio.
    #[arg(long, value_enum, default_value_t = RadioKind::Ble)]
    pub radio: RadioKind,
    /// Copies of each message Pollen's sources spray [default: 4].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_count)]
    pub copies: Option<u32>,
    /// Hops Pollen's wants travel from the wanting node [default: the router's].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = parse_hops)]
    pub want_hops: Option<u8>,
    /// Pollen and every baseline, or Pollen alone.
    #[arg(long, value_enum, default_value_t = Routers::All)]
    pub routers: Routers,
    /// Skip the energy-budget sweep.
    #[arg(long)]
    pub no_sweep: bool,
    /// Report directory (report.html and results.json).
    #[arg(long, value_name = "DIR", default_value = "pollen-sim-report")]
    pub out: PathBuf,
    /// Print the results as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Longest simulated time accepted. Beyond it the millisecond clock's arithmetic in the engine is not safe, and no
/// run that long could finish anyway.
const MAX_DURATION: Time = 10 * 365 * 24 * 3_600 * SECOND;

/// Most messages a generated workload may create: about 1 GB of message state; more is a typo in a flag or a trace
/// whose times are not seconds.
const MAX_MESSAGES: u64 = 5_000_000;

/// Runs `pollen sim`.
pub fn run(args: SimArgs) -> Result<()> {
    let cfg = config(&args)?;
    let bar = Bar::new(&cfg);
    let progress = |stage: &str, fraction: f64| bar.update(stage, fraction);
    let prepared = prepare(&cfg, &progress);
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            bar.clear();
            if let SimError::Workload(WorkloadError::TooFewEndpoints(_)) = e {
                // In the field scenario the relay points send nothing, so a tiny --nodes can leave one sender.
                bail!("{e} (raise --nodes)");
            }
            bail!("{e}");
        }
    };
    let results = simulate(&cfg, &prepared, &progress);
    bar.clear();
    let path = pollen_sim::report::write_report(&args.out, &results)?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let mut json = serde_json::to_string_pretty(&results).context("serialising the results")?;
        json.push('\n');
        stdout.write_all(json.as_bytes())
    } else {
        stdout.write_all(pollen_sim::report::summary_table(&results).as_bytes())
    }
    .and_then(|()| stdout.flush())
    .context("writing to stdout")?;
    eprintln!("report: {}", path.display());
    Ok(())
}

/// The run the flags describe.
pub fn config(args: &SimArgs) -> Result<SimConfig> {
    let mut cfg = SimConfig::field_default();
    let default_nodes = match cfg.scenario {
        Scenario::Field { nodes } => nodes,
        _ => 60,
    };
    let rwp_only = |flag: &str, set: bool| -> Result<()> {
        if set && (args.trace.is_some() || args.scenario != ScenarioKind::Rwp) {
            bail!("{flag} applies to --scenario rwp only");
        }
        Ok(())
    };
    rwp_only("--area", args.area.is_some())?;
    rwp_only("--speed", args.speed.is_some())?;
    rwp_only("--pause", args.pause.is_some())?;
    if let Some(path) = &args.trace {
        if args.nodes.is_some() {
            bail!("--nodes does not apply to --trace (the trace decides the nodes)");
        }
        // The trace's file name, not its path, so the report does not depend on where it was run from.
        cfg.name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        match read_trace_file(path)? {
            TraceFile::Movement(ns2) => {
                // Without --duration, run until the last node stops moving (after that nothing changes).
                let end_ms = (ns2.end_time_s() * SECOND as f64).ceil();
                if args.duration.is_none() && end_ms > MAX_DURATION as f64 {
                    bail!(
                        "{}: the nodes move for {:.0} s, more than the {} s this simulator runs; set --duration",
                        path.display(),
                        end_ms / 1000.0,
                        MAX_DURATION / SECOND
                    );
                }
                if end_ms >= 1.0 {
                    cfg.duration = end_ms as Time;
                }
                cfg.scenario = Scenario::Movement(ns2);
            }
            TraceFile::Contacts { trace, messages } => {
                // Zero means "the trace's own length" to the simulator.
                cfg.duration = 0;
                if trace.duration > MAX_DURATION {
                    bail!(
                        "{}: the trace lasts {} s, more than the {} s this simulator runs",
                        path.display(),
                        trace.duration / SECOND,
                        MAX_DURATION / SECOND
                    );
                }
                if !messages.is_empty() && (args.msg_size.is_some() || args.msg_interval.is_some()) {
                    eprintln!("pollen: the trace carries its own messages; --msg-size and --msg-interval are ignored");
                }
                cfg.scenario = Scenario::Contacts { trace, messages };
            }
        }
    } else {
        let nodes = args.nodes.unwrap_or(default_nodes);
        cfg.scenario = match args.scenario {
            ScenarioKind::Field => Scenario::Field { nodes },
            ScenarioKind::Rwp => {
                cfg.name = "random waypoint".into();
                let d = RandomWaypointConfig::default();
                let pause = args.pause.map_or(d.pause, |(a, b)| (a as f64 / 1000.0, b as f64 / 1000.0));
                Scenario::RandomWaypoint(RandomWaypointConfig {
                    nodes,
                    area: args.area.unwrap_or(d.area),
                    speed: args.speed.unwrap_or(d.speed),
                    pause,
                })
            }
        };
        if nodes < 2 {
            bail!("--nodes must be at least 2 (messages need a sender and an addressee)");
        }
    }
    if let Some(d) = args.duration {
        cfg.duration = d;
    }
    cfg.seed = args.seed;
    if let Some(size) = args.msg_size {
        cfg.workload.size = size;
    }
    if let Some(interval) = args.msg_interval {
        cfg.workload.interval_ms = interval;
    }
    if let Some(ttl) = args.ttl {
        cfg.workload.ttl_ms = ttl;
    }
    if let Some(buffer) = args.buffer {
        cfg.buffer_bytes = buffer;
    }
    if args.radio == RadioKind::WifiDirect {
        cfg.radio = RadioProfile::wifi_direct();
        cfg.range_m = cfg.radio.range_m;
    }
    if let Some(rate) = args.link_rate {
        cfg.radio.rate_bytes_per_s = rate;
    }
    if let Some(range) = args.range {
        cfg.range_m = range;
        cfg.radio.range_m = range;
    }
    if let Some(copies) = args.copies {
        cfg.pollen_copies = copies;
    }
    if let Some(hops) = args.want_hops {
        cfg.pollen_want_hops = hops;
    }
    cfg.routers = match args.routers {
        Routers::All => RouterSet::ALL,
        Routers::Pollen => RouterSet::POLLEN_ONLY,
    };
    if args.no_sweep {
        cfg.routers.energy_sweep = false;
    }
    check_workload_size(&cfg)?;
    Ok(cfg)
}

/// Refuses a generated workload so large it would exhaust memory before the run starts, and messages so large that
/// one transfer would outlast the simulator's clock.
fn check_workload_size(cfg: &SimConfig) -> Result<()> {
    let largest = match &cfg.scenario {
        Scenario::Contacts { messages, .. } if !messages.is_empty() => messages.iter().map(|m| m.size).max(),
        _ => Some(cfg.workload.size.1),
    };
    if let Some(size) = largest {
        let rate = cfg.radio.rate_bytes_per_s;
        if size as f64 / rate * 1000.0 > MAX_DURATION as f64 {
            bail!("a {size}-byte message would take more than 10 years to send at {rate} bytes/s; raise --link-rate");
        }
    }
    let duration = match &cfg.scenario {
        Scenario::Contacts { messages, .. } if !messages.is_empty() => return Ok(()),
        Scenario::Contacts { trace, .. } if cfg.duration == 0 => trace.duration,
        _ => cfg.duration,
    };
    let expected = duration / cfg.workload.interval_ms.0.max(1);
    if expected > MAX_MESSAGES {
        bail!(
            "the workload would create about {expected} messages in {} s (at most {MAX_MESSAGES}); raise --msg-interval or shorten --duration",
            duration / SECOND
        );
    }
    Ok(())
}

/// One progress bar for the whole run: each stage ("contacts", "pollen", the baselines, each sweep budget) is an
/// equal share. Stages run on two threads at once, so the bar's message lists the stages under way.
struct Bar {
    bar: ProgressBar,
    /// Stages the run will report.
    count: usize,
    /// Fraction done of each stage seen so far.
    stages: Mutex<BTreeMap<String, f64>>,
}

/// Bar length: permille of the whole run.
const BAR_TICKS: u64 = 1_000;

impl Bar {
    fn new(cfg: &SimConfig) -> Self {
        // Hidden when stderr is not a terminal (indicatif's stderr target checks), so logs and CI stay clean.
        let bar = ProgressBar::with_draw_target(Some(BAR_TICKS), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        // Contact extraction reports only its start and end; the tick keeps the elapsed time moving meanwhile.
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        let r = cfg.routers;
        let sweep = if r.energy_sweep { cfg.energy_budgets.len() } else { 0 };
        // "contacts" and "pollen", then the baselines and budgets; the oracle reports no progress (it is quick next
        // to the engine runs).
        let count = 2 + usize::from(r.direct) + usize::from(r.spray_and_wait) + sweep;
        Self { bar, count, stages: Mutex::new(BTreeMap::new()) }
    }

    fn update(&self, stage: &str, fraction: f64) {
        let Ok(mut stages) = self.stages.lock() else { return };
        let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        stages.insert(stage.to_string(), fraction);
        let done: f64 = stages.values().sum();
        let running: Vec<&str> = stages.iter().filter(|(_, f)| **f < 1.0).map(|(k, _)| k.as_str()).collect();
        let whole = (done / self.count.max(1) as f64).min(1.0);
        self.bar.set_position((whole * BAR_TICKS as f64) as u64);
        self.bar.set_message(running.join(", "));
    }

    fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// `2h`, `30m`, `90s`, `1.5d`, `500ms` or a plain number of seconds, as milliseconds; positive and at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Time, String> {
    let ms = parse_time_ms(text)?;
    if ms == 0 {
        return Err("must be more than zero".into());
    }
    Ok(ms)
}

/// Like [`parse_duration`] but zero is allowed.
fn parse_time_ms(text: &str) -> Result<Time, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor = match unit {
        "" | "s" => 1_000.0,
        "ms" => 1.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return Err(format!("unknown time unit `{unit}` (use s, m, h, d or ms)")),
    };
    let value = number_of(number)?;
    let ms = (value * factor).round();
    if ms > MAX_DURATION as f64 {
        return Err(format!("more than the {} days this simulator runs", MAX_DURATION / (86_400 * SECOND)));
    }
    Ok(ms as Time)
}

/// A non-negative finite number.
fn number_of(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("`{text}` is not a finite number"));
    }
    if v < 0.0 {
        return Err(format!("`{text}` is negative"));
    }
    Ok(v)
}

/// Bytes: a number with an optional k/M/G (×1000) or Ki/Mi/Gi (×1024) suffix, optionally followed by `B`.
pub fn parse_bytes(text: &str) -> Result<f64, String> {
    let t = text.trim();
    // A number such as `2.5e6` has a letter in it but no unit.
    let split =
        if t.parse::<f64>().is_ok() { t.len() } else { t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()) };
    let (number, unit) = t.split_at(split);
    let unit = unit.strip_suffix('B').unwrap_or(unit);
    let factor = match unit {
        "" => 1.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" | "ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown size unit `{unit}` (use k, M, G, Ki, Mi or Gi)")),
    };
    let bytes = number_of(number)? * factor;
    if bytes >= 2f64.powi(53) {
        return Err(format!("`{text}` is too large"));
    }
    Ok(bytes)
}

/// Whole bytes, at least one.
fn parse_positive_bytes(text: &str) -> Result<u64, String> {
    let b = parse_bytes(text)?.round();
    if b < 1.0 {
        return Err("must be at least one byte".into());
    }
    Ok(b as u64)
}

/// `MIN-MAX` or a single value `V` (meaning `V-V`), each side parsed by `one`; MIN must not exceed MAX.
fn parse_pair<T: PartialOrd + Copy>(text: &str, one: impl Fn(&str) -> Result<T, String>) -> Result<(T, T), String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("`{t}` is negative"));
    }
    let (lo, hi) = match t.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (one(a)?, one(b)?);
            if lo > hi {
                return Err(format!("MIN `{a}` is larger than MAX `{b}`"));
            }
            (lo, hi)
        }
        None => {
            let v = one(t)?;
            (v, v)
        }
    };
    Ok((lo, hi))
}

fn parse_size_range(text: &str) -> Result<(u64, u64), String> {
    parse_pair(text, parse_positive_bytes)
}

fn parse_interval(text: &str) -> Result<(Time, Time), String> {
    parse_pair(text, parse_duration)
}

fn parse_pause(text: &str) -> Result<(Time, Time), String> {
    parse_pair(text, parse_time_ms)
}

fn parse_speed(text: &str) -> Result<(f64, f64), String> {
    parse_pair(text, |s| match number_of(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err("speeds must be more than zero".into()),
    })
}

fn parse_buffer(text: &str) -> Result<u64, String> {
    parse_positive_bytes(text)
}

/// A link rate of at least one byte per second: slower links only make transfer times overflow the clock.
fn parse_rate(text: &str) -> Result<f64, String> {
    match parse_bytes(text)? {
        r if r >= 1.0 => Ok(r),
        _ => Err("must be at least 1 byte per second".into()),
    }
}

fn parse_range_m(text: &str) -> Result<f64, String> {
    match number_of(text)? {
        r if r > 0.0 => Ok(r),
        _ => Err("must be more than zero".into()),
    }
}

/// `WxH` in metres, both positive.
fn parse_area(text: &str) -> Result<(f64, f64), String> {
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(|| format!("`{text}` is not WxH, e.g. 1000x1000"))?;
    let (w, h) = (number_of(w.trim())?, number_of(h.trim())?);
    if w <= 0.0 || h <= 0.0 {
        return Err("width and height must be more than zero".into());
    }
    Ok((w, h))
}

/// A count of at least one.
fn parse_count(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number from 1 to {}", u32::MAX)),
    }
}

/// A hop budget of 1 to 255.
fn parse_hops(text: &str) -> Result<u8, String> {
    match text.trim().parse::<u8>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a whole number from 1 to 255")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90_000));
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("inf").is_err());
        assert!(parse_duration("1e300").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_and_ranges() {
        assert_eq!(parse_size_range("500k-1M"), Ok((500_000, 1_000_000)));
        assert_eq!(parse_size_range("1KiB-2MiB"), Ok((1024, 2 * 1024 * 1024)));
        assert_eq!(parse_size_range("300"), Ok((300, 300)));
        assert!(parse_size_range("5-1").is_err());
        assert!(parse_size_range("0-5").is_err());
        assert!(parse_size_range("-5").is_err());
        assert!(parse_size_range("5-").is_err());
        assert!(parse_size_range("1X").is_err());
        assert_eq!(parse_interval("20-40"), Ok((20_000, 40_000)));
        assert_eq!(parse_interval("1m-2m"), Ok((60_000, 120_000)));
        assert_eq!(parse_pause("0-120"), Ok((0, 120_000)));
        assert_eq!(parse_speed("0.5-1.5"), Ok((0.5, 1.5)));
        assert!(parse_speed("0-1").is_err());
        assert_eq!(parse_area("1000x500"), Ok((1000.0, 500.0)));
        assert!(parse_area("1000").is_err());
        assert!(parse_area("0x5").is_err());
        assert_eq!(parse_buffer("5M"), Ok(5_000_000));
        assert_eq!(parse_rate("250k"), Ok(250_000.0));
        assert_eq!(parse_rate("2.5e5"), Ok(250_000.0));
        assert!(parse_rate("inf").is_err());
        assert!(parse_rate("0").is_err());
        assert_eq!(parse_rate("1.5"), Ok(1.5));
        assert!(parse_rate("0.5").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_hops("256").is_err());
    }
}
