//! What scsync reads from SoundCloud's JSON, mapped to the domain model.
//!
//! The service sends more fields than the spec lists, sometimes `null`
//! where a value is expected, ids above 2^31, and both URN and numeric
//! identifiers. Reading is tolerant of all that; only an object with no
//! usable identifier is an error (an item we cannot name cannot be synced).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{
    FieldType, FieldValue, Fields, PLAYLIST_FIELDS, RemotePlaylist, RemoteTrack, RemoteUser,
    TRACK_FIELDS, Urn, UrnKind,
};
use crate::secret::Secret;

use crate::tag_list::{decode_tag_list, encode_tag_list};

/// One page of a collection: `{collection, next_href}` with
/// `linked_partitioning=true`, or the deprecated bare array.
pub(crate) struct WirePage {
    pub items: Vec<Value>,
    pub next_href: Option<String>,
}

impl WirePage {
    pub(crate) fn parse(body: &[u8]) -> Result<WirePage, String> {
        let json: Value = serde_json::from_slice(body)
            .map_err(|e| format!("a collection page is not JSON ({e})"))?;
        match json {
            Value::Array(items) => Ok(WirePage {
                items,
                next_href: None,
            }),
            Value::Object(mut map) => {
                let items = match map.remove("collection") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) => Vec::new(),
                    Some(_) => return Err("`collection` is not an array".to_owned()),
                    None => return Err("a collection page has no `collection`".to_owned()),
                };
                let next_href = match map.remove("next_href") {
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                    _ => None,
                };
                Ok(WirePage { items, next_href })
            }
            _ => Err("a collection page is neither an object nor an array".to_owned()),
        }
    }
}

/// The URN of an object: its `urn` field, else its numeric `id` (number or
/// digit string) with the kind the endpoint lists.
pub(crate) fn urn_of(object: &Map<String, Value>, kind: UrnKind) -> Option<Urn> {
    if let Some(urn) = object
        .get("urn")
        .and_then(Value::as_str)
        .and_then(Urn::parse)
    {
        return (urn.kind == kind).then_some(urn);
    }
    let id = match object.get("id")? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Urn { kind, id })
}

fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("a {what} is not a JSON object"))
}

fn required_urn(object: &Map<String, Value>, kind: UrnKind) -> Result<Urn, String> {
    urn_of(object, kind).ok_or_else(|| {
        let shown = object
            .get("urn")
            .or_else(|| object.get("id"))
            .map_or_else(|| "nothing".to_owned(), Value::to_string);
        format!(
            "a {} has no usable urn or id (found {shown})",
            singular(kind)
        )
    })
}

