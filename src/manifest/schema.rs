//! The manifest format as ONE table ([`manifest_shape`]). The same table
//! checks a YAML tree (collecting every problem with its position), hands
//! back the checked values for `build`, and emits the JSON Schema.
//!
//! Track and playlist metadata fields come from `model::TRACK_FIELDS` and
//! `model::PLAYLIST_FIELDS`, so a field added to the model is accepted here.

use std::sync::LazyLock;

use serde_json::{Map, Value as Json, json};

use super::formats::{
    EMBEDDABLE_BY, Format, LICENSES, ON_AUDIO_CHANGE, RefSite, SET_TYPES, SHARING, closest,
};
use super::yaml::{Entry, Node, Pos, ScalarKind, Value};
use crate::model::{FieldType, PLAYLIST_FIELDS, TRACK_FIELDS, UrnKind};

/// Tracks one playlist may hold on SoundCloud.
pub(crate) const MAX_PLAYLIST_TRACKS: usize = 500;
/// Users one account may follow on SoundCloud.
pub(crate) const MAX_FOLLOWS: usize = 2000;

pub(crate) enum Shape {
    Object(Object),
    List(List),
    Text(Format),
    Bool,
    Int { min: i64, max: i64 },
}

pub(crate) struct Object {
    /// How messages name it: "a track", "`policy`".
    pub what: &'static str,
    pub fields: Vec<Field>,
    /// Keys people write by mistake and the key they mean.
    pub hints: &'static [(&'static str, &'static str)],
}

pub(crate) struct List {
    pub item: Box<Shape>,
    /// The most items allowed, and what to call them in the message.
    pub max: Option<(usize, &'static str)>,
}

pub(crate) struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    /// Lowercase, no final period: also the JSON Schema description.
    pub doc: &'static str,
    pub default: Option<Json>,
}

fn field(name: &'static str, shape: Shape, doc: &'static str) -> Field {
    Field {
        name,
        shape,
        required: false,
        doc,
        default: None,
    }
}

impl Field {
    fn required(mut self) -> Field {
        self.required = true;
        self
    }

    fn default(mut self, value: Json) -> Field {
        self.default = Some(value);
        self
    }
}

fn list(item: Shape) -> Shape {
    Shape::List(List {
        item: Box::new(item),
        max: None,
    })
}

/// The format of a managed metadata field, by its manifest name.
fn metadata_format(name: &str) -> Format {
    match name {
        "sharing" => Format::OneOf(SHARING),
        "license" => Format::OneOf(LICENSES),
        "embeddable_by" => Format::OneOf(EMBEDDABLE_BY),
        "set_type" => Format::OneOf(SET_TYPES),
        "permalink" => Format::Permalink,
        "purchase_url" => Format::HttpUrl,
        _ => Format::Any,
    }
}

/// Descriptions of the managed metadata fields.
pub(crate) const METADATA_DOCS: &[(&str, &str)] = &[
    (
        "title",
        "title shown on SoundCloud (required unless `adopt` is set)",
    ),
    ("description", "description text"),
    ("genre", "genre"),
    ("tags", "tags; multiword tags are quoted on the wire"),
    ("sharing", "public or private"),
    ("downloadable", "whether listeners may download the file"),
    ("streamable", "whether the track can be streamed"),
    ("commentable", "whether listeners may comment"),
    ("license", "license of the work"),
    ("label_name", "record label"),
    ("purchase_url", "link to buy the work"),
    ("purchase_title", "text of the buy link"),
    ("release", "release identifier"),
    ("isrc", "International Standard Recording Code"),
    ("ean", "European Article Number (barcode) of the release"),
    ("embeddable_by", "who may embed the track: all, me or none"),
    ("permalink", "last part of the soundcloud.com URL"),
    ("reveal_stats", "whether play counts are public"),
    ("reveal_comments", "whether comments are public"),
    ("set_type", "album or playlist"),
];

