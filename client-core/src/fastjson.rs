//! fastjson's non-standard maps keyed by objects (REMOTING.md §3.22):
//! `{"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:42,…}}`.
//!
//! Java brokers, admin tools and the Java local offset store write `MessageQueue`-keyed
//! maps this way; they also accept it back. A key may also be a string holding the
//! MessageQueue JSON (fastjson reads that too).

use std::collections::HashMap;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::route::MessageQueue;

/// Why an object-keyed body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FastjsonError {
    /// Unexpected character.
    #[error("expected {expected} at byte {at}")]
    Syntax {
        /// What was expected.
        expected: &'static str,
        /// Byte offset.
        at: usize,
    },
    /// A standard JSON piece inside did not parse.
    #[error("invalid JSON at byte {at}")]
    Json {
        /// Byte offset.
        at: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A key is not a MessageQueue.
    #[error("map key at byte {at} is not a MessageQueue")]
    BadKey {
        /// Byte offset.
        at: usize,
    },
}

struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s.as_bytes()[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.as_bytes().get(self.pos).copied()
    }
    fn expect(&mut self, c: u8, expected: &'static str) -> Result<(), FastjsonError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(FastjsonError::Syntax {
                expected,
                at: self.pos,
            })
        }
    }
    /// One standard JSON value starting here.
    fn value<T: DeserializeOwned>(&mut self) -> Result<T, FastjsonError> {
        self.ws();
        let at = self.pos;
        let mut it = serde_json::Deserializer::from_str(&self.s[at..]).into_iter::<T>();
        match it.next() {
            Some(Ok(v)) => {
                self.pos = at + it.byte_offset();
                Ok(v)
            }
            Some(Err(source)) => Err(FastjsonError::Json { at, source }),
            None => Err(FastjsonError::Syntax {
                expected: "a value",
                at,
            }),
        }
    }
    fn mq_key(&mut self) -> Result<MessageQueue, FastjsonError> {
        let at = self.pos;
        let v: Value = self.value()?;
        let v = match v {
            Value::String(s) => {
                serde_json::from_str::<Value>(&s).map_err(|_| FastjsonError::BadKey { at })?
            }
            v => v,
        };
        serde_json::from_value(v).map_err(|_| FastjsonError::BadKey { at })
    }
    /// `{ <mq>: <value>, … }`
    fn mq_map<V: DeserializeOwned>(&mut self) -> Result<HashMap<MessageQueue, V>, FastjsonError> {
        let mut out = HashMap::new();
        self.expect(b'{', "'{'")?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            let key = self.mq_key()?;
            self.expect(b':', "':'")?;
            let value: V = self.value()?;
            out.insert(key, value);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(out);
                }
                _ => {
                    return Err(FastjsonError::Syntax {
                        expected: "',' or '}'",
                        at: self.pos,
                    });
                }
            }
        }
    }
}

/// Reads the MessageQueue-keyed map under top-level key `field` of a fastjson object (for
/// example `offsetTable`); other top-level members must be standard JSON and are skipped.
/// A missing field gives an empty map.
///
/// # Errors
/// [`FastjsonError`] naming the byte where the text stopped making sense.
pub fn parse_mq_map_field<V: DeserializeOwned>(
    text: &str,
    field: &str,
) -> Result<HashMap<MessageQueue, V>, FastjsonError> {
    let mut object = parse_object(text, &[field])?;
    let Some(map) = object.mq_maps.remove(field) else {
        return Ok(HashMap::new());
    };
    map.into_iter()
        .map(|(mq, v)| {
            serde_json::from_value(v)
                .map(|v| (mq, v))
                .map_err(|source| FastjsonError::Json { at: 0, source })
        })
        .collect()
}

/// A fastjson object split into its MessageQueue-keyed maps and its standard members.
#[derive(Debug, Default)]
pub struct FastjsonObject {
    /// The members that are standard JSON.
    pub fields: serde_json::Map<String, Value>,
    /// The members named as MessageQueue-keyed maps, by member name.
    pub mq_maps: HashMap<String, HashMap<MessageQueue, Value>>,
}

