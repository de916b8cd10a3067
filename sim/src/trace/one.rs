//! The ONE simulator's `StandardEventsReader` format: contact and message-creation events, one per line.

use std::collections::HashMap;

use super::{id_digits, parse_node, parse_time, secs, LineProblem, TraceError};
use crate::mobility::MAX_NODES;
use crate::model::{ContactEvent, ContactTrace, MessageSpec, NodeId, Time, SECOND};

/// Event types of the StandardEventsReader format.
pub(super) const ACTIONS: [&str; 7] = ["CONN", "C", "S", "DE", "A", "DR", "R"];

/// Reads a ONE events file: the contacts and the messages (in file order, which is creation order).
///
/// ```text
/// # nodes 126
/// # duration 43200.000
/// 12.5 CONN 3 17 up
/// 40 CONN p17 p3 down
/// 41.250 C M1 p3 p9 10k
/// ```
///
/// Decisions (ONE's own reader is the reference where it has one):
/// - Times are seconds, fractional allowed, rounded to the simulator's millisecond clock; negative times are errors.
/// - Events must be in time order (as ONE reads them); an earlier time than the line before is an error naming both
///   lines, not silently sorted. Events at the same time keep their file order.
/// - Node ids are `12` or a letter-prefixed `p12`; as in ONE the prefix is dropped, so `p12` and `c12` are node 12.
/// - `CONN <a> <b> up|down [interface]`: `up`/`down` in any case; the optional interface id is ignored; the pair is
///   stored smaller id first. A `down` for a pair that is not up, an `up` for a pair already up, and a node in
///   contact with itself are errors.
/// - `C <id> <from> <to> <size> [<response size>]`: the id is `M12` or `12` (prefix dropped, must be unique), the
///   size whole bytes with an optional ONE unit (`k`, `M`, `G` ×1000ⁿ; `kiB`, `MiB`, `GiB` ×1024ⁿ); the response
///   size is checked and ignored. A message to oneself is an error.
/// - The message-relay events `S`, `DE`, `A`, `DR`, `R` (what some router did in a recorded run) are ignored.
/// - Blank lines and `#` comments are skipped. Two comments are read as a header when they have exactly this
///   shape: `# nodes <count>` (otherwise the count is the largest id + 1) and `# duration <seconds>` (otherwise the
///   last event's time). [`write_one`] writes both, so a trace survives the round trip exactly.
pub fn read_one(text: &str) -> Result<(ContactTrace, Vec<MessageSpec>), TraceError> {
    let mut r = Reader::default();
    for (line, raw) in text.lines().enumerate() {
        let line = line + 1;
        let content = raw.trim();
        let read = if content.is_empty() {
            Ok(())
        } else if content.starts_with('#') {
            r.header(content, line)
        } else {
            r.event(content, line)
        };
        read.map_err(|problem| TraceError::Line { line, problem })?;
    }
    r.finish()
}

#[derive(Default)]
struct Reader {
    events: Vec<ContactEvent>,
    messages: Vec<MessageSpec>,
    /// Pairs that are up, with the line that brought them up (lookups only; never iterated).
    open: HashMap<(NodeId, NodeId), usize>,
    /// Message ids seen, with their line (lookups only; never iterated).
    ids: HashMap<u64, usize>,
    /// Time and line of the last event.
    last: Option<(Time, usize)>,
    /// Largest node id and the line it is on.
    max_node: Option<(NodeId, usize)>,
    /// `# nodes` header and its line.
    nodes: Option<(u32, usize)>,
    /// `# duration` header and its line.
    duration: Option<(Time, usize)>,
    /// Relay events skipped.
    ignored: usize,
}

impl Reader {
    fn header(&mut self, comment: &str, line: usize) -> Result<(), LineProblem> {
        let words: Vec<&str> = comment.trim_start_matches('#').split_whitespace().collect();
        match words.as_slice() {
            ["nodes", n] => {
                if let Ok(n) = n.parse::<u64>() {
                    if n > u64::from(MAX_NODES) {
                        return Err(LineProblem::NodeTooLarge { found: n.to_string() });
                    }
                    self.nodes = Some((n as u32, line));
                }
            }
            ["duration", d] if d.parse::<f64>().is_ok() => self.duration = Some((parse_time(d)?, line)),
            _ => {}
        }
        Ok(())
    }