fn singular(kind: UrnKind) -> &'static str {
    match kind {
        UrnKind::Track => "track",
        UrnKind::Playlist => "playlist",
        UrnKind::User => "user",
    }
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads one managed field. `null` text reads as empty and `null` tags as
/// no tags (the service's way of saying "unset"); a `null` or unreadable
/// bool is left out, since guessing it would hide a real difference.
fn field_value(object: &Map<String, Value>, wire: &str, kind: FieldType) -> Option<FieldValue> {
    let value = object.get(wire)?;
    match kind {
        FieldType::Text => match value {
            Value::String(s) => Some(FieldValue::Text(s.trim().to_owned())),
            Value::Number(n) => Some(FieldValue::Text(n.to_string())),
            Value::Bool(b) => Some(FieldValue::Text(b.to_string())),
            Value::Null => Some(FieldValue::Text(String::new())),
            _ => None,
        },
        FieldType::Bool => match value {
            Value::Bool(b) => Some(FieldValue::Bool(*b)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => {
                Some(FieldValue::Bool(true))
            }
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => {
                Some(FieldValue::Bool(false))
            }
            _ => None,
        },
        FieldType::Tags => match value {
            Value::String(s) => Some(FieldValue::Tags(decode_tag_list(s))),
            Value::Null => Some(FieldValue::Tags(Vec::new())),
            Value::Array(items) => Some(FieldValue::Tags(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            _ => None,
        },
    }
}

/// The wire name of a manifest field (`tags` travels as `tag_list`).
pub(crate) fn wire_name(field: &str) -> &str {
    if field == "tags" { "tag_list" } else { field }
}

fn read_fields(object: &Map<String, Value>, spec: &[(&str, FieldType)]) -> Fields {
    let mut fields = Fields::new();
    for (name, kind) in spec {
        if let Some(value) = field_value(object, wire_name(name), *kind) {
            fields.insert((*name).to_owned(), value);
        }
    }
    fields
}

pub(crate) fn track_from_json(value: &Value) -> Result<RemoteTrack, String> {
    let object = as_object(value, "track")?;
    Ok(RemoteTrack {
        urn: required_urn(object, UrnKind::Track)?,
        fields: read_fields(object, TRACK_FIELDS),
        permalink_url: text(object, "permalink_url").unwrap_or_default(),
        created_at: text(object, "created_at").filter(|s| !s.is_empty()),
    })
}

/// A playlist. `tracks` holds the embedded list as sent (callers that need
/// the complete list, blocked tracks included, fetch it separately).
pub(crate) fn playlist_from_json(value: &Value) -> Result<RemotePlaylist, String> {
    let object = as_object(value, "playlist")?;
    let mut fields = read_fields(object, PLAYLIST_FIELDS);
    // Tags: `tag_list` is canonical; fall back to `tags` when it is absent.
    if !object.contains_key("tag_list")
        && let Some(tags) = field_value(object, "tags", FieldType::Tags)
    {
        fields.insert("tags".to_owned(), tags);
    }
    // `set_type` exists on requests; reads carry `playlist_type` instead.
    let set_type = text(object, "set_type")
        .filter(|s| !s.is_empty())
        .or_else(|| text(object, "playlist_type").filter(|s| !s.is_empty()));
    match set_type {
        Some(t) => fields.insert("set_type".to_owned(), FieldValue::Text(t)),
        None => fields.remove("set_type"),
    };
    let tracks = match object.get("tracks") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|t| urn_of(t, UrnKind::Track))
            .collect(),
        _ => Vec::new(),
    };
    Ok(RemotePlaylist {
        urn: required_urn(object, UrnKind::Playlist)?,
        fields,
        tracks,
        permalink_url: text(object, "permalink_url").unwrap_or_default(),
        created_at: text(object, "created_at").filter(|s| !s.is_empty()),
    })
}

pub(crate) fn user_from_json(value: &Value) -> Result<RemoteUser, String> {
    let object = as_object(value, "user")?;
    Ok(RemoteUser {
        urn: required_urn(object, UrnKind::User)?,
        username: text(object, "username").unwrap_or_default(),
        permalink_url: text(object, "permalink_url").unwrap_or_default(),
    })
}

pub(crate) fn urn_from_json(value: &Value, kind: UrnKind) -> Result<Urn, String> {
    required_urn(as_object(value, singular(kind))?, kind)
}

/// A field value as JSON for a `PUT`/`POST` body.
pub(crate) fn field_to_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::Text(t) => Value::String(t.clone()),
        FieldValue::Tags(tags) => Value::String(encode_tag_list(tags)),
    }
}

/// A field value as a multipart/form text value.
pub(crate) fn field_to_form(value: &FieldValue) -> String {
    match value {
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Text(t) => t.clone(),
        FieldValue::Tags(tags) => encode_tag_list(tags),
    }
}

/// `{"<wire name>": value, ...}` for the given fields.
pub(crate) fn fields_to_json(fields: &Fields) -> Map<String, Value> {
    fields
        .iter()
        .map(|(name, value)| (wire_name(name).to_owned(), field_to_json(value)))
        .collect()
}

/// The token endpoint's answer. Not `Debug`: it holds raw tokens.
#[derive(Deserialize)]
pub(crate) struct WireToken {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<Value>,
    #[serde(default)]
    pub scope: Option<Value>,
}

/// Access-token lifetime assumed when the token endpoint does not say
/// (every observed answer said 3599 s).
const DEFAULT_EXPIRES_IN: i64 = 3599;

