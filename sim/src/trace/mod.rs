//! Trace files: ns-2 movement files in, ONE contact/message traces in and out.
//!
//! - [`read_ns2`]: an ns-2 movement file (as BonnMotion, SUMO's `traceExporter` and CMU `setdest` write it) becomes
//!   an [`Ns2Trace`] mobility model.
//! - [`read_one`] / [`write_one`]: the ONE simulator's `StandardEventsReader` format — `<time> CONN <a> <b> up|down`
//!   contact events and `<time> C <id> <from> <to> <size>` message creations in one file.
//! - [`read_trace_file`]: reads a file, tells the two formats apart, and names the file in any error.
//!
//! Every parser reports the first problem as a [`TraceError`] naming the line (1-based) and what is wrong; no input
//! makes them panic. Node ids are bounded by [`crate::mobility::MAX_NODES`] so a hostile id cannot make
//! the simulator allocate without limit.

mod ns2;
mod one;

pub use ns2::read_ns2;
pub use one::{read_one, write_one};

use std::path::{Path, PathBuf};

use crate::mobility::{Ns2Trace, MAX_NODES};
use crate::model::{ContactTrace, MessageSpec, NodeId, Time, SECOND};

/// A trace that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A line is malformed.
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// An ns-2 file mentions node ids up to `max` but never places node `node`.
    #[error(
        "node {node} is missing: node ids run from 0 to {max}, but there is no `$node_({node}) set X_ <x>` / `set Y_ <y>`"
    )]
    MissingNode {
        /// The node with no lines.
        node: NodeId,
        /// The largest id in the file.
        max: NodeId,
    },
    /// The file holds nothing but blank lines and comments.
    #[error("no events: the file is empty or holds only comments")]
    NoEvents,
    /// The first event line is neither ns-2 nor ONE.
    #[error(
        "line {line}: not a trace format this simulator reads (`{text}`); expected an ns-2 movement line \
         (`$node_(<i>) set X_ <x>`, `$ns_ at <t> \"$node_(<i>) setdest <x> <y> <speed>\"`) or a ONE event \
         (`<time> CONN <a> <b> up|down`, `<time> C <id> <from> <to> <size>`)"
    )]
    UnknownFormat {
        /// 1-based line number.
        line: usize,
        /// The line (shortened).
        text: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// An error in a named file.
    #[error("{path}: {error}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error inside it.
        error: Box<TraceError>,
    },
}

impl TraceError {
    /// The 1-based line the error is about, if it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            TraceError::Line { line, .. } | TraceError::UnknownFormat { line, .. } => Some(*line),
            TraceError::InFile { error, .. } => error.line(),
            _ => None,
        }
    }
}