fn metadata_fields(table: &[(&'static str, FieldType)]) -> Vec<Field> {
    table
        .iter()
        .map(|&(name, ty)| {
            let shape = match ty {
                FieldType::Text => Shape::Text(metadata_format(name)),
                FieldType::Bool => Shape::Bool,
                FieldType::Tags => list(Shape::Text(Format::Tag)),
            };
            let doc = METADATA_DOCS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("managed metadata field", |(_, d)| *d);
            field(name, shape, doc)
        })
        .collect()
}

fn track_shape() -> Shape {
    let mut fields = vec![
        field(
            "key",
            Shape::Text(Format::Key),
            "stable local name, unique among tracks",
        )
        .required(),
        field(
            "file",
            Shape::Text(Format::Path),
            "audio file, relative to this file's folder (required unless `adopt` is set)",
        ),
        field(
            "artwork",
            Shape::Text(Format::Path),
            "artwork image, relative to this file's folder",
        ),
        field(
            "adopt",
            Shape::Text(Format::Adopt(UrnKind::Track)),
            "manage this already-uploaded track instead of uploading one",
        ),
    ];
    fields.extend(metadata_fields(TRACK_FIELDS));
    Shape::Object(Object {
        what: "a track",
        fields,
        hints: &[
            ("tag_list", "tags"),
            ("asset_data", "file"),
            ("audio", "file"),
            ("artwork_data", "artwork"),
            ("urn", "adopt"),
            ("id", "key"),
            ("name", "title"),
        ],
    })
}

fn playlist_shape() -> Shape {
    let mut fields = vec![
        field(
            "key",
            Shape::Text(Format::Key),
            "stable local name, unique among playlists",
        )
        .required(),
        field(
            "adopt",
            Shape::Text(Format::Adopt(UrnKind::Playlist)),
            "manage this existing playlist instead of creating one",
        ),
    ];
    fields.extend(metadata_fields(PLAYLIST_FIELDS));
    fields.push(field(
        "tracks",
        Shape::List(List {
            item: Box::new(Shape::Text(Format::Ref(RefSite::PlaylistTrack))),
            max: Some((MAX_PLAYLIST_TRACKS, "tracks in one playlist")),
        }),
        "ordered tracks: manifest track keys, track URNs or soundcloud.com track URLs",
    ));
    Shape::Object(Object {
        what: "a playlist",
        fields,
        hints: &[
            ("tag_list", "tags"),
            ("playlist_type", "set_type"),
            ("type", "set_type"),
            ("urn", "adopt"),
            ("id", "key"),
            ("name", "title"),
        ],
    })
}

fn manifest_shape() -> Shape {
    let account = Shape::Object(Object {
        what: "`account`",
        fields: vec![
            field(
                "client_id",
                Shape::Text(Format::Template),
                "the app's client id; ${VAR} reads the environment",
            )
            .required(),
            field(
                "client_secret",
                Shape::Text(Format::SecretRef),
                "the app's client secret, only as ${VAR} (never the secret itself)",
            ),
            field(
                "client_secret_file",
                Shape::Text(Format::Template),
                "file holding the client secret; ${VAR} allowed (e.g. ${CREDENTIALS_DIRECTORY}/client_secret)",
            ),
            field(
                "api_url",
                Shape::Text(Format::UrlTemplate),
                "API base URL (for the emulator)",
            )
            .default(json!(super::formats::DEFAULT_API_URL)),
            field(
                "auth_url",
                Shape::Text(Format::UrlTemplate),
                "authorization server base URL",
            )
            .default(json!(super::formats::DEFAULT_AUTH_URL)),
        ],
        hints: &[
            ("secret", "client_secret_file"),
            ("client_secret_path", "client_secret_file"),
            ("token", "client_secret_file"),
            ("access_token", "client_secret_file"),
            ("refresh_token", "client_secret_file"),
            ("password", "client_secret_file"),
        ],
    });
    let prune_flag = |name, doc| field(name, Shape::Bool, doc).default(json!(false));
    let policy = Shape::Object(Object {
        what: "`policy`",
        fields: vec![
            field(
                "prune",
                Shape::Object(Object {
                    what: "`policy.prune`",
                    fields: vec![
                        prune_flag("tracks", "delete managed tracks that left the manifest"),
                        prune_flag(
                            "playlists",
                            "delete managed playlists that left the manifest",
                        ),
                        prune_flag("follows", "unfollow users not in `follows`"),
                        prune_flag("likes", "unlike tracks and playlists not in `likes`"),
                    ],
                    hints: &[],
                }),
                "what may be removed from the account (all off by default)",
            ),
            field(
                "max_deletes",
                Shape::Int {
                    min: 0,
                    max: 1_000_000,
                },
                "a plan removing more than this is refused",
            )
            .default(json!(10)),
            field(
                "on_audio_change",
                Shape::Text(Format::OneOf(ON_AUDIO_CHANGE)),
                "when a track's audio file changed: warn, or replace (re-upload, then delete the old one)",
            )
            .default(json!("warn")),
            field(
                "concurrency",
                Shape::Int { min: 1, max: 32 },
                "requests in flight at once",
            )
            .default(json!(4)),
            field(
                "writes_per_minute",
                Shape::Int {
                    min: 1,
                    max: 100_000,
                },
                "client-side cap on write requests, to stay under the service's limits",
            )
            .default(json!(60)),
            field(
                "retry",
                Shape::Object(Object {
                    what: "`policy.retry`",
                    fields: vec![
                        field(
                            "attempts",
                            Shape::Int { min: 0, max: 20 },
                            "retries after the first attempt",
                        )
                        .default(json!(6)),
                        field(
                            "first_delay_ms",
                            Shape::Int {
                                min: 1,
                                max: 600_000,
                            },
                            "first backoff step after a server error (a rate limit without a reset time starts at ten times this)",
                        )
                        .default(json!(1000)),
                        field(
                            "max_wait_s",
                            Shape::Int { min: 1, max: 86_400 },
                            "the longest wait a run accepts; a longer one stops the run and says when to resume",
                        )
                        .default(json!(900)),
                    ],
                    hints: &[],
                }),
                "how failed requests are retried",
            ),
        ],
        hints: &[("rate", "writes_per_minute"), ("retries", "retry")],
    });
    let daemon = Shape::Object(Object {
        what: "`daemon`",
        fields: vec![
            field(
                "schedule",
                Shape::Text(Format::Cron),
                "cron: 5 fields, 6 with seconds first, or @hourly-style; UTC unless `timezone`",
            ),
            field(
                "timezone",
                Shape::Text(Format::Timezone),
                "time zone of `schedule`, e.g. Europe/Berlin",
            ),
            field("watch", Shape::Bool, "re-plan when the manifest changes").default(json!(true)),
            field(
                "listen",
                Shape::Text(Format::SocketAddr),
                "address of the daemon's local HTTP endpoint, e.g. 127.0.0.1:9090",
            ),
        ],
        hints: &[("cron", "schedule"), ("tz", "timezone")],
    });
    let likes = Shape::Object(Object {
        what: "`likes`",
        fields: vec![
            field(
                "tracks",
                list(Shape::Text(Format::Ref(RefSite::LikedTrack))),
                "liked tracks: URNs or soundcloud.com URLs",
            ),
            field(
                "playlists",
                list(Shape::Text(Format::Ref(RefSite::LikedPlaylist))),
                "liked playlists: URNs or soundcloud.com URLs",
            ),
        ],
        hints: &[],
    });
    Shape::Object(Object {
        what: "the manifest",
        fields: vec![
            field(
                "version",
                Shape::Int { min: 1, max: 1 },
                "manifest format version; always 1",
            )
            .required(),
            field(
                "account",
                account,
                "the SoundCloud app and endpoints (in exactly one file)",
            ),
            field("policy", policy, "what scsync may do"),
            field("daemon", daemon, "settings for `scsync daemon`"),
            field(
                "tracks",
                list(track_shape()),
                "tracks uploaded by the account",
            ),
            field(
                "playlists",
                list(playlist_shape()),
                "playlists of the account",
            ),
            field(
                "follows",
                Shape::List(List {
                    item: Box::new(Shape::Text(Format::Ref(RefSite::Follow))),
                    max: Some((MAX_FOLLOWS, "followed users")),
                }),
                "users to follow: URNs or soundcloud.com profile URLs",
            ),
            field("likes", likes, "liked tracks and playlists"),
        ],
        hints: &[
            ("follow", "follows"),
            ("following", "follows"),
            ("followings", "follows"),
            ("like", "likes"),
            ("sets", "playlists"),
        ],
    })
}

/// The whole format.
pub(crate) static MANIFEST: LazyLock<Shape> = LazyLock::new(manifest_shape);

// ---------------------------------------------------------------------------
// Checking a tree.

/// A value that passed its check.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Checked {
    pub pos: Pos,
    pub value: CheckedValue,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CheckedValue {
    Object(CheckedObject),
    List(Vec<Checked>),
    Text(String),
    Bool(bool),
    Int(i64),
}

/// An object's known keys whose values passed; unknown or bad ones are
/// left out (and reported).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CheckedObject {
    pub pos: Pos,
    pub fields: Vec<(&'static str, Checked)>,
    /// Every known key written (with the key's position), including those
    /// whose value failed its check.
    pub written: Vec<(&'static str, Pos)>,
}

impl CheckedObject {
    pub fn get(&self, name: &str) -> Option<&Checked> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, c)| c)
    }

    pub fn text(&self, name: &str) -> Option<(&str, Pos)> {
        match self.get(name) {
            Some(Checked {
                pos,
                value: CheckedValue::Text(t),
            }) => Some((t.as_str(), *pos)),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)?.value {
            CheckedValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.get(name)?.value {
            CheckedValue::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> &[Checked] {
        match self.get(name) {
            Some(Checked {
                value: CheckedValue::List(items),
                ..
            }) => items,
            _ => &[],
        }
    }

    pub fn object(&self, name: &str) -> Option<&CheckedObject> {
        match self.get(name) {
            Some(Checked {
                value: CheckedValue::Object(o),
                ..
            }) => Some(o),
            _ => None,
        }
    }

    /// Whether the key was written at all (even with a bad value).
    pub fn wrote(&self, name: &str) -> bool {
        self.key_pos(name).is_some()
    }

    /// Where the key was written.
    pub fn key_pos(&self, name: &str) -> Option<Pos> {
        self.written
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }
}

impl Checked {
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            CheckedValue::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&CheckedObject> {
        match &self.value {
            CheckedValue::Object(o) => Some(o),
            _ => None,
        }
    }
}

/// A problem found by the check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
}

/// Checks a whole file's tree against the manifest shape.
pub(crate) fn check_manifest(root: &Node, problems: &mut Vec<Problem>) -> Option<CheckedObject> {
    let Shape::Object(object) = &*MANIFEST else {
        return None;
    };
    if !matches!(root.value, Value::Map(_)) {
        problems.push(Problem {
            pos: root.pos,
            message: format!(
                "expected the manifest (a mapping starting with `version: 1`), found {}",
                root.value.describe()
            ),
        });
        return None;
    }
    check_object(root, object, "", problems)
}

/// `label` names the value in messages (a dotted key path, or empty).
fn check(
    node: &Node,
    shape: &Shape,
    label: &str,
    is_field: bool,
    problems: &mut Vec<Problem>,
) -> Option<Checked> {
    let fail = |expected: &str, problems: &mut Vec<Problem>| {
        problems.push(Problem {
            pos: node.pos,
            message: with_label(
                label,
                &format!("expected {expected}, found {}", node.value.describe()),
            ),
        });
        None
    };
    let fail_with_hint = |expected: &str, hint: &str, problems: &mut Vec<Problem>| {
        problems.push(Problem {
            pos: node.pos,
            message: with_label(
                label,
                &format!("expected {expected}, found {}{hint}", node.value.describe()),
            ),
        });
        None
    };
    let scalar = match &node.value {
        Value::Scalar(s) => Some(s),
        _ => None,
    };
    // An empty section (`follows:` with every item commented out) is empty.
    let is_null = scalar.is_some_and(|s| s.kind == ScalarKind::Null);
    let value = match shape {
        Shape::Object(object) => {
            if is_null && is_field {
                missing_required(node.pos, object, &[], problems);
                CheckedValue::Object(CheckedObject {
                    pos: node.pos,
                    ..CheckedObject::default()
                })
            } else if matches!(node.value, Value::Map(_)) {
                CheckedValue::Object(check_object(node, object, label, problems)?)
            } else {
                return fail(&format!("{} (a mapping)", object.what), problems);
            }
        }
        Shape::List(list) => {
            let items: &[Node] = match &node.value {
                Value::Seq(items) => items,
                _ if is_null && is_field => &[],
                _ => return fail("a list", problems),
            };
            let item_label = if label.is_empty() {
                "item".to_owned()
            } else {
                format!("{label} item")
            };
            if let Some((max, what)) = list.max
                && let Some(extra) = items.get(max)
            {
                problems.push(Problem {
                    pos: extra.pos,
                    message: with_label(
                        label,
                        &format!(
                            "{} items, but SoundCloud allows at most {max} {what}",
                            items.len()
                        ),
                    ),
                });
            }
            let checked = items
                .iter()
                .filter_map(|item| check(item, &list.item, &item_label, false, problems))
                .collect();
            CheckedValue::List(checked)
        }
        Shape::Bool => match scalar.map(|s| s.kind) {
            Some(ScalarKind::Bool(b)) => CheckedValue::Bool(b),
            _ => return fail("true or false", problems),
        },
        Shape::Int { min, max } => {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("a whole number from {min} to {max}")
            };
            match scalar.map(|s| s.kind) {
                Some(ScalarKind::Int(Some(i))) if (*min..=*max).contains(&i) => {
                    CheckedValue::Int(i)
                }
                _ => return fail(&expected, problems),
            }
        }
        Shape::Text(format) => {
            let Some(scalar) = scalar else {
                return fail(&format.expected(), problems);
            };
            let accepted = match scalar.kind {
                ScalarKind::Str => true,
                ScalarKind::Int(_) | ScalarKind::Float => format.takes_numbers(),
                ScalarKind::Null | ScalarKind::Bool(_) => false,
            };
            if !accepted && format == &Format::SecretRef && scalar.kind != ScalarKind::Null {
                // The value may be the secret: say why it is refused, never what it is.
                let message = format.check("").err().unwrap_or_default();
                problems.push(Problem {
                    pos: node.pos,
                    message: with_label(label, &message),
                });
                return None;
            }
            if !accepted {
                let hint = match scalar.kind {
                    ScalarKind::Null => String::new(),
                    _ => format!("; write it in quotes (\"{}\") to mean text", scalar.text),
                };
                return fail_with_hint(&format.expected(), &hint, problems);
            }
            if let Err(message) = format.check(&scalar.text) {
                problems.push(Problem {
                    pos: node.pos,
                    message: with_label(label, &message),
                });
                return None;
            }
            CheckedValue::Text(scalar.text.clone())
        }
    };
    Some(Checked {
        pos: node.pos,
        value,
    })
}

/// Prefixes a message with what it concerns: "`sharing`: ..." or, for a
/// list's item, "`follows` item: ...".
fn with_label(label: &str, message: &str) -> String {
    if label.is_empty() {
        message.to_owned()
    } else if label == "item" {
        format!("item: {message}")
    } else if let Some(list) = label.strip_suffix(" item") {
        format!("`{list}` item: {message}")
    } else {
        format!("`{label}`: {message}")
    }
}

fn check_object(
    node: &Node,
    object: &Object,
    label: &str,
    problems: &mut Vec<Problem>,
) -> Option<CheckedObject> {
    let Value::Map(entries) = &node.value else {
        return None;
    };
    let mut out = CheckedObject {
        pos: node.pos,
        ..CheckedObject::default()
    };
    for entry in entries {
        let Some(field) = object.fields.iter().find(|f| f.name == entry.key) else {
            problems.push(Problem {
                pos: entry.key_pos,
                message: unknown_key(&entry.key, object),
            });
            continue;
        };
        out.written.push((field.name, entry.key_pos));
        // Inside list items, labels restart at the item ("sharing", not
        // "tracks.sharing"): the position already says which item.
        let child_label = if label.is_empty() || label.ends_with(" item") {
            field.name.to_owned()
        } else {
            format!("{label}.{}", field.name)
        };
        if let Some(checked) = check(&entry.value, &field.shape, &child_label, true, problems) {
            out.fields.push((field.name, checked));
        }
    }
    missing_required(node.pos, object, entries, problems);
    Some(out)
}

fn missing_required(pos: Pos, object: &Object, entries: &[Entry], problems: &mut Vec<Problem>) {
    for field in object.fields.iter().filter(|f| f.required) {
        if !entries.iter().any(|e| e.key == field.name) {
            problems.push(Problem {
                pos,
                message: format!("{} needs `{}` ({})", object.what, field.name, field.doc),
            });
        }
    }
}

fn unknown_key(key: &str, object: &Object) -> String {
    let names = || object.fields.iter().map(|f| f.name);
    let hinted = object
        .hints
        .iter()
        .find(|(wrong, _)| *wrong == key)
        .map(|(_, right)| *right);
    match hinted.or_else(|| closest(key, names())) {
        Some(suggestion) => {
            format!(
                "unknown key `{key}` in {}; did you mean `{suggestion}`?",
                object.what
            )
        }
        None => format!(
            "unknown key `{key}` in {}; expected one of: {}",
            object.what,
            names().collect::<Vec<_>>().join(", ")
        ),
    }
}

// ---------------------------------------------------------------------------
// JSON Schema.

pub(crate) fn json_schema() -> Json {
    let mut root = shape_json(&MANIFEST, false);
    if let Json::Object(map) = &mut root {
        let mut head = Map::new();
        head.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        head.insert("title".into(), json!("scsync manifest"));
        head.insert(
            "description".into(),
            json!(
                "One file of an scsync manifest: the SoundCloud account as it should be. \
                 A directory of such files is merged."
            ),
        );
        head.append(map);
        return Json::Object(head);
    }
    root
}

fn shape_json(shape: &Shape, nullable: bool) -> Json {
    let ty = |name: &str| {
        if nullable {
            json!([name, "null"])
        } else {
            json!(name)
        }
    };
    match shape {
        Shape::Object(object) => {
            let mut properties = Map::new();
            for field in &object.fields {
                let mut schema = shape_json(
                    &field.shape,
                    matches!(field.shape, Shape::Object(_) | Shape::List(_)),
                );
                if let Json::Object(map) = &mut schema {
                    map.insert("description".into(), json!(field.doc));
                    if let Some(default) = &field.default {
                        map.insert("default".into(), default.clone());
                    }
                }
                properties.insert(field.name.into(), schema);
            }
            let required: Vec<&str> = object
                .fields
                .iter()
                .filter(|f| f.required)
                .map(|f| f.name)
                .collect();
            let mut out = Map::new();
            out.insert("type".into(), ty("object"));
            out.insert("additionalProperties".into(), json!(false));
            out.insert("properties".into(), Json::Object(properties));
            if !required.is_empty() {
                out.insert("required".into(), json!(required));
            }
            Json::Object(out)
        }
        Shape::List(list) => {
            let mut out = Map::new();
            out.insert("type".into(), ty("array"));
            out.insert("items".into(), shape_json(&list.item, false));
            if let Some((max, _)) = list.max {
                out.insert("maxItems".into(), json!(max));
            }
            Json::Object(out)
        }
        Shape::Bool => json!({ "type": "boolean" }),
        Shape::Int { min, max } if min == max => json!({ "const": min }),
        Shape::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Shape::Text(format) => Json::Object(format.json()),
    }
}
