//! The local offsets file (Java `offsets.json`, fastjson with object keys) on arbitrary
//! text: parsed or refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmq_offset_store::parse_offsets_file;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_offsets_file(text);
    }
});
