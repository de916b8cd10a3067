//! `lab.toml`: the hosts of a device lab and how to reach them.
//!
//! ```toml
//! title = "bench lab"
//! [defaults]                       # any host key except `name`; a host's own value wins
//! ssh_options = ["-o", "ConnectTimeout=5"]
//! binary = "bin/pollen-hw-tests"
//! upload = true
//! [[host]]
//! name = "pi4"
//! ssh = "pi@pi4.lab"
//! backend = "bluez"
//! adapters = ["hci0", "hci1"]
//! ```
//!
//! Every key is described in `hw-tests/README.md`. Unknown keys are errors, so a typo never silently changes a run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::lab::parse_relay_plan;

/// Per-command time limit on a host unless `timeout_s` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which radio backend a host runs the suite on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The simulated medium in virtual time (no radio needed).
    Sim,
    /// The host's BlueZ adapters (the binary must be built with `--features bluez`).
    Bluez,
}

impl Backend {
    /// The value of `--backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sim => "sim",
            Backend::Bluez => "bluez",
        }
    }
}

/// How the runner reaches a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// `ssh -o BatchMode=yes <options> <destination> <command>`.
    Ssh {
        /// `user@host` (or a `Host` alias of the runner's ssh config).
        destination: String,
        /// Extra ssh arguments, also given to scp for uploads.
        options: Vec<String>,
    },
    /// A command prefix run locally: `ip netns exec pollen-h1`, `docker exec box`, ….
    Exec(Vec<String>),
    /// This machine.
    Local,
}

impl Reach {
    /// A short description for reports: `ssh pi@pi4`, `exec ip netns exec pollen-h1`, `local`.
    pub fn describe(&self) -> String {
        match self {
            Reach::Ssh { destination, .. } => format!("ssh {destination}"),
            Reach::Exec(prefix) => format!("exec {}", prefix.join(" ")),
            Reach::Local => "local".to_string(),
        }
    }
}

/// One host of the lab, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Unique name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// How to reach it.
    pub reach: Reach,
    /// Path of `pollen-hw-tests` on the host; `None` (only for `exec` and `local`) runs the runner's own executable.
    /// For `exec` and `local`, a relative path with a `/` is resolved against the folder of `lab.toml`.
    pub binary: Option<String>,
    /// Copy the runner's binary to `binary` with scp first (ssh hosts only).
    pub upload: bool,
    /// The backend to run.
    pub backend: Backend,
    /// BlueZ adapters as nodes 0, 1, 2 … (empty: every adapter the host has).
    pub adapters: Vec<String>,
    /// Radios of the relay chain, `A/B/C` as in `suite --relay-plan`.
    pub relay_plan: Option<String>,
    /// Only suite scenarios whose name contains this.
    pub filter: Option<String>,
    /// Run the conformance suite.
    pub suite: bool,
    /// Run the throughput matrix.
    pub throughput: bool,
    /// Bytes each way per throughput case (`None`: the matrix's default).
    pub throughput_bytes: Option<u64>,
    /// Only throughput cases whose name contains this.
    pub throughput_filter: Option<String>,
    /// Time limit of each command on the host.
    pub timeout: Duration,
    /// Environment for the binary on the host (set with `env K=V`), e.g. `RUST_LOG`.
    pub env: BTreeMap<String, String>,
}

/// A parsed and validated `lab.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// Title of the Markdown report (default: the file's name).
    pub title: String,
    /// Run the hosts at the same time instead of one after another.
    pub parallel: bool,
    /// The hosts, in file order.
    pub hosts: Vec<HostConfig>,
}

/// A `lab.toml` that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or a key of the wrong type or name (the message has the line).
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Well-formed but not a usable lab.
    #[error("{}: {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the host and key.
        problem: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    title: Option<String>,
    #[serde(default)]
    parallel: bool,
    defaults: Option<RawHost>,
    #[serde(default)]
    host: Vec<RawHost>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<String>,
    ssh: Option<String>,
    ssh_options: Option<Vec<String>>,
    exec: Option<Vec<String>>,
    local: Option<bool>,
    binary: Option<String>,
    upload: Option<bool>,
    backend: Option<Backend>,
    adapters: Option<Vec<String>>,
    relay_plan: Option<String>,
    filter: Option<String>,
    suite: Option<bool>,
    throughput: Option<bool>,
    throughput_bytes: Option<u64>,
    throughput_filter: Option<String>,
    timeout_s: Option<u64>,
    env: Option<BTreeMap<String, String>>,
}

