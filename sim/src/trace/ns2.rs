//! ns-2 movement files.

use super::{event_lines, parse_f64, LineProblem, TraceError};
use crate::mobility::{Ns2Move, Ns2Trace, MAX_NODES};
use crate::model::{NodeId, Position};

const LINE_SHAPES: &str = "`$node_(<i>) set X_|Y_|Z_ <value>` or `$ns_ at <t> \"$node_(<i>) setdest <x> <y> <speed>\"`";

/// Reads an ns-2 movement file into a replayable [`Ns2Trace`]. Files look like this, as BonnMotion, SUMO's
/// `traceExporter` and CMU `setdest` write them:
///
/// ```text
/// $node_(0) set X_ 150.0
/// $node_(0) set Y_ 93.98
/// $node_(0) set Z_ 0.0
/// $ns_ at 2.0 "$node_(0) setdest 250.0 10.5 1.4"
/// ```
///
/// Decisions:
/// - Quotes around the scheduled command are optional; blank lines and `#` comments are skipped, and so are
///   `$god_ …` lines and `$ns_ at <t> "$god_ …"` (CMU `setdest` output); any other line is an error.
/// - Times are seconds (fractional, kept exact); negative times and speeds are errors. Lines need not be in time
///   order: ns-2 schedules `$ns_ at` commands by time, so each node's moves are sorted by time (stably: of two
///   moves at the same instant, the later line wins). BonnMotion writes one node after another, for example.
/// - `Z_` is checked and ignored. Every node from 0 to the largest id must get both `X_` and `Y_`.
pub fn read_ns2(text: &str) -> Result<Ns2Trace, TraceError> {
    let mut nodes = Nodes::default();
    for (line, content) in event_lines(text) {
        nodes.line(content, line).map_err(|problem| TraceError::Line { line, problem })?;
    }
    nodes.finish()
}

#[derive(Default)]
struct Nodes {
    x: Vec<Option<f64>>,
    y: Vec<Option<f64>>,
    /// First line that names each node.
    first_line: Vec<Option<usize>>,
    moves: Vec<Vec<Ns2Move>>,
}

impl Nodes {
    fn line(&mut self, content: &str, line: usize) -> Result<(), LineProblem> {
        let unquoted = content.replace('"', " ");
        let mut words = unquoted.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.starts_with("$node_(") {
            let node = self.node(first, line)?;
            return self.set(node, &mut words);
        }
        if first.starts_with("$god_") {
            return Ok(());
        }
        if first != "$ns_" {
            return Err(LineProblem::Expected { expected: LINE_SHAPES, found: first.to_string() });
        }
        keyword(words.next(), "`at` after `$ns_`", "at")?;
        let t = number(words.next(), "the time after `$ns_ at`")?;
        if t < 0.0 {
            return Err(LineProblem::Negative { what: "time", found: t.to_string() });
        }
        let target = words.next().ok_or(LineProblem::Missing { what: "the command after the time" })?;
        if target.starts_with("$god_") {
            return Ok(());
        }
        if !target.starts_with("$node_(") {
            return Err(LineProblem::Expected { expected: "`$node_(<i>)` after the time", found: target.to_string() });
        }
        let node = self.node(target, line)?;
        keyword(words.next(), "`setdest`", "setdest")?;
        let x = number(words.next(), "the destination x")?;
        let y = number(words.next(), "the destination y")?;
        let speed = number(words.next(), "the speed")?;
        if speed < 0.0 {
            return Err(LineProblem::Negative { what: "speed", found: speed.to_string() });
        }
        no_trailing(&mut words)?;
        self.moves[node as usize].push(Ns2Move { t, to: Position { x, y }, speed });
        Ok(())
    }

    /// `set X_|Y_|Z_ <value>` after `$node_(i)`.
    fn set<'a>(&mut self, node: NodeId, words: &mut impl Iterator<Item = &'a str>) -> Result<(), LineProblem> {
        keyword(words.next(), "`set`", "set")?;
        let axis = words.next().ok_or(LineProblem::Missing { what: "`X_`, `Y_` or `Z_` after `set`" })?;
        let value = number(words.next(), "the coordinate")?;
        no_trailing(words)?;
        match axis {
            "X_" => self.x[node as usize] = Some(value),
            "Y_" => self.y[node as usize] = Some(value),
            "Z_" => {}
            other => return Err(LineProblem::Expected { expected: "`X_`, `Y_` or `Z_`", found: other.to_string() }),
        }
        Ok(())
    }

    /// Parses `$node_(<i>)` and makes room for node `i`.
    fn node(&mut self, word: &str, line: usize) -> Result<NodeId, LineProblem> {
        let digits = word.strip_prefix("$node_(").and_then(|w| w.strip_suffix(')')).unwrap_or_default();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LineProblem::Expected { expected: "a node such as `$node_(0)`", found: word.to_string() });
        }
        let node = match digits.parse::<u64>() {
            Ok(n) if n < u64::from(MAX_NODES) => n as usize,
            _ => return Err(LineProblem::NodeTooLarge { found: digits.to_string() }),
        };
        if node >= self.x.len() {
            self.x.resize(node + 1, None);
            self.y.resize(node + 1, None);
            self.first_line.resize(node + 1, None);
            self.moves.resize_with(node + 1, Vec::new);
        }
        self.first_line[node].get_or_insert(line);
        Ok(node as NodeId)
    }

    fn finish(self) -> Result<Ns2Trace, TraceError> {
        let max = self.x.len().saturating_sub(1) as NodeId;
        let mut initial = Vec::with_capacity(self.x.len());
        for (node, (x, y)) in self.x.iter().zip(&self.y).enumerate() {
            let node = node as NodeId;
            match (x, y, self.first_line[node as usize]) {
                (Some(x), Some(y), _) => initial.push(Position { x: *x, y: *y }),
                (_, _, Some(line)) => {
                    return Err(TraceError::Line { line, problem: LineProblem::NoInitialPosition { node } })
                }
                (_, _, None) => return Err(TraceError::MissingNode { node, max }),
            }
        }
        Ok(Ns2Trace::new(initial, self.moves))
    }
}

