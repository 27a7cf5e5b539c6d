//! [`Properties`]: a message's name → value pairs, read in place from the received frame.

use std::fmt;

use bytes::Bytes;

/// Message properties (Java `Message.properties`, `MessageDecoder.string2messageProperties`).
///
/// A decoded message keeps its properties as a view of the received frame (the wire form
/// `name\x01value\x02…`): decoding neither copies nor checks them, and reading a property
/// allocates nothing; the bytes of the pair read are checked as UTF-8 then. The first
/// `insert` or `remove` turns the view into an owned list (the send-back and producer paths
/// do this).
///
/// Java's parsing rules are applied on every read: segments shorter than 3 characters are
/// ignored, so are segments whose first `\x01` is at either end, and when a name repeats
/// its last value wins at the place of its first appearance (Java's `HashMap` put).
///
/// A pair whose name or value is not UTF-8 is treated as absent. Java decodes the whole
/// string, replacing each bad sequence with U+FFFD, and then sees a mangled name or value;
/// rmq can only lend text that is valid as received. (Before, rmq refused the whole pull
/// body over it, and the queue could not move past that message.)
#[derive(Clone)]
pub struct Properties {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// The wire form, a slice of the received frame, not yet checked as UTF-8.
    Wire(Bytes),
    /// Edited: the pairs in order, names unique.
    Owned(Vec<(String, String)>),
}

impl Default for Properties {
    fn default() -> Self {
        Properties {
            repr: Repr::Wire(Bytes::new()),
        }
    }
}

/// The valid `(name, value)` segments of a wire string, in order, duplicates included.
/// `\x01` and `\x02` never occur inside a multi-byte UTF-8 character, so splitting the
/// bytes splits the text exactly where Java splits its decoded string.
fn segments(wire: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    wire.split(|&b| b == 2).filter_map(|seg| {
        if seg.len() < 3 {
            return None;
        }
        let i = seg.iter().position(|&b| b == 1)?;
        if i == 0 || i + 1 >= seg.len() {
            return None;
        }
        let name = std::str::from_utf8(&seg[..i]).ok()?;
        let value = std::str::from_utf8(&seg[i + 1..]).ok()?;
        // Java counts UTF-16 units; fewer than 3 is ignored. A char is at most 4 bytes,
        // so 12 bytes are surely 3 chars and fewer than 3 bytes surely are not.
        if seg.len() < 12 && name.chars().count() + 1 + value.chars().count() < 3 {
            return None;
        }
        Some((name, value))
    })
}

/// The value of the last segment `name\x01value` of `wire` whose value is UTF-8 (the last
/// one wins, as Java's map put; one that is not UTF-8 is absent, as in `segments`), found
/// in one pass from the end. `name` is not empty and holds no `\x01`.
fn last_value<'a>(wire: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let n = name.len();
    let mut end = wire.len();
    loop {
        let start = memchr::memrchr(2, &wire[..end]).map_or(0, |i| i + 1);
        let seg = &wire[start..end];
        if seg.len() > n + 1
            && seg[n] == 1
            && seg.starts_with(name)
            && let Ok(value) = std::str::from_utf8(&seg[n + 1..])
        {
            return Some(value);
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
    }
}

impl Properties {
    /// Empty properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Properties read in place from the wire form (no copy, no check: see
    /// [`Properties`]).
    pub fn from_wire(wire: Bytes) -> Self {
        Properties {
            repr: Repr::Wire(wire),
        }
    }

    /// Parses the wire form `name\x01value\x02…` (copies `text`; see [`Properties`] for
    /// the rules).
    pub fn parse(text: &str) -> Self {
        Self::from_wire(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// The wire form of the pairs as [`Properties::iter`] yields them, each followed by
    /// `\x02` (Java `messageProperties2String`).
    pub fn to_wire(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.iter() {
            s.push_str(k);
            s.push('\u{1}');
            s.push_str(v);
            s.push('\u{2}');
        }
        s
    }

    /// The value of `name`. Allocates nothing.
    pub fn get(&self, name: &str) -> Option<&str> {
        match &self.repr {
            // Only segments that start with `name\x01` can match: checked with a compare
            // before any search. With a non-empty name free of \x01 and a non-empty value,
            // such a segment passes Java's rules (≥ 3 chars, first \x01 inside).
            Repr::Wire(w) => {
                if name.is_empty() || name.contains('\u{1}') {
                    return None;
                }
                last_value(w, name.as_bytes())
            }
            Repr::Owned(v) => v.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
        }
    }

    fn owned(&mut self) -> &mut Vec<(String, String)> {
        if let Repr::Wire(_) = self.repr {
            let pairs = self
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            self.repr = Repr::Owned(pairs);
        }
        match &mut self.repr {
            Repr::Owned(v) => v,
            Repr::Wire(_) => unreachable!("converted above"),
        }
    }

    /// Sets `name`, replacing an existing value in place.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let pairs = self.owned();
        match pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 = value,
            None => pairs.push((name, value)),
        }
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let pairs = self.owned();
        let i = pairs.iter().position(|(n, _)| n == name)?;
        Some(pairs.remove(i).1)
    }

