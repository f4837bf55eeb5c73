//! The injective byte framing shared by the content digest and the audit
//! chain, and canonical JSON.
//!
//! - A field is its length as an unsigned 64-bit big-endian integer followed
//!   by its bytes.
//! - An optional field is the byte `0x00` when absent, or the byte `0x01`
//!   followed by the field when present.
//!
//! Canonical JSON is serde_json's compact form with every object's keys sorted
//! by their UTF-8 bytes (and duplicate keys impossible, as in any
//! `serde_json::Value`): no whitespace, strings escaped as serde_json escapes
//! them, numbers as serde_json prints them.

use serde_json::value::RawValue;
use serde_json::Value;

/// Appends a length-prefixed field.
pub(crate) fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Appends an optional field: `0x00`, or `0x01` and the field.
pub(crate) fn put_optional(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            put_field(out, bytes);
        }
    }
}

/// The canonical JSON text of `value`.
pub(crate) fn canonical_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    into_string(out)
}

/// Appends the canonical JSON text of the object `map` to `out`.
pub(crate) fn write_canonical_map(out: &mut String, map: &serde_json::Map<String, Value>) {
    let mut bytes = Vec::with_capacity(1024);
    write_object(map, &mut bytes);
    out.push_str(&into_string(bytes));
}

/// The text of bytes written by [`write_canonical`], which are UTF-8.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes a scalar or a key in serde_json's one compact form (writing to a
/// vector cannot fail).
fn write_plain<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, value);
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            write_plain(value, out);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_plain(key.as_str(), out);
        out.push(b':');
        write_canonical(item, out);
    }
    out.push(b'}');
}

/// Writes one JSON object's canonical text member by member, for a caller
/// that knows its members: they must come in canonical order (names sorted
/// by their UTF-8 bytes, each once), and each value must be written in its
/// canonical form ([`ObjectWriter::member`] for values without objects,
/// [`ObjectWriter::member_value`] for any value).
pub(crate) struct ObjectWriter {
    out: Vec<u8>,
    empty: bool,
    last: Option<String>,
}

impl ObjectWriter {
    /// An empty object with room for `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        ObjectWriter::within(Vec::with_capacity(capacity))
    }

    /// An object written after what `out` holds.
    fn within(mut out: Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter {
            out,
            empty: true,
            last: None,
        }
    }

    /// Writes an object with `write` after what `out` holds.
    fn nested(out: &mut Vec<u8>, write: impl FnOnce(&mut ObjectWriter)) {
        let mut inner = ObjectWriter::within(std::mem::take(out));
        write(&mut inner);
        inner.out.push(b'}');
        *out = inner.out;
    }

    fn key(&mut self, key: &str) {
        debug_assert!(
            self.last
                .as_deref()
                .is_none_or(|last| last.as_bytes() < key.as_bytes()),
            "member {key} after {:?}",
            self.last
        );
        if cfg!(debug_assertions) {
            self.last = Some(key.to_string());
        }
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_plain(key, &mut self.out);
        self.out.push(b':');
    }

    /// A member whose value holds no object (a scalar, a string, an array
    /// of them), which serde_json's compact form writes canonically.
    pub fn member<T: serde::Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.key(key);
        write_plain(value, &mut self.out);
    }

    /// A member with any value, written canonically.
    pub fn member_value(&mut self, key: &str, value: &Value) {
        self.key(key);
        write_canonical(value, &mut self.out);
    }

    /// A member whose value is an object written by `write`.
    pub fn member_object(&mut self, key: &str, write: impl FnOnce(&mut ObjectWriter)) {
        self.key(key);
        ObjectWriter::nested(&mut self.out, write);
    }

    /// A member whose value is an array of objects, each written by
    /// `write` from one item.
    pub fn member_objects<T>(
        &mut self,
        key: &str,
        items: &[T],
        mut write: impl FnMut(&mut ObjectWriter, &T),
    ) {
        self.key(key);
        self.out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            ObjectWriter::nested(&mut self.out, |inner| write(inner, item));
        }
        self.out.push(b']');
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.out.push(b'}');
        into_string(self.out)
    }
}

/// An object's canonical JSON text written from its JSON text, with where
/// each top-level member's value lies in it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CanonicalObject<'a> {
    /// The canonical JSON text ([`canonical_json`] of the parsed object).
    pub text: String,
    /// Each top-level member's name and the byte range of its value in
    /// `text`, in `text`'s (sorted) order.
    pub members: Vec<(&'a str, std::ops::Range<usize>)>,
}