impl RawHost {
    /// This host's values, falling back to `defaults` key by key. The defaults of `ssh_options`, `upload` and
    /// `binary` describe remote machines, so they only fill in ssh hosts.
    fn or(self, d: &RawHost) -> RawHost {
        let remote = self.ssh.is_some();
        fn pick<T: Clone>(remote: bool, own: Option<T>, default: &Option<T>) -> Option<T> {
            if remote {
                own.or_else(|| default.clone())
            } else {
                own
            }
        }
        RawHost {
            name: self.name,
            ssh: self.ssh,
            ssh_options: pick(remote, self.ssh_options, &d.ssh_options),
            exec: self.exec,
            local: self.local,
            binary: pick(remote, self.binary, &d.binary),
            upload: pick(remote, self.upload, &d.upload),
            backend: self.backend.or(d.backend),
            adapters: self.adapters.or_else(|| d.adapters.clone()),
            relay_plan: self.relay_plan.or_else(|| d.relay_plan.clone()),
            filter: self.filter.or_else(|| d.filter.clone()),
            suite: self.suite.or(d.suite),
            throughput: self.throughput.or(d.throughput),
            throughput_bytes: self.throughput_bytes.or(d.throughput_bytes),
            throughput_filter: self.throughput_filter.or_else(|| d.throughput_filter.clone()),
            timeout_s: self.timeout_s.or(d.timeout_s),
            env: self.env.or_else(|| d.env.clone()),
        }
    }
}

impl LabConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        // Absolute, so relative binaries resolve against the file's folder whatever the working directory.
        let path = std::fs::canonicalize(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, &path)
    }

    /// Parses and validates `text`, read from `path` (used in messages and to resolve relative binaries).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawLab =
            toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
        let invalid = |problem: String| ConfigError::Invalid { path: path.into(), problem };
        let defaults = raw.defaults.unwrap_or_default();
        if defaults.name.is_some() {
            return Err(invalid("[defaults] cannot set `name`: every host needs its own".into()));
        }
        if defaults.ssh.is_some() || defaults.exec.is_some() || defaults.local.is_some() {
            return Err(invalid("[defaults] cannot set `ssh`, `exec` or `local`: say per host how to reach it".into()));
        }
        if raw.host.is_empty() {
            return Err(invalid("no hosts: add at least one [[host]] table".into()));
        }
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut names = BTreeSet::new();
        let mut hosts = Vec::new();
        for (i, host) in raw.host.into_iter().enumerate() {
            let label = match &host.name {
                Some(name) => format!("[[host]] {name:?}"),
                None => format!("[[host]] #{}", i + 1),
            };
            let host =
                validate(host.or(&defaults), folder).map_err(|problem| invalid(format!("{label}: {problem}")))?;
            if !names.insert(host.name.clone()) {
                return Err(invalid(format!("{label}: the name is used by another host")));
            }
            hosts.push(host);
        }
        let title = raw.title.unwrap_or_else(|| {
            path.file_name().map_or_else(|| "lab.toml".to_string(), |n| n.to_string_lossy().into_owned())
        });
        Ok(Self { path: path.into(), title, parallel: raw.parallel, hosts })
    }
}

