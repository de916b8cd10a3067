//! Advertisement service data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollen_ble::advert::AdvertPayload;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = AdvertPayload::decode(data) {
        assert_eq!(&payload.encode()[..], data);
    }
});
