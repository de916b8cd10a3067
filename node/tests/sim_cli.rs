//! `pollen sim` end to end: the built binary, its output, its report directory, and its errors.

use std::path::Path;
use std::process::{Command, Output};

fn pollen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pollen")).args(args).output().expect("run the pollen binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A field run small enough for a debug build.
const SMALL: &[&str] = &["sim", "--nodes", "30", "--duration", "30m", "--no-sweep"];

fn small(out_dir: &Path, extra: &[&str]) -> Output {
    let dir = out_dir.to_str().expect("UTF-8 temp path");
    let mut args = SMALL.to_vec();
    args.extend_from_slice(&["--out", dir]);
    args.extend_from_slice(extra);
    pollen(&args)
}

#[test]
fn json_is_deterministic_and_complete() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let a = small(&tmp.path().join("a"), &["--json", "--seed", "7"]);
    let b = small(&tmp.path().join("b"), &["--json", "--seed", "7"]);
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(a.stdout == b.stdout, "two runs with --seed 7 printed different JSON");
    // The report's results.json holds the same document as stdout, so nothing in it depends on the directory.
    let written = std::fs::read(tmp.path().join("a").join("results.json")).expect("results.json");
    assert!(written == a.stdout, "results.json differs from the --json output");

    let v: serde_json::Value = serde_json::from_slice(&a.stdout).expect("stdout is JSON");
    assert_eq!(v["seed"], 7);
    assert_eq!(v["nodes"], 30);
    for router in ["pollen", "oracle", "direct", "spray_and_wait"] {
        let r = &v["routers"][router];
        for field in
            ["delivery_ratio", "overhead", "latency_median_s", "latency_p95_s", "duplicate_ratio", "energy_j_per_kb"]
        {
            // Figures with no data (no delivery yet) serialise as null; the key is always there.
            assert!(r.get(field).is_some(), "routers.{router}.{field} missing");
        }
        assert!(r["delivery_ratio"].is_number(), "routers.{router}.delivery_ratio");
    }
    // --json keeps stdout for the JSON alone; the report line goes to stderr.
    assert!(stderr(&a).contains("report: "), "{}", stderr(&a));
}

#[test]
fn table_and_report_directory() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out_dir = tmp.path().join("nested").join("report");
    let out = small(&out_dir, &["--routers", "pollen"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("Figures by router"), "{table}");
    assert!(table.contains("Delivery ratio"), "{table}");
    assert!(out_dir.join("report.html").is_file());
    assert!(out_dir.join("results.json").is_file());
    assert!(stderr(&out).contains(&format!("report: {}", out_dir.join("report.html").display())), "{}", stderr(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).expect("read")).expect("JSON");
    let routers: Vec<&String> = v["routers"].as_object().expect("routers").keys().collect();
    assert_eq!(routers, ["pollen"], "--routers pollen runs Pollen alone");
}

