//! The device-lab runner: runs the conformance suite and the throughput matrix on every host of a `lab.toml`
//! (Linux machines with BlueZ adapters reached over ssh, or local namespaces and containers through a command
//! prefix) and gathers the results into `devlab.json` and `devlab.md`.
//!
//! On each host it runs `pollen-hw-tests suite|throughput --backend … --json -`, which writes the reports as JSON on
//! stdout and the human result lines on stderr. Everything goes through `std::process` and the system's `ssh`
//! and `scp` (`-o BatchMode=yes`, so a host that would ask for a password fails instead of hanging). A host that
//! cannot be reached, a binary that does not start and a run that produces no reports all become FAIL rows with
//! the error; nothing is skipped silently.

pub mod config;
pub mod results;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use config::{Backend, ConfigError, HostConfig, LabConfig, Reach};
pub use results::{Captured, HostResult, LabRun, Step, WriteError};

/// Time limit for reaching a host and for `--version`.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Stderr lines of a command kept for error messages.
const STDERR_TAIL: usize = 30;

/// A program with its arguments, to run on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Invocation {
    fn new(mut argv: Vec<String>) -> Self {
        let program = if argv.is_empty() { String::new() } else { argv.remove(0) };
        Self { program, args: argv }
    }

    /// The command line, shell-quoted, for logs.
    pub fn display(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
    }
}

/// Quotes `word` for a POSIX shell (the remote side of ssh joins its arguments into one shell command line).
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What the runner needs from its own side.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The `pollen-hw-tests` built here: uploaded with `upload = true`, and run on `exec`/`local` hosts that name no
    /// `binary`.
    pub local_binary: PathBuf,
}

impl HostConfig {
    /// The arguments of `pollen-hw-tests` for `step` (`Suite` or `Throughput`).
    pub fn tool_args(&self, step: Step) -> Vec<String> {
        let mut args: Vec<String> = match step {
            Step::Throughput => vec!["throughput".into()],
            _ => vec!["suite".into()],
        };
        args.extend(["--backend".into(), self.backend.as_str().into(), "--json".into(), "-".into()]);
        if !self.adapters.is_empty() {
            args.extend(["--adapters".into(), self.adapters.join(",")]);
        }
        if step == Step::Throughput {
            if let Some(bytes) = self.throughput_bytes {
                args.extend(["--bytes".into(), bytes.to_string()]);
            }
            if let Some(filter) = &self.throughput_filter {
                args.extend(["--filter".into(), filter.clone()]);
            }
        } else {
            if let Some(plan) = &self.relay_plan {
                args.extend(["--relay-plan".into(), plan.clone()]);
            }
            if let Some(filter) = &self.filter {
                args.extend(["--filter".into(), filter.clone()]);
            }
        }
        args
    }

    /// The binary path on the host.
    pub fn binary_path(&self, context: &RunContext) -> String {
        match &self.binary {
            Some(b) => b.clone(),
            None => context.local_binary.to_string_lossy().into_owned(),
        }
    }

    /// Runs `argv` on the host: through ssh, behind the exec prefix, or here.
    pub fn on_host(&self, argv: &[String]) -> Invocation {
        match &self.reach {
            Reach::Ssh { destination, options } => {
                let mut ssh = vec!["ssh".to_string(), "-o".into(), "BatchMode=yes".into()];
                ssh.extend(options.iter().cloned());
                let remote = argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
                ssh.extend(["--".into(), destination.clone(), remote]);
                Invocation::new(ssh)
            }
            Reach::Exec(prefix) => Invocation::new(prefix.iter().chain(argv).cloned().collect()),
            Reach::Local => Invocation::new(argv.to_vec()),
        }
    }

    /// `pollen-hw-tests <args>` on the host, with the host's `env`.
    pub fn tool(&self, context: &RunContext, args: &[String]) -> Invocation {
        let mut argv = Vec::new();
        if !self.env.is_empty() {
            argv.push("env".to_string());
            argv.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        }
        argv.push(self.binary_path(context));
        argv.extend(args.iter().cloned());
        self.on_host(&argv)
    }

    /// The command that checks the host can be reached at all (`None` for `local`).
    pub fn probe(&self) -> Option<Invocation> {
        match self.reach {
            Reach::Local => None,
            _ => Some(self.on_host(&["true".to_string()])),
        }
    }

