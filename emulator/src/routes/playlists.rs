//! `POST /playlists` (JSON or multipart), `PUT /playlists/{urn}` (JSON;
//! `tracks` replaces the whole list) and `DELETE /playlists/{urn}`.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::edit::{self, Blob, Edit, Input, malformed, stream_blob};
use super::{MAX_BODY_BYTES, media_type, or_drain, parse_id, read_body, status_body, view};
use crate::audio::is_image;
use crate::error::{ApiError, json_response};
use crate::render::{self, AccessFilter, track_urn};
use crate::schema::{PLAYLIST_WRITABLE, writable};
use crate::server::Shared;
use crate::world::{Playlist, Sharing, World, new_secret_token, now};

const MAX_ARTWORK_BYTES: u64 = 32 << 20;

/// A reference to a track in a playlist body.
#[derive(Debug)]
enum TrackRef {
    Urn(String),
    Id(u64),
}

#[derive(Debug, Default)]
struct PlaylistEdit {
    common: Edit,
    set_type: Option<String>,
    tracks: Option<Vec<TrackRef>>,
}

fn parse_tracks(value: &Value) -> Result<Vec<TrackRef>, ApiError> {
    let Value::Array(items) = value else {
        return Err(edit::unprocessable("tracks", r#"an array of {"urn": ...}"#));
    };
    items
        .iter()
        .map(|item| match (item.get("urn"), item.get("id")) {
            (Some(Value::String(urn)), _) => Ok(TrackRef::Urn(urn.clone())),
            (None, Some(id)) => {
                let id = id
                    .as_u64()
                    .or_else(|| id.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| edit::unprocessable("tracks[].id", "a number"))?;
                Ok(TrackRef::Id(id))
            }
            _ => Err(edit::unprocessable("tracks", r#"an array of {"urn": ...}"#)),
        })
        .collect()
}

fn parse_edit(entries: Vec<(String, Input)>) -> Result<PlaylistEdit, ApiError> {
    let mut out = PlaylistEdit::default();
    for (name, input) in entries {
        match name.as_str() {
            "title" => out.common.title = Some(edit::title(&input)?),
            "permalink" => out.common.permalink = Some(edit::permalink(&input)?),
            "sharing" => out.common.sharing = Some(edit::sharing(&input)?),
            "release_date" => edit::release_date(&input, &mut out.common.fields)?,
            "set_type" => {
                let value = edit::coerce("set_type", crate::schema::Kind::Text, &input)?;
                match value.as_str() {
                    Some(s @ ("album" | "playlist")) => out.set_type = Some(s.to_string()),
                    _ => return Err(edit::unprocessable("set_type", "album or playlist")),
                }
            }
            "tracks" => match &input {
                Input::Json(v) => out.tracks = Some(parse_tracks(v)?),
                Input::Form(_) => {}
            },
            "tracks][][urn" => {
                // Form style: one value, several URNs separated by commas.
                if let Input::Form(list) = &input {
                    let refs = out.tracks.get_or_insert_with(Vec::new);
                    refs.extend(
                        list.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| TrackRef::Urn(s.to_string())),
                    );
                }
            }
            _ => {
                if let Some((name, kind)) = writable(PLAYLIST_WRITABLE, &name) {
                    let value = edit::coerce(name, kind, &input)?;
                    out.common.fields.push((name, value));
                }
            }
        }
    }
    Ok(out)
}

/// Turns references into track ids the user may put in a playlist.
fn resolve_tracks(world: &World, user: u64, refs: &[TrackRef]) -> Result<Vec<u64>, ApiError> {
    let max = world.limits.max_playlist_tracks;
    if refs.len() > max {
        return Err(ApiError::unprocessable(format!(
            "a playlist can hold at most {max} tracks; this one would have {}",
            refs.len()
        )));
    }
    refs.iter()
        .map(|r| {
            let id = match r {
                TrackRef::Urn(urn) => parse_id("tracks", urn).ok_or_else(|| {
                    ApiError::unprocessable(format!("`{urn}` is not a track URN"))
                })?,
                // The numeric form breaks for ids past 32 bits (observed);
                // the URN form is the one to use.
                TrackRef::Id(id) if *id > i32::MAX as u64 => {
                    return Err(ApiError::unprocessable(format!(
                        "track id {id} is invalid; reference tracks by urn"
                    )));
                }
                TrackRef::Id(id) => *id,
            };
            world
                .tracks
                .get(&id)
                .filter(|t| world.track_visible(t, Some(user)))
                .map(|t| t.id)
                .ok_or_else(|| ApiError::not_found(format!("track {} not found", track_urn(id))))
        })
        .collect()
}

async fn read_json_entries(request: Request) -> Result<Vec<(String, Input)>, ApiError> {
    let bytes = read_body(request.into_body(), MAX_BODY_BYTES).await?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::unprocessable("Could not parse JSON request body."))?;
    let Some(Value::Object(playlist)) = body.get("playlist") else {
        return Err(ApiError::unprocessable(
            r#"the body must be {"playlist": {...}}"#,
        ));
    };
    Ok(playlist
        .iter()
        .map(|(k, v)| (k.clone(), Input::Json(v.clone())))
        .collect())
}

async fn read_form_entries(
    request: Request,
) -> Result<(Vec<(String, Input)>, Option<Blob>), ApiError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(malformed)?;
    let mut entries = Vec::new();
    let mut artwork = None;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "playlist[artwork_data]" {
            artwork = Some(stream_blob(&mut field, "artwork_data", MAX_ARTWORK_BYTES).await?);
        } else if let Some(key) = name.strip_prefix("playlist[") {
            let key = key.strip_suffix(']').unwrap_or(key).to_string();
            let text = field.text().await.map_err(malformed)?;
            entries.push((key, Input::Form(text)));
        }
    }
    Ok((entries, artwork))
}