impl CanonicalObject<'_> {
    /// The canonical text of the top-level member `name`, if present.
    pub fn member(&self, name: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, range)| &self.text[range.clone()])
    }
}

/// The canonical JSON of the JSON object `text`, written without building
/// a `serde_json::Value`: strings without escapes, `true`, `false`, `null`
/// and integers are copied as they stand, objects are sorted member by
/// member (a repeated name keeps its last value, as parsing does), and
/// anything else (an escaped string, a fraction, an exponent, an integer
/// out of 64-bit range) is parsed and printed as [`canonical_json`] does.
///
/// `None` when `text` is not a JSON object, nests deeper than
/// [`MAX_DEPTH`], or holds a member name with an escape: the caller then
/// parses it (and reports what is wrong) and uses [`canonical_json`]. When
/// `Some`, its text is exactly `canonical_json` of the parsed value.
pub(crate) fn canonical_object_text(text: &str) -> Option<CanonicalObject<'_>> {
    let members = sorted_members(text)?;
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut ranges = Vec::with_capacity(members.len());
    out.push(b'{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_key(key, &mut out);
        let start = out.len();
        write_raw(value.get(), &mut out, 1)?;
        ranges.push((key, start..out.len()));
    }
    out.push(b'}');
    let text_out = String::from_utf8(out).ok()?;
    debug_assert_eq!(
        Some(&text_out),
        serde_json::from_str::<Value>(text)
            .ok()
            .map(|v| canonical_json(&v))
            .as_ref(),
        "the fast canonical JSON of {text}"
    );
    Some(CanonicalObject {
        text: text_out,
        members: ranges,
    })
}

/// The members of a JSON object as borrowed text, in document order.
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// The members of the object `text`, sorted by name, each name once with
/// its last value; `None` when `text` is not an object or a name has an
/// escape.
fn sorted_members(text: &str) -> Option<Vec<(&str, &RawValue)>> {
    let Members(mut members) = serde_json::from_str(text).ok()?;
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    // Stable: of equal names, the last in the document is last here.
    let mut out: Vec<(&str, &RawValue)> = Vec::with_capacity(members.len());
    for member in members {
        match out.last_mut() {
            Some(last) if last.0 == member.0 => *last = member,
            _ => out.push(member),
        }
    }
    Some(out)
}

/// Writes a member name that has no escape (so serde_json writes it as it
/// stands) and the colon.
fn put_key(key: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// How deep [`canonical_object_text`] follows nested arrays and objects:
/// serde_json parses a value up to 128 deep, but each piece of text it
/// hands over as raw text counts from its own start.
const MAX_DEPTH: usize = 100;

/// Writes the canonical form of one JSON value given as its text, `depth`
/// arrays and objects deep; `None` deeper than [`MAX_DEPTH`].
fn write_raw(raw: &str, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    if depth >= MAX_DEPTH {
        return None;
    }
    match *raw.as_bytes().first()? {
        b'{' => {
            out.push(b'{');
            for (i, (key, value)) in sorted_members(raw)?.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                put_key(key, out);
                write_raw(value.get(), out, depth + 1)?;
            }
            out.push(b'}');
        }
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
            out.push(b'[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_raw(item.get(), out, depth + 1)?;
            }
            out.push(b']');
        }
        // A string that borrows has no escape, hence nothing serde_json
        // would escape: its text is its canonical form.
        b'"' => match serde_json::from_str::<&str>(raw) {
            Ok(_) => out.extend_from_slice(raw.as_bytes()),
            Err(_) => write_plain(&serde_json::from_str::<String>(raw).ok()?, out),
        },
        b't' | b'f' | b'n' => out.extend_from_slice(raw.as_bytes()),
        _ if plain_integer(raw) => out.extend_from_slice(raw.as_bytes()),
        _ => write_plain(&serde_json::from_str::<Value>(raw).ok()?, out),
    }
    Some(())
}

