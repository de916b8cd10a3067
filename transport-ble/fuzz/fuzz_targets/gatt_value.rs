//! One GATT value: the frame decoder and the control decoder must reject anything malformed without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollen_ble::frame::{decode_gatt_value, Control, FrameKind};

fuzz_target!(|data: &[u8]| {
    if let Ok((header, payload)) = decode_gatt_value(data) {
        assert_eq!(payload.len(), usize::from(header.len));
        if header.kind == FrameKind::Control {
            if let Ok(control) = Control::decode(payload) {
                let mut again = Vec::new();
                control.encode(&mut again);
                assert_eq!(again, payload, "control encoding is canonical");
            }
        }
    }
});
