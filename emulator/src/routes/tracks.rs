//! `POST /tracks` (streamed upload), `PUT /tracks/{urn}` (partial update,
//! JSON or form) and `DELETE /tracks/{urn}`.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::edit::{self, Blob, Edit, Input, malformed, stream_blob};
use super::{
    MAX_BODY_BYTES, drain_multipart, media_type, or_drain, parse_id, read_body, status_body, view,
};
use crate::audio::{is_audio, is_image, wav_duration_ms};
use crate::error::{ApiError, json_response};
use crate::paging::Params;
use crate::render;
use crate::schema::{TRACK_WRITABLE, writable};
use crate::server::Shared;
use crate::world::{Access, Asset, Sharing, Track, World, new_secret_token, now};

/// Artwork larger than this is refused.
const MAX_ARTWORK_BYTES: u64 = 32 << 20;

/// Turns `track[...]` entries into checked changes; unknown keys are
/// ignored, as the service ignores them.
fn parse_edit(entries: Vec<(String, Input)>) -> Result<Edit, ApiError> {
    let mut out = Edit::default();
    for (name, input) in entries {
        match name.as_str() {
            "title" => out.title = Some(edit::title(&input)?),
            "permalink" => out.permalink = Some(edit::permalink(&input)?),
            "sharing" => out.sharing = Some(edit::sharing(&input)?),
            "release_date" => edit::release_date(&input, &mut out.fields)?,
            _ => {
                if let Some((name, kind)) = writable(TRACK_WRITABLE, &name) {
                    let value = edit::coerce(name, kind, &input)?;
                    out.fields.push((name, value));
                }
            }
        }
    }
    Ok(out)
}

fn artwork_ok(blob: &Blob) -> Result<(), ApiError> {
    if blob.size == 0 || !is_image(&blob.head) {
        return Err(ApiError::unprocessable(
            "unable to process provided artwork_data",
        ));
    }
    Ok(())
}

/// What a multipart track form carried.
#[derive(Default)]
struct TrackForm {
    entries: Vec<(String, Input)>,
    asset: Option<Blob>,
    artwork: Option<Blob>,
}

async fn read_track_form(request: Request, max_asset: u64) -> Result<TrackForm, ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(malformed)?;
    let mut form = TrackForm::default();
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_string();
        let read = match name.as_str() {
            "track[asset_data]" => stream_blob(&mut field, "asset_data", max_asset)
                .await
                .map(|blob| form.asset = Some(blob)),
            "track[artwork_data]" => stream_blob(&mut field, "artwork_data", MAX_ARTWORK_BYTES)
                .await
                .map(|blob| form.artwork = Some(blob)),
            _ => match name
                .strip_prefix("track[")
                .and_then(|n| n.strip_suffix(']'))
            {
                Some(key) => field
                    .text()
                    .await
                    .map_err(malformed)
                    .map(|text| form.entries.push((key.to_string(), Input::Form(text)))),
                None => Ok(()),
            },
        };
        if let Err(e) = read {
            // Answer only once the client has sent everything.
            drain_multipart(&mut multipart).await;
            return Err(e);
        }
    }
    Ok(form)
}

