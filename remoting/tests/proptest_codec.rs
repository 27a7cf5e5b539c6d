//! Property tests: arbitrary bytes never panic the decoder; encode→decode round-trips.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use rmq_remoting::RemotingCodec;
use rmq_remoting::protocol::{ExtFields, LanguageCode, RemotingCommand, SerializeType};
use tokio_util::codec::{Decoder, Encoder};

fn drain(bytes: &[u8]) {
    let mut codec = RemotingCodec::new(64 * 1024);
    let mut buf = BytesMut::from(bytes);
    // Every call returns a frame, "need more", or an error; never a panic.
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
}

fn command(binary: bool) -> impl Strategy<Value = RemotingCommand> {
    let code = if binary {
        (i16::MIN as i32..=i16::MAX as i32).boxed()
    } else {
        any::<i32>().boxed()
    };
    let version = if binary {
        (i16::MIN as i32..=i16::MAX as i32).boxed()
    } else {
        any::<i32>().boxed()
    };
    // ROCKETMQ reads a zero-length string as null, so binary strings are non-empty.
    let min = usize::from(binary);
    let text = move || proptest::string::string_regex(&format!("(?s).{{{min},24}}")).unwrap();
    (
        code,
        0u8..14,
        version,
        any::<i32>(),
        any::<i32>(),
        proptest::option::of(text()),
        proptest::option::of(proptest::collection::btree_map(text(), text(), 0..8)),
        proptest::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(
            move |(code, lang, version, opaque, flag, remark, ext, body)| {
                let ext_fields = match ext {
                    Some(m) => Some(m.into_iter().collect::<ExtFields>()),
                    None if binary => Some(ExtFields::new()),
                    None => None,
                };
                RemotingCommand {
                    code,
                    language: LanguageCode(lang),
                    version,
                    opaque,
                    flag,
                    remark,
                    ext_fields,
                    body: Bytes::from(body),
                    serialize_type: if binary {
                        SerializeType::RocketMq
                    } else {
                        SerializeType::Json
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        drain(&bytes);
    }

    /// A well-formed length prefix around arbitrary header bytes reaches the header parsers.
    #[test]
    fn arbitrary_headers_never_panic(
        ty in 0u8..3,
        header in proptest::collection::vec(any::<u8>(), 0..512),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = BytesMut::new();
        buf.put_u32((4 + header.len() + body.len()) as u32);
        buf.put_u32((u32::from(ty) << 24) | header.len() as u32);
        buf.put_slice(&header);
        buf.put_slice(&body);
        drain(&buf);
    }

    #[test]
    fn binary_round_trip(cmd in command(true)) {
        let mut buf = BytesMut::new();
        RemotingCodec::default().encode(cmd.clone(), &mut buf).unwrap();
        let back = RemotingCodec::default().decode(&mut buf).unwrap().unwrap();
        prop_assert_eq!(back, cmd);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn json_round_trip(cmd in command(false)) {
        let mut buf = BytesMut::new();
        RemotingCodec::default().encode(cmd.clone(), &mut buf).unwrap();
        let back = RemotingCodec::default().decode(&mut buf).unwrap().unwrap();
        prop_assert_eq!(back, cmd);
    }

    /// Several frames split at arbitrary points come out whole and in order.
    #[test]
    fn split_stream_yields_every_frame(cmds in proptest::collection::vec(command(true), 1..6), cut in 1usize..97) {
        let mut all = BytesMut::new();
        for c in &cmds {
            RemotingCodec::default().encode(c.clone(), &mut all).unwrap();
        }
        let mut codec = RemotingCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in all.chunks(cut) {
            buf.put_slice(chunk);
            while let Some(c) = codec.decode(&mut buf).unwrap() {
                out.push(c);
            }
        }
        prop_assert_eq!(out, cmds);
    }
}
