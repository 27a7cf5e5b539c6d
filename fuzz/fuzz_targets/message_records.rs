//! The pull-body decoder (message records, REMOTING.md §5) on arbitrary bytes: every input
//! is either a list of messages or a typed error naming the record; compressed bodies
//! inflate at most to `MAX_DECOMPRESSED_BODY`. Decoded messages' getters do not panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rmq_client_core::message::decode_messages;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(msgs) = decode_messages(&body) {
        for m in &msgs {
            let _ = m.msg_id();
            let _ = m.offset_msg_id();
            let _ = m.tags();
            let _ = m.keys().count();
            let _ = m.uniq_key();
            for (k, v) in m.properties.iter() {
                let _ = (k.len(), v.len());
            }
        }
    }
});
