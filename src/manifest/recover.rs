//! The recovering pass: when a document does not fit the format, find every
//! shape problem in it (unknown fields, wrong types, missing fields), not
//! only the first, and still build a [`CampaignSpec`] from what fits, so
//! that the semantic checks run on the rest of the document.
//!
//! The fast parse ([`super::parse`]) deserializes each document straight from
//! the YAML and stops at its first shape error. Only then does this pass
//! run: it reads the document into a tree of spanned [`Node`]s, deserializes
//! the spec from that tree, and on each error records it, removes (or, for a
//! required field, replaces) the node at fault, and tries again.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::Deserialize;

use super::diagnostics::DiagnosticCode;
use super::spec::{CampaignSpec, Span};

/// The newtype name under which [`super::spec::Spanned`] asks for a span:
/// this pass's deserializer answers with `(offset, len, value)`; the YAML
/// library passes the name through to its own span support.
pub(crate) const SPANNED: &str = "__t_minus_spanned";

/// Most shape problems reported per document: each costs one more pass over
/// the document's tree.
const MAX_PROBLEMS: usize = 50;

/// A time that passes no check: what stands in for a missing or broken
/// `at`, so that the rest of the event is still checked.
const PLACEHOLDER_AT: &str = "9999-12-31T00:00:00Z";

/// A YAML node and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    span: Span,
    value: Value,
}

#[derive(Debug, Clone)]
enum Value {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<Value>::deserialize(d)?;
        let span = spanned.referenced.span();
        Ok(Node {
            span: Span {
                offset: usize::try_from(span.offset()).unwrap_or(usize::MAX),
                len: usize::try_from(span.len()).unwrap_or(0),
            },
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Node>()? {
                    entries.push((key, map.next_value::<Node>()?));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// One shape problem the pass found.
#[derive(Debug, Clone)]
pub(crate) struct ShapeProblem {
    /// `unknown_field`, `missing_field` or `type`.
    pub code: DiagnosticCode,
    /// What is wrong.
    pub message: String,
    /// The node at fault (the key of an unknown field, the mapping that
    /// lacks a field).
    pub span: Span,
}

/// One step from a node to a child.
#[derive(Debug, Clone, Copy)]
enum Step {
    Key(usize),
    Value(usize),
    Item(usize),
}

/// A deserialization error, with the path to the node it arose at.
#[derive(Debug)]
struct Error {
    code: DiagnosticCode,
    message: String,
    /// Steps from the node up to the document root, innermost first.
    path: Vec<Step>,
}

impl Error {
    fn new(code: DiagnosticCode, message: String) -> Self {
        Error {
            code,
            message,
            path: Vec::new(),
        }
    }

    fn at(mut self, step: Step) -> Self {
        self.path.push(step);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(DiagnosticCode::Type, msg.to_string())
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new(
            DiagnosticCode::UnknownField,
            if expected.is_empty() {
                format!("unknown field `{field}`, there are no fields")
            } else {
                format!(
                    "unknown field `{field}`, expected one of {}",
                    expected.join(", ")
                )
            },
        )
    }
    fn missing_field(field: &'static str) -> Self {
        Error::new(
            DiagnosticCode::MissingField,
            format!("missing field `{field}`"),
        )
    }
}

/// Deserializes from one node of the tree.
struct NodeDe<'a>(&'a Node);

impl NodeDe<'_> {
    fn scalar_text(&self) -> Option<String> {
        match &self.0.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::I64(n) => Some(n.to_string()),
            Value::U64(n) => Some(n.to_string()),
            Value::F64(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl<'de, 'a> Deserializer<'de> for NodeDe<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::I64(n) => visitor.visit_i64(*n),
            Value::U64(n) => visitor.visit_u64(*n),
            Value::F64(n) => visitor.visit_f64(*n),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
            }),
            Value::Map(entries) => visitor.visit_map(MapDe {
                entries: entries.iter().enumerate(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar_text() {
            Some(text) => visitor.visit_string(text),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            visitor.visit_seq(SpannedDe {
                node: self.0,
                next: 0,
            })
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum
    }
}

impl<'de> IntoDeserializer<'de, Error> for NodeDe<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A node as `(offset, len, value)`, for [`super::spec::Spanned`].
struct SpannedDe<'a> {
    node: &'a Node,
    next: u8,
}

impl<'de> de::SeqAccess<'de> for SpannedDe<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.next += 1;
        match self.next {
            1 => seed
                .deserialize(
                    u64::try_from(self.node.span.offset)
                        .unwrap_or(u64::MAX)
                        .into_deserializer(),
                )
                .map(Some),
            2 => seed
                .deserialize(
                    u64::try_from(self.node.span.len)
                        .unwrap_or(0)
                        .into_deserializer(),
                )
                .map(Some),
            3 => seed.deserialize(NodeDe(self.node)).map(Some),
            _ => Ok(None),
        }
    }
}

struct SeqDe<'a, I: Iterator<Item = (usize, &'a Node)>> {
    items: I,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqDe<'a, I> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some((i, item)) => seed
                .deserialize(NodeDe(item))
                .map(Some)
                .map_err(|e| e.at(Step::Item(i))),
            None => Ok(None),
        }
    }
}