/// What is wrong with one line of a trace.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineProblem {
    /// A word other than the one the format needs here.
    #[error("expected {expected}, found `{found}`")]
    Expected {
        /// What the format needs.
        expected: &'static str,
        /// What the line has.
        found: String,
    },
    /// The line ends before a required field.
    #[error("missing {what}")]
    Missing {
        /// The field.
        what: &'static str,
    },
    /// A field that must be a number is not one.
    #[error("{what} is not a number: `{found}`")]
    NotANumber {
        /// The field.
        what: &'static str,
        /// What the line has.
        found: String,
    },
    /// A time, speed or size that must not be negative is.
    #[error("{what} must not be negative, found `{found}`")]
    Negative {
        /// The field.
        what: &'static str,
        /// What the line has.
        found: String,
    },
    /// A time beyond what the simulator's millisecond clock holds.
    #[error("time `{found}` is too large")]
    TimeTooLarge {
        /// What the line has.
        found: String,
    },
    /// An event earlier than the one before it (ONE traces must be in time order).
    #[error("time {time_s} s is earlier than {previous_s} s on line {previous_line}; events must be in time order")]
    Unsorted {
        /// This event's time, seconds.
        time_s: f64,
        /// The previous event's time, seconds.
        previous_s: f64,
        /// The previous event's line.
        previous_line: usize,
    },
    /// A node id that is neither `12` nor a prefixed `p12`.
    #[error("expected a node id such as `12` or `p12`, found `{found}`")]
    BadNode {
        /// What the line has.
        found: String,
    },
    /// A message id that is neither `12` nor a prefixed `M12`.
    #[error("expected a message id such as `M12` or `12`, found `{found}`")]
    BadMessageId {
        /// What the line has.
        found: String,
    },
    /// A node id at or above [`MAX_NODES`].
    #[error("node id `{found}` is over the limit of {MAX_NODES} nodes")]
    NodeTooLarge {
        /// What the line has.
        found: String,
    },
    /// A node id at or above the node count declared by a `# nodes` header.
    #[error("node {node} is beyond the {nodes} nodes declared on line {header_line}")]
    NodeNotDeclared {
        /// The node.
        node: NodeId,
        /// Declared count.
        nodes: u32,
        /// The header's line.
        header_line: usize,
    },
    /// An event after the duration declared by a `# duration` header.
    #[error("event at {time_s} s is after the {duration_s} s duration declared on line {header_line}")]
    AfterDuration {
        /// The event's time, seconds.
        time_s: f64,
        /// Declared duration, seconds.
        duration_s: f64,
        /// The header's line.
        header_line: usize,
    },
    /// A contact of a node with itself.
    #[error("node {node} cannot be in contact with itself")]
    SelfContact {
        /// The node.
        node: NodeId,
    },
    /// A message from a node to itself.
    #[error("message from node {node} to itself")]
    SelfMessage {
        /// The node.
        node: NodeId,
    },
    /// A `down` for a pair that is not up.
    #[error("contact {a}–{b} goes down but is not up")]
    DownWithoutUp {
        /// Smaller id.
        a: NodeId,
        /// Larger id.
        b: NodeId,
    },
    /// An `up` for a pair that is already up.
    #[error("contact {a}–{b} is already up (since line {since_line})")]
    AlreadyUp {
        /// Smaller id.
        a: NodeId,
        /// Larger id.
        b: NodeId,
        /// The line that brought it up.
        since_line: usize,
    },
    /// A message id used twice.
    #[error("message id {id} was already used on line {first_line}")]
    DuplicateMessage {
        /// The id.
        id: u64,
        /// Where it was first used.
        first_line: usize,
    },
    /// A message size that is not a whole number of bytes with an optional ONE unit.
    #[error(
        "message size is not a number: `{found}` (expected whole bytes, optionally with k, M, G, kiB, MiB or GiB)"
    )]
    BadSize {
        /// What the line has.
        found: String,
    },
    /// An event type ONE does not define.
    #[error("unknown event type `{found}`; expected CONN, C, S, DE, A, DR or R")]
    UnknownAction {
        /// What the line has.
        found: String,
    },
    /// Words after the last field.
    #[error("unexpected `{found}` after the last field")]
    Trailing {
        /// The first extra word.
        found: String,
    },
    /// An ns-2 node that moves but never gets an initial position.
    #[error("node {node} has no initial position: expected both `$node_({node}) set X_ <x>` and `$node_({node}) set Y_ <y>`")]
    NoInitialPosition {
        /// The node.
        node: NodeId,
    },
}

/// What [`read_trace_file`] found in a file.
#[derive(Debug, Clone)]
pub enum TraceFile {
    /// An ns-2 movement file: positions over time (contacts follow from a radio range).
    Movement(Ns2Trace),
    /// A ONE events file: contacts and, if it has `C` events, the messages.
    Contacts {
        /// The contacts.
        trace: ContactTrace,
        /// The messages, in creation order.
        messages: Vec<MessageSpec>,
    },
}

/// Which format a text is in, from its first event line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// ns-2 movement (`$node_…`, `$ns_ at …`).
    Ns2,
    /// ONE StandardEventsReader events.
    One,
}

/// Tells ns-2 from ONE by the first line that is not blank or a `#` comment: ns-2 lines start with `$`; ONE lines
/// start with a time followed by an event type.
pub fn detect_format(text: &str) -> Result<TraceFormat, TraceError> {
    let Some((line, content)) = event_lines(text).next() else { return Err(TraceError::NoEvents) };
    if content.starts_with('$') {
        return Ok(TraceFormat::Ns2);
    }
    let mut words = content.split_whitespace();
    let time_ok = words.next().is_some_and(|w| w.parse::<f64>().is_ok());
    let action_ok = words.next().is_some_and(|w| one::ACTIONS.contains(&w));
    if time_ok && action_ok {
        return Ok(TraceFormat::One);
    }
    let text: String = content.chars().take(80).collect();
    Err(TraceError::UnknownFormat { line, text })
}

/// Reads the file at `path`, detects its format ([`detect_format`]) and parses it. Errors name the file.
pub fn read_trace_file(path: impl AsRef<Path>) -> Result<TraceFile, TraceError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|error| TraceError::Io { path: path.to_path_buf(), error })?;
    let parsed = match detect_format(&text) {
        Ok(TraceFormat::Ns2) => read_ns2(&text).map(TraceFile::Movement),
        Ok(TraceFormat::One) => read_one(&text).map(|(trace, messages)| TraceFile::Contacts { trace, messages }),
        Err(e) => Err(e),
    };
    parsed.map_err(|e| TraceError::InFile { path: path.to_path_buf(), error: Box::new(e) })
}

/// Lines that hold an event: `(1-based number, trimmed text)`, skipping blank lines and `#` comments.
fn event_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Parses a time in seconds (possibly fractional) into milliseconds, rounding to the nearest millisecond.
fn parse_time(word: &str) -> Result<Time, LineProblem> {
    let secs = parse_f64("time", word)?;
    if secs < 0.0 {
        return Err(LineProblem::Negative { what: "time", found: word.to_string() });
    }
    let ms = (secs * SECOND as f64).round();
    // Keep well inside u64 so later additions (TTLs, setup delays) cannot overflow.
    if ms >= (u64::MAX / 4) as f64 {
        return Err(LineProblem::TimeTooLarge { found: word.to_string() });
    }
    Ok(ms as Time)
}

