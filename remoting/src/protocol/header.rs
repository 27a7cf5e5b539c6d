//! The two header serialisations (REMOTING.md §2.2 JSON, §2.3 ROCKETMQ binary).

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;

use super::{ExtFields, LanguageCode, RemotingCommand, SerializeType};

/// Why a header could not be decoded. The frame around it was intact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderDecodeError {
    /// The JSON header is not valid JSON or lacks `code`.
    #[error("invalid JSON header")]
    Json(#[source] serde_json::Error),
    /// The binary header ends before the field it was reading.
    #[error("ROCKETMQ header truncated reading {field}: need {need} bytes, {left} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes that field needs.
        need: usize,
        /// Bytes left in the header.
        left: usize,
    },
    /// A length field of the binary header is negative.
    #[error("ROCKETMQ header field {field} has negative length {len}")]
    NegativeLength {
        /// The field.
        field: &'static str,
        /// The length read.
        len: i64,
    },
    /// A binary header string is not UTF-8.
    #[error("ROCKETMQ header field {field} is not UTF-8")]
    Utf8 {
        /// The field.
        field: &'static str,
    },
    /// Bytes are left over after the binary header's ext map.
    #[error("ROCKETMQ header has {extra} bytes after its ext map")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonHeader {
    code: i32,
    #[serde(default = "other_language", deserialize_with = "json_language")]
    language: LanguageCode,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    ext_fields: Option<ExtFields>,
}

fn other_language() -> LanguageCode {
    LanguageCode::OTHER
}

