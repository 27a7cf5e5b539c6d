//! The serde serializer that flattens a typed header straight into ext-field pairs.
//!
//! It writes what going through a `serde_json::Value` wrote before, without the tree: a
//! pull request's header was built that way on every pull (its JSON map, a `String` per
//! key and value, then the pairs), a few percent of all the CPU of consuming. Field names
//! of a struct are `&'static str`, so they are kept as borrowed keys.

use std::fmt;

use compact_str::{CompactString, ToCompactString};

use serde::ser::{self, Impossible, Serialize};

/// The pairs of a header, in key order (the order the `serde_json::Value` map gave).
pub(super) type Entries = Vec<(CompactString, CompactString)>;

/// Flattens `header` (a struct or map of scalars) into pairs sorted by key; `None`
/// fields, unit values and non-finite floats are left out, as a JSON `null` was.
pub(super) fn header_entries<H: Serialize + ?Sized>(header: &H) -> Result<Entries, String> {
    // Room for the headers rmq sends through here (a dozen fields at most; the pull
    // request, the one sent most, writes its own: `RequestHeader::to_ext_fields`), so the
    // list is not grown on the way.
    let mut fields = Fields(Vec::with_capacity(16));
    header.serialize(&mut fields).map_err(|e| e.0)?;
    let mut entries = fields.0;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // A map serialized with a key twice: its last value, as the JSON map kept it.
    entries.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            std::mem::swap(&mut later.1, &mut earlier.1);
        }
        same
    });
    Ok(entries)
}

/// Why a header could not be flattened.
#[derive(Debug)]
pub(super) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

fn not_a_map(what: &str) -> Error {
    Error(format!("serialized to {what}, not a map"))
}

/// The top level: a struct or a map whose values are scalars.
struct Fields(Entries);

impl Fields {
    fn push<T: Serialize + ?Sized>(&mut self, key: CompactString, value: &T) -> Result<(), Error> {
        match value.serialize(Scalar) {
            Ok(Some(text)) => self.0.push((key, text)),
            Ok(None) => {}
            Err(e) => return Err(Error(format!("field `{key}` is {}, not a scalar", e.0))),
        }
        Ok(())
    }
}

macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty, $what:expr;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(not_a_map($what))
        })*
    };
}

impl<'a> ser::Serializer for &'a mut Fields {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = FieldsMap<'a>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Error>;

    refuse! {
        serialize_bool(bool) -> (), "a boolean";
        serialize_i8(i8) -> (), "a number";
        serialize_i16(i16) -> (), "a number";
        serialize_i32(i32) -> (), "a number";
        serialize_i64(i64) -> (), "a number";
        serialize_u8(u8) -> (), "a number";
        serialize_u16(u16) -> (), "a number";
        serialize_u32(u32) -> (), "a number";
        serialize_u64(u64) -> (), "a number";
        serialize_f32(f32) -> (), "a number";
        serialize_f64(f64) -> (), "a number";
        serialize_char(char) -> (), "a string";
        serialize_str(&str) -> (), "a string";
        serialize_bytes(&[u8]) -> (), "a sequence";
        serialize_none() -> (), "null";
        serialize_unit() -> (), "null";
        serialize_unit_struct(&'static str) -> (), "null";
        serialize_unit_variant(&'static str, u32, &'static str) -> (), "a string";
        serialize_seq(Option<usize>) -> Self::SerializeSeq, "a sequence";
        serialize_tuple(usize) -> Self::SerializeTuple, "a sequence";
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct, "a sequence";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant, "a map of a variant";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant, "a map of a variant";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(not_a_map("a map of a variant"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<FieldsMap<'a>, Error> {
        Ok(FieldsMap {
            fields: self,
            key: None,
        })
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Error> {
        Ok(self)
    }
}

impl ser::SerializeStruct for &mut Fields {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push(CompactString::const_new(key), value)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// A map at the top level (a `serde_json::Value` or `HashMap` used as a header): its keys
/// must serialize as strings.
pub(super) struct FieldsMap<'a> {
    fields: &'a mut Fields,
    key: Option<CompactString>,
}

impl ser::SerializeMap for FieldsMap<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        match key.serialize(Scalar)? {
            Some(k) => self.key = Some(k),
            None => return Err(Error("a map key is null".into())),
        }
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value without its key".into()))?;
        self.fields.push(key, value)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}

/// One value: its text as `serde_json::Value` would print it, `None` for a null.
struct Scalar;

/// A float as the JSON tree printed it (`1.0`, not `1`; non-finite ones were `null`).
fn float_text<T: Serialize>(v: T) -> Option<CompactString> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Number(n)) => Some(n.to_compact_string()),
        _ => None,
    }
}

macro_rules! text {
    ($($method:ident($t:ty);)*) => {
        $(fn $method(self, v: $t) -> Result<Option<CompactString>, Error> {
            Ok(Some(v.to_compact_string()))
        })*
    };
}

macro_rules! nested {
    ($($method:ident($($arg:ty),*) -> $ret:ty, $what:expr;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Error> {
            Err(Error($what.into()))
        })*
    };
}

