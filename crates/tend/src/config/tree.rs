//! A TOML document as a tree that remembers where every key and value is. [`parse`] reads the
//! text with `toml_edit` and keeps each key's and value's byte span, in document order, so that
//! [`super::read`] can check every value with its key path and its place in the file at hand.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, TomlError, Value};

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

/// Parses a whole document, which spans the whole text. A syntax error keeps the parser's span
/// and message.
pub(super) fn parse(text: &str) -> Result<Node, TomlError> {
    let document = ImDocument::parse(text)?;
    Ok(Node {
        span: Some(0..text.len()),
        kind: table(document.as_table()),
    })
}

/// An item of a table: a value, a `[table]` or an `[[array of tables]]`.
///
/// Tables created implicitly (`process` in `[process.web]`, or `web` in `web.command = …`)
/// have no span of their own; the reader then points at their key.
fn item(item: &Item) -> Node {
    let kind = match item {
        Item::Value(v) => return value(v),
        Item::Table(t) => table(t),
        Item::ArrayOfTables(tables) => Kind::Array(
            tables
                .iter()
                .map(|t| Node {
                    span: t.span(),
                    kind: table(t),
                })
                .collect(),
        ),
        Item::None => unreachable!("a parsed document has no empty items"),
    };
    Node {
        span: item.span(),
        kind,
    }
}

fn value(value: &Value) -> Node {
    let kind = match value {
        Value::String(s) => Kind::String(s.value().clone()),
        Value::Integer(n) => Kind::Integer(*n.value()),
        Value::Float(x) => Kind::Float(*x.value()),
        Value::Boolean(b) => Kind::Boolean(*b.value()),
        Value::Datetime(_) => Kind::Datetime,
        Value::Array(items) => Kind::Array(items.iter().map(self::value).collect()),
        Value::InlineTable(t) => table(t),
    };
    Node {
        span: value.span(),
        kind,
    }
}

/// The entries of a `[table]` or an `{ inline = "table" }`, in document order.
fn table(table: &dyn TableLike) -> Kind {
    let entries = table.iter().map(|(name, node)| {
        let key = Key {
            name: name.to_owned(),
            span: table.key(name).and_then(toml_edit::Key::span),
        };
        (key, item(node))
    });
    Kind::Table(entries.collect())
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
    fn an_array_of_tables_is_an_array_of_tables_with_their_spans() {
        let text = "[[job]]\nname = \"a\"\n\n[[job]]\n[[other]]\n";
        let root = parse(text).unwrap();
        let (job_key, jobs) = &table(&root)[0];
        assert_eq!(at(text, &job_key.span), "job");
        let Kind::Array(items) = &jobs.kind else {
            panic!("expected an array, found {jobs:?}")
        };
        assert_eq!(at(text, &jobs.span), "[[job]]\nname = \"a\"\n\n[[job]]");
        assert_eq!(at(text, &items[0].span), "[[job]]\nname = \"a\"");
        assert_eq!(at(text, &items[1].span), "[[job]]");
        let (name_key, name) = &table(&items[0])[0];
        assert_eq!(at(text, &name_key.span), "name");
        assert_eq!(name.kind, Kind::String("a".into()));
        assert!(table(&items[1]).is_empty());
        assert_eq!(table(&root)[1].0.name, "other");
    }

    #[test]
    fn syntax_errors_keep_their_span() {
        let err = parse("a = 1\nb = \"open\n").unwrap_err();
        assert_eq!(err.span().map(|s| s.start), Some(15), "the end of the line");
    }
}
