use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::frame::{put_control, put_frame, FrameKind, Hello, LINK_VERSION};

/// Two sessions joined by an in-memory GATT (and, once opened, L2CAP) bearer. `cut_c2p` models what the central's
/// platform does to a write before it reaches the air (for example Android truncating it).
struct Pair {
    central: LinkSession,
    peripheral: LinkSession,
    now: Instant,
    cut_c2p: Box<dyn FnMut(Vec<u8>) -> Vec<u8>>,
    max_value_c2p: usize,
}

impl Pair {
    fn new(central_mtu: u16, peripheral_mtu: u16, config: SessionConfig) -> Self {
        let now = Instant::now();
        Self {
            central: LinkSession::new(Role::Central, 0xC, central_mtu, config.clone(), now),
            peripheral: LinkSession::new(Role::Peripheral, 0xD, peripheral_mtu, config, now),
            now,
            cut_c2p: Box::new(|v| v),
            max_value_c2p: 0,
        }
    }

    /// Moves values both ways until neither side has anything to send.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for bearer in [Bearer::Gatt, Bearer::L2capCoc] {
                while let Some(v) = self.central.poll_transmit(self.now, bearer) {
                    self.max_value_c2p = self.max_value_c2p.max(v.len());
                    let v = (self.cut_c2p)(v);
                    self.peripheral.handle_received(self.now, bearer, &v);
                    moved = true;
                }
                while let Some(v) = self.peripheral.poll_transmit(self.now, bearer) {
                    self.central.handle_received(self.now, bearer, &v);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Writes `data` from the central and reads everything the peripheral gets, pumping in between.
    fn transfer_c2p(&mut self, data: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut offset = 0;
        for _ in 0..100_000 {
            if let Ok(n) = self.central.write(&data[offset..]) {
                offset += n;
            }
            self.pump();
            drain(&mut self.peripheral, &mut got);
            self.pump();
            if offset == data.len() && got.len() == data.len() || self.peripheral.is_closed() {
                break;
            }
        }
        got
    }
}

fn drain(session: &mut LinkSession, out: &mut Vec<u8>) {
    let mut buf = [0u8; 700];
    while let Ok(Read::Data(n)) = session.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
}

fn events(session: &mut LinkSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn segmentation_and_reassembly_for_every_mtu() {
    for mtu in 23u16..=517 {
        let mut pair = Pair::new(mtu, mtu, SessionConfig::default());
        let data = pattern(3000 + usize::from(mtu), u64::from(mtu));
        assert_eq!(pair.transfer_c2p(&data), data, "mtu {mtu}");
        assert!(pair.max_value_c2p <= usize::from(mtu) - 3, "mtu {mtu}: value of {}", pair.max_value_c2p);
        // Full-size frames: the payload of a write is MTU − 3 − 2.
        assert_eq!(pair.central.gatt_frame_payload(), usize::from(mtu) - 5);
    }
}

#[test]
fn differing_mtu_views_use_the_smaller() {
    let mut pair = Pair::new(517, 185, SessionConfig::default());
    pair.pump();
    assert_eq!(pair.central.gatt_frame_payload(), 185 - 5);
    assert_eq!(pair.peripheral.gatt_frame_payload(), 185 - 5);
    // An MTU reported as 23 or less is unknown and treated as 23.
    let pair = Pair::new(0, 247, SessionConfig::default());
    assert_eq!(pair.central.gatt_frame_payload(), 18);
}

#[test]
fn flow_control_bounds_the_receiver() {
    let config = SessionConfig { recv_window: 8192, send_buffer: 64 * 1024, ..Default::default() };
    let mut pair = Pair::new(247, 247, config);
    let data = pattern(40_000, 7);
    assert_eq!(pair.central.write(&data).unwrap(), 40_000);
    pair.pump();
    // Nobody reads: exactly one window arrives, the rest waits at the sender.
    assert_eq!(pair.peripheral.recv_buf.len(), 8192);
    assert_eq!(pair.central.unsent(), 40_000 - 8192);
    let mut got = Vec::new();
    drain(&mut pair.peripheral, &mut got);
    pair.pump();
    drain(&mut pair.peripheral, &mut got);
    assert!(got.len() > 8192);
    assert_eq!(&got[..], &data[..got.len()]);
}

#[test]
fn sending_beyond_credit_is_a_typed_error() {
    let now = Instant::now();
    let mut s = LinkSession::new(Role::Peripheral, 1, 517, SessionConfig::default(), now);
    assert!(s.poll_transmit(now, Bearer::Gatt).is_some(), "our HELLO");
    let mut hello = Vec::new();
    let h = Hello { version: LINK_VERSION, flags: 0, nonce: 2, window: 4096, att_mtu: 517 };
    put_control(&mut hello, 0, &Control::Hello(h));
    s.handle_received(now, Bearer::Gatt, &hello);
    let window = SessionConfig::default().recv_window as usize;
    let chunk = vec![0u8; 500];
    for i in 0..=window / 500 {
        let mut frame = Vec::new();
        put_frame(&mut frame, FrameKind::Data, (i + 1) as u8, &chunk);
        s.handle_received(now, Bearer::Gatt, &frame);
    }
    assert!(s.recv_buf.len() <= window);
    let closed = events(&mut s).into_iter().find_map(|e| match e {
        SessionEvent::Closed(r) => Some(r),
        _ => None,
    });
    assert!(matches!(closed, Some(Err(LinkError::FlowControl { .. }))), "{closed:?}");
    // The peer is told why.
    let close = s.poll_transmit(now, Bearer::Gatt).expect("final close");
    assert!(close.ends_with(&[0x04, 0x04]), "{close:?}");
}

#[test]
fn first_frame_must_be_a_hello_of_our_version() {
    let now = Instant::now();
    let mut s = LinkSession::new(Role::Peripheral, 1, 247, SessionConfig::default(), now);
    let mut data = Vec::new();
    put_frame(&mut data, FrameKind::Data, 0, b"hi");
    s.handle_received(now, Bearer::Gatt, &data);
    assert_eq!(s.read(&mut [0; 4]), Err(LinkError::Protocol(ProtocolViolation::ExpectedHello)));

    let mut s = LinkSession::new(Role::Peripheral, 1, 247, SessionConfig::default(), now);
    let mut hello = Vec::new();
    let h = Hello { version: 9, flags: 0, nonce: 2, window: 8192, att_mtu: 247 };
    put_control(&mut hello, 0, &Control::Hello(h));
    s.handle_received(now, Bearer::Gatt, &hello);
    assert_eq!(s.read(&mut [0; 4]), Err(LinkError::UnsupportedVersion(9)));
}

#[test]
fn dropped_write_is_a_sequence_gap_after_the_reorder_wait() {
    let mut pair = Pair::new(247, 247, SessionConfig::default());
    pair.pump();
    pair.central.write(&pattern(1000, 1)).unwrap();
    let _lost = pair.central.poll_transmit(pair.now, Bearer::Gatt);
    pair.pump();
    let mut buf = [0u8; 64];
    // The later frames wait for the missing one, as they would for an EATT reordering.
    assert_eq!(pair.peripheral.read(&mut buf), Ok(Read::WouldBlock));
    let deadline = pair.peripheral.poll_timeout().unwrap();
    assert!(deadline <= pair.now + Duration::from_secs(1));
    pair.peripheral.handle_timeout(deadline);
    assert!(matches!(pair.peripheral.read(&mut buf), Err(LinkError::SeqGap { expected: 1, got: 2, .. })));
}

#[test]
fn reordered_gatt_values_are_delivered_in_order() {
    let mut pair = Pair::new(185, 185, SessionConfig::default());
    let data = pattern(20_000, 17);
    pair.central.write(&data[..8000]).unwrap();
    let mut values: Vec<Vec<u8>> = std::iter::from_fn(|| pair.central.poll_transmit(pair.now, Bearer::Gatt)).collect();
    // Swap neighbours and reverse runs of up to 15, as several ATT bearers would.
    for chunk in values.chunks_mut(15) {
        chunk.reverse();
    }
    for v in &values {
        pair.peripheral.handle_received(pair.now, Bearer::Gatt, v);
    }
    let mut got = Vec::new();
    drain(&mut pair.peripheral, &mut got);
    got.extend(pair.transfer_c2p(&data[8000..]));
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}

#[test]
fn keepalive_and_liveness_deadlines() {
    let config = SessionConfig::default();
    let mut pair = Pair::new(247, 247, config.clone());
    pair.pump();
    let start = pair.now;
    // Idle but alive: pings flow and nobody times out.
    for _ in 0..10 {
        pair.now = pair.central.poll_timeout().unwrap().min(pair.peripheral.poll_timeout().unwrap());
        pair.central.handle_timeout(pair.now);
        pair.peripheral.handle_timeout(pair.now);
        pair.pump();
    }
    assert!(pair.now >= start + config.keepalive_interval * 4);
    assert!(!pair.central.is_closed() && !pair.peripheral.is_closed());
    // The link goes silent: both sides give up at exactly the liveness deadline.
    let silent_from = pair.now;
    let deadline = pair.central.poll_timeout().unwrap();
    assert!(deadline <= silent_from + config.liveness_timeout);
    let mut t = silent_from;
    while !pair.central.is_closed() {
        t = pair.central.poll_timeout().unwrap();
        pair.central.handle_timeout(t);
        while pair.central.poll_transmit(t, Bearer::Gatt).is_some() {}
    }
    assert_eq!(t, silent_from + config.liveness_timeout);
    let ev = events(&mut pair.central);
    assert!(ev.contains(&SessionEvent::Closed(Err(LinkError::LivenessTimeout(config.liveness_timeout)))));
}

#[test]
fn close_handshake_flushes_data_then_ends_cleanly() {
    let mut pair = Pair::new(185, 185, SessionConfig::default());
    let data = pattern(5000, 3);
    pair.central.write(&data).unwrap();
    pair.central.close(pair.now, CloseReason::Normal);
    assert_eq!(pair.central.write(b"late"), Err(LinkError::Closed));
    let mut got = Vec::new();
    for _ in 0..50 {
        pair.pump();
        drain(&mut pair.peripheral, &mut got);
    }
    assert_eq!(got, data);
    assert_eq!(pair.peripheral.read(&mut [0; 8]), Ok(Read::Eof));
    assert!(pair.central.is_closed() && pair.peripheral.is_closed());
    assert!(events(&mut pair.central).contains(&SessionEvent::Closed(Ok(()))));
    assert!(events(&mut pair.peripheral).contains(&SessionEvent::Closed(Ok(()))));
}

#[test]
fn stream_moves_to_l2cap_in_order() {
    let mut pair = Pair::new(247, 247, SessionConfig::default());
    pair.peripheral.offer_l2cap(0x0080);
    pair.pump();
    assert!(events(&mut pair.central).contains(&SessionEvent::L2capOffered { psm: 0x80 }));
    let before = pattern(3000, 11);
    pair.central.write(&before).unwrap();
    // Part of the data leaves on GATT, then the channel opens under it.
    let early_gatt: Vec<Vec<u8>> = (0..3).filter_map(|_| pair.central.poll_transmit(pair.now, Bearer::Gatt)).collect();
    pair.central.handle_l2cap_opened(998);
    pair.peripheral.handle_l2cap_opened(998);
    // L2CAP frames reach the peripheral before the GATT frames and the SWITCH that precede them.
    while let Some(v) = pair.central.poll_transmit(pair.now, Bearer::L2capCoc) {
        assert!(v.len() <= 998);
        pair.peripheral.handle_received(pair.now, Bearer::L2capCoc, &v);
    }
    for v in early_gatt {
        pair.peripheral.handle_received(pair.now, Bearer::Gatt, &v);
    }
    let after = pattern(20_000, 12);
    let mut expected = before.clone();
    expected.extend_from_slice(&after);
    let mut got = pair.transfer_c2p(&after);
    drain(&mut pair.peripheral, &mut got);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "stream reordered across the bearer switch");
    assert_eq!(pair.central.tx_bearer(), Bearer::L2capCoc);
    assert_eq!(pair.peripheral.tx_bearer(), Bearer::L2capCoc);
}

#[test]
fn duplicate_tie_break_keeps_exactly_one_link() {
    for (a, b) in [(1u64, 2u64), (2, 1), (u64::MAX, 0), (7, 7 + (1 << 40))] {
        // Link 1: a is central. Link 2: b is central. Each node judges both links.
        let a_keeps_1 = survives_duplicate(Role::Central, a, b);
        let a_keeps_2 = survives_duplicate(Role::Peripheral, a, b);
        let b_keeps_1 = survives_duplicate(Role::Peripheral, b, a);
        let b_keeps_2 = survives_duplicate(Role::Central, b, a);
        assert_eq!(a_keeps_1, b_keeps_1);
        assert_eq!(a_keeps_2, b_keeps_2);
        assert!(a_keeps_1 ^ a_keeps_2, "exactly one survives for {a} {b}");
    }
}

fn truncation_case(sender_mtu: u16, actual_mtu: u16, len: usize, seed: u64) -> Result<(), TestCaseError> {
    let mut pair = Pair::new(sender_mtu, actual_mtu, SessionConfig::default());
    let limit = usize::from(actual_mtu) - 3;
    let truncated = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = truncated.clone();
    pair.cut_c2p = Box::new(move |mut v| {
        if v.len() > limit {
            v.truncate(limit);
            flag.set(true);
        }
        v
    });
    let data = pattern(len, seed);
    // `pump` delivers the central's frames before the peripheral's HELLO (with its smaller MTU) reaches the
    // central: the real race.
    let got = pair.transfer_c2p(&data);
    prop_assert!(data.starts_with(&got), "delivered bytes are not a prefix of what was sent");
    if truncated.get() {
        prop_assert!(got.len() < data.len());
        let mut buf = [0u8; 8];
        let result = pair.peripheral.read(&mut buf);
        prop_assert!(
            matches!(result, Err(LinkError::Frame(crate::frame::FrameError::Truncated { .. }))),
            "truncation not reported: {:?}",
            result
        );
    } else {
        prop_assert_eq!(got, data);
    }
    Ok(())
}

#[test]
fn android_truncation_before_hello_is_detected() {
    let mut pair = Pair::new(247, 185, SessionConfig::default());
    pair.cut_c2p = Box::new(|mut v| {
        v.truncate(182);
        v
    });
    let data = pattern(2000, 5);
    let got = pair.transfer_c2p(&data);
    assert!(got.is_empty(), "the first data frame was already too long");
    assert!(matches!(
        pair.peripheral.read(&mut [0u8; 4]),
        Err(LinkError::Frame(crate::frame::FrameError::Truncated { declared: 242, actual: 180 }))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Android truncates writes longer than its view of the MTU. Whatever the MTUs, a truncated write is detected and
    /// none of its bytes are ever delivered as data.
    #[test]
    fn truncation_is_detected_never_delivered(
        sender_mtu in 24u16..=517,
        shrink in 1u16..=494,
        len in 1usize..6000,
        seed: u64,
    ) {
        let actual = sender_mtu.saturating_sub(shrink).max(23);
        truncation_case(sender_mtu, actual, len, seed)?;
    }

    /// A value cut anywhere is rejected, at any MTU.
    #[test]
    fn any_cut_is_detected(mtu in 23u16..=517, cut_at in 0usize..512, frame_index in 0usize..6, seed: u64) {
        let mut pair = Pair::new(mtu, mtu, SessionConfig::default());
        let data = pattern(4000, seed);
        let counter = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let count = counter.clone();
        pair.cut_c2p = Box::new(move |mut v| {
            let i = count.get();
            count.set(i + 1);
            if i == frame_index + 1 && cut_at < v.len() {
                v.truncate(cut_at);
            }
            v
        });
        let got = pair.transfer_c2p(&data);
        prop_assert!(data.starts_with(&got));
        if got.len() < data.len() {
            prop_assert!(pair.peripheral.read(&mut [0u8; 4]).is_err());
        }
    }

    /// Arbitrary bytes on either bearer never panic, never grow the receive buffer past the window, and end the link
    /// with a typed error or leave it open.
    #[test]
    fn garbage_input_is_contained(values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..40)) {
        let now = Instant::now();
        let mut s = LinkSession::new(Role::Central, 1, 517, SessionConfig::default(), now);
        s.handle_l2cap_opened(512);
        for (i, v) in values.iter().enumerate() {
            let bearer = if i % 2 == 0 { Bearer::Gatt } else { Bearer::L2capCoc };
            s.handle_received(now + Duration::from_millis(i as u64), bearer, v);
            prop_assert!(s.recv_buf.len() <= SessionConfig::default().recv_window as usize);
            while s.poll_transmit(now, bearer).is_some() {}
        }
    }
}