/// `language` as a name (`"JAVA"`) or a code; anything else, or an unknown name, is
/// `OTHER`. Read without building a `serde_json::Value` (a string allocation per frame).
fn json_language<'de, D: serde::Deserializer<'de>>(d: D) -> Result<LanguageCode, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = LanguageCode;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a language name or code")
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<LanguageCode, E> {
            Ok(LanguageCode::from_name(name).unwrap_or(LanguageCode::OTHER))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LanguageCode, E> {
            Ok(u8::try_from(v).map_or(LanguageCode::OTHER, LanguageCode))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<LanguageCode, E> {
            Ok(LanguageCode::OTHER)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<LanguageCode, E> {
            Ok(LanguageCode::OTHER)
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<LanguageCode, E> {
            Ok(LanguageCode::OTHER)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<LanguageCode, E> {
            Ok(LanguageCode::OTHER)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<LanguageCode, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(LanguageCode::OTHER)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<LanguageCode, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(LanguageCode::OTHER)
        }
    }
    d.deserialize_any(V)
}

/// The serialisation `encode_header` will really use for `cmd`: the requested one, except
/// that a code or version outside `i16` cannot be written in a ROCKETMQ header (Java would
/// silently truncate it, REMOTING.md §2.3), so such a command goes out as JSON.
pub(crate) fn effective_type(cmd: &RemotingCommand) -> SerializeType {
    match cmd.serialize_type {
        SerializeType::RocketMq
            if i16::try_from(cmd.code).is_err() || i16::try_from(cmd.version).is_err() =>
        {
            SerializeType::Json
        }
        other => other,
    }
}

/// Appends the header of `cmd` to `out` in the serialisation it really uses and returns
/// that type: the requested one, except that a command whose code or version does not fit
/// an `i16` goes out as JSON (a ROCKETMQ binary header would truncate it, REMOTING.md
/// §2.3).
///
/// JSON keys are written in fastjson's order (alphabetical, `remark` and `extFields`
/// omitted when `None`), ext fields in insertion order. Binary ext entries are written in
/// insertion order; an entry's string is written with its full length even if empty.
pub fn encode_header(cmd: &RemotingCommand, out: &mut BytesMut) -> SerializeType {
    let ty = effective_type(cmd);
    match ty {
        SerializeType::Json => encode_json(cmd, out),
        SerializeType::RocketMq => encode_binary(cmd, out),
    }
    ty
}

fn json_str(out: &mut BytesMut, s: &str) {
    // Writing a &str to a Vec-backed writer cannot fail.
    let mut w = out.writer();
    serde_json::to_writer(&mut w, s).expect("serializing a str to memory cannot fail");
}

fn encode_json(cmd: &RemotingCommand, out: &mut BytesMut) {
    out.put_slice(b"{\"code\":");
    put_int(out, cmd.code);
    if let Some(ext) = &cmd.ext_fields {
        out.put_slice(b",\"extFields\":{");
        for (i, (k, v)) in ext.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            json_str(out, k);
            out.put_u8(b':');
            json_str(out, v);
        }
        out.put_u8(b'}');
    }
    out.put_slice(b",\"flag\":");
    put_int(out, cmd.flag);
    out.put_slice(b",\"language\":");
    match cmd.language.name() {
        Some(name) => json_str(out, name),
        None => put_int(out, cmd.language.0),
    }
    out.put_slice(b",\"opaque\":");
    put_int(out, cmd.opaque);
    if let Some(remark) = &cmd.remark {
        out.put_slice(b",\"remark\":");
        json_str(out, remark);
    }
    out.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    put_int(out, cmd.version);
    out.put_u8(b'}');
}

/// A number in decimal, written in place (no string per number).
fn put_int(out: &mut BytesMut, v: impl std::fmt::Display) {
    use std::fmt::Write;
    // Writing to a BytesMut cannot fail.
    let _ = write!(out, "{v}");
}

fn put_str_i32(out: &mut BytesMut, s: &str) {
    out.put_i32(s.len() as i32);
    out.put_slice(s.as_bytes());
}

fn encode_binary(cmd: &RemotingCommand, out: &mut BytesMut) {
    // effective_type guarantees both fit.
    out.put_i16(cmd.code as i16);
    out.put_u8(cmd.language.0);
    out.put_i16(cmd.version as i16);
    out.put_i32(cmd.opaque);
    out.put_i32(cmd.flag);
    put_str_i32(out, cmd.remark.as_deref().unwrap_or(""));
    let ext_len_at = out.len();
    out.put_i32(0);
    if let Some(ext) = &cmd.ext_fields {
        for (k, v) in ext.iter() {
            out.put_i16(k.len() as i16);
            out.put_slice(k.as_bytes());
            put_str_i32(out, v);
        }
    }
    let ext_len = (out.len() - ext_len_at - 4) as i32;
    out[ext_len_at..ext_len_at + 4].copy_from_slice(&ext_len.to_be_bytes());
}

/// Decodes a header of type `ty` into a command with an empty body.
///
/// # Errors
/// [`HeaderDecodeError`] naming the field that was malformed. Never panics, whatever the bytes.
pub fn decode_header(
    ty: SerializeType,
    header: &[u8],
) -> Result<RemotingCommand, HeaderDecodeError> {
    match ty {
        SerializeType::Json => {
            let h: JsonHeader = serde_json::from_slice(header).map_err(HeaderDecodeError::Json)?;
            Ok(RemotingCommand {
                code: h.code,
                language: h.language,
                version: h.version,
                opaque: h.opaque,
                flag: h.flag,
                remark: h.remark,
                ext_fields: h.ext_fields,
                body: Bytes::new(),
                serialize_type: SerializeType::Json,
            })
        }
        SerializeType::RocketMq => decode_binary(header),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], HeaderDecodeError> {
        if self.buf.len() < n {
            return Err(HeaderDecodeError::Truncated {
                field,
                need: n,
                left: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], HeaderDecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, HeaderDecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, HeaderDecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn len(&mut self, len: i64, field: &'static str) -> Result<usize, HeaderDecodeError> {
        usize::try_from(len).map_err(|_| HeaderDecodeError::NegativeLength { field, len })
    }

    /// A string of `len` bytes; length 0 reads as `None` (Java reads it as null).
    fn str(
        &mut self,
        len: usize,
        field: &'static str,
    ) -> Result<Option<String>, HeaderDecodeError> {
        if len == 0 {
            return Ok(None);
        }
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| HeaderDecodeError::Utf8 { field })
    }
}

fn decode_binary(header: &[u8]) -> Result<RemotingCommand, HeaderDecodeError> {
    let mut r = Reader { buf: header };
    let code = r.i16("code")?;
    let language = r.array::<1>("language")?[0];
    let version = r.i16("version")?;
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.i32("remark length")?;
    let remark_len = r.len(remark_len.into(), "remark")?;
    let remark = r.str(remark_len, "remark")?;
    let ext_len = r.i32("ext length")?;
    let ext_len = r.len(ext_len.into(), "ext map")?;
    let ext_bytes = r.take(ext_len, "ext map")?;
    if !r.buf.is_empty() {
        return Err(HeaderDecodeError::TrailingBytes { extra: r.buf.len() });
    }
    let mut ext = ExtFields::new();
    let mut er = Reader { buf: ext_bytes };
    while !er.buf.is_empty() {
        let key_len = er.i16("ext key length")?;
        let key_len = er.len(key_len.into(), "ext key")?;
        let key = er.str(key_len, "ext key")?;
        let val_len = er.i32("ext value length")?;
        let val_len = er.len(val_len.into(), "ext value")?;
        let val = er.str(val_len, "ext value")?;
        // Java skips nothing here but a zero-length string reads as null; a null key or
        // value cannot be represented in the map, so it is dropped.
        if let (Some(k), Some(v)) = (key, val) {
            ext.insert(k, v);
        }
    }
    Ok(RemotingCommand {
        code: code.into(),
        language: LanguageCode(language),
        version: version.into(),
        opaque,
        flag,
        remark,
        // Java always creates the map for a binary header, even an empty one.
        ext_fields: Some(ext),
        body: Bytes::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_language_is_lenient() {
        let h = br#"{"code":0,"language":"KOTLIN","opaque":3,"flag":1,"unknown":[1]}"#;
        let cmd = decode_header(SerializeType::Json, h).unwrap();
        assert_eq!(cmd.language, LanguageCode::OTHER);
        assert_eq!(cmd.opaque, 3);
        assert_eq!(cmd.ext_fields, None);
        let h = br#"{"code":0,"language":12,"extFields":{"a":1,"b":true,"c":null}}"#;
        let cmd = decode_header(SerializeType::Json, h).unwrap();
        assert_eq!(cmd.language, LanguageCode::RUST);
        let ext = cmd.ext_fields.unwrap();
        assert_eq!(ext.get("a"), Some("1"));
        assert_eq!(ext.get("b"), Some("true"));
        assert_eq!(ext.get("c"), None);
        for odd in [
            r#""#,
            r#","language":null"#,
            r#","language":-1"#,
            r#","language":300"#,
            r#","language":1.5"#,
            r#","language":{"x":[1]}"#,
            r#","language":["JAVA"]"#,
        ] {
            let h = format!(r#"{{"code":0{odd},"opaque":4}}"#);
            let cmd = decode_header(SerializeType::Json, h.as_bytes()).unwrap();
            assert_eq!(cmd.language, LanguageCode::OTHER, "{h}");
            assert_eq!(cmd.opaque, 4, "{h}");
        }
        let h = br#"{"code":0,"language":"JAVA"}"#;
        assert_eq!(
            decode_header(SerializeType::Json, h).unwrap().language,
            LanguageCode::JAVA
        );
    }

    #[test]
    fn binary_rejects_truncation_and_negative_lengths() {
        let mut h = vec![0u8; 13];
        h.extend_from_slice(&(-1i32).to_be_bytes());
        let err = decode_header(SerializeType::RocketMq, &h).unwrap_err();
        assert!(matches!(
            err,
            HeaderDecodeError::NegativeLength {
                field: "remark",
                ..
            }
        ));
        let err = decode_header(SerializeType::RocketMq, &h[..5]).unwrap_err();
        assert!(matches!(
            err,
            HeaderDecodeError::Truncated {
                field: "opaque",
                ..
            }
        ));
    }

    #[test]
    fn out_of_range_code_falls_back_to_json() {
        let cmd = RemotingCommand::request(super::super::RequestCode::POP_MESSAGE)
            .with_serialize_type(SerializeType::RocketMq);
        let mut out = BytesMut::new();
        assert_eq!(encode_header(&cmd, &mut out), SerializeType::Json);
        assert!(out.starts_with(b"{\"code\":200050,"));
    }
}
