//! The test surface under `/_emulator/`: seed, state, request log, fault
//! rules, token expiry. None of it is logged or subject to faults.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::json_response;
use crate::faults::FaultRule;
use crate::seed::Seed;
use crate::server::Shared;
use crate::world::World;

fn refused(message: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

/// `POST /_emulator/seed` (JSON or YAML): replaces the world. Issued
/// tokens, fault rules and the request log are kept.
pub async fn seed(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return refused("the seed is not UTF-8 text".into());
    };
    let world = match Seed::from_text(text).and_then(World::from_seed) {
        Ok(w) => w,
        Err(e) => return refused(e.to_string()),
    };
    let summary = json!({
        "users": world.users.len(),
        "tracks": world.tracks.len(),
        "playlists": world.playlists.len(),
    });
    shared.lock().world = world;
    json_response(StatusCode::OK, &summary)
}

/// `GET /_emulator/state`: the world in the seed's shape.
pub async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let seed = shared.lock().world.to_seed();
    let body = serde_json::to_value(&seed).unwrap_or(Value::Null);
    json_response(StatusCode::OK, &body)
}

/// `GET /_emulator/requests`: served requests, oldest first.
pub async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    let body = {
        let inner = shared.lock();
        serde_json::to_value(inner.log.entries().collect::<Vec<_>>()).unwrap_or(Value::Null)
    };
    json_response(StatusCode::OK, &body)
}

pub async fn clear_requests(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().log.clear();
    json_response(StatusCode::OK, &json!({ "cleared": true }))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RulesBody {
    Wrapped { rules: Vec<FaultRule> },
    List(Vec<FaultRule>),
    One(FaultRule),
}

/// `POST /_emulator/faults`: adds rules (`{"rules": [...]}`, a list, or one
/// rule) after the ones already installed.
pub async fn add_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    // Parse the wrapped form first, so that its errors name the bad field.
    let rules = match serde_json::from_slice::<Value>(&body) {
        Err(e) => return refused(format!("the body is not JSON: {e}")),
        Ok(Value::Object(mut m)) if m.contains_key("rules") => {
            let rules = m.remove("rules").unwrap_or_default();
            match serde_json::from_value::<Vec<FaultRule>>(rules) {
                Ok(rules) => rules,
                Err(e) => return refused(format!("rules: {e}")),
            }
        }
        Ok(v) => match serde_json::from_value::<RulesBody>(v) {
            Ok(RulesBody::Wrapped { rules } | RulesBody::List(rules)) => rules,
            Ok(RulesBody::One(rule)) => vec![rule],
            Err(e) => return refused(format!("not a fault rule: {e}")),
        },
    };
    match shared.lock().faults.add(rules) {
        Ok(n) => json_response(StatusCode::OK, &json!({ "added": n })),
        Err(e) => refused(e.to_string()),
    }
}

pub async fn faults(State(shared): State<Arc<Shared>>) -> Response {
    let report = shared.lock().faults.report();
    json_response(StatusCode::OK, &report)
}

pub async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().faults.clear();
    json_response(StatusCode::OK, &json!({ "cleared": true }))
}

/// `POST /_emulator/tokens/expire`: every access token issued so far is
/// expired at once (refresh tokens stay valid), to exercise refresh.
pub async fn expire_tokens(State(shared): State<Arc<Shared>>) -> Response {
    let n = shared.lock().auth.expire_all();
    json_response(StatusCode::OK, &json!({ "expired": n }))
}