fn keyword(word: Option<&str>, expected: &'static str, want: &str) -> Result<(), LineProblem> {
    match word {
        Some(w) if w == want => Ok(()),
        Some(w) => Err(LineProblem::Expected { expected, found: w.to_string() }),
        None => Err(LineProblem::Missing { what: expected }),
    }
}

fn number(word: Option<&str>, what: &'static str) -> Result<f64, LineProblem> {
    parse_f64(what, word.ok_or(LineProblem::Missing { what })?)
}

fn no_trailing<'a>(words: &mut impl Iterator<Item = &'a str>) -> Result<(), LineProblem> {
    match words.next() {
        Some(w) => Err(LineProblem::Trailing { found: w.to_string() }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mobility::Mobility;
    use crate::model::SECOND;

    #[test]
    fn reads_bonnmotion_style_with_and_without_quotes() {
        let text = "# BonnMotion\n$node_(0) set X_ 0.0\n$node_(0) set Y_ 0.0\n$node_(0) set Z_ 0.0\n\
                    $ns_ at 0.0 \"$node_(0) setdest 10.0 0.0 1.0\"\n\
                    $node_(1) set X_ 50.0\n$node_(1) set Y_ 50.0\n\
                    $ns_ at 5 $node_(1) setdest 50 60 2\n\
                    $god_ set-dist 0 1 2\n$ns_ at 3.0 \"$god_ set-dist 0 1 1\"\n";
        let mut t = read_ns2(text).unwrap();
        assert_eq!(t.nodes(), 2);
        assert_eq!(t.moves(1), &[Ns2Move { t: 5.0, to: Position { x: 50.0, y: 60.0 }, speed: 2.0 }]);
        t.advance(7 * SECOND);
        assert_eq!(t.positions(), &[Position { x: 7.0, y: 0.0 }, Position { x: 50.0, y: 54.0 }]);
    }

    #[test]
    fn sorts_moves_by_time() {
        let text = "$node_(0) set X_ 0\n$node_(0) set Y_ 0\n$ns_ at 10 \"$node_(0) setdest 0 100 1\"\n\
                    $ns_ at 0 \"$node_(0) setdest 100 0 1\"\n";
        let t = read_ns2(text).unwrap();
        assert_eq!(t.moves(0)[0].t, 0.0);
        assert_eq!(t.moves(0)[1].t, 10.0);
    }

    #[test]
    fn errors_name_the_line() {
        let err = |text: &str| read_ns2(text).unwrap_err().to_string();
        let cases = [
            ("$node_(0) set X_ 1\n$node_(0) set Y_ one\n", "line 2: the coordinate is not a number: `one`"),
            ("$node_(0) set W_ 1\n", "line 1: expected `X_`, `Y_` or `Z_`, found `W_`"),
            ("$node_(0) put X_ 1\n", "line 1: expected `set`, found `put`"),
            ("$node_(x) set X_ 1\n", "line 1: expected a node such as `$node_(0)`, found `$node_(x)`"),
            ("$node_(0) set X_ 1 2\n", "line 1: unexpected `2` after the last field"),
            ("$ns_ at -1 \"$node_(0) setdest 1 2 3\"\n", "line 1: time must not be negative, found `-1`"),
            ("$ns_ at 1 \"$node_(0) setdest 1 2 -3\"\n", "line 1: speed must not be negative, found `-3`"),
            ("$ns_ at 1 \"$node_(0) setdest 1 2\"\n", "line 1: missing the speed"),
            ("$ns_ at 1 \"$node_(0) moveto 1 2 3\"\n", "line 1: expected `setdest`, found `moveto`"),
            ("$ns_ on 1\n", "line 1: expected `at` after `$ns_`, found `on`"),
            ("$ns_ at nan \"$node_(0) setdest 1 2 3\"\n", "line 1: the time after `$ns_ at` is not a number: `nan`"),
            ("$node_(0) set X_ 1\n# c\n$ns_ at 1 \"$node_(0) setdest 1 2 3\"\n",
             "line 1: node 0 has no initial position: expected both `$node_(0) set X_ <x>` and `$node_(0) set Y_ <y>`"),
            ("$node_(1) set X_ 1\n$node_(1) set Y_ 1\n",
             "node 0 is missing: node ids run from 0 to 1, but there is no `$node_(0) set X_ <x>` / `set Y_ <y>`"),
            ("$node_(2000000) set X_ 1\n", "line 1: node id `2000000` is over the limit of 1000000 nodes"),
            ("hello\n", "line 1: expected `$node_(<i>) set X_|Y_|Z_ <value>` or `$ns_ at <t> \"$node_(<i>) setdest <x> <y> <speed>\"`, found `hello`"),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), want, "for {text:?}");
        }
        assert_eq!(read_ns2("").unwrap().nodes(), 0);
    }
}
