//! Mobility and trace layer, end to end: contact extraction against brute force, ONE round trips, parser robustness.

use std::collections::BTreeSet;

use pollen_sim::contacts::contacts_from_mobility;
use pollen_sim::mobility::{Field, Mobility, RandomWaypoint, RandomWaypointConfig};
use pollen_sim::model::{ContactEvent, ContactTrace, MessageSpec, NodeId, Position, Time, SECOND};
use pollen_sim::trace::{detect_format, read_ns2, read_one, write_one};
use proptest::prelude::*;

fn brute(positions: &[Position], range: f64) -> Vec<(NodeId, NodeId)> {
    let mut out = Vec::new();
    for i in 0..positions.len() {
        for j in i + 1..positions.len() {
            let (dx, dy) = (positions[j].x - positions[i].x, positions[j].y - positions[i].y);
            if dx * dx + dy * dy <= range * range {
                out.push((i as NodeId, j as NodeId));
            }
        }
    }
    out
}

/// Replays `trace` tick by tick against a fresh model and checks the open contacts equal the brute-force pairs.
fn check_against_brute(trace: &ContactTrace, fresh: &mut dyn Mobility, range: f64, tick: Time) {
    let mut open = BTreeSet::new();
    let mut k = 0;
    let mut t = 0;
    while t <= trace.duration {
        while let Some(e) = trace.events.get(k).filter(|e| e.t == t) {
            assert!(e.a < e.b, "{e:?}");
            if e.up {
                assert!(open.insert((e.a, e.b)), "double up {e:?}");
            } else {
                assert!(open.remove(&(e.a, e.b)), "down without up {e:?}");
            }
            k += 1;
        }
        fresh.advance(t);
        assert_eq!(open.iter().copied().collect::<Vec<_>>(), brute(fresh.positions(), range), "t={t}");
        t += tick;
    }
    assert_eq!(k, trace.events.len(), "events off the tick grid");
}

/// The oracle-check setting: a random-waypoint contact trace (126 nodes, 10 m range, 12 h), exported in the ONE
/// format and read back, gives exactly the same trace.
#[test]
fn random_waypoint_contacts_survive_the_one_round_trip() {
    let cfg = RandomWaypointConfig { nodes: 126, area: (400.0, 400.0), speed: (0.5, 1.5), pause: (0.0, 120.0) };
    let mut m = RandomWaypoint::new(cfg, 2024).unwrap();
    let trace = contacts_from_mobility(&mut m, 12 * 3600 * SECOND, 10.0, SECOND);
    assert!(trace.events.iter().filter(|e| e.up).count() > 1000, "too few contacts to be a test");
    let messages: Vec<MessageSpec> = (0..50)
        .map(|i| MessageSpec {
            id: i,
            src: i as u32 % 126,
            dst: (i as u32 * 7 + 1) % 126,
            size: 1000 + i,
            created: i * 600_123,
        })
        .collect();
    let text = write_one(&trace, &messages);
    let (back, back_messages) = read_one(&text).unwrap();
    assert_eq!(back, trace);
    assert_eq!(back_messages, messages);

    // Same seed, same trace, same bytes.
    let mut again = RandomWaypoint::new(cfg, 2024).unwrap();
    let trace2 = contacts_from_mobility(&mut again, 12 * 3600 * SECOND, 10.0, SECOND);
    assert_eq!(write_one(&trace2, &messages), text);
}

#[test]
fn field_contacts_match_brute_force() {
    let mut f = Field::new(60, 5).unwrap();
    let trace = contacts_from_mobility(&mut f, 1800 * SECOND, 53.0, 10 * SECOND);
    check_against_brute(&trace, &mut Field::new(60, 5).unwrap(), 53.0, 10 * SECOND);
}

