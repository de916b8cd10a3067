//! A link session fed arbitrary values on both bearers: it must end with a typed error or stay open, never panic,
//! and never buffer more than its receive window.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pollen_ble::session::{Bearer, LinkSession, Read, Role, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let config = SessionConfig::default();
    let window = config.recv_window as usize;
    let role = if data.first().is_some_and(|b| b & 1 == 1) { Role::Central } else { Role::Peripheral };
    let mut session = LinkSession::new(role, 1, 247, config, now);
    // Values are length-prefixed by one byte; the top bit of the length picks the bearer.
    let mut rest = data.get(1..).unwrap_or_default();
    let mut step = 0u64;
    while let Some((&tag, tail)) = rest.split_first() {
        let len = usize::from(tag & 0x7f).min(tail.len());
        let (value, tail) = tail.split_at(len);
        rest = tail;
        step += 1;
        let t = now + Duration::from_millis(step);
        if tag & 0x80 != 0 {
            session.handle_l2cap_opened(600);
            session.handle_received(t, Bearer::L2capCoc, value);
        } else {
            session.handle_received(t, Bearer::Gatt, value);
        }
        session.handle_timeout(t);
        for bearer in [Bearer::Gatt, Bearer::L2capCoc] {
            while session.poll_transmit(t, bearer).is_some() {}
        }
        while session.poll_event().is_some() {}
    }
    let mut buffered = 0;
    let mut buf = [0u8; 512];
    while let Ok(Read::Data(n)) = session.read(&mut buf) {
        buffered += n;
    }
    assert!(buffered <= window, "{buffered} bytes buffered with a {window}-byte window");
});
