//! Malformed trace files: every parser answers with an error that names the line, and no input makes one panic.

use std::path::PathBuf;

use pollen_sim::trace::{read_ns2, read_one, read_trace_file, TraceError};
use proptest::prelude::*;

/// Writes `bytes` to a fresh file in a per-test temporary directory and returns its path.
fn file(test: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pollen-sim-bad-input-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Asserts `result` is an error about line `line` whose message says so and contains `needle`.
fn assert_line<T: std::fmt::Debug>(result: Result<T, TraceError>, line: usize, needle: &str) {
    let e = result.expect_err("malformed input must be refused");
    assert_eq!(e.line(), Some(line), "wrong line in `{e}`");
    let text = e.to_string();
    assert!(text.contains(&format!("line {line}: ")), "no line number in `{text}`");
    assert!(text.contains(needle), "`{text}` does not mention `{needle}`");
}

#[test]
fn malformed_one_traces_name_the_line() {
    assert_line(read_one("0 CONN 0 1 up\n# ok\nthis is garbage\n"), 3, "time is not a number");
    assert_line(read_one("0 CONN 0 1 up\n-3 CONN 0 2 up\n"), 2, "must not be negative");
    assert_line(read_one("1 CONN 0 1 up\n0.5 CONN 0 2 up\n"), 2, "time order");
    assert_line(read_one("# nodes 3\n1 CONN 0 1 up\n2 CONN 1 7 up\n"), 3, "beyond the 3 nodes");
    assert_line(read_one("1 CONN 0 x1y up\n"), 1, "node id");
    assert_line(read_one("1 CONN 0 1 sideways\n"), 1, "`up` or `down`");
    assert_line(read_one("1 CONN 0 1 up\n2 CONN 2 3 down\n"), 2, "goes down but is not up");
    assert_line(read_one("1 C M1 0 1 lots\n"), 1, "message size");
    assert_line(read_one("1 C M1 0 1 10\n2 C M1 1 0 10\n"), 2, "already used on line 1");
    assert_line(read_one("1 CONN 0 1 up\n2 CONN 0 1 up\n"), 2, "already up");
    assert_line(read_one("nan CONN 0 1 up\n"), 1, "not a number");
    assert_line(read_one("1e30 CONN 0 1 up\n"), 1, "too large");
    assert_line(read_one("1 CONN 0 99999999999 up\n"), 1, "over the limit");
}

#[test]
fn malformed_ns2_traces_name_the_line() {
    assert_line(read_ns2("$node_(0) set X_ 1\n$node_(0) set Y_ 2\ngarbage here\n"), 3, "found `garbage`");
    assert_line(
        read_ns2("$node_(0) set X_ 1\n$node_(0) set Y_ 2\n$ns_ at -4 \"$node_(0) setdest 1 1 1\"\n"),
        3,
        "negative",
    );
    assert_line(read_ns2("$node_(0) set X_ abc\n"), 1, "not a number");
    assert_line(read_ns2("$node_(-1) set X_ 1\n"), 1, "node such as");
    assert_line(
        read_ns2("$node_(0) set X_ 1\n$node_(0) set Y_ 1\n$ns_ at 1 \"$node_(0) setdest 1 1 fast\"\n"),
        3,
        "speed",
    );
    assert_line(
        read_ns2("$node_(0) set X_ 1\n$node_(0) set Y_ 1\n$ns_ at 1 \"$node_(0) setdest 1 1 -2\"\n"),
        3,
        "speed",
    );
    assert_line(read_ns2("$node_(5000000) set X_ 1\n"), 1, "over the limit");
    // A node that moves but never gets a starting point is blamed on the line that first names it.
    assert_line(read_ns2("\n$ns_ at 1 \"$node_(0) setdest 1 1 1\"\n"), 2, "no initial position");
    // A gap in the node ids is about the whole file, not one line, but is still an error.
    let e = read_ns2("$node_(1) set X_ 1\n$node_(1) set Y_ 1\n").expect_err("node 0 is missing");
    assert!(e.to_string().contains("node 0 is missing"), "{e}");
}

#[test]
fn files_name_the_file_and_the_line() {
    let path =
        file("lines", "moves.ns2", b"$node_(0) set X_ 1\n$node_(0) set Y_ 2\n$ns_ at 1 \"$node_(0) setdest 3\"\n");
    let e = read_trace_file(&path).expect_err("truncated setdest");
    assert_eq!(e.line(), Some(3));
    assert!(e.to_string().starts_with(&format!("{}: line 3: ", path.display())), "{e}");

    let path = file("lines", "events.one", b"0 CONN 0 1 up\n5 CONN 0 1 down\n6 CONN 0 1 down\n");
    let e = read_trace_file(&path).expect_err("down without up");
    assert!(e.to_string().starts_with(&format!("{}: line 3: ", path.display())), "{e}");

    let path = file("lines", "neither.txt", b"# a comment\nhello world\n");
    let e = read_trace_file(&path).expect_err("unknown format");
    assert_eq!(e.line(), Some(2), "{e}");
}

#[test]
fn empty_and_binary_files_are_refused() {
    let empty = file("junk", "empty.txt", b"");
    assert!(matches!(read_trace_file(&empty), Err(TraceError::InFile { .. })));
    let comments = file("junk", "comments.txt", b"# nothing\n\n   \n");
    let e = read_trace_file(&comments).expect_err("only comments");
    assert!(e.to_string().contains("no events"), "{e}");
    // Bytes that are not UTF-8 fail to read as text; the error still names the file.
    let binary = file("junk", "binary.bin", &[0xff, 0xfe, 0x00, 0x9c, 0x80, 0x0a, 0xc3, 0x28]);
    let e = read_trace_file(&binary).expect_err("binary junk");
    assert!(e.to_string().contains("binary.bin"), "{e}");
    // Valid UTF-8 that is still junk: control characters and NULs.
    let junk = file("junk", "junk.txt", b"\x00\x01\x02 CONN\n\x7f\x1b[2J\n");
    assert!(read_trace_file(&junk).is_err());
    assert!(read_one("\u{0}\u{1}\n").is_err());
    assert!(read_ns2("$\u{0}\n").is_err());
}

/// Lines built from the formats' own words, so the fuzzing reaches deep into the parsers rather than failing on the
/// first character.
fn trace_like() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("CONN".to_string()),
        Just("C".to_string()),
        Just("up".to_string()),
        Just("down".to_string()),
        Just("$node_(0)".to_string()),
        Just("$node_(1)".to_string()),
        Just("$ns_".to_string()),
        Just("at".to_string()),
        Just("set".to_string()),
        Just("X_".to_string()),
        Just("Y_".to_string()),
        Just("setdest".to_string()),
        Just("\"".to_string()),
        Just("# nodes".to_string()),
        Just("# duration".to_string()),
        "-?[0-9]{1,20}(\\.[0-9]{0,4})?(e[0-9]{1,3})?[kMG]?",
        "[pM]?[0-9]{1,12}",
        ".{0,6}",
    ];
    prop::collection::vec(prop::collection::vec(word, 0..7).prop_map(|w| w.join(" ")), 0..12).prop_map(|l| l.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = read_one(&text);
        let _ = read_ns2(&text);
    }

    #[test]
    fn trace_like_text_never_panics(text in trace_like()) {
        if let Err(e) = read_one(&text) {
            // An error is about a line of the input, or about the file as a whole.
            if let Some(line) = e.line() {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1), "line {} of {:?}", line, text);
            }
        }
        if let Err(e) = read_ns2(&text) {
            if let Some(line) = e.line() {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1), "line {} of {:?}", line, text);
            }
        }
    }
}
