//! YAML text to a tree whose every node knows its line and column.
//!
//! This is the only file that knows the YAML parser. serde-based YAML crates
//! stop at the first error and forget positions once a value is built; the
//! manifest must report every problem with its location, so it walks its own
//! tree built from the parser's located events.
//!
//! Scalars are typed by the YAML 1.2 core schema (so `yes` is text, not a
//! boolean). Duplicate mapping keys are reported here, located at the second
//! occurrence. Anchors and aliases work; merge keys (`<<`) are expanded.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(span: Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// A problem found while reading the YAML itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub pos: Pos,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A scalar's text as written (after YAML unquoting) and its core-schema type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub kind: ScalarKind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ScalarKind {
    Null,
    Bool(bool),
    /// `None` when the digits do not fit an `i64`.
    Int(Option<i64>),
    Float,
    Str,
}

impl Value {
    /// How the value reads in an error message ("a list", "the text \"x\"").
    pub fn describe(&self) -> String {
        match self {
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => "nothing (an empty value)".to_owned(),
                ScalarKind::Bool(b) => format!("the boolean {b}"),
                ScalarKind::Int(_) => format!("the number {}", s.text),
                ScalarKind::Float => format!("the number {}", s.text),
                ScalarKind::Str => format!("the text {:?}", clip(&s.text)),
            },
        }
    }
}

/// Shortens long text quoted in messages.
fn clip(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

/// Deep nesting is never a real manifest; the limit keeps recursion elsewhere
/// (validation, drop) shallow whatever the input.
const MAX_DEPTH: usize = 64;
/// Caps alias expansion ("billion laughs"). A manifest with 10,000 likes,
/// 2,000 follows and a few hundred tracks holds well under 100,000 values.
const MAX_NODES: usize = 500_000;

/// The outcome of parsing one file: the tree (absent for an empty file or
/// after a syntax error, since positions after one are unreliable) and every
/// problem found. Problems such as duplicate keys leave a usable tree, so the
/// rest of the file is still checked.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub root: Option<Node>,
    pub errors: Vec<YamlError>,
}

/// Parses one YAML document.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = match next {
            Ok(ev) => ev,
            Err(err) => {
                let marker = err.marker();
                let pos = Pos {
                    line: marker.line().max(1),
                    column: marker.col() + 1,
                };
                builder.error(pos, &format!("invalid YAML: {}", err.info()));
                break;
            }
        };
        let pos = Pos::of(span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    builder.error(
                        pos,
                        "a second YAML document (`---`) in the same file; \
                         put one manifest per file (a directory of files is merged)",
                    );
                    break;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let kind = match tag {
                    None if style == ScalarStyle::Plain => plain_kind(&text),
                    None => ScalarKind::Str,
                    Some(tag) if tag.is_yaml_core_schema() && tag.suffix == "str" => {
                        ScalarKind::Str
                    }
                    Some(tag) => {
                        builder.error(pos, &unsupported_tag(&tag));
                        break;
                    }
                };
                let node = Node {
                    pos,
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        kind,
                    }),
                };
                if !builder.push(node, anchor) {
                    break;
                }
            }
            Event::Alias(anchor) => {
                let Some(node) = builder.anchors.get(&anchor).cloned() else {
                    builder.error(pos, "an alias refers to an anchor that encloses it");
                    break;
                };
                builder.nodes += count(&node);
                if builder.nodes > MAX_NODES {
                    builder.error(pos, "aliases expand to too many values");
                    break;
                }
                let node = Node { pos, ..node };
                if !builder.push(node, 0) {
                    break;
                }
            }
            Event::SequenceStart(_, Some(tag)) | Event::MappingStart(_, Some(tag)) => {
                builder.error(pos, &unsupported_tag(&tag));
                break;
            }
            Event::SequenceStart(anchor, _) => {
                if !builder.open(pos, anchor, Open::Seq(Vec::new())) {
                    break;
                }
            }
            Event::MappingStart(anchor, _) => {
                if !builder.open(pos, anchor, Open::Map(Vec::new(), HashMap::new(), None)) {
                    break;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if !builder.close() {
                    break;
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    if !builder.aborted && !builder.stack.is_empty() {
        // The parser ended without closing a container; it reports that as
        // an error itself, so this is only a guard.
        builder.error(Pos::default(), "the YAML ended inside a list or mapping");
    }
    let root = if builder.aborted { None } else { builder.root };
    Parsed {
        root,
        errors: builder.errors,
    }
}

fn unsupported_tag(tag: &saphyr_parser::Tag) -> String {
    let shown = if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    };
    format!("the YAML tag {shown} is not supported here (only !!str is); remove it")
}

/// Types a plain (unquoted) scalar by the YAML 1.2 core schema.
pub(crate) fn plain_kind(text: &str) -> ScalarKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" => return ScalarKind::Bool(true),
        "false" | "False" | "FALSE" => return ScalarKind::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return ScalarKind::Float,
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return ScalarKind::Float;
    }
    if let Some(octal) = text.strip_prefix("0o")
        && !octal.is_empty()
        && octal.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return ScalarKind::Int(i64::from_str_radix(octal, 8).ok());
    }
    if let Some(hex) = text.strip_prefix("0x")
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return ScalarKind::Int(i64::from_str_radix(hex, 16).ok());
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return ScalarKind::Int(text.parse().ok());
    }
    if is_core_float(unsigned) {
        return ScalarKind::Float;
    }
    ScalarKind::Str
}