#[test]
fn ns2_replay_contacts_match_brute_force() {
    let text = "$node_(0) set X_ 0\n$node_(0) set Y_ 0\n$node_(1) set X_ 100\n$node_(1) set Y_ 0\n\
                $node_(2) set X_ 50\n$node_(2) set Y_ 80\n\
                $ns_ at 0 \"$node_(0) setdest 100 0 2\"\n$ns_ at 10 \"$node_(2) setdest 50 -80 4\"\n";
    let mut t = read_ns2(text).unwrap();
    let trace = contacts_from_mobility(&mut t, 60 * SECOND, 20.0, SECOND);
    check_against_brute(&trace, &mut read_ns2(text).unwrap(), 20.0, SECOND);
    // Node 0 reaches node 1 (at x = 80 after 40 s), node 2 passes within 20 m of the x axis.
    assert!(trace.events.contains(&ContactEvent { t: 40 * SECOND, a: 0, b: 1, up: true }));
    assert!(trace.events.iter().any(|e| e.up && e.b == 2));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The grid finds exactly the pairs a brute-force O(n²) scan finds, at every tick.
    #[test]
    fn contacts_agree_with_brute_force(
        seed in any::<u64>(),
        nodes in 0u32..40,
        w in 10.0f64..500.0,
        h in 10.0f64..500.0,
        range in 0.5f64..120.0,
        tick_s in 1u64..20,
        vmax in 0.2f64..8.0,
    ) {
        let cfg = RandomWaypointConfig { nodes, area: (w, h), speed: (0.1, 0.1 + vmax), pause: (0.0, 30.0) };
        let tick = tick_s * SECOND;
        let mut m = RandomWaypoint::new(cfg, seed).unwrap();
        let trace = contacts_from_mobility(&mut m, 300 * SECOND, range, tick);
        prop_assert_eq!(trace.nodes, nodes);
        check_against_brute(&trace, &mut RandomWaypoint::new(cfg, seed).unwrap(), range, tick);
    }

    /// write_one → read_one gives back any valid trace and message list.
    #[test]
    fn one_round_trip(
        nodes in 2u32..60,
        toggles in prop::collection::vec((0u64..5_000, 0u32..60, 0u32..60), 0..200),
        msgs in prop::collection::vec((0u64..5_000, 0u32..60, 0u32..60, 0u64..u64::MAX / 2), 0..40),
        tail in 0u64..100_000,
    ) {
        let mut open = BTreeSet::new();
        let mut t = 0;
        let mut events = Vec::new();
        for (dt, x, y) in toggles {
            let (x, y) = (x % nodes, y % nodes);
            if x == y {
                continue;
            }
            t += dt;
            let (a, b) = (x.min(y), x.max(y));
            let up = open.insert((a, b));
            if !up {
                open.remove(&(a, b));
            }
            events.push(ContactEvent { t, a, b, up });
        }
        let mut created = 0;
        let messages: Vec<MessageSpec> = msgs
            .into_iter()
            .enumerate()
            .filter_map(|(i, (dt, s, d, size))| {
                let (src, dst) = (s % nodes, d % nodes);
                created += dt;
                (src != dst).then_some(MessageSpec { id: i as u64 * 3, src, dst, size, created })
            })
            .collect();
        let duration = t.max(created) + tail;
        let trace = ContactTrace { nodes, duration, events };
        let (back, back_msgs) = read_one(&write_one(&trace, &messages)).unwrap();
        prop_assert_eq!(back, trace);
        prop_assert_eq!(back_msgs, messages);
    }

    /// No text makes the parsers panic.
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = read_one(&text);
        let _ = read_ns2(&text);
        let _ = detect_format(&text);
    }

    /// Nor does text made of the formats' own words, which reaches deeper into them; whatever parses also runs.
    #[test]
    fn plausible_text_never_panics(words in prop::collection::vec(prop_oneof![
        Just("CONN"), Just("C"), Just("up"), Just("down"), Just("DE"), Just("S"), Just("#"), Just("# nodes"),
        Just("# duration"), Just("\n"), Just("\n"), Just("\n"), Just("0"), Just("1"), Just("2.5"), Just("-1"),
        Just("p3"), Just("M4"), Just("10k"), Just("1e400"), Just("nan"), Just("999999999"), Just("\""),
        Just("$node_(0)"), Just("$node_(1)"), Just("$node_(x)"), Just("$ns_"), Just("at"), Just("set"), Just("X_"),
        Just("Y_"), Just("Z_"), Just("setdest"), Just("$god_"), Just("1e300"), Just("0.0001"), Just("GiB"),
    ], 0..60)) {
        let text = words.join(" ");
        let _ = read_one(&text);
        let _ = detect_format(&text);
        if let Ok(mut t) = read_ns2(&text) {
            let trace = contacts_from_mobility(&mut t, 10 * SECOND, 50.0, SECOND);
            prop_assert_eq!(trace.nodes as usize, t.positions().len());
        }
    }
}