    /// The scp command that copies `local` to the host's `binary` (`None` unless `upload = true`).
    pub fn upload(&self, local: &Path) -> Option<Invocation> {
        let (Reach::Ssh { destination, options }, true, Some(binary)) = (&self.reach, self.upload, &self.binary) else {
            return None;
        };
        let mut scp = vec!["scp".to_string(), "-o".into(), "BatchMode=yes".into(), "-p".into(), "-q".into()];
        scp.extend(options.iter().cloned());
        scp.extend(["--".into(), local.to_string_lossy().into_owned(), format!("{destination}:{binary}")]);
        Some(Invocation::new(scp))
    }
}

/// Runs `invocation` with stdin closed, collecting stdout, handing every stderr line to `on_line`, and killing it
/// after `limit`.
pub fn run_captured(
    invocation: &Invocation,
    limit: Duration,
    on_line: &(dyn Fn(&str) + Sync),
) -> std::io::Result<Captured> {
    tracing::debug!("running {}", invocation.display());
    let mut child = Command::new(&invocation.program)
        .args(&invocation.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::scope(|scope| {
        let out = scope.spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = stdout {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        });
        let err = scope.spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            if let Some(pipe) = stderr {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    on_line(&line);
                    if tail.len() == STDERR_TAIL {
                        tail.remove(0);
                    }
                    tail.push(line);
                }
            }
            tail
        });
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                let _ = child.kill();
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr_tail = err.join().unwrap_or_default();
        Ok(Captured { status: status.code(), timed_out, stdout, stderr_tail })
    })
}

/// Runs everything `host` asks for and returns what happened. Never fails: every problem becomes a FAIL row.
/// `on_line` receives the host's stderr lines (its PASS/FAIL lines among them) as they arrive.
pub fn run_host(host: &HostConfig, context: &RunContext, on_line: &(dyn Fn(&str) + Sync)) -> HostResult {
    let start = Instant::now();
    let mut result = HostResult::new(host);
    run_steps(host, context, on_line, &mut result);
    result.seconds = start.elapsed().as_secs_f64();
    result
}