fn validate(raw: RawHost, folder: &Path) -> Result<HostConfig, String> {
    let name = raw.name.ok_or("`name` is missing")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!("name {name:?} must be non-empty letters, digits, '.', '_' or '-'"));
    }
    let reach = reach(raw.ssh, raw.ssh_options, raw.exec, raw.local.unwrap_or(false))?;
    let upload = raw.upload.unwrap_or(false);
    let is_ssh = matches!(reach, Reach::Ssh { .. });
    if upload && !is_ssh {
        return Err("`upload = true` needs an `ssh` host (exec and local hosts see this machine's files)".into());
    }
    let binary = match raw.binary {
        Some(b) if b.trim().is_empty() => return Err("`binary` is empty".into()),
        Some(b) if !is_ssh && b.contains('/') && Path::new(&b).is_relative() => {
            Some(folder.join(&b).to_string_lossy().into_owned())
        }
        Some(b) => Some(b),
        None if is_ssh => {
            return Err("`binary` is missing: an ssh host needs the path of pollen-hw-tests there (with `upload = \
                        true`, where to copy it)"
                .into())
        }
        None => None,
    };
    let backend = raw.backend.ok_or("`backend` is missing: \"bluez\" or \"sim\"")?;
    let adapters = raw.adapters.unwrap_or_default();
    if backend == Backend::Sim && !adapters.is_empty() {
        return Err("`adapters` only apply to backend = \"bluez\"".into());
    }
    if let Some(bad) = adapters.iter().find(|a| a.is_empty() || a.contains(',') || a.contains(char::is_whitespace)) {
        return Err(format!("adapter {bad:?} is not an adapter name such as \"hci0\""));
    }
    if let Some(plan) = &raw.relay_plan {
        parse_relay_plan(plan).map_err(|e| format!("`relay_plan`: {e}"))?;
    }
    let (suite, throughput) = (raw.suite.unwrap_or(true), raw.throughput.unwrap_or(true));
    if !suite && !throughput {
        return Err("`suite` and `throughput` are both false: nothing to run".into());
    }
    if raw.throughput_bytes == Some(0) {
        return Err("`throughput_bytes` must be at least 1".into());
    }
    let timeout = match raw.timeout_s {
        Some(0) => return Err("`timeout_s` must be at least 1".into()),
        Some(s) => Duration::from_secs(s),
        None => DEFAULT_TIMEOUT,
    };
    let env = raw.env.unwrap_or_default();
    if let Some(key) = env.keys().find(|k| {
        k.is_empty()
            || k.starts_with(|c: char| c.is_ascii_digit())
            || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) {
        return Err(format!("`env` key {key:?} is not a variable name"));
    }
    Ok(HostConfig {
        name,
        reach,
        binary,
        upload,
        backend,
        adapters,
        relay_plan: raw.relay_plan,
        filter: raw.filter,
        suite,
        throughput,
        throughput_bytes: raw.throughput_bytes,
        throughput_filter: raw.throughput_filter,
        timeout,
        env,
    })
}

