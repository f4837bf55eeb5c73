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
}