/// The core schema's float form without the sign:
/// `(.DIGITS | DIGITS(.DIGITS?)?)([eE][-+]?DIGITS)?`.
fn is_core_float(text: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|exp| {
        let unsigned = exp.strip_prefix(['-', '+']).unwrap_or(exp);
        !unsigned.is_empty() && digits(unsigned)
    });
    mantissa_ok && exponent_ok
}

fn count(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|e| 1 + count(&e.value)).sum::<usize>(),
    }
}

enum Open {
    Seq(Vec<Node>),
    /// Entries so far, where each key was first written (so a mapping with
    /// many keys is not checked in quadratic time), and the key waiting for
    /// its value.
    Map(Vec<Entry>, HashMap<String, Pos>, Option<PendingKey>),
}

struct PendingKey {
    key: String,
    pos: Pos,
    /// A duplicate: its value is read and dropped (the first one wins).
    drop: bool,
}

struct Frame {
    pos: Pos,
    anchor: usize,
    open: Open,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    errors: Vec<YamlError>,
    /// Set when the tree cannot be trusted any more.
    aborted: bool,
}

impl Builder {
    /// Records a problem that stops the reading of this file.
    fn error(&mut self, pos: Pos, message: &str) {
        self.aborted = true;
        self.errors.push(YamlError {
            pos,
            message: message.to_owned(),
        });
    }