/// Whether `raw` is an integer that serde_json parses as a 64-bit integer
/// and prints back the same: digits without a leading zero (or `0`), at
/// most 19 of them, or `-` and at most 18 digits not starting with `0`.
fn plain_integer(raw: &str) -> bool {
    let (digits, max) = match raw.strip_prefix('-') {
        Some(rest) => (rest, 18),
        None => (raw, 19),
    };
    !digits.is_empty()
        && digits.len() <= max
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" && raw == "0" || !digits.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_has_no_whitespace() {
        let value = json!({"b": [1, {"z": null, "a": true}], "a": "x\n\"y\"", "é": 1.5, "A": -0});
        assert_eq!(
            canonical_json(&value),
            r#"{"A":0,"a":"x\n\"y\"","b":[1,{"a":true,"z":null}],"é":1.5}"#
        );
    }

    #[test]
    fn canonical_json_is_independent_of_insertion_order() {
        let one: Value = serde_json::from_str(r#"{"x":1,"y":{"p":2,"q":3}}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{ "y" : {"q":3, "p":2}, "x" : 1 }"#).unwrap();
        assert_eq!(canonical_json(&one), canonical_json(&two));
    }

    #[test]
    fn framing_is_injective_on_field_boundaries() {
        let mut ab_c = Vec::new();
        put_field(&mut ab_c, b"ab");
        put_field(&mut ab_c, b"c");
        let mut a_bc = Vec::new();
        put_field(&mut a_bc, b"a");
        put_field(&mut a_bc, b"bc");
        assert_ne!(ab_c, a_bc);
        let mut absent = Vec::new();
        put_optional(&mut absent, None);
        let mut empty = Vec::new();
        put_optional(&mut empty, Some(b""));
        assert_ne!(absent, empty);
    }

    #[test]
    fn the_fast_canonical_text_is_the_canonical_json_of_the_parsed_text() {
        let texts = [
            r#"{}"#,
            r#"{"b":1,"a":{"z":[1,{"y":null,"x":true}],"a":"s"}}"#,
            r#" { "b" : [ ] , "a" : { } } "#,
            r#"{"a":1,"a":2,"b":{"c":3,"c":"last"}}"#,
            r#"{"s":"tab\there \"q\" \\ \/ \u00e9 \u0001 \ud83d\ude00","n":"é😀"}"#,
            r#"{"f":1.5,"e":1e3,"big":18446744073709551616,"neg":-9223372036854775808,"z":-0,"m":-0.0,"u":18446744073709551615}"#,
            r#"{"n":[0,-1,10,1234567890123456789,-123456789012345678]}"#,
        ];
        for text in texts {
            let fast = canonical_object_text(text).expect(text);
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(fast.text, canonical_json(&value), "{text}");
        }
    }

    #[test]
    fn the_fast_canonical_text_names_where_each_member_is() {
        let fast = canonical_object_text(r#"{"record":{"b":1,"a":2},"kind":"x"}"#).unwrap();
        assert_eq!(fast.text, r#"{"kind":"x","record":{"a":2,"b":1}}"#);
        assert_eq!(fast.member("record"), Some(r#"{"a":2,"b":1}"#));
        assert_eq!(fast.member("kind"), Some(r#""x""#));
        assert_eq!(fast.member("set"), None);
    }

    #[test]
    fn the_fast_canonical_text_leaves_what_it_cannot_do_to_the_parser() {
        assert_eq!(canonical_object_text("[1]"), None);
        assert_eq!(canonical_object_text(r#"{"a\n":1}"#), None);
        assert_eq!(canonical_object_text(r#"{"a":1"#), None);
        assert_eq!(canonical_object_text(""), None);
        // Not JSON: the parser reports it.
        for text in [
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":"x}"#,
            r#"{"a":1} x"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(canonical_object_text(text), None, "{text}");
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        }
        // Nesting: as deep as serde_json parses, and no deeper.
        let nested = |depth: usize| format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(canonical_object_text(&nested(90)).is_some());
        assert_eq!(canonical_object_text(&nested(120)), None);
        assert_eq!(canonical_object_text(&nested(130)), None);
        assert!(serde_json::from_str::<Value>(&nested(130)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn the_fast_canonical_text_agrees_with_the_parser(value in json_object()) {
            let text = serde_json::to_string(&value).unwrap();
            let fast = canonical_object_text(&text).map(|c| c.text);
            let expected = canonical_json(&value);
            // Names with escapes are left to the parser.
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(fast, expected);
            }
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            if let Some(fast) = canonical_object_text(&pretty) {
                proptest::prop_assert_eq!(fast.text, canonical_json(&value));
            }
        }
    }

    fn json_object() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\\\\\"\u{1}\u{7f}é😀 /]{0,6}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::vec(("[a-zé\\n]{0,4}", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        });
        proptest::collection::vec(("[a-zé]{0,4}", value), 0..8)
            .prop_map(|members| Value::Object(members.into_iter().collect()))
    }
}