#[test]
fn other_scenarios_and_flags() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = pollen(&[
        "sim",
        "--scenario",
        "rwp",
        "--nodes",
        "20",
        "--area",
        "300x300",
        "--duration",
        "20m",
        "--msg-size",
        "10k-50k",
        "--msg-interval",
        "10-20",
        "--ttl",
        "15m",
        "--buffer",
        "2M",
        "--radio",
        "wifi-direct",
        "--range",
        "60",
        "--copies",
        "2",
        "--want-hops",
        "3",
        "--no-sweep",
        "--json",
        "--out",
        tmp.path().to_str().expect("UTF-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["scenario"], "random waypoint");
    assert_eq!(v["nodes"], 20);
    assert_eq!(v["duration_s"], 1200.0);
}

#[test]
fn replays_ns2_and_one_traces() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // Three nodes: 0 and 2 sit 200 m apart; 1 walks from one to the other and back.
    let ns2 = tmp.path().join("walk.ns2");
    std::fs::write(
        &ns2,
        "$node_(0) set X_ 0\n$node_(0) set Y_ 0\n$node_(1) set X_ 10\n$node_(1) set Y_ 0\n\
         $node_(2) set X_ 200\n$node_(2) set Y_ 0\n\
         $ns_ at 60 \"$node_(1) setdest 190 0 1.0\"\n$ns_ at 400 \"$node_(1) setdest 10 0 1.0\"\n",
    )
    .expect("write");
    let out = pollen(&[
        "sim",
        "--trace",
        ns2.to_str().expect("UTF-8"),
        "--msg-interval",
        "30",
        "--no-sweep",
        "--json",
        "--out",
        tmp.path().join("ns2").to_str().expect("UTF-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((v["scenario"].as_str(), v["nodes"].as_u64()), (Some("walk.ns2"), Some(3)));
    // Without --duration an ns-2 run lasts until the last node stops: 400 s + 180 m at 1 m/s.
    assert_eq!(v["duration_s"], 580.0);

    // A ONE trace with its own message: 0 meets 1, then 1 meets 2, so the message can reach 2 in two hops.
    let one = tmp.path().join("relay.one");
    std::fs::write(&one, "0 C M1 0 2 10k\n10 CONN 0 1 up\n100 CONN 0 1 down\n200 CONN 1 2 up\n300 CONN 1 2 down\n")
        .expect("write");
    let out = pollen(&[
        "sim",
        "--trace",
        one.to_str().expect("UTF-8"),
        "--link-rate",
        "100k",
        "--json",
        "--no-sweep",
        "--out",
        tmp.path().join("one").to_str().expect("UTF-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((v["nodes"].as_u64(), v["messages"].as_u64(), v["contacts"].as_u64()), (Some(3), Some(1), Some(2)));
    assert_eq!(v["duration_s"], 300.0, "a contact trace runs for its own length");
    assert_eq!(v["routers"]["oracle"]["delivered"], 1, "the oracle finds the two-hop path");
}

/// Runs `pollen sim --trace <file>` on `text` and checks the failure names the file and `line N`.
fn assert_trace_error(name: &str, text: &str, line: usize) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join(name);
    std::fs::write(&path, text).expect("write");
    let out = pollen(&[
        "sim",
        "--trace",
        path.to_str().expect("UTF-8"),
        "--out",
        tmp.path().join("r").to_str().expect("UTF-8"),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{name}: accepted");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(name) && err.contains(&format!("line {line}: ")), "{name}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{name}: not one line: {err}");
    assert!(!tmp.path().join("r").exists(), "a failed run wrote a report");
}

#[test]
fn malformed_traces_name_the_file_and_line() {
    assert_trace_error(
        "bad.ns2",
        "$node_(0) set X_ 1\n$node_(0) set Y_ 2\n\n$ns_ at 5 \"$node_(0) setdest 1 two 3\"\n",
        4,
    );
    assert_trace_error("bad.one", "# nodes 2\n0 CONN 0 1 up\n5 CONN 0 1 down\n6 CONN 0 1 down\n", 4);
    assert_trace_error("negative.one", "0 CONN 0 1 up\n-1 CONN 0 1 down\n", 2);
    assert_trace_error("garbage.txt", "\n\nnot a trace at all\n", 3);
}

#[test]
fn bad_flags_give_one_line() {
    for (args, flag) in [
        (&["sim", "--msg-size", "5-1"][..], "--msg-size"),
        (&["sim", "--nodes", "0"][..], "--nodes"),
        (&["sim", "--duration", "-5"][..], "--duration"),
        (&["sim", "--link-rate", "fast"][..], "--link-rate"),
        (&["sim", "--area", "10x10"][..], "--area"),
        (&["sim", "--radio", "lora"][..], "--radio"),
        (&["sim", "--nodes", "2"][..], "--nodes"),
        (&["sim", "--link-rate", "1", "--msg-size", "1G"][..], "--link-rate"),
        (&["sim", "--trace", "/nonexistent/pollen-trace.one"][..], "pollen-trace.one"),
    ] {
        let out = pollen(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("error") && err.contains(flag), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
}
