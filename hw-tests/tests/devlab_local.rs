//! The device-lab runner end to end, without root or network: the built `pollen-hw-tests devlab` runs two hosts on
//! this machine (one `local`, one behind the generic `exec` prefix `env`) on the sim backend, plus a host whose
//! exec prefix does not exist, and must report exactly that. `hw-tests/devlab/netns-lab.sh` does the same with
//! network namespaces and an unreachable ssh host.

use std::path::PathBuf;
use std::process::Command;

use pollen_hw_tests::devlab::LabRun;
use pollen_hw_tests::report::Outcome;

const BINARY: &str = env!("CARGO_BIN_EXE_pollen-hw-tests");

#[test]
fn devlab_runs_local_hosts_and_reports_an_unreachable_one() {
    let folder = std::env::temp_dir().join(format!("pollen-devlab-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("temp folder");
    let config = folder.join("lab.toml");
    let lab = format!(
        r#"
title = "local"
[defaults]
filter = "discover"
throughput_filter = "mtu517"
throughput_bytes = 65536
[[host]]
name = "here"
local = true
binary = "{BINARY}"
backend = "sim"
[[host]]
name = "via-env"
exec = ["env", "POLLEN_DEVLAB_TEST=1"]
backend = "sim"
[[host]]
name = "gone"
exec = ["/nonexistent/pollen-prefix"]
backend = "sim"
"#
    );
    std::fs::write(&config, lab).expect("lab.toml");
    let out: PathBuf = folder.join("results");
    let status = Command::new(BINARY)
        .args(["devlab", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("runs pollen-hw-tests devlab");
    assert_eq!(status.code(), Some(1), "an unreachable host makes the run fail");
    let run: LabRun =
        serde_json::from_slice(&std::fs::read(out.join("devlab.json")).expect("devlab.json")).expect("parses");
    assert!(!run.ok);
    for name in ["here", "via-env"] {
        let host = run.hosts.iter().find(|h| h.name == name).expect("host in results");
        assert!(host.reachable, "{name}");
        assert!(host.errors.is_empty(), "{name}: {:?}", host.errors);
        let names: Vec<&str> = host.reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["discover_handshake", "throughput_gatt_mtu517"], "{name}");
        assert!(host.reports.iter().all(|r| r.outcome == Outcome::Pass), "{name}: {:?}", host.reports);
        let throughput = &host.reports[1];
        assert_eq!(throughput.labels.get("phy").map(String::as_str), Some("2M"));
        assert_eq!(throughput.metrics.get("att_mtu"), Some(&517.0));
    }
    let gone = run.hosts.iter().find(|h| h.name == "gone").expect("unreachable host in results");
    assert!(!gone.reachable);
    assert_eq!(gone.tally.failed, 1);
    assert_eq!(gone.reports[0].name, "devlab_connect");
    let md = std::fs::read_to_string(out.join("devlab.md")).expect("devlab.md");
    assert!(md.contains("| gone | exec /nonexistent/pollen-prefix | sim | UNREACHABLE |"), "{md}");
    assert!(md.contains("| here | sim | gatt | 517 | 517 | 2M |"), "{md}");
    let _ = std::fs::remove_dir_all(&folder);
}
