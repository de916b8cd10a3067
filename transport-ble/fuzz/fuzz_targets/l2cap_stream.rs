//! The L2CAP byte-stream reassembler: any bytes, in any chunking, give the same frames and keep at most one partial
//! frame buffered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollen_ble::frame::{StreamDecoder, HEADER_LEN, MAX_PAYLOAD};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut whole = StreamDecoder::default();
    let expected = whole.push(bytes);
    let mut pieces = StreamDecoder::default();
    let mut got = Vec::new();
    for part in bytes.chunks(chunk) {
        got.extend(pieces.push(part));
        assert!(pieces.buffered() <= HEADER_LEN + MAX_PAYLOAD);
    }
    assert_eq!(got, expected);
    assert_eq!(pieces.buffered(), whole.buffered());
});