struct MapDe<'a, I: Iterator<Item = (usize, &'a (Node, Node))>> {
    entries: I,
    value: Option<(usize, &'a Node)>,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a (Node, Node))>> de::MapAccess<'de> for MapDe<'a, I> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((i, (key, value))) => {
                self.value = Some((i, value));
                seed.deserialize(NodeDe(key))
                    .map(Some)
                    .map_err(|e| e.at(Step::Key(i)))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some((i, value)) => seed
                .deserialize(NodeDe(value))
                .map_err(|e| e.at(Step::Value(i))),
            None => Err(de::Error::custom("a value without a key")),
        }
    }
}

/// The node `path` (root first) leads to, and its parent mapping's key for
/// it when it is a value.
fn node_at<'a>(root: &'a Node, path: &[Step]) -> Option<&'a Node> {
    let mut node = root;
    for step in path {
        node = match (&node.value, step) {
            (Value::Map(entries), Step::Key(i)) => &entries.get(*i)?.0,
            (Value::Map(entries), Step::Value(i)) => &entries.get(*i)?.1,
            (Value::Seq(items), Step::Item(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn node_at_mut<'a>(root: &'a mut Node, path: &[Step]) -> Option<&'a mut Node> {
    let mut node = root;
    for step in path {
        node = match (&mut node.value, step) {
            (Value::Map(entries), Step::Key(i)) => &mut entries.get_mut(*i)?.0,
            (Value::Map(entries), Step::Value(i)) => &mut entries.get_mut(*i)?.1,
            (Value::Seq(items), Step::Item(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

fn key_name(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// A string node standing for a required value that is missing or broken.
fn placeholder(span: Span, text: &str) -> Node {
    Node {
        span,
        value: Value::Str(text.to_string()),
    }
}

/// Takes the node at fault out of the tree (or puts a placeholder in place
/// of a required one). `false` when the document cannot be repaired.
fn repair(root: &mut Node, error: &Error, path: &[Step]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false; // the document itself is not a campaign mapping
    };
    if error.code == DiagnosticCode::MissingField {
        // `path` leads to the mapping that lacks the field.
        let field = error
            .message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'));
        let Some(Node {
            span,
            value: Value::Map(entries),
        }) = node_at_mut(root, path)
        else {
            return false;
        };
        return match field {
            Some("at") => {
                let span = *span;
                entries.push((placeholder(span, "at"), placeholder(span, PLACEHOLDER_AT)));
                true
            }
            _ => false,
        };
    }
    let Some(parent) = node_at_mut(root, parent_path) else {
        return false;
    };
    match (&mut parent.value, last) {
        (Value::Map(entries), Step::Key(i)) if *i < entries.len() => {
            entries.remove(*i);
            true
        }
        (Value::Map(entries), Step::Value(i)) if *i < entries.len() => {
            match key_name(&entries[*i].0) {
                // The campaign's name is what everything else hangs on.
                Some("campaign") if parent_path.is_empty() => false,
                Some("at") => {
                    let span = entries[*i].1.span;
                    entries[*i].1 = placeholder(span, PLACEHOLDER_AT);
                    true
                }
                _ => {
                    entries.remove(*i);
                    true
                }
            }
        }
        (Value::Seq(items), Step::Item(i)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

/// Reads `text`'s documents into trees, for [`recover`], in the order
/// (and with the skipping of empty documents) of the fast parse; `None` for
/// a document that cannot be read that way (its syntax error is reported
/// already).
pub(crate) fn trees(text: &str, options: serde_saphyr::Options) -> Vec<Option<Node>> {
    let mut reader = std::io::Cursor::new(text.as_bytes());
    serde_saphyr::read_with_options::<_, Node>(&mut reader, options)
        .map(Result::ok)
        .collect()
}

/// Every shape problem of one document's tree, and the spec built from
/// what fits (`None` when the document cannot be repaired enough to be
/// checked further: no usable `campaign:`, or not a mapping).
pub(crate) fn recover(mut tree: Node) -> (Vec<ShapeProblem>, Option<CampaignSpec>) {
    let mut problems = Vec::new();
    loop {
        let error = match CampaignSpec::deserialize(NodeDe(&tree)) {
            Ok(spec) => return (problems, Some(spec)),
            Err(e) => e,
        };
        let path: Vec<Step> = error.path.iter().rev().copied().collect();
        let span = node_at(&tree, &path).map_or(tree.span, |n| n.span);
        problems.push(ShapeProblem {
            code: error.code,
            message: error.message.clone(),
            span,
        });
        if problems.len() >= MAX_PROBLEMS || !repair(&mut tree, &error, &path) {
            return (problems, None);
        }
    }
}
