//! Bitswap 1.2.0 messages: framing and decoding never panic; decoded messages re-encode and decode equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollen_router::bitswap::{BitswapMessage, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = BitswapMessage::decode(data) {
        if let Ok(body) = message.encode() {
            assert_eq!(BitswapMessage::decode(&body).ok(), Some(message));
        }
    }
    let mut frames = FrameDecoder::new();
    frames.push(data);
    while let Ok(Some(_)) = frames.next_frame() {}
});
