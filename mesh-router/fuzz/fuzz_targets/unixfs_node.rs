//! dag-pb / UnixFS node decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pollen_router::unixfs::decode_file_node;

fuzz_target!(|data: &[u8]| {
    let _ = decode_file_node(data);
});