fn apply(p: &mut Playlist, edit: PlaylistEdit, tracks: Option<Vec<u64>>) {
    if let Some(title) = edit.common.title {
        p.title = title;
    }
    if let Some(permalink) = edit.common.permalink {
        p.permalink = permalink;
    }
    if let Some(sharing) = edit.common.sharing {
        p.sharing = sharing;
    }
    if let Some(set_type) = edit.set_type {
        p.set_type = set_type;
    }
    if let Some(tracks) = tracks {
        p.tracks = tracks;
    }
    for (name, value) in edit.common.fields {
        p.fields.set(name, value);
    }
}

fn respond(shared: &Shared, world: &World, user: u64, id: u64, status: StatusCode) -> Response {
    let body = render::playlist(
        world,
        &view(shared, Some(user)),
        &world.playlists[&id],
        Some(&AccessFilter::playable_preview()),
    );
    json_response(status, &body)
}

/// `POST /playlists`: `{"playlist": {...}}` as JSON, or `playlist[...]`
/// multipart fields (with `playlist[artwork_data]`).
pub async fn create(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Result<Response, ApiError> {
    let checked = shared
        .lock()
        .auth
        .caller(request.headers())
        .and_then(|c| c.user());
    let (user, request) = or_drain(checked, request).await?;
    let (entries, artwork) = match media_type(request.headers()).as_str() {
        "application/json" => (read_json_entries(request).await?, None),
        "multipart/form-data" => read_form_entries(request).await?,
        other => {
            return Err(ApiError::bad_request(format!(
                "POST /playlists takes JSON or multipart/form-data, not `{other}`"
            )));
        }
    };
    let edit = parse_edit(entries)?;
    let Some(title) = edit.common.title.clone() else {
        return Err(ApiError::unprocessable("title can't be blank"));
    };
    if let Some(a) = &artwork
        && (a.size == 0 || !is_image(&a.head))
    {
        return Err(ApiError::unprocessable(
            "unable to process provided artwork_data",
        ));
    }

    let mut inner = shared.lock();
    let world = &mut inner.world;
    if !world.users.contains_key(&user) {
        return Err(ApiError::unauthorized(""));
    }
    let tracks = match &edit.tracks {
        Some(refs) => resolve_tracks(world, user, refs)?,
        None => Vec::new(),
    };
    let permalink = match &edit.common.permalink {
        Some(p) if !world.playlist_permalink_free(user, p, None) => {
            return Err(ApiError::unprocessable(format!(
                "permalink `{p}` is already taken"
            )));
        }
        Some(p) => p.clone(),
        None => world.free_playlist_permalink(user, &title, None),
    };
    let id = world.allocate_id();
    let created = now();
    let mut playlist = Playlist {
        id,
        user_id: user,
        title,
        permalink,
        sharing: Sharing::Public,
        set_type: "playlist".into(),
        tracks: Vec::new(),
        created_at: created,
        last_modified: created,
        secret_token: new_secret_token(),
        fields: Default::default(),
        artwork_sha256: artwork.map(|a| a.sha256),
    };
    apply(&mut playlist, edit, Some(tracks));
    world.playlists.insert(id, playlist);
    world.touch();
    world.refresh_counts();
    Ok(respond(
        &shared,
        &inner.world,
        user,
        id,
        StatusCode::CREATED,
    ))
}

fn owned_playlist(world: &World, user: u64, urn: &str) -> Result<u64, ApiError> {
    let playlist = parse_id("playlists", urn)
        .and_then(|id| world.playlists.get(&id))
        .filter(|p| world.playlist_visible(p, Some(user)))
        .ok_or_else(|| ApiError::not_found(""))?;
    if playlist.user_id != user {
        return Err(ApiError::forbidden(
            "you can only change your own playlists",
        ));
    }
    Ok(playlist.id)
}

/// `PUT /playlists/{urn}`: JSON only. `tracks`, when given, replaces the
/// whole ordered list; when left out the list stays as it is.
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Path(urn): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let checked = (|| {
        let inner = shared.lock();
        let user = inner.auth.caller(request.headers())?.user()?;
        owned_playlist(&inner.world, user, &urn)?;
        Ok(user)
    })();
    let (user, request) = or_drain(checked, request).await?;
    let kind = media_type(request.headers());
    if kind != "application/json" {
        return Err(ApiError::bad_request(format!(
            "PUT /playlists takes a JSON body, not `{kind}`"
        )));
    }
    let edit = parse_edit(read_json_entries(request).await?)?;

    let mut inner = shared.lock();
    let world = &mut inner.world;
    let id = owned_playlist(world, user, &urn)?;
    let tracks = match &edit.tracks {
        Some(refs) => Some(resolve_tracks(world, user, refs)?),
        None => None,
    };
    if let Some(p) = &edit.common.permalink
        && !world.playlist_permalink_free(user, p, Some(id))
    {
        return Err(ApiError::unprocessable(format!(
            "permalink `{p}` is already taken"
        )));
    }
    let Some(playlist) = world.playlists.get_mut(&id) else {
        return Err(ApiError::not_found(""));
    };
    apply(playlist, edit, tracks);
    playlist.last_modified = now();
    world.touch();
    world.refresh_counts();
    Ok(respond(&shared, &inner.world, user, id, StatusCode::OK))
}

pub async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(urn): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let id = owned_playlist(&inner.world, user, &urn)?;
    inner.world.delete_playlist(id);
    Ok(status_body(StatusCode::OK, "200 - OK"))
}