    fn event(&mut self, content: &str, line: usize) -> Result<(), LineProblem> {
        let mut words = content.split_whitespace();
        let t = parse_time(words.next().ok_or(LineProblem::Missing { what: "the time" })?)?;
        if let Some((previous, previous_line)) = self.last {
            if t < previous {
                return Err(LineProblem::Unsorted { time_s: secs(t), previous_s: secs(previous), previous_line });
            }
        }
        let action = words.next().ok_or(LineProblem::Missing { what: "the event type (CONN or C) after the time" })?;
        match action {
            "CONN" => self.conn(t, &mut words, line)?,
            "C" => self.create(t, &mut words, line)?,
            "S" | "DE" | "A" | "DR" | "R" => self.ignored += 1,
            other => return Err(LineProblem::UnknownAction { found: other.to_string() }),
        }
        self.last = Some((t, line));
        Ok(())
    }

    fn node(&mut self, word: Option<&str>, what: &'static str, line: usize) -> Result<NodeId, LineProblem> {
        let node = parse_node(word.ok_or(LineProblem::Missing { what })?)?;
        if self.max_node.is_none_or(|(m, _)| node > m) {
            self.max_node = Some((node, line));
        }
        Ok(node)
    }

    fn conn<'a>(&mut self, t: Time, words: &mut impl Iterator<Item = &'a str>, line: usize) -> Result<(), LineProblem> {
        let x = self.node(words.next(), "the first node id after CONN", line)?;
        let y = self.node(words.next(), "the second node id after CONN", line)?;
        let state = words.next().ok_or(LineProblem::Missing { what: "`up` or `down` after the two node ids" })?;
        let up = if state.eq_ignore_ascii_case("up") {
            true
        } else if state.eq_ignore_ascii_case("down") {
            false
        } else {
            return Err(LineProblem::Expected { expected: "`up` or `down`", found: state.to_string() });
        };
        let _interface = words.next();
        no_trailing(words)?;
        if x == y {
            return Err(LineProblem::SelfContact { node: x });
        }
        let (a, b) = (x.min(y), x.max(y));
        if up {
            if let Some(&since_line) = self.open.get(&(a, b)) {
                return Err(LineProblem::AlreadyUp { a, b, since_line });
            }
            self.open.insert((a, b), line);
        } else if self.open.remove(&(a, b)).is_none() {
            return Err(LineProblem::DownWithoutUp { a, b });
        }
        self.events.push(ContactEvent { t, a, b, up });
        Ok(())
    }

    fn create<'a>(
        &mut self,
        t: Time,
        words: &mut impl Iterator<Item = &'a str>,
        line: usize,
    ) -> Result<(), LineProblem> {
        let id_word = words.next().ok_or(LineProblem::Missing { what: "the message id after C" })?;
        let id = id_digits(id_word)
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| LineProblem::BadMessageId { found: id_word.to_string() })?;
        let src = self.node(words.next(), "the sender node id after the message id", line)?;
        let dst = self.node(words.next(), "the addressee node id after the sender", line)?;
        let size = parse_size(words.next().ok_or(LineProblem::Missing { what: "the message size" })?)?;
        if let Some(response) = words.next() {
            parse_size(response)?;
        }
        no_trailing(words)?;
        if src == dst {
            return Err(LineProblem::SelfMessage { node: src });
        }
        if let Some(&first_line) = self.ids.get(&id) {
            return Err(LineProblem::DuplicateMessage { id, first_line });
        }
        self.ids.insert(id, line);
        self.messages.push(MessageSpec { id, src, dst, size, created: t });
        Ok(())
    }

    fn finish(self) -> Result<(ContactTrace, Vec<MessageSpec>), TraceError> {
        let last_t = self.last.map_or(0, |(t, _)| t);
        let nodes = match (self.nodes, self.max_node) {
            (Some((nodes, header_line)), Some((node, line))) if node >= nodes => {
                return Err(TraceError::Line {
                    line,
                    problem: LineProblem::NodeNotDeclared { node, nodes, header_line },
                })
            }
            (Some((nodes, _)), _) => nodes,
            (None, Some((node, _))) => node + 1,
            (None, None) => 0,
        };
        let duration = match (self.duration, self.last) {
            (Some((duration, header_line)), Some((t, line))) if t > duration => {
                return Err(TraceError::Line {
                    line,
                    problem: LineProblem::AfterDuration { time_s: secs(t), duration_s: secs(duration), header_line },
                })
            }
            (Some((duration, _)), _) => duration,
            (None, _) => last_t,
        };
        if self.ignored > 0 {
            tracing::debug!(ignored = self.ignored, "ONE trace: skipped message-relay events (S, DE, A, DR, R)");
        }
        Ok((ContactTrace { nodes, duration, events: self.events }, self.messages))
    }
}

