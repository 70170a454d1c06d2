//! Follows (`PUT`/`DELETE /me/followings/{urn}`) and likes
//! (`POST`/`DELETE /likes/tracks/{urn}`, `/likes/playlists/{urn}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{parse_id, status_body, view};
use crate::error::{ApiError, json_response};
use crate::render;
use crate::server::Shared;
use crate::world::FollowRefusal;

/// `PUT /me/followings/{urn}`: 201 with the user for a new follow, 200
/// `{"status": "200 - Successful"}` when already following; 422 with the
/// reason when the follow is not possible.
pub async fn follow(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let target = parse_id("users", &urn).ok_or_else(|| ApiError::not_found(""))?;
    match inner.world.follow(user, target) {
        Ok(true) => {
            inner.world.refresh_counts();
            let world = &inner.world;
            let u = world
                .users
                .get(&target)
                .ok_or_else(|| ApiError::not_found(""))?;
            Ok(json_response(
                StatusCode::CREATED,
                &render::user(world, &view(&shared, Some(user)), u),
            ))
        }
        Ok(false) => Ok(status_body(StatusCode::OK, "200 - Successful")),
        Err(FollowRefusal::NoSuchUser) => Err(ApiError::not_found("")),
        Err(FollowRefusal::Yourself) => Err(ApiError::unprocessable("you cannot follow yourself")),
        Err(FollowRefusal::AtLimit(max)) => Err(ApiError::unprocessable(format!(
            "you have reached the maximum number of followings ({max})"
        ))),
    }
}

/// `DELETE /me/followings/{urn}`: 404 for an unknown user or one not followed.
pub async fn unfollow(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let target = parse_id("users", &urn)
        .filter(|id| inner.world.users.contains_key(id))
        .ok_or_else(|| ApiError::not_found(""))?;
    if !inner.world.unfollow(user, target) {
        return Err(ApiError::not_found("you do not follow this user"));
    }
    Ok(status_body(StatusCode::OK, "Status(200) - OK"))
}

fn visible_track(inner: &crate::server::Inner, user: u64, urn: &str) -> Result<u64, ApiError> {
    let world = &inner.world;
    parse_id("tracks", urn)
        .and_then(|id| world.tracks.get(&id))
        .filter(|t| world.track_visible(t, Some(user)))
        .map(|t| t.id)
        .ok_or_else(|| ApiError::not_found(""))
}

fn visible_playlist(inner: &crate::server::Inner, user: u64, urn: &str) -> Result<u64, ApiError> {
    let world = &inner.world;
    parse_id("playlists", urn)
        .and_then(|id| world.playlists.get(&id))
        .filter(|p| world.playlist_visible(p, Some(user)))
        .map(|p| p.id)
        .ok_or_else(|| ApiError::not_found(""))
}

/// `POST /likes/tracks/{urn}`; liking twice is fine.
pub async fn like_track(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let id = visible_track(&inner, user, &urn)?;
    inner.world.like_track(user, id);
    Ok(status_body(StatusCode::OK, "200 - OK"))
}

/// `DELETE /likes/tracks/{urn}`: 404 when the track is unknown or not liked.
pub async fn unlike_track(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let id = parse_id("tracks", &urn).ok_or_else(|| ApiError::not_found(""))?;
    if !inner.world.unlike_track(user, id) {
        return Err(ApiError::not_found(""));
    }
    Ok(status_body(StatusCode::OK, "200 - OK"))
}

pub async fn like_playlist(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let id = visible_playlist(&inner, user, &urn)?;
    inner.world.like_playlist(user, id);
    Ok(status_body(StatusCode::OK, "200 - OK"))
}

pub async fn unlike_playlist(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    let id = parse_id("playlists", &urn).ok_or_else(|| ApiError::not_found(""))?;
    if !inner.world.unlike_playlist(user, id) {
        return Err(ApiError::not_found(""));
    }
    Ok(status_body(StatusCode::OK, "200 - OK"))
}
