//! `extFields`: the custom header of a command flattened to string pairs (REMOTING.md §2.7),
//! and the serde bridge between typed header structs and those pairs.
//!
//! A header is a plain `#[derive(Serialize, Deserialize)]` struct whose field names are
//! exactly the Java field names (usually `#[serde(rename_all = "camelCase")]`). On the way
//! out every value is written as a string (numbers in decimal, booleans `"true"`/`"false"`,
//! `None` omitted) as Java's `makeCustomHeaderToNet` does; on the way in the strings are
//! parsed back into the field types, and unknown keys are ignored, as Java's
//! `decodeCommandCustomHeader` does.

use std::fmt;

use compact_str::{CompactString, ToCompactString};

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::code::RequestCode;

/// The `extFields` of a [`RemotingCommand`](super::RemotingCommand): string keys to string
/// values, in insertion order.
///
/// Order is kept because Java writes ROCKETMQ binary headers in its map's iteration order and
/// the golden frames are compared byte for byte; brokers themselves do not care about order.
/// Inserting an existing key replaces its value in place (Java `HashMap.put`).
/// Equality ignores order.
///
/// Keys and values are kept inline when they are short (up to 24 bytes, which holds every
/// key and number of the usual headers): building a request header or reading a
/// response's allocates no string per field. Keys of a typed header are its field names,
/// borrowed.
#[derive(Clone, Default)]
pub struct ExtFields {
    entries: Vec<(CompactString, CompactString)>,
}

impl ExtFields {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        ExtFields {
            entries: Vec::with_capacity(n),
        }
    }

    /// Appends `key` → `value`, for a header that writes its own fields once each (see
    /// [`RequestHeader::to_ext_fields`]): unlike [`ExtFields::insert`], no earlier `key` is
    /// looked for (a debug build checks that there is none), and a value of up to 24 bytes
    /// allocates nothing.
    pub fn push_str(&mut self, key: &'static str, value: &str) {
        self.push_new(key, CompactString::new(value));
    }

    /// Appends `key` → `value` in decimal, as [`ExtFields::push_str`] appends a string
    /// (Java writes numbers with `String.valueOf`).
    pub fn push_int(&mut self, key: &'static str, value: i64) {
        self.push_new(key, value.to_compact_string());
    }

    fn push_new(&mut self, key: &'static str, value: CompactString) {
        debug_assert!(self.get(key).is_none(), "ext field `{key}` pushed twice");
        self.entries.push((CompactString::const_new(key), value));
    }

    /// Sets `key` to `value`, replacing an existing value in place.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.put(
            CompactString::from(key.into()),
            CompactString::from(value.into()),
        );
    }

    fn put(&mut self, key: CompactString, value: CompactString) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let idx = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(idx).1.into_string())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Flattens a typed header into ext fields (Java `makeCustomHeaderToNet`), in key
    /// order, without building a JSON tree on the way; the field names are borrowed.
    ///
    /// # Errors
    /// [`HeaderError::NotAFlatStruct`] when `header` does not serialize to a flat map of
    /// scalars (a nested struct, a sequence).
    pub fn from_header<H: Serialize + ?Sized>(header: &H) -> Result<Self, HeaderError> {
        super::ext_ser::header_entries(header)
            .map(|entries| ExtFields { entries })
            .map_err(|detail| HeaderError::NotAFlatStruct { detail })
    }

    /// Parses these ext fields into a typed header (Java `decodeCommandCustomHeader`).
    ///
    /// # Errors
    /// [`HeaderError::Decode`] naming the field that is missing or does not parse.
    pub fn to_header<H: DeserializeOwned>(&self) -> Result<H, HeaderError> {
        let pairs = self
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), ExtValue(v.as_str())));
        let de = de::value::MapDeserializer::<_, HeaderDeError>::new(pairs);
        H::deserialize(de).map_err(|e| HeaderError::Decode { detail: e.0 })
    }
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ExtFields {}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut ext = ExtFields::new();
        for (k, v) in iter {
            ext.insert(k, v);
        }
        ext
    }
}