    fn open(&mut self, pos: Pos, anchor: usize, open: Open) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            self.error(pos, "values nested too deeply");
            return false;
        }
        self.stack.push(Frame { pos, anchor, open });
        true
    }

    fn close(&mut self) -> bool {
        let Some(frame) = self.stack.pop() else {
            self.error(
                Pos::default(),
                "the YAML closes a list or mapping it never opened",
            );
            return false;
        };
        let value = match frame.open {
            Open::Seq(items) => Value::Seq(items),
            Open::Map(entries, _, _) => match self.merge(entries) {
                Some(entries) => Value::Map(entries),
                None => return false,
            },
        };
        self.push(
            Node {
                pos: frame.pos,
                value,
            },
            frame.anchor,
        )
    }

    /// Expands merge keys (`<<: *defaults`): keys written in the mapping win
    /// over merged ones, and earlier merged mappings win over later ones.
    fn merge(&mut self, entries: Vec<Entry>) -> Option<Vec<Entry>> {
        if !entries.iter().any(|e| e.key == "<<") {
            return Some(entries);
        }
        let mut own = Vec::with_capacity(entries.len());
        let mut merged = Vec::new();
        for entry in entries {
            if entry.key != "<<" {
                own.push(entry);
                continue;
            }
            let sources = match entry.value.value {
                Value::Map(inner) => vec![inner],
                Value::Seq(items) => {
                    let mut maps = Vec::with_capacity(items.len());
                    for item in items {
                        match item.value {
                            Value::Map(inner) => maps.push(inner),
                            other => {
                                self.error(
                                    item.pos,
                                    &format!(
                                        "a merge key (<<) takes mappings, found {}",
                                        other.describe()
                                    ),
                                );
                                return None;
                            }
                        }
                    }
                    maps
                }
                other => {
                    self.error(
                        entry.value.pos,
                        &format!(
                            "a merge key (<<) takes a mapping or a list of mappings, found {}",
                            other.describe()
                        ),
                    );
                    return None;
                }
            };
            merged.extend(sources.into_iter().flatten());
        }
        let mut present: std::collections::HashSet<String> =
            own.iter().map(|e| e.key.clone()).collect();
        for entry in merged {
            if present.insert(entry.key.clone()) {
                own.push(entry);
            }
        }
        Some(own)
    }

    /// Adds a finished node to the open container (or makes it the root).
    fn push(&mut self, node: Node, anchor: usize) -> bool {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            self.error(node.pos, "the file holds too many values");
            return false;
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return true;
        };
        match &mut frame.open {
            Open::Seq(items) => items.push(node),
            Open::Map(entries, keys, pending) => match pending.take() {
                Some(key) => {
                    if !key.drop {
                        entries.push(Entry {
                            key: key.key,
                            key_pos: key.pos,
                            value: node,
                        });
                    }
                }
                None => {
                    let Value::Scalar(scalar) = node.value else {
                        self.error(
                            node.pos,
                            "a mapping key must be plain text, not a list or mapping",
                        );
                        return false;
                    };
                    let first = keys.get(&scalar.text).copied();
                    if first.is_none() {
                        keys.insert(scalar.text.clone(), node.pos);
                    }
                    if let Some(first) = first {
                        // Not fatal: the rest of the file is still checked.
                        self.errors.push(YamlError {
                            pos: node.pos,
                            message: format!(
                                "duplicate key `{}` (first at line {}, column {}); \
                                 a key may appear once per mapping",
                                scalar.text, first.line, first.column
                            ),
                        });
                    }
                    *pending = Some(PendingKey {
                        key: scalar.text,
                        pos: node.pos,
                        drop: first.is_some(),
                    });
                }
            },
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_follow_the_yaml_1_2_core_schema() {
        let cases = [
            ("", ScalarKind::Null),
            ("~", ScalarKind::Null),
            ("null", ScalarKind::Null),
            ("true", ScalarKind::Bool(true)),
            ("FALSE", ScalarKind::Bool(false)),
            ("yes", ScalarKind::Str),
            ("no", ScalarKind::Str),
            ("on", ScalarKind::Str),
            ("42", ScalarKind::Int(Some(42))),
            ("-7", ScalarKind::Int(Some(-7))),
            ("0o17", ScalarKind::Int(Some(15))),
            ("0x1f", ScalarKind::Int(Some(31))),
            ("99999999999999999999", ScalarKind::Int(None)),
            ("1.5", ScalarKind::Float),
            (".5", ScalarKind::Float),
            ("5.", ScalarKind::Float),
            ("1e3", ScalarKind::Float),
            ("-.inf", ScalarKind::Float),
            (".NaN", ScalarKind::Float),
            (".", ScalarKind::Str),
            ("1e", ScalarKind::Str),
            ("1_000", ScalarKind::Str),
            ("0x", ScalarKind::Str),
            ("12:30", ScalarKind::Str),
            ("2026-01-01", ScalarKind::Str),
        ];
        for (text, kind) in cases {
            assert_eq!(plain_kind(text), kind, "{text:?}");
        }
    }

    #[test]
    fn quoted_scalars_are_always_text() {
        let parsed = parse("a: \"true\"\nb: '12'\n");
        let Some(Node {
            value: Value::Map(entries),
            ..
        }) = parsed.root
        else {
            panic!("{parsed:?}");
        };
        for entry in entries {
            let Value::Scalar(s) = entry.value.value else {
                panic!("scalar expected")
            };
            assert_eq!(s.kind, ScalarKind::Str);
        }
    }

    #[test]
    fn nodes_and_keys_carry_one_based_positions() {
        let parsed = parse("top:\n  - name: x\n    other: [1, 2]\n");
        assert!(parsed.errors.is_empty());
        let Some(Node {
            value: Value::Map(top),
            ..
        }) = parsed.root
        else {
            panic!("mapping expected");
        };
        assert_eq!(top[0].key_pos, Pos { line: 1, column: 1 });
        let Value::Seq(items) = &top[0].value.value else {
            panic!("list expected")
        };
        let Value::Map(item) = &items[0].value else {
            panic!("mapping expected")
        };
        assert_eq!(item[0].key_pos, Pos { line: 2, column: 5 });
        assert_eq!(
            item[0].value.pos,
            Pos {
                line: 2,
                column: 11
            }
        );
        let Value::Seq(flow) = &item[1].value.value else {
            panic!("list expected")
        };
        assert_eq!(
            flow[1].pos,
            Pos {
                line: 3,
                column: 16
            }
        );
    }

    #[test]
    fn every_duplicate_key_is_reported_and_the_first_value_kept() {
        let parsed = parse("a: 1\nb: 2\na: 3\nb: 4\n");
        let messages: Vec<_> = parsed
            .errors
            .iter()
            .map(|e| (e.pos.line, e.pos.column, e.message.clone()))
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0].0, 3);
        assert!(
            messages[0]
                .2
                .starts_with("duplicate key `a` (first at line 1, column 1)")
        );
        let Some(Node {
            value: Value::Map(entries),
            ..
        }) = parsed.root
        else {
            panic!("mapping expected");
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].value.value,
            Value::Scalar(Scalar {
                text: "1".into(),
                kind: ScalarKind::Int(Some(1))
            })
        );
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let parsed = parse(&bomb);
        assert!(parsed.root.is_none());
        assert!(
            parsed.errors[0]
                .message
                .contains("aliases expand to too many values")
        );

        let deep = "[".repeat(MAX_DEPTH + 1);
        let parsed = parse(&deep);
        assert!(parsed.root.is_none());
        assert!(parsed.errors[0].message.contains("nested too deeply"));
    }
}