impl ser::Serializer for Scalar {
    type Ok = Option<CompactString>;
    type Error = Error;
    type SerializeSeq = Impossible<Option<CompactString>, Error>;
    type SerializeTuple = Impossible<Option<CompactString>, Error>;
    type SerializeTupleStruct = Impossible<Option<CompactString>, Error>;
    type SerializeTupleVariant = Impossible<Option<CompactString>, Error>;
    type SerializeMap = Impossible<Option<CompactString>, Error>;
    type SerializeStruct = Impossible<Option<CompactString>, Error>;
    type SerializeStructVariant = Impossible<Option<CompactString>, Error>;

    text! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_char(char);
        serialize_str(&str);
    }

    nested! {
        serialize_bytes(&[u8]) -> Option<CompactString>, "a sequence";
        serialize_seq(Option<usize>) -> Self::SerializeSeq, "a sequence";
        serialize_tuple(usize) -> Self::SerializeTuple, "a sequence";
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct, "a sequence";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant, "a map";
        serialize_map(Option<usize>) -> Self::SerializeMap, "a map";
        serialize_struct(&'static str, usize) -> Self::SerializeStruct, "a map";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant, "a map";
    }

    fn serialize_f32(self, v: f32) -> Result<Option<CompactString>, Error> {
        Ok(float_text(v))
    }

    fn serialize_f64(self, v: f64) -> Result<Option<CompactString>, Error> {
        Ok(float_text(v))
    }

    fn serialize_none(self) -> Result<Option<CompactString>, Error> {
        Ok(None)
    }

    fn serialize_some<T: Serialize + ?Sized>(
        self,
        value: &T,
    ) -> Result<Option<CompactString>, Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Option<CompactString>, Error> {
        Ok(None)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<Option<CompactString>, Error> {
        Ok(None)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Option<CompactString>, Error> {
        Ok(Some(CompactString::const_new(variant)))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Option<CompactString>, Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Option<CompactString>, Error> {
        Err(Error("a map".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    /// What `ExtFields::from_header` did before: through a `serde_json::Value` map.
    fn via_json<H: Serialize>(header: &H) -> Option<Vec<(String, String)>> {
        let serde_json::Value::Object(map) = serde_json::to_value(header).ok()? else {
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            out.push((k, text));
        }
        Some(out)
    }

    fn direct<H: Serialize>(header: &H) -> Option<Vec<(String, String)>> {
        let entries = header_entries(header).ok()?;
        Some(
            entries
                .into_iter()
                .map(|(k, v)| (k.into_string(), v.into_string()))
                .collect(),
        )
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    enum Mode {
        Pull,
        #[allow(dead_code)]
        Pop,
    }

    #[derive(Serialize)]
    struct Newtype(i64);

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Every {
        consumer_group: String,
        topic: &'static str,
        queue_id: i32,
        queue_offset: i64,
        max_msg_nums: u32,
        sys_flag: i8,
        commit_offset: u64,
        suspend: bool,
        subscription: Option<String>,
        expression_type: Option<String>,
        ratio: f64,
        not_a_number: f32,
        initial: char,
        mode: Mode,
        wrapped: Newtype,
        empty: (),
    }

    proptest::proptest! {
        /// The direct serializer writes exactly what the JSON tree wrote, in its order.
        #[test]
        fn agrees_with_the_json_tree(
            group in ".{0,8}",
            queue_id in proptest::num::i32::ANY,
            offset in proptest::num::i64::ANY,
            nums in proptest::num::u32::ANY,
            flag in proptest::num::i8::ANY,
            commit in proptest::num::u64::ANY,
            suspend in proptest::bool::ANY,
            sub in proptest::option::of(".{0,6}"),
            ratio in proptest::num::f64::ANY,
            initial in proptest::char::any(),
            wrapped in proptest::num::i64::ANY,
        ) {
            let h = Every {
                consumer_group: group,
                topic: "TopicTest",
                queue_id,
                queue_offset: offset,
                max_msg_nums: nums,
                sys_flag: flag,
                commit_offset: commit,
                suspend,
                subscription: sub,
                expression_type: None,
                ratio,
                not_a_number: f32::NAN,
                initial,
                mode: Mode::Pull,
                wrapped: Newtype(wrapped),
                empty: (),
            };
            proptest::prop_assert_eq!(direct(&h), via_json(&h));
        }
    }

    #[test]
    fn maps_and_refusals_agree_with_the_json_tree() {
        let map = serde_json::json!({"b": 1, "a": "x", "c": null, "d": true});
        assert_eq!(direct(&map), via_json(&map));
        let mut m = std::collections::HashMap::new();
        m.insert("z".to_owned(), 3);
        m.insert("y".to_owned(), 4);
        assert_eq!(direct(&m), via_json(&m));
        for refused in [
            serde_json::json!({"a": [1]}),
            serde_json::json!({"a": {"b": 1}}),
            serde_json::json!([1, 2]),
            serde_json::json!("text"),
        ] {
            assert_eq!(direct(&refused), None, "{refused}");
            assert_eq!(via_json(&refused), None, "{refused}");
        }
        let err = header_entries(&serde_json::json!({"a": [1]})).unwrap_err();
        assert_eq!(err, "field `a` is a sequence, not a scalar");
        let err = header_entries(&7).unwrap_err();
        assert_eq!(err, "serialized to a number, not a map");
    }
}