/// Parses a finite number.
fn parse_f64(what: &'static str, word: &str) -> Result<f64, LineProblem> {
    match word.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LineProblem::NotANumber { what, found: word.to_string() }),
    }
}

/// The digits of an id such as `12` or `p12`: an optional prefix of ASCII letters and `_`, then digits. (ONE allows
/// any non-digit prefix; we refuse signs and punctuation so `-3` is an error rather than node 3.)
fn id_digits(word: &str) -> Option<&str> {
    let digits_at = word.find(|c: char| c.is_ascii_digit())?;
    let (prefix, digits) = word.split_at(digits_at);
    let ok = digits.bytes().all(|b| b.is_ascii_digit()) && prefix.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_');
    ok.then_some(digits)
}

/// Parses a node id (`12` or `p12`; the prefix is ignored, as in ONE, so `p12` and `c12` are the same node) below
/// [`MAX_NODES`].
fn parse_node(word: &str) -> Result<NodeId, LineProblem> {
    let Some(digits) = id_digits(word) else { return Err(LineProblem::BadNode { found: word.to_string() }) };
    match digits.parse::<u64>() {
        Ok(n) if n < u64::from(MAX_NODES) => Ok(n as NodeId),
        _ => Err(LineProblem::NodeTooLarge { found: word.to_string() }),
    }
}

/// Seconds, for messages.
fn secs(t: Time) -> f64 {
    t as f64 / SECOND as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_times_and_numbers() {
        assert_eq!(parse_node("12"), Ok(12));
        assert_eq!(parse_node("p12"), Ok(12));
        assert_eq!(parse_node("host_7"), Ok(7));
        assert!(matches!(parse_node("p1x"), Err(LineProblem::BadNode { .. })));
        assert!(matches!(parse_node("p"), Err(LineProblem::BadNode { .. })));
        assert!(matches!(parse_node("-3"), Err(LineProblem::BadNode { .. })));
        assert!(matches!(parse_node("p 3"), Err(LineProblem::BadNode { .. })));
        assert!(matches!(parse_node("99999999999999999999999"), Err(LineProblem::NodeTooLarge { .. })));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("0.0004"), Ok(0));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert!(matches!(parse_time("-1"), Err(LineProblem::Negative { .. })));
        assert!(matches!(parse_time("inf"), Err(LineProblem::NotANumber { .. })));
        assert!(matches!(parse_time("NaN"), Err(LineProblem::NotANumber { .. })));
        assert!(matches!(parse_time("1e300"), Err(LineProblem::TimeTooLarge { .. })));
    }

    #[test]
    fn detects_formats() {
        assert_eq!(detect_format("# hi\n\n$node_(0) set X_ 1\n").unwrap(), TraceFormat::Ns2);
        assert_eq!(detect_format("  $ns_ at 1 \"$node_(0) setdest 1 2 3\"").unwrap(), TraceFormat::Ns2);
        assert_eq!(detect_format("# nodes 3\n0.5 CONN 1 2 up\n").unwrap(), TraceFormat::One);
        assert_eq!(detect_format("1 C M1 p1 p2 10k\n").unwrap(), TraceFormat::One);
        assert!(matches!(detect_format("# only\n\n"), Err(TraceError::NoEvents)));
        let e = detect_format("\nhello world\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().starts_with("line 2: not a trace format"), "{e}");
    }

    #[test]
    fn file_errors_name_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("pollen-sim-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.one");
        std::fs::write(&bad, "0 CONN 1 2 up\n\n5 CONN 1 2 upp\n").unwrap();
        let e = read_trace_file(&bad).unwrap_err();
        assert_eq!(e.to_string(), format!("{}: line 3: expected `up` or `down`, found `upp`", bad.display()));
        assert_eq!(e.line(), Some(3));
        let missing = dir.join("absent.txt");
        let e = read_trace_file(&missing).unwrap_err();
        assert!(e.to_string().starts_with(&format!("cannot read {}", missing.display())), "{e}");
        let good = dir.join("good.ns");
        std::fs::write(&good, "$node_(0) set X_ 1\n$node_(0) set Y_ 2\n").unwrap();
        assert!(matches!(read_trace_file(&good), Ok(TraceFile::Movement(_))));
        let one = dir.join("good.one");
        std::fs::write(&one, "1 CONN 0 1 up\n2 C 7 0 1 100\n").unwrap();
        let Ok(TraceFile::Contacts { trace, messages }) = read_trace_file(&one) else { panic!("not contacts") };
        assert_eq!((trace.nodes, trace.events.len(), messages.len()), (2, 1, 1));
        std::fs::remove_dir_all(&dir).ok();
    }
}