fn reach(
    ssh: Option<String>,
    ssh_options: Option<Vec<String>>,
    exec: Option<Vec<String>>,
    local: bool,
) -> Result<Reach, String> {
    let given: Vec<&str> = [(ssh.is_some(), "ssh"), (exec.is_some(), "exec"), (local, "local = true")]
        .into_iter()
        .filter_map(|(set, key)| set.then_some(key))
        .collect();
    if given.len() != 1 {
        let found = if given.is_empty() { "none".to_string() } else { given.join(", ") };
        return Err(format!("set exactly one of `ssh`, `exec` or `local = true` (found: {found})"));
    }
    if ssh_options.is_some() && ssh.is_none() {
        return Err("`ssh_options` only apply to an `ssh` host".into());
    }
    if let Some(destination) = ssh {
        if destination.trim().is_empty() || destination.starts_with('-') {
            return Err(format!("`ssh` = {destination:?} is not a destination such as \"user@host\""));
        }
        let options = ssh_options.unwrap_or_default();
        if options.iter().any(|o| o == "-p") {
            return Err("`ssh_options`: write the port as \"-o\", \"Port=N\" (scp reads -p differently)".into());
        }
        return Ok(Reach::Ssh { destination, options });
    }
    match exec {
        Some(prefix) if prefix.is_empty() || prefix[0].trim().is_empty() => {
            Err("`exec` is empty: give a command prefix such as [\"ip\", \"netns\", \"exec\", \"h1\"]".into())
        }
        Some(prefix) => Ok(Reach::Exec(prefix)),
        None => Ok(Reach::Local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LabConfig, ConfigError> {
        LabConfig::parse(text, Path::new("/labs/bench/lab.toml"))
    }

    fn problem(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_every_kind_of_host_with_defaults() {
        let lab = parse(
            r#"
            title = "bench"
            parallel = true
            [defaults]
            ssh_options = ["-o", "ConnectTimeout=5"]
            binary = "bin/pollen-hw-tests"
            timeout_s = 900
            [[host]]
            name = "pi4"
            ssh = "pi@pi4.lab"
            upload = true
            backend = "bluez"
            adapters = ["hci0", "hci1", "hci2", "hci3"]
            relay_plan = "0/1,2/3"
            filter = "transfer"
            throughput_bytes = 65536
            env = { RUST_LOG = "pollen_ble=debug" }
            [[host]]
            name = "h1"
            exec = ["ip", "netns", "exec", "pollen-h1"]
            binary = "../../target/debug/pollen-hw-tests"
            backend = "sim"
            throughput = false
            [[host]]
            name = "here"
            local = true
            binary = "pollen-hw-tests"
            backend = "sim"
            suite = false
            throughput_filter = "l2cap"
            [[host]]
            name = "h2"
            exec = ["ip", "netns", "exec", "pollen-h2"]
            backend = "sim"
            "#,
        )
        .expect("valid");
        assert_eq!(lab.title, "bench");
        assert!(lab.parallel);
        let [pi, h1, here, h2] = &lab.hosts[..] else { panic!("four hosts: {lab:?}") };
        assert_eq!(
            pi.reach,
            Reach::Ssh { destination: "pi@pi4.lab".into(), options: vec!["-o".into(), "ConnectTimeout=5".into()] }
        );
        assert_eq!(pi.binary.as_deref(), Some("bin/pollen-hw-tests"), "ssh paths stay as written");
        assert!(pi.upload && pi.suite && pi.throughput);
        assert_eq!(pi.backend, Backend::Bluez);
        assert_eq!(pi.adapters.len(), 4);
        assert_eq!(pi.relay_plan.as_deref(), Some("0/1,2/3"));
        assert_eq!(pi.timeout, Duration::from_secs(900));
        assert_eq!(pi.env.get("RUST_LOG").map(String::as_str), Some("pollen_ble=debug"));
        assert_eq!(h1.reach, Reach::Exec(vec!["ip".into(), "netns".into(), "exec".into(), "pollen-h1".into()]));
        assert_eq!(h1.binary.as_deref(), Some("/labs/bench/../../target/debug/pollen-hw-tests"));
        assert!(h1.suite && !h1.throughput);
        assert_eq!(here.reach, Reach::Local);
        assert_eq!(here.binary.as_deref(), Some("pollen-hw-tests"), "a bare name is looked up on PATH");
        assert_eq!(here.throughput_filter.as_deref(), Some("l2cap"));
        assert_eq!(here.timeout, Duration::from_secs(900));
        assert_eq!(here.reach.describe(), "local");
        assert_eq!(h1.reach.describe(), "exec ip netns exec pollen-h1");
        assert_eq!(h2.binary, None, "the ssh defaults (binary, upload, ssh_options) stay off exec hosts");
        assert!(!h2.upload);
        assert_eq!(h2.timeout, Duration::from_secs(900), "other defaults apply to every host");
    }

    #[test]
    fn minimal_host_gets_the_defaults() {
        let lab = parse("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\n").expect("valid");
        let host = &lab.hosts[0];
        assert_eq!(lab.title, "lab.toml");
        assert_eq!(host.binary, None);
        assert!(host.suite && host.throughput && !host.upload);
        assert_eq!(host.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("[[host]\nname = 1", "/labs/bench/lab.toml: TOML parse error at line 1"),
            ("title = \"x\"", "no hosts"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nssh_opts = []", "unknown field `ssh_opts`"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"zephyr\"", "unknown variant `zephyr`"),
            ("[[host]]\nlocal = true\nbackend = \"sim\"", "[[host]] #1: `name` is missing"),
            ("[[host]]\nname = \"a b\"\nlocal = true\nbackend = \"sim\"", "name \"a b\" must be"),
            ("[[host]]\nname = \"a\"\nbackend = \"sim\"", "[[host]] \"a\": set exactly one of `ssh`, `exec` or `local = true` (found: none)"),
            (
                "[[host]]\nname = \"a\"\nssh = \"u@h\"\nexec = [\"x\"]\nbinary = \"b\"\nbackend = \"sim\"",
                "(found: ssh, exec)",
            ),
            ("[[host]]\nname = \"a\"\nexec = []\nbackend = \"sim\"", "`exec` is empty"),
            ("[[host]]\nname = \"a\"\nssh = \"u@h\"\nbackend = \"bluez\"", "`binary` is missing"),
            ("[[host]]\nname = \"a\"\nssh = \"-oProxyCommand=x\"\nbinary = \"b\"\nbackend = \"sim\"", "is not a destination"),
            (
                "[[host]]\nname = \"a\"\nssh = \"u@h\"\nssh_options = [\"-p\", \"22\"]\nbinary = \"b\"\nbackend = \"sim\"",
                "Port=N",
            ),
            ("[[host]]\nname = \"a\"\nlocal = true\nssh_options = [\"-v\"]\nbackend = \"sim\"", "`ssh_options` only apply"),
            ("[[host]]\nname = \"a\"\nlocal = true\nupload = true\nbackend = \"sim\"", "`upload = true` needs an `ssh` host"),
            ("[[host]]\nname = \"a\"\nlocal = true", "`backend` is missing"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nadapters = [\"hci0\"]", "`adapters` only apply"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"bluez\"\nadapters = [\"hci0,hci1\"]", "adapter \"hci0,hci1\""),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nrelay_plan = \"0/1\"", "`relay_plan`: relay plan \"0/1\": expected three groups"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nrelay_plan = \"0//2\"", "at least one radio"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nsuite = false\nthroughput = false", "nothing to run"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nthroughput_bytes = 0", "`throughput_bytes` must be"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\ntimeout_s = 0", "`timeout_s` must be"),
            ("[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\nenv = { \"A-B\" = \"1\" }", "`env` key \"A-B\""),
            ("[defaults]\nname = \"x\"\n[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"", "[defaults] cannot set `name`"),
            ("[defaults]\nlocal = true\n[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"", "[defaults] cannot set `ssh`"),
            (
                "[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"\n[[host]]\nname = \"a\"\nlocal = true\nbackend = \"sim\"",
                "[[host]] \"a\": the name is used by another host",
            ),
        ];
        for (text, expected) in cases {
            let message = problem(text);
            assert!(message.contains(expected), "{text:?}\n  gave: {message}\n  want: {expected}");
            assert!(message.starts_with("/labs/bench/lab.toml: "), "{message}");
        }
    }

    #[test]
    fn the_committed_examples_parse() {
        let example = LabConfig::parse(include_str!("../../devlab/lab.example.toml"), Path::new("/x/lab.example.toml"))
            .expect("lab.example.toml is valid");
        assert!(example.hosts.len() >= 3);
        assert!(example.hosts.iter().any(|h| matches!(h.reach, Reach::Ssh { .. }) && h.backend == Backend::Bluez));
        let netns = LabConfig::parse(include_str!("../../devlab/lab.netns.toml"), Path::new("/x/lab.netns.toml"))
            .expect("lab.netns.toml is valid");
        let reaches: Vec<String> = netns.hosts.iter().map(|h| h.reach.describe()).collect();
        assert_eq!(reaches, ["exec ip netns exec pollen-h1", "exec ip netns exec pollen-h2", "ssh nobody@127.0.0.1"]);
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let e = LabConfig::load(Path::new("/nonexistent/lab.toml")).expect_err("no such file");
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().starts_with("reading /nonexistent/lab.toml: "), "{e}");
    }
}
