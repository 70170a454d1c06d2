//! Checks bodies against spec-facts.json: every field the spec gives a
//! schema is present with the spec's JSON type (null only where the spec
//! or its example bodies allow it).

use std::sync::LazyLock;

use serde_json::Value;

static FACTS: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("spec-facts.json")).expect("spec-facts.json is JSON")
});

/// Departures the service itself makes from its schema, allowed here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allow {
    /// `show_tracks=false` leaves a playlist's `tracks` out.
    pub playlist_without_tracks: bool,
}

fn schema(name: &str) -> &'static Value {
    FACTS["schemas"]
        .get(name)
        .unwrap_or_else(|| panic!("spec-facts.json has no schema {name}"))
}

/// Problems found in `value` as an instance of schema `name`.
pub fn problems(name: &str, value: &Value, allow: Allow) -> Vec<String> {
    let mut out = Vec::new();
    check_object(name, name, value, allow, &mut out);
    out
}

/// Panics with every problem when `value` is not a `name`.
pub fn assert_shape(name: &str, value: &Value, allow: Allow) {
    let found = problems(name, value, allow);
    assert!(
        found.is_empty(),
        "body does not match spec schema {name}:\n  {}\nbody: {value}",
        found.join("\n  ")
    );
}

fn check_object(name: &str, at: &str, value: &Value, allow: Allow, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        out.push(format!("{at}: expected a {name} object, got {value}"));
        return;
    };
    let fields = schema(name)["fields"]
        .as_object()
        .expect("schema facts have fields");
    for (field, fact) in fields {
        let here = format!("{at}.{field}");
        match object.get(field) {
            None if name == "Playlist" && field == "tracks" && allow.playlist_without_tracks => {}
            None => out.push(format!("{here}: missing")),
            // The guide: `next_href` is null (or absent) on the last page.
            Some(Value::Null) if field == "next_href" => {}
            Some(v) => check_value(&here, fact, v, allow, out),
        }
    }
}

fn check_value(at: &str, fact: &Value, value: &Value, allow: Allow, out: &mut Vec<String>) {
    if value.is_null() {
        if fact["nullable"] != Value::Bool(true) {
            out.push(format!("{at}: null, but the spec does not allow null"));
        }
        return;
    }
    let ty = fact["type"].as_str().unwrap_or("object");
    let ok = match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        _ => value.is_object(),
    };
    if !ok {
        out.push(format!("{at}: expected {ty}, got {value}"));
        return;
    }
    if let Some(reference) = fact.get("ref").and_then(Value::as_str) {
        check_object(reference, at, value, allow, out);
    }
    if let Some(fields) = fact.get("fields").and_then(Value::as_object) {
        for (field, sub) in fields {
            match value.get(field) {
                None => out.push(format!("{at}.{field}: missing")),
                Some(v) => check_value(&format!("{at}.{field}"), sub, v, allow, out),
            }
        }
    }
    if let (Some(items), Some(list)) = (fact.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check_value(&format!("{at}[{i}]"), items, item, allow, out);
        }
    }
}

#[test]
fn the_fixture_covers_the_schemas_the_emulator_answers_with() {
    for name in [
        "Track",
        "Playlist",
        "User",
        "Me",
        "Error",
        "Tracks",
        "Playlists",
        "Users",
        "Found",
        "Token",
        "Status",
    ] {
        let fields = schema(name)["fields"].as_object().expect("fields");
        assert!(!fields.is_empty(), "{name} has fields");
    }
    assert_eq!(schema("Track")["fields"]["user"]["ref"], "User");
    assert_eq!(
        schema("Playlist")["fields"]["tracks"]["items"]["ref"],
        "Track"
    );
    assert_eq!(
        schema("Tracks")["fields"]["collection"]["items"]["ref"],
        "Track"
    );
}

#[test]
fn the_checker_reports_missing_fields_wrong_types_and_bad_nulls() {
    let body = serde_json::json!({
        "status": 302,
        "location": null,
    });
    let found = problems("Found", &body, Allow::default());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("Found.status: expected string"))
    );
    assert!(found.iter().any(|p| p.contains("Found.location: null")));
    let found = problems(
        "Found",
        &serde_json::json!({"status": "302 - Found"}),
        Allow::default(),
    );
    assert_eq!(found, vec!["Found.location: missing".to_string()]);
    let nested = serde_json::json!({"collection": [{"urn": 5}], "next_href": null});
    let found = problems("Tracks", &nested, Allow::default());
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("Tracks.collection[0].urn: expected string")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p == "Tracks.collection[0].title: missing"),
        "{found:?}"
    );
}

/// Where the spec sits in the project's working layout (next to the
/// repository). Absent on a plain clone, where this check is skipped.
fn spec_beside_repo() -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/soundcloud-openapi.yaml");
    path.exists().then_some(path)
}

#[test]
fn the_fixture_was_derived_from_the_spec_beside_the_repository() {
    use sha2::{Digest, Sha256};
    let Some(path) = spec_beside_repo() else {
        return;
    };
    let bytes = std::fs::read(&path).expect("spec readable");
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        FACTS["source_sha256"].as_str(),
        Some(digest.as_str()),
        "{} changed: re-run derive_spec_facts.py (see its header) and commit spec-facts.json",
        path.display()
    );
}
