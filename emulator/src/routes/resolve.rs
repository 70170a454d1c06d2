//! `GET /resolve?url=...`: soundcloud.com URLs of users, tracks and sets
//! to API URLs, answered as a 302 with `Location` and a `Found` body.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::json;
use url::Url;

use crate::error::{ApiError, json_response};
use crate::paging::Params;
use crate::render::{playlist_urn, track_urn, user_urn};
use crate::server::Shared;
use crate::world::World;

const HOSTS: &[&str] = &["soundcloud.com", "www.soundcloud.com", "m.soundcloud.com"];

/// The API path a soundcloud.com URL names, if it names something the
/// viewer may see.
fn locate(world: &World, viewer: Option<u64>, url: &str) -> Option<String> {
    let url = Url::parse(url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !HOSTS.contains(&url.host_str()?) {
        return None;
    }
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let owner = world.user_by_permalink(segments.first()?)?;
    match segments.as_slice() {
        [_] => Some(format!("/users/{}", user_urn(owner.id))),
        [_, "sets", permalink] | [_, "sets", permalink, _] => {
            let secret = segments.get(3).copied();
            world
                .playlists
                .values()
                .find(|p| p.user_id == owner.id && p.permalink.eq_ignore_ascii_case(permalink))
                .and_then(|p| {
                    let path = format!("/playlists/{}", playlist_urn(p.id));
                    if world.playlist_visible(p, viewer) {
                        Some(path)
                    } else {
                        // Reached through its secret link: the API URL needs it too.
                        (secret == Some(p.secret_token.as_str()))
                            .then(|| format!("{path}?secret_token={}", p.secret_token))
                    }
                })
        }
        [_, permalink] | [_, permalink, _] => {
            let secret = segments.get(2).copied();
            world
                .tracks
                .values()
                .find(|t| t.user_id == owner.id && t.permalink.eq_ignore_ascii_case(permalink))
                .and_then(|t| {
                    let path = format!("/tracks/{}", track_urn(t.id));
                    if world.track_visible(t, viewer) {
                        Some(path)
                    } else {
                        (secret == Some(t.secret_token.as_str()))
                            .then(|| format!("{path}?secret_token={}", t.secret_token))
                    }
                })
        }
        _ => None,
    }
}

pub async fn resolve(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let inner = shared.lock();
    let caller = inner.auth.caller(&headers)?;
    let Some(url) = params.get("url").filter(|u| !u.is_empty()) else {
        return Err(ApiError::bad_request("url is required"));
    };
    let path = locate(&inner.world, caller.user, url).ok_or_else(|| ApiError::not_found(""))?;
    let location = format!("{}{path}", shared.base_url);
    let mut response = json_response(
        StatusCode::FOUND,
        &json!({ "status": "302 - Found", "location": location }),
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}