    /// The pairs: each name once, at its first place, with its last value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let (wire, owned) = match &self.repr {
            Repr::Wire(w) => (Some(&w[..]), None),
            Repr::Owned(v) => (None, Some(v)),
        };
        let from_wire = wire.into_iter().flat_map(move |w| {
            segments(w).enumerate().filter_map(move |(i, (name, _))| {
                let first = segments(w).take(i).all(|(n, _)| n != name);
                first.then(|| (name, self.get(name).unwrap_or_default()))
            })
        });
        let from_owned = owned
            .into_iter()
            .flat_map(|v| v.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        from_wire.chain(from_owned)
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for Properties {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Properties {}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_java_parsing_rules() {
        let p = Properties::parse(
            "TAGS\u{1}TagA\u{2}ab\u{2}\u{1}x\u{2}k\u{1}\u{2}KEYS\u{1}k1 k2\u{2}TAGS\u{1}TagB\u{2}",
        );
        assert_eq!(p.get("TAGS"), Some("TagB"), "last value wins");
        assert_eq!(p.get("KEYS"), Some("k1 k2"));
        assert_eq!(p.get("ab"), None);
        assert_eq!(p.get(""), None);
        assert_eq!(p.get("k"), None, "an empty value is no property");
        assert_eq!(p.get("TAG"), None, "a prefix is not a name");
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [("TAGS", "TagB"), ("KEYS", "k1 k2")],
            "first place, last value"
        );
        assert_eq!(p.len(), 2);
        assert_eq!(Properties::parse(&p.to_wire()), p);
    }

    proptest::proptest! {
        /// The fast `get` agrees with Java's parsing rules applied segment by segment.
        #[test]
        fn get_agrees_with_the_java_rules(
            text in "[ab\u{1}\u{2}é]{0,40}",
            name in "[ab\u{1}é]{0,3}",
        ) {
            let p = Properties::parse(&text);
            let reference = segments(text.as_bytes()).filter(|(n, _)| *n == name).last().map(|(_, v)| v);
            proptest::prop_assert_eq!(p.get(&name), reference);
        }
    }

    proptest::proptest! {
        /// On any bytes, `get` and `iter` agree with the segment rules, a pair that is not
        /// UTF-8 being absent.
        #[test]
        fn any_bytes_read_as_the_valid_pairs(
            wire in proptest::collection::vec(proptest::sample::select(
                vec![b'a', b'b', 1u8, 2, 0xC3, 0xA9, 0xFF]), 0..40),
            name in "[ab\u{e9}]{1,3}",
        ) {
            let p = Properties::from_wire(Bytes::from(wire.clone()));
            let reference = segments(&wire).filter(|(n, _)| *n == name).last().map(|(_, v)| v);
            proptest::prop_assert_eq!(p.get(&name), reference);
            for (n, v) in p.iter() {
                proptest::prop_assert_eq!(p.get(n), Some(v));
            }
        }
    }

    #[test]
    fn a_pair_that_is_not_utf8_is_absent_and_the_rest_read() {
        let mut wire = b"TAGS\x01TagA\x02KEYS\x01".to_vec();
        wire.extend_from_slice(&[0xFF, 0xFE]);
        wire.extend_from_slice(b"\x02\xC3\x01xy\x02UNIQ_KEY\x01ID1\x02TAGS\x01");
        wire.extend_from_slice(&[b'T', 0xC3]);
        wire.push(2);
        let p = Properties::from_wire(Bytes::from(wire));
        assert_eq!(p.get("KEYS"), None, "value not UTF-8");
        assert_eq!(p.get("TAGS"), Some("TagA"), "the last valid value");
        assert_eq!(p.get("UNIQ_KEY"), Some("ID1"));
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [("TAGS", "TagA"), ("UNIQ_KEY", "ID1")]
        );
    }

    #[test]
    fn short_segments_count_characters_not_bytes() {
        // "é\x01" is 3 bytes but 2 characters: ignored, as Java does.
        let p = Properties::parse("é\u{1}\u{2}ü\u{1}v\u{2}");
        assert_eq!(p.get("é"), None);
        assert_eq!(p.get("ü"), Some("v"));
    }

    #[test]
    fn edits_turn_the_view_into_an_owned_list() {
        let mut p = Properties::parse("A\u{1}1\u{2}B\u{1}2\u{2}");
        p.insert("A", "3");
        p.insert("C", "4");
        assert_eq!(p.remove("B").as_deref(), Some("2"));
        assert_eq!(p.iter().collect::<Vec<_>>(), [("A", "3"), ("C", "4")]);
        assert_eq!(p.to_wire(), "A\u{1}3\u{2}C\u{1}4\u{2}");
    }
}
