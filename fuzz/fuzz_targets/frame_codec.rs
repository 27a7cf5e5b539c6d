//! The Remoting frame codec on arbitrary bytes: frames are decoded until the input runs
//! out or a frame is refused; nothing panics, and a frame above the limit is refused from
//! its length field, before its bytes are buffered.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rmq_remoting::RemotingCodec;
use tokio_util::codec::Decoder;

/// A small limit, so the refusal path is reached by short inputs too.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut codec = RemotingCodec::new(LIMIT);
    let mut buf = BytesMut::from(data);
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(cmd)) => {
                // A decoded command can be looked at without panicking.
                let _ = cmd.request_code();
                let _ = cmd.is_oneway();
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = codec.decode_eof(&mut buf);
});