fn no_trailing<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<(), LineProblem> {
    match words.next() {
        Some(w) => Err(LineProblem::Trailing { found: w.to_string() }),
        None => Ok(()),
    }
}

/// Whole bytes with an optional ONE unit suffix.
fn parse_size(word: &str) -> Result<u64, LineProblem> {
    let bad = || LineProblem::BadSize { found: word.to_string() };
    let split = word.find(|c: char| !c.is_ascii_digit()).unwrap_or(word.len());
    let (digits, unit) = word.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "kiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// Writes contacts and messages in the ONE format, with `# nodes` and `# duration` headers so that [`read_one`]
/// gives back exactly the same trace. Contacts and messages are merged in time order (each list sorted stably by
/// time first; contacts before messages at the same instant). Node ids are written bare (`12`), message ids as `M12`.
pub fn write_one(trace: &ContactTrace, messages: &[MessageSpec]) -> String {
    use std::fmt::Write;
    let mut contacts: Vec<&ContactEvent> = trace.events.iter().collect();
    contacts.sort_by_key(|e| e.t);
    let mut msgs: Vec<&MessageSpec> = messages.iter().collect();
    msgs.sort_by_key(|m| m.created);
    let mut out = String::with_capacity(32 * (contacts.len() + msgs.len()) + 96);
    out.push_str("# pollen-sim trace, ONE StandardEventsReader format\n");
    let _ = writeln!(out, "# nodes {}", trace.nodes);
    let _ = writeln!(out, "# duration {}", Seconds(trace.duration));
    let (mut i, mut j) = (0, 0);
    loop {
        let take_contact = match (contacts.get(i), msgs.get(j)) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(e), Some(m)) => e.t <= m.created,
        };
        if take_contact {
            let e = contacts[i];
            let state = if e.up { "up" } else { "down" };
            let _ = writeln!(out, "{} CONN {} {} {state}", Seconds(e.t), e.a, e.b);
            i += 1;
        } else {
            let m = msgs[j];
            let _ = writeln!(out, "{} C M{} {} {} {}", Seconds(m.created), m.id, m.src, m.dst, m.size);
            j += 1;
        }
    }
    out
}

