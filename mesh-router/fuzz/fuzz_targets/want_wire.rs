//! `/pollen/want/1.0.0` envelopes: the framed decoder never panics, holds at most one envelope, and whatever
//! decodes re-encodes to something that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollen_router::gossip::wire::{EnvelopeDecoder, WireMessage};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = WireMessage::decode(data) {
        let again = WireMessage::decode(&message.encode());
        assert_eq!(again.as_ref().ok(), Some(&message));
    }
    let mut decoder = EnvelopeDecoder::default();
    decoder.push(data);
    while let Ok(Some(_)) = decoder.next_message() {}
});