impl WireToken {
    pub(crate) fn into_token_set(self, now_unix: i64) -> super::TokenSet {
        let expires_in = match &self.expires_in {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_EXPIRES_IN);
        let scope = match self.scope {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        super::TokenSet {
            access_token: Secret::new(self.access_token),
            refresh_token: self
                .refresh_token
                .filter(|r| !r.is_empty())
                .map(Secret::new),
            expires_at: now_unix.saturating_add(expires_in),
            scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn track_fields_are_read_normalised_and_unknown_fields_ignored() {
        let t = track_from_json(&json!({
            "kind": "track",
            "id": 2162380995u64,
            "urn": "soundcloud:tracks:2162380995",
            "title": "  Night Drive ",
            "description": null,
            "tag_list": " synthwave \"late night\"",
            "downloadable": false,
            "streamable": null,
            "sharing": "public",
            "permalink": "night-drive",
            "permalink_url": "https://soundcloud.com/alice/night-drive",
            "created_at": "2026/01/02 03:04:05 +0000",
            "playback_count": 12,
            "user": {"urn": "soundcloud:users:1"},
            "some_future_field": {"nested": [1, 2]}
        }))
        .unwrap();
        assert_eq!(t.urn, Urn::track(2_162_380_995));
        assert_eq!(t.fields["title"], FieldValue::Text("Night Drive".into()));
        assert_eq!(t.fields["description"], FieldValue::Text(String::new()));
        assert_eq!(
            t.fields["tags"],
            FieldValue::Tags(vec!["synthwave".into(), "late night".into()])
        );
        assert_eq!(t.fields["downloadable"], FieldValue::Bool(false));
        assert!(
            !t.fields.contains_key("streamable"),
            "a null bool is unknown"
        );
        assert!(
            !t.fields.contains_key("genre"),
            "a missing field is left out"
        );
        assert_eq!(
            t.fields["permalink"],
            FieldValue::Text("night-drive".into())
        );
        assert_eq!(t.created_at.as_deref(), Some("2026/01/02 03:04:05 +0000"));
    }

    #[test]
    fn numeric_ids_stand_in_for_a_missing_urn() {
        let t = track_from_json(&json!({"id": 4294967297u64, "title": "x"})).unwrap();
        assert_eq!(t.urn, Urn::track(4_294_967_297));
        let t = track_from_json(&json!({"id": "12", "urn": null})).unwrap();
        assert_eq!(t.urn, Urn::track(12));
    }

    #[test]
    fn an_object_without_identity_or_of_the_wrong_kind_is_an_error() {
        assert!(track_from_json(&json!({"title": "x"})).is_err());
        assert!(track_from_json(&json!({"urn": "soundcloud:users:1"})).is_err());
        assert!(track_from_json(&json!("soundcloud:tracks:1")).is_err());
    }

    #[test]
    fn playlist_set_type_falls_back_to_playlist_type_and_tracks_keep_order() {
        let p = playlist_from_json(&json!({
            "urn": "soundcloud:playlists:77",
            "title": "Best of",
            "playlist_type": "album",
            "tag_list": "a \"b c\"",
            "tags": "ignored",
            "tracks": [{"urn": "soundcloud:tracks:3"}, null, {"id": 1}, {"urn": "soundcloud:tracks:2"}]
        }))
        .unwrap();
        assert_eq!(p.fields["set_type"], FieldValue::Text("album".into()));
        assert_eq!(
            p.fields["tags"],
            FieldValue::Tags(vec!["a".into(), "b c".into()])
        );
        assert_eq!(p.tracks, vec![Urn::track(3), Urn::track(1), Urn::track(2)]);

        let p =
            playlist_from_json(&json!({"id": 5, "set_type": "playlist", "playlist_type": "album"}))
                .unwrap();
        assert_eq!(p.fields["set_type"], FieldValue::Text("playlist".into()));
        let p =
            playlist_from_json(&json!({"id": 5, "set_type": null, "playlist_type": ""})).unwrap();
        assert!(!p.fields.contains_key("set_type"));
    }

    #[test]
    fn pages_in_both_shapes_are_read_and_non_pages_rejected() {
        let page = WirePage::parse(
            br#"{"collection":[{"id":1}],"next_href":"https://api.soundcloud.com/x?cursor=2"}"#,
        )
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(
            page.next_href.as_deref(),
            Some("https://api.soundcloud.com/x?cursor=2")
        );
        let page = WirePage::parse(br#"{"collection":[],"next_href":null}"#).unwrap();
        assert!(page.items.is_empty() && page.next_href.is_none());
        let page = WirePage::parse(br#"[{"id":1},{"id":2}]"#).unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(WirePage::parse(br#"{"code":500,"message":""}"#).is_err());
        assert!(WirePage::parse(b"Please slow down.").is_err());
    }

    #[test]
    fn writes_use_wire_names_and_encode_tags() {
        let mut fields = Fields::new();
        fields.insert(
            "tags".into(),
            FieldValue::Tags(vec!["a".into(), "late night".into()]),
        );
        fields.insert("downloadable".into(), FieldValue::Bool(false));
        fields.insert("title".into(), FieldValue::Text("T".into()));
        let json = Value::Object(fields_to_json(&fields));
        assert_eq!(
            json,
            json!({"tag_list": "a \"late night\"", "downloadable": false, "title": "T"})
        );
    }

    #[test]
    fn token_answers_become_token_sets() {
        let wire: WireToken = serde_json::from_value(json!({
            "access_token": "a", "refresh_token": "r", "expires_in": 3599, "scope": "", "token_type": "bearer"
        }))
        .unwrap();
        let t = wire.into_token_set(1000);
        assert_eq!(t.access_token.expose(), "a");
        assert_eq!(t.refresh_token.as_ref().map(Secret::expose), Some("r"));
        assert_eq!(t.expires_at, 4599);
        let wire: WireToken =
            serde_json::from_value(json!({"access_token": "a", "expires_in": null})).unwrap();
        let t = wire.into_token_set(0);
        assert_eq!(t.expires_at, DEFAULT_EXPIRES_IN);
        assert!(t.refresh_token.is_none());
    }
}