/// Milliseconds shown as seconds with three decimals.
struct Seconds(Time);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:03}", self.0 / SECOND, self.0 % SECOND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        read_one(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_contacts_and_messages() {
        let text = "# a comment\n\n0 CONN 0 1 up\n1.5 CONN p3 p1 UP wlan0\n2 C M7 p0 3 10k 5\n2.25 CONN 1 0 down\n\
                    3 S M7 0 1\n4 C 8 1 2 2kiB\n";
        let (trace, msgs) = read_one(text).unwrap();
        assert_eq!(trace.nodes, 4);
        assert_eq!(trace.duration, 4000);
        assert_eq!(
            trace.events,
            vec![
                ContactEvent { t: 0, a: 0, b: 1, up: true },
                ContactEvent { t: 1500, a: 1, b: 3, up: true },
                ContactEvent { t: 2250, a: 0, b: 1, up: false },
            ]
        );
        assert_eq!(
            msgs,
            vec![
                MessageSpec { id: 7, src: 0, dst: 3, size: 10_000, created: 2000 },
                MessageSpec { id: 8, src: 1, dst: 2, size: 2048, created: 4000 },
            ]
        );
    }

    #[test]
    fn headers_set_nodes_and_duration() {
        let (t, _) = read_one("# nodes 10\n# duration 60\n# nodes are people\n5 CONN 1 2 up\n").unwrap();
        assert_eq!((t.nodes, t.duration), (10, 60_000));
        assert_eq!(err("# nodes 2\n5 CONN 1 2 up\n"), "line 2: node 2 is beyond the 2 nodes declared on line 1");
        assert_eq!(
            err("# duration 4\n5 CONN 1 2 up\n"),
            "line 2: event at 5 s is after the 4 s duration declared on line 1"
        );
        assert_eq!(err("# duration -4\n"), "line 1: time must not be negative, found `-4`");
        assert_eq!(read_one("").unwrap().0, ContactTrace::default());
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let cases = [
            ("0 CONN 1 2 up\n\n5 CONN 1 2 upp\n", "line 3: expected `up` or `down`, found `upp`"),
            ("1 CONN 1 2 down\n", "line 1: contact 1–2 goes down but is not up"),
            ("1 CONN 1 2 up\n2 CONN 2 1 up\n", "line 2: contact 1–2 is already up (since line 1)"),
            ("1 CONN 4 4 up\n", "line 1: node 4 cannot be in contact with itself"),
            ("-1 CONN 1 2 up\n", "line 1: time must not be negative, found `-1`"),
            ("5 CONN 1 2 up\n4 CONN 1 3 up\n", "line 2: time 4 s is earlier than 5 s on line 1; events must be in time order"),
            ("1 CONN 1\n", "line 1: missing the second node id after CONN"),
            ("1 CONN\n", "line 1: missing the first node id after CONN"),
            ("1\n", "line 1: missing the event type (CONN or C) after the time"),
            ("x CONN 1 2 up\n", "line 1: time is not a number: `x`"),
            ("1 CONN a b up\n", "line 1: expected a node id such as `12` or `p12`, found `a`"),
            ("1 CONN 1 2 up eth0 extra\n", "line 1: unexpected `extra` after the last field"),
            ("1 XX 1 2\n", "line 1: unknown event type `XX`; expected CONN, C, S, DE, A, DR or R"),
            ("1 C M1 1 2 ten\n", "line 1: message size is not a number: `ten` (expected whole bytes, optionally with k, M, G, kiB, MiB or GiB)"),
            ("1 C M1 1 2 1.5k\n", "line 1: message size is not a number: `1.5k` (expected whole bytes, optionally with k, M, G, kiB, MiB or GiB)"),
            ("1 C M1 1 2 99999999999999999999G\n", "line 1: message size is not a number: `99999999999999999999G` (expected whole bytes, optionally with k, M, G, kiB, MiB or GiB)"),
            ("1 C M1 1 2\n", "line 1: missing the message size"),
            ("1 C M1 1 1 5\n", "line 1: message from node 1 to itself"),
            ("1 C M1 1 2 5\n2 C X1 2 1 5\n", "line 2: message id 1 was already used on line 1"),
            ("1 C ? 1 2 5\n", "line 1: expected a message id such as `M12` or `12`, found `?`"),
            ("1 CONN 1 5000000 up\n", "line 1: node id `5000000` is over the limit of 1000000 nodes"),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), want, "for {text:?}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let trace = ContactTrace {
            nodes: 5,
            duration: 90_500,
            events: vec![
                ContactEvent { t: 0, a: 0, b: 4, up: true },
                ContactEvent { t: 1_001, a: 1, b: 2, up: true },
                ContactEvent { t: 1_001, a: 0, b: 4, up: false },
            ],
        };
        let msgs = [MessageSpec { id: 3, src: 2, dst: 0, size: 1234, created: 1_001 }];
        let text = write_one(&trace, &msgs);
        assert!(text.contains("\n1.001 CONN 1 2 up\n1.001 CONN 0 4 down\n1.001 C M3 2 0 1234\n"), "{text}");
        assert_eq!(read_one(&text).unwrap(), (trace, msgs.to_vec()));
    }
}
