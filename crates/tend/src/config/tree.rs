//! A TOML document as a tree that remembers where every key and value is.
//!
//! `toml::Spanned<T>` cannot wrap a table that has no span of its own (the implicit `process`
//! table of `[process.web]`, or `web` in `web.command = …`): it fails with a confusing error.
//! So this module speaks the `Spanned` protocol itself and accepts both answers: a value with a
//! span, or a plain value when the parser has none. Every value is then checked by
//! [`super::read`] with its key path at hand, which gives better errors than serde's.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

// The names of serde_spanned's protocol (version 0.6, used by toml 0.8): asking for a struct
// of this name and fields makes the toml deserializer answer with start, end and value.
const SPANNED: &str = "$__serde_spanned_private_Spanned";
const START: &str = "$__serde_spanned_private_start";
const END: &str = "$__serde_spanned_private_end";
const VALUE: &str = "$__serde_spanned_private_value";
const FIELDS: &[&str] = &[START, END, VALUE];
// toml's datetimes arrive as a one-entry map with this key.
const DATETIME: &str = "$__toml_private_datetime";

/// A value and where it is in the document, when the parser knows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub span: Option<Range<usize>>,
    pub kind: Kind,
}

/// A table key and where it is in the document, when the parser knows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Key {
    pub name: String,
    pub span: Option<Range<usize>>,
}

/// The TOML value types; tables keep their entries in document order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Vec<(Key, Node)>),
}

impl Kind {
    /// The type's name with an article, for messages like "expected a string, found an array".
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::String(_) => "a string",
            Kind::Integer(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Boolean(_) => "a boolean",
            Kind::Datetime => "a datetime",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

/// Parses a whole document. A syntax error keeps toml's span and message.
pub(super) fn parse(text: &str) -> Result<Node, toml::de::Error> {
    let kind: Kind = toml::from_str(text)?;
    Ok(Node {
        span: Some(0..text.len()),
        kind,
    })
}

/// Reads the rest of a spanned answer, whose first key (START) was just read.
fn read_spanned<'de, A, T>(mut map: A) -> Result<(Range<usize>, T), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let start: usize = map.next_value()?;
    expect_key(&mut map, END)?;
    let end: usize = map.next_value()?;
    expect_key(&mut map, VALUE)?;
    let value = map.next_value()?;
    Ok((start..end, value))
}

fn expect_key<'de, A: MapAccess<'de>>(map: &mut A, name: &'static str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == name => Ok(()),
        _ => Err(de::Error::missing_field(name)),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let Some(first) = map.next_key::<Key>()? else {
                    return Ok(Node::unspanned(Kind::Table(Vec::new())));
                };
                if first.name == START {
                    let (span, kind) = read_spanned(map)?;
                    return Ok(Node {
                        span: Some(span),
                        kind,
                    });
                }
                // A table without a span of its own: the map is the table itself.
                KindVisitor::table(first, map).map(Node::unspanned)
            }

            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::unspanned(Kind::String(v.to_owned())))
            }

            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::unspanned(Kind::Integer(v)))
            }

            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::unspanned(Kind::Float(v)))
            }

            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::unspanned(Kind::Boolean(v)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Node, A::Error> {
                KindVisitor.visit_seq(seq).map(Node::unspanned)
            }
        }

        deserializer.deserialize_struct(SPANNED, FIELDS, NodeVisitor)
    }
}

impl Node {
    fn unspanned(kind: Kind) -> Node {
        Node { span: None, kind }
    }
}

struct KindVisitor;

impl KindVisitor {
    /// Collects a table whose first key was already read.
    fn table<'de, A: MapAccess<'de>>(first: Key, mut map: A) -> Result<Kind, A::Error> {
        if first.name == DATETIME {
            map.next_value::<IgnoredAny>()?;
            return Ok(Kind::Datetime);
        }
        let mut entries = vec![(first, map.next_value()?)];
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Kind::Table(entries))
    }
}

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::String(v.to_owned()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Integer(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Boolean(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Kind::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        match map.next_key::<Key>()? {
            Some(first) => KindVisitor::table(first, map),
            None => Ok(Kind::Table(Vec::new())),
        }
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KindVisitor)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML key")
            }

            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key {
                    name: v.to_owned(),
                    span: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
                match map.next_key::<String>()? {
                    Some(first) if first == START => {
                        let (span, name) = read_spanned(map)?;
                        Ok(Key {
                            name,
                            span: Some(span),
                        })
                    }
                    _ => Err(de::Error::custom("expected a spanned key")),
                }
            }
        }

        deserializer.deserialize_struct(SPANNED, FIELDS, KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(node: &Node) -> &[(Key, Node)] {
        match &node.kind {
            Kind::Table(entries) => entries,
            other => panic!("expected a table, found {other:?}"),
        }
    }

    fn at<'a>(text: &'a str, span: &Option<Range<usize>>) -> &'a str {
        &text[span.clone().expect("a span")]
    }

    #[test]
    fn keeps_spans_of_keys_and_values_in_document_order() {
        let text = "[process.web]\ncommand = [\"a\", \"b\"]\nreplicas = 2\n[process.db]\n";
        let root = parse(text).unwrap();
        let process = &table(&root)[0];
        assert_eq!(process.0.name, "process");
        assert_eq!(process.1.span, None, "an implicit table has no span");
        let names: Vec<&str> = table(&process.1).iter().map(|(k, _)| &*k.name).collect();
        assert_eq!(names, ["web", "db"]);
        let (web_key, web) = &table(&process.1)[0];
        assert_eq!(at(text, &web_key.span), "web");
        let (command_key, command) = &table(web)[0];
        assert_eq!(at(text, &command_key.span), "command");
        assert_eq!(at(text, &command.span), "[\"a\", \"b\"]");
        let Kind::Array(items) = &command.kind else {
            panic!("expected an array")
        };
        assert_eq!(at(text, &items[1].span), "\"b\"");
        assert_eq!(table(web)[1].1.kind, Kind::Integer(2));
    }

    #[test]
    fn reads_dotted_keys_inline_tables_and_every_type() {
        let text = "[process]\nweb.command = 'x'\nweb.log = { keep = 1.5, timestamps = true }\n\
                    when = 1979-05-27T07:32:00Z\n";
        let root = parse(text).unwrap();
        let process = &table(&root)[0].1;
        let web = &table(process)[0].1;
        assert_eq!(web.span, None);
        let (command_key, command) = &table(web)[0];
        assert_eq!(at(text, &command_key.span), "command");
        assert_eq!(at(text, &command.span), "'x'");
        let log = &table(web)[1].1;
        assert_eq!(table(log)[0].1.kind, Kind::Float(1.5));
        assert_eq!(table(log)[1].1.kind, Kind::Boolean(true));
        assert_eq!(table(process)[1].1.kind, Kind::Datetime);
    }

    #[test]
    fn syntax_errors_keep_their_span() {
        let err = parse("a = 1\nb = \"open\n").unwrap_err();
        assert_eq!(err.span().map(|s| s.start), Some(15), "the end of the line");
    }
}