fn run_steps(host: &HostConfig, context: &RunContext, on_line: &(dyn Fn(&str) + Sync), result: &mut HostResult) {
    let quiet = |_: &str| {};
    if let Some(probe) = host.probe() {
        match run_captured(&probe, PROBE_TIMEOUT.min(host.timeout), &quiet) {
            Ok(run) if run.status == Some(0) => {}
            Ok(run) if run.timed_out => {
                return result.unreachable(format!("`{}` timed out: {}", probe.display(), run.stderr_summary(2)))
            }
            Ok(run) => {
                let why = format!("`{}`: {}: {}", probe.display(), run.status_text(), run.stderr_summary(2));
                return result.unreachable(why);
            }
            Err(e) => return result.unreachable(format!("cannot start `{}`: {e}", probe.program)),
        }
    }
    if let Some(upload) = host.upload(&context.local_binary) {
        match run_captured(&upload, host.timeout, &quiet) {
            Ok(run) if run.status == Some(0) => {}
            Ok(run) => return result.fail(Step::Upload, format!("{}: {}", run.status_text(), run.stderr_summary(2))),
            Err(e) => return result.fail(Step::Upload, format!("cannot start scp: {e}")),
        }
    }
    let version = host.tool(context, &["--version".to_string()]);
    match run_captured(&version, PROBE_TIMEOUT.min(host.timeout), &quiet) {
        Ok(run) if run.status == Some(0) => {
            result.version = Some(String::from_utf8_lossy(&run.stdout).trim().to_string());
        }
        Ok(run) => {
            let why = format!("`{}` does not run: {}: {}", version.display(), run.status_text(), run.stderr_summary(2));
            return result.fail(Step::Binary, why);
        }
        Err(e) => return result.fail(Step::Binary, format!("cannot start `{}`: {e}", version.program)),
    }
    for (step, wanted) in [(Step::Suite, host.suite), (Step::Throughput, host.throughput)] {
        if !wanted {
            continue;
        }
        let invocation = host.tool(context, &host.tool_args(step));
        match run_captured(&invocation, host.timeout, on_line) {
            Ok(run) => result.absorb(step, &run),
            Err(e) => result.fail(step, format!("cannot start `{}`: {e}", invocation.program)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> HostConfig {
        let text = format!("[[host]]\nname = \"h\"\n{text}\n");
        LabConfig::parse(&text, Path::new("/lab/lab.toml")).expect("valid").hosts.remove(0)
    }

    fn context() -> RunContext {
        RunContext { local_binary: PathBuf::from("/build/pollen-hw-tests") }
    }

    #[test]
    fn quotes_for_the_remote_shell() {
        assert_eq!(shell_quote("hci0,hci1"), "hci0,hci1");
        assert_eq!(shell_quote("0/1,2/3"), "0/1,2/3");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's;rm"), r"'it'\''s;rm'");
    }

    #[test]
    fn ssh_hosts_run_one_quoted_command_line() {
        let h = host(
            "ssh = \"pi@pi4\"\nssh_options = [\"-o\", \"Port=2222\"]\nbinary = \"bin/pollen hw\"\nbackend = \"bluez\"\n\
             adapters = [\"hci0\", \"hci1\"]\nrelay_plan = \"0/1,2/3\"\nfilter = \"relay\"\nenv = { RUST_LOG = \"debug\" }\n\
             upload = true",
        );
        let suite = h.tool(&context(), &h.tool_args(Step::Suite));
        assert_eq!(suite.program, "ssh");
        assert_eq!(
            suite.args,
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "Port=2222",
                "--",
                "pi@pi4",
                "env RUST_LOG=debug 'bin/pollen hw' suite --backend bluez --json - --adapters hci0,hci1 \
                 --relay-plan 0/1,2/3 --filter relay"
            ]
        );
        let probe = h.probe().expect("ssh is probed");
        assert_eq!(probe.display(), "ssh -o BatchMode=yes -o Port=2222 -- pi@pi4 true");
        let upload = h.upload(Path::new("/build/pollen-hw-tests")).expect("uploads");
        assert_eq!(
            upload.display(),
            "scp -o BatchMode=yes -p -q -o Port=2222 -- /build/pollen-hw-tests 'pi@pi4:bin/pollen hw'"
        );
    }

    #[test]
    fn exec_and_local_hosts_run_directly() {
        let h = host(
            "exec = [\"ip\", \"netns\", \"exec\", \"pollen-h1\"]\nbackend = \"sim\"\nthroughput_bytes = 4096\n\
             throughput_filter = \"gatt\"",
        );
        let run = h.tool(&context(), &h.tool_args(Step::Throughput));
        assert_eq!(
            run.display(),
            "ip netns exec pollen-h1 /build/pollen-hw-tests throughput --backend sim --json - --bytes 4096 --filter gatt"
        );
        assert_eq!(h.probe().map(|p| p.display()).as_deref(), Some("ip netns exec pollen-h1 true"));
        assert_eq!(h.upload(Path::new("/x")), None);
        let local = host("local = true\nbinary = \"./pollen-hw-tests\"\nbackend = \"sim\"");
        assert_eq!(local.probe(), None);
        assert_eq!(local.tool(&context(), &["--version".into()]).display(), "/lab/./pollen-hw-tests --version");
    }

    #[test]
    fn captures_stdout_stderr_and_status() {
        let seen = std::sync::Mutex::new(Vec::new());
        let sh =
            Invocation::new(["sh", "-c", "echo '[]'; echo one >&2; echo two >&2; exit 3"].map(String::from).to_vec());
        let run = run_captured(&sh, Duration::from_secs(30), &|l| seen.lock().expect("lock").push(l.to_string()))
            .expect("sh runs");
        assert_eq!(run.status, Some(3));
        assert!(!run.timed_out);
        assert_eq!(run.stdout, b"[]\n");
        assert_eq!(run.stderr_tail, ["one", "two"]);
        assert_eq!(*seen.lock().expect("lock"), ["one", "two"]);
        let slow = Invocation::new(["sleep", "30"].map(String::from).to_vec());
        let run = run_captured(&slow, Duration::from_millis(200), &|_| {}).expect("sleep runs");
        assert!(run.timed_out);
        assert_eq!(run.status, None);
    }

    #[test]
    fn an_unreachable_exec_host_is_reported_not_skipped() {
        let h = host("exec = [\"/nonexistent/pollen-prefix\"]\nbackend = \"sim\"");
        let result = run_host(&h, &context(), &|_| {});
        assert!(!result.reachable);
        assert_eq!(result.tally.failed, 1);
        assert_eq!(result.reports[0].name, "devlab_connect");
        assert!(result.errors[0].contains("cannot start `/nonexistent/pollen-prefix`"), "{:?}", result.errors);
    }

    #[test]
    fn a_missing_binary_is_a_failure_row() {
        let h = host("local = true\nbinary = \"/nonexistent/pollen-hw-tests\"\nbackend = \"sim\"");
        let result = run_host(&h, &context(), &|_| {});
        assert!(result.reachable);
        assert_eq!(result.reports.len(), 1);
        assert_eq!(result.reports[0].name, "devlab_binary");
    }
}