impl Serialize for ExtFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for ExtFields {
    /// Lenient: keeps the order of the input, and accepts numbers and booleans as values
    /// (written back as their text), nested values as their JSON text; `null` values are
    /// skipped.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExtVisitor;
        impl<'de> Visitor<'de> for ExtVisitor {
            type Value = ExtFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFields, A::Error> {
                // Room for the usual answer (a pull answer has four to six fields), so the
                // list is not grown twice on the way. A format's size hint is believed only
                // up to 64 entries: the input, not the hint, decides how much is allocated.
                let mut ext = ExtFields {
                    entries: Vec::with_capacity(map.size_hint().unwrap_or(8).min(64)),
                };
                while let Some((Text(key), value)) = map.next_entry::<Text, ValueText>()? {
                    if let Some(text) = value.0 {
                        ext.put(key, text);
                    }
                }
                Ok(ext)
            }
        }
        deserializer.deserialize_map(ExtVisitor)
    }
}

/// A key: a string, read without an allocation when short.
struct Text(CompactString);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(CompactString::new(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A value: its text (a string as is, a number or boolean as JSON writes it, anything
/// nested as its JSON text), `None` for `null`.
struct ValueText(Option<CompactString>);

impl<'de> Deserialize<'de> for ValueText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ValueText, E> {
                Ok(ValueText(Some(CompactString::new(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ValueText, E> {
                Ok(ValueText(Some(CompactString::const_new(if v {
                    "true"
                } else {
                    "false"
                }))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ValueText, E> {
                Ok(ValueText(Some(v.to_compact_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ValueText, E> {
                Ok(ValueText(Some(v.to_compact_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ValueText, E> {
                // As a JSON number prints (`1.0`, not `1`).
                Ok(ValueText(
                    serde_json::Number::from_f64(v).map(|n| CompactString::from(n.to_string())),
                ))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ValueText, E> {
                Ok(ValueText(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<ValueText, E> {
                Ok(ValueText(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ValueText, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueText, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ValueText(Some(CompactString::from(v.to_string()))))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<ValueText, A::Error> {
                let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ValueText(Some(CompactString::from(v.to_string()))))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A typed request header: the struct, its request code and the header of its response.
///
/// Pairs requests with responses in the type system (as rskafka's `RequestBody` does), so
/// a typed call returns the right response header.
pub trait RequestHeader: Serialize + Send + Sync {
    /// The request code this header goes with.
    const CODE: RequestCode;
    /// The custom header of a successful response; [`EmptyHeader`] when it has none.
    type Response: DeserializeOwned;

    /// The header as ext fields (Java `makeCustomHeaderToNet`). The default flattens it
    /// through serde ([`ExtFields::from_header`]: keys sorted, `None` left out). A header
    /// sent on every pull may write its fields itself ([`ExtFields::push_str`],
    /// [`ExtFields::push_int`]) to skip that pass; it must then give exactly the same
    /// fields in the same order, which its tests check against `from_header`.
    ///
    /// # Errors
    /// [`HeaderError::NotAFlatStruct`] when the header is not a flat struct of scalars.
    fn to_ext_fields(&self) -> Result<ExtFields, HeaderError> {
        ExtFields::from_header(self)
    }
}

/// A header with no fields of its own (Java `HeartbeatRequestHeader`, `LockBatchMqRequestHeader`…).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyHeader {}

/// Why a custom header could not be mapped to or from ext fields.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header type does not serialize to a flat map of scalars.
    #[error("header is not a flat struct of scalars: {detail}")]
    NotAFlatStruct {
        /// What was found instead.
        detail: String,
    },
    /// The ext fields do not fit the header type (a field missing or not parseable).
    #[error("ext fields do not fit the header: {detail}")]
    Decode {
        /// The field and the problem, as serde reports it.
        detail: String,
    },
    /// The command has no ext fields at all, but a header was expected.
    #[error("command has no ext fields")]
    Missing,
}

#[derive(Debug)]
struct HeaderDeError(String);

impl fmt::Display for HeaderDeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HeaderDeError {}

impl de::Error for HeaderDeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        HeaderDeError(msg.to_string())
    }
}

/// One ext value: a string that deserializes into whatever scalar the field asks for.
struct ExtValue<'a>(&'a str);

impl<'de, 'a> IntoDeserializer<'de, HeaderDeError> for ExtValue<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_scalar {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, HeaderDeError> {
            let value: $ty = self.0.trim().parse().map_err(|_| {
                HeaderDeError(format!("`{}` is not a valid {}", self.0, stringify!($ty)))
            })?;
            visitor.$visit(value)
        })*
    };
}

impl<'de, 'a> Deserializer<'de> for ExtValue<'a> {
    type Error = HeaderDeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, HeaderDeError> {
        visitor.visit_str(self.0)
    }

    parse_scalar! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, HeaderDeError> {
        // Java `Boolean.parseBoolean`: "true" in any case is true, anything else false.
        visitor.visit_bool(self.0.trim().eq_ignore_ascii_case("true"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, HeaderDeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, HeaderDeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, HeaderDeError> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        consumer_group: String,
        queue_id: i32,
        queue_offset: i64,
        flag_b: bool,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        bname: Option<String>,
    }

    #[test]
    fn header_round_trips_through_strings() {
        let h = Sample {
            consumer_group: "cg".into(),
            queue_id: 3,
            queue_offset: -42,
            flag_b: true,
            bname: None,
        };
        let ext = ExtFields::from_header(&h).unwrap();
        assert_eq!(ext.get("queueId"), Some("3"));
        assert_eq!(ext.get("queueOffset"), Some("-42"));
        assert_eq!(ext.get("flagB"), Some("true"));
        assert_eq!(ext.get("bname"), None);
        assert_eq!(ext.to_header::<Sample>().unwrap(), h);
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let ext: ExtFields = [("consumerGroup", "cg"), ("queueId", "x")]
            .into_iter()
            .collect();
        let err = ext.to_header::<Sample>().unwrap_err();
        assert!(err.to_string().contains("`x` is not a valid i32"), "{err}");
        let ext: ExtFields = [("consumerGroup", "cg")].into_iter().collect();
        let err = ext.to_header::<Sample>().unwrap_err();
        assert!(err.to_string().contains("queueId"), "{err}");
    }

    #[test]
    fn unknown_keys_are_ignored_and_insert_replaces() {
        let mut ext: ExtFields = [
            ("consumerGroup", "cg"),
            ("queueId", "1"),
            ("queueOffset", "2"),
            ("flagB", "TRUE"),
            ("somethingNew", "?"),
        ]
        .into_iter()
        .collect();
        ext.insert("queueId", "7");
        assert_eq!(ext.iter().nth(1), Some(("queueId", "7")));
        let h: Sample = ext.to_header().unwrap();
        assert_eq!(h.queue_id, 7);
        assert!(h.flag_b);
    }

    #[test]
    fn nested_values_are_rejected() {
        let err = ExtFields::from_header(&serde_json::json!({"a": [1]})).unwrap_err();
        assert!(matches!(err, HeaderError::NotAFlatStruct { .. }));
    }

    #[test]
    fn json_ext_fields_are_read_leniently_in_order() {
        let ext: ExtFields = serde_json::from_str(
            r#"{"s":"x\u0041","n":-12,"u":18446744073709551615,"f":1.0,"g":2.5,"b":true,
                "z":null,"m":{"k":1},"a":[1,"y"],"aVeryLongKeyOfMoreThan24Bytes":"v","s":"again"}"#,
        )
        .unwrap();
        let pairs: Vec<_> = ext.iter().collect();
        assert_eq!(
            pairs,
            [
                ("s", "again"),
                ("n", "-12"),
                ("u", "18446744073709551615"),
                ("f", "1.0"),
                ("g", "2.5"),
                ("b", "true"),
                ("m", r#"{"k":1}"#),
                ("a", r#"[1,"y"]"#),
                ("aVeryLongKeyOfMoreThan24Bytes", "v"),
            ],
            "null skipped, a repeated key replaced in place"
        );
    }
}