fn apply_fields(track: &mut Track, fields: Vec<(&'static str, Value)>) {
    for (name, value) in fields {
        track.fields.set(name, value);
    }
}

/// `POST /tracks`: multipart with `track[title]` and `track[asset_data]`;
/// the audio is hashed as it streams in, never held whole.
pub async fn upload(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, ApiError> {
    let checked = (|| {
        let inner = shared.lock();
        let user = inner.auth.caller(request.headers())?.user()?;
        if media_type(request.headers()) != "multipart/form-data" {
            return Err(ApiError::bad_request(
                "POST /tracks takes multipart/form-data with track[title] and track[asset_data]",
            ));
        }
        Ok((user, inner.world.limits.max_upload_bytes))
    })();
    let ((user, max_asset), request) = or_drain(checked, request).await?;
    let form = read_track_form(request, max_asset).await?;
    let edit = parse_edit(form.entries)?;
    let Some(title) = edit.title else {
        return Err(ApiError::bad_request("track[title] is required"));
    };
    let Some(asset) = form.asset else {
        return Err(ApiError::bad_request("track[asset_data] is required"));
    };
    if asset.size == 0 || !is_audio(&asset.head) {
        return Err(ApiError::unprocessable(
            "unable to process provided asset_data",
        ));
    }
    if let Some(artwork) = &form.artwork {
        artwork_ok(artwork)?;
    }

    let mut inner = shared.lock();
    let world = &mut inner.world;
    if !world.users.contains_key(&user) {
        return Err(ApiError::unauthorized(""));
    }
    let permalink = match edit.permalink {
        Some(p) if !world.track_permalink_free(user, &p, None) => {
            return Err(ApiError::unprocessable(format!(
                "permalink `{p}` is already taken"
            )));
        }
        Some(p) => p,
        None => world.free_track_permalink(user, &title, None),
    };
    let id = world.allocate_id();
    let created = now();
    let mut track = Track {
        id,
        user_id: user,
        title,
        permalink,
        sharing: edit.sharing.unwrap_or(Sharing::Public),
        access: Access::Playable,
        created_at: created,
        last_modified: created,
        secret_token: new_secret_token(),
        fields: Default::default(),
        asset: Some(Asset {
            sha256: asset.sha256,
            size: asset.size,
        }),
        artwork_sha256: form.artwork.map(|a| a.sha256),
    };
    apply_fields(&mut track, edit.fields);
    if let Some(ms) = wav_duration_ms(&asset.head, asset.size) {
        track.fields.set("duration", json!(ms));
    }
    world.insert_track(track);
    world.refresh_counts();
    let world = &inner.world;
    let body = render::track(world, &view(&shared, Some(user)), &world.tracks[&id]);
    Ok(json_response(StatusCode::CREATED, &body))
}

/// The caller's own track, or 404 / 403.
fn owned_track(world: &World, user: u64, urn: &str) -> Result<u64, ApiError> {
    let track = parse_id("tracks", urn)
        .and_then(|id| world.tracks.get(&id))
        .filter(|t| world.track_visible(t, Some(user)))
        .ok_or_else(|| ApiError::not_found(""))?;
    if track.user_id != user {
        return Err(ApiError::forbidden("you can only change your own tracks"));
    }
    Ok(track.id)
}

/// `PUT /tracks/{urn}`: `{"track": {...}}` as JSON, or `track[...]` form
/// fields (multipart, which may also carry `track[artwork_data]`). Fields
/// left out keep their values.
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(urn): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let checked = (|| {
        let inner = shared.lock();
        let user = inner.auth.caller(request.headers())?.user()?;
        owned_track(&inner.world, user, &urn)?;
        Ok(user)
    })();
    let (user, request) = or_drain(checked, request).await?;
    let kind = media_type(request.headers());
    let (entries, artwork) = match kind.as_str() {
        "application/json" => {
            let bytes = read_body(request.into_body(), MAX_BODY_BYTES).await?;
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|_| ApiError::unprocessable("Could not parse JSON request body."))?;
            let Some(Value::Object(track)) = body.get("track") else {
                return Err(ApiError::unprocessable(
                    r#"the body must be {"track": {...}}"#,
                ));
            };
            let entries = track
                .iter()
                .map(|(k, v)| (k.clone(), Input::Json(v.clone())))
                .collect();
            (entries, None)
        }
        "multipart/form-data" => {
            // The audio of a track cannot be replaced; an `asset_data` part
            // is read and ignored.
            let form = read_track_form(request, u64::MAX).await?;
            (form.entries, form.artwork)
        }
        "application/x-www-form-urlencoded" => {
            let bytes = read_body(request.into_body(), MAX_BODY_BYTES).await?;
            let entries = Params::from_form(&bytes)
                .pairs()
                .filter_map(|(k, v)| {
                    let key = k.strip_prefix("track[")?.strip_suffix(']')?;
                    Some((key.to_string(), Input::Form(v.to_string())))
                })
                .collect();
            (entries, None)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "PUT /tracks takes JSON or form data, not `{other}`"
            )));
        }
    };
    let edit = parse_edit(entries)?;
    if let Some(artwork) = &artwork {
        artwork_ok(artwork)?;
    }

    let mut inner = shared.lock();
    let world = &mut inner.world;
    // Checked again: the track may have gone while the body streamed in.
    let id = owned_track(world, user, &urn)?;
    if let Some(p) = &edit.permalink
        && !world.track_permalink_free(user, p, Some(id))
    {
        return Err(ApiError::unprocessable(format!(
            "permalink `{p}` is already taken"
        )));
    }
    let Some(track) = world.tracks.get_mut(&id) else {
        return Err(ApiError::not_found(""));
    };
    if let Some(title) = edit.title {
        track.title = title;
    }
    if let Some(permalink) = edit.permalink {
        track.permalink = permalink;
    }
    if let Some(sharing) = edit.sharing {
        track.sharing = sharing;
    }
    if let Some(artwork) = artwork {
        track.artwork_sha256 = Some(artwork.sha256);
    }
    apply_fields(track, edit.fields);
    track.last_modified = now();
    world.touch();
    world.refresh_counts();
    let world = &inner.world;
    let body = render::track(world, &view(&shared, Some(user)), &world.tracks[&id]);
    Ok(json_response(StatusCode::OK, &body))
}

/// `DELETE /tracks/{urn}`: also takes the track out of every playlist and
/// every like.
pub async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(urn): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let id = owned_track(&inner.world, user, &urn)?;
    inner.world.delete_track(id);
    Ok(status_body(StatusCode::OK, "200 - OK"))
}