/// Reads a top-level fastjson object whose members named in `mq_fields` are
/// MessageQueue-keyed maps (Java `ConsumerRunningInfo.mqTable`, `ConsumeStats.offsetTable`)
/// and whose other members are standard JSON.
///
/// # Errors
/// [`FastjsonError`] naming the byte where the text stopped making sense.
pub fn parse_object(text: &str, mq_fields: &[&str]) -> Result<FastjsonObject, FastjsonError> {
    let mut out = FastjsonObject::default();
    let mut sc = Scanner { s: text, pos: 0 };
    sc.expect(b'{', "'{'")?;
    if sc.peek() == Some(b'}') {
        return Ok(out);
    }
    loop {
        let key: String = sc.value()?;
        sc.expect(b':', "':'")?;
        if mq_fields.contains(&key.as_str()) {
            let map = sc.mq_map()?;
            out.mq_maps.insert(key, map);
        } else {
            let v: Value = sc.value()?;
            out.fields.insert(key, v);
        }
        match sc.peek() {
            Some(b',') => sc.pos += 1,
            Some(b'}') => return Ok(out),
            _ => {
                return Err(FastjsonError::Syntax {
                    expected: "',' or '}'",
                    at: sc.pos,
                });
            }
        }
    }
}

/// The RESET_CONSUMER_CLIENT_OFFSET body: `{"offsetTable":{<mq>:<offset>,…}}`.
///
/// # Errors
/// As [`parse_mq_map_field`].
pub fn parse_reset_offset_body(body: &[u8]) -> Result<HashMap<MessageQueue, i64>, FastjsonError> {
    parse_mq_map_field(&String::from_utf8_lossy(body), "offsetTable")
}

/// Writes a MessageQueue-keyed map in fastjson's object-key form, entries sorted by queue.
pub fn write_mq_map<V>(
    out: &mut String,
    map: impl IntoIterator<Item = (MessageQueue, V)>,
    value: impl Fn(&mut String, &V),
) {
    let mut entries: Vec<(MessageQueue, V)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    for (i, (mq, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(mq).expect("serializable"));
        out.push(':');
        value(out, v);
    }
    out.push('}');
}

/// The GET_CONSUMER_STATUS_FROM_CLIENT reply body:
/// `{"consumerTable":{},"messageQueueTable":{<mq>:<offset>,…}}`.
pub fn consumer_status_body(table: &HashMap<MessageQueue, i64>) -> Bytes {
    let mut s = String::from("{\"consumerTable\":{},\"messageQueueTable\":");
    write_mq_map(
        &mut s,
        table.iter().map(|(k, v)| (k.clone(), *v)),
        |o, v| o.push_str(&v.to_string()),
    );
    s.push('}');
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_object_keys_string_keys_and_skips_other_members() {
        let body = r#"{"other":{"x":[1,2]},"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:42,
            "{\"brokerName\":\"b\",\"queueId\":1,\"topic\":\"T\"}" : 17 }}"#;
        let m = parse_reset_offset_body(body.as_bytes()).unwrap();
        assert_eq!(m[&MessageQueue::new("T", "b", 0)], 42);
        assert_eq!(m[&MessageQueue::new("T", "b", 1)], 17);
        assert!(parse_reset_offset_body(b"{}").unwrap().is_empty());
        assert!(
            parse_reset_offset_body(b"{\"offsetTable\":{}}")
                .unwrap()
                .is_empty()
        );
        assert!(parse_reset_offset_body(b"{\"offsetTable\":{{\"x\":1}:2}}").is_err());
        assert!(parse_reset_offset_body(b"{\"offsetTable\":[]}").is_err());
    }

    #[test]
    fn writes_what_it_reads() {
        let mut t = HashMap::new();
        t.insert(MessageQueue::new("T", "b", 1), 5i64);
        t.insert(MessageQueue::new("T", "a", 0), 9007199254740993i64);
        let body = consumer_status_body(&t);
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(r#"{"consumerTable":{},"messageQueueTable":{{"brokerName":"a","queueId":0,"topic":"T"}:9007199254740993,"#));
        assert_eq!(
            parse_mq_map_field::<i64>(text, "messageQueueTable").unwrap(),
            t
        );
    }
}
