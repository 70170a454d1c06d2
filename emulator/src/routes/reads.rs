//! Reads: `/me`, its collections, and single users, tracks and playlists.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::{parse_id, view};
use crate::error::{ApiError, json_response};
use crate::paging::{Listing, PageFault, PageRequest, Params, access_filter};
use crate::render::{self, AccessFilter};
use crate::server::Shared;
use crate::world::World;

type Fault = Option<Extension<PageFault>>;

fn listing<'a>(
    shared: &'a Shared,
    uri: &'a Uri,
    params: &'a Params,
    fault: &'a Fault,
) -> Listing<'a> {
    Listing {
        base: &shared.base_url,
        path: uri.path(),
        raw_query: uri.query(),
        params,
        fault: fault.as_ref().map(|Extension(f)| f),
    }
}

/// The signed-in user of a request, checked against the world (a re-seed
/// may have removed them).
fn signed_in(world: &World, user: u64) -> Result<(), ApiError> {
    if world.users.contains_key(&user) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(""))
    }
}

pub async fn me(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let u = world
        .users
        .get(&user)
        .ok_or_else(|| ApiError::unauthorized(""))?;
    Ok(json_response(
        StatusCode::OK,
        &render::me(world, &view(&shared, Some(user)), u),
    ))
}

pub async fn me_tracks(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    let ascending = match params
        .get("sort")
        .or_else(|| params.get("direction"))
        .or_else(|| params.get("order"))
    {
        None | Some("" | "desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort must be asc or desc, not `{other}`"
            )));
        }
    };
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    signed_in(world, user)?;
    let mut ids = world.tracks_of(user);
    if ascending {
        ids.reverse();
    }
    let v = view(&shared, Some(user));
    let collection = ids[page.window(ids.len())]
        .iter()
        .filter_map(|id| world.tracks.get(id))
        .map(|t| render::track(world, &v, t))
        .collect();
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, ids.len()))
}

pub async fn me_playlists(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    let show_tracks = params.flag("show_tracks", true)?;
    // No `access` parameter is documented here; embedded tracks follow the
    // playlist endpoint's default, which hides blocked tracks.
    let filter = access_filter(&params, AccessFilter::playable_preview())?;
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    signed_in(world, user)?;
    let ids = world.playlists_of(user);
    let v = view(&shared, Some(user));
    let collection = ids[page.window(ids.len())]
        .iter()
        .filter_map(|id| world.playlists.get(id))
        .map(|p| render::playlist(world, &v, p, show_tracks.then_some(&filter)))
        .collect();
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, ids.len()))
}

pub async fn me_followings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    signed_in(world, user)?;
    let v = view(&shared, Some(user));
    let (total, collection) = match world.followings.get(&user) {
        None => (0, Vec::new()),
        Some(set) => (
            set.len(),
            page.window(set.len())
                .filter_map(|i| set.newest(i))
                .filter_map(|id| world.users.get(&id))
                .map(|u| render::user(world, &v, u))
                .collect(),
        ),
    };
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, total))
}

/// Deprecated: one followed user, 404 when not followed.
pub async fn me_following(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let target = parse_id("users", &urn)
        .filter(|id| world.followings.get(&user).is_some_and(|s| s.contains(*id)))
        .and_then(|id| world.users.get(&id))
        .ok_or_else(|| ApiError::not_found(""))?;
    Ok(json_response(
        StatusCode::OK,
        &render::user(world, &view(&shared, Some(user)), target),
    ))
}

pub async fn me_liked_tracks(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    // `access_explicit`: blocked tracks are included unless asked otherwise.
    let filter = access_filter(&params, AccessFilter::all())?;
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    signed_in(world, user)?;
    let v = view(&shared, Some(user));
    let (total, collection) = match world.track_likes.get(&user) {
        None => (0, Vec::new()),
        Some(set) => (
            set.len(),
            page.window(set.len())
                .filter_map(|i| set.newest(i))
                .filter_map(|id| world.tracks.get(&id))
                .filter(|t| filter.admits(t.access) && world.track_visible(t, Some(user)))
                .map(|t| render::track(world, &v, t))
                .collect(),
        ),
    };
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, total))
}

pub async fn me_liked_playlists(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    let show_tracks = params.flag("show_tracks", true)?;
    let filter = AccessFilter::playable_preview();
    let mut inner = shared.lock();
    let user = inner.auth.caller(&headers)?.user()?;
    inner.world.refresh_counts();
    let world = &inner.world;
    signed_in(world, user)?;
    let v = view(&shared, Some(user));
    let (total, collection) = match world.playlist_likes.get(&user) {
        None => (0, Vec::new()),
        Some(set) => (
            set.len(),
            page.window(set.len())
                .filter_map(|i| set.newest(i))
                .filter_map(|id| world.playlists.get(&id))
                .filter(|p| world.playlist_visible(p, Some(user)))
                .map(|p| render::playlist(world, &v, p, show_tracks.then_some(&filter)))
                .collect(),
        ),
    };
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, total))
}

pub async fn user(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let caller = inner.auth.caller(&headers)?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let u = parse_id("users", &urn)
        .and_then(|id| world.users.get(&id))
        .ok_or_else(|| ApiError::not_found(""))?;
    Ok(json_response(
        StatusCode::OK,
        &render::user(world, &view(&shared, caller.user), u),
    ))
}

pub async fn track(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let mut inner = shared.lock();
    let caller = inner.auth.caller(&headers)?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let t = parse_id("tracks", &urn)
        .and_then(|id| world.tracks.get(&id))
        .filter(|t| {
            world.track_visible(t, caller.user)
                || params.get("secret_token") == Some(t.secret_token.as_str())
        })
        .ok_or_else(|| ApiError::not_found(""))?;
    // A single track shows even when blocked, with `access: blocked`.
    Ok(json_response(
        StatusCode::OK,
        &render::track(world, &view(&shared, caller.user), t),
    ))
}

/// `GET /tracks`: look-up by `urns` (or the deprecated `ids`), or a plain
/// title search with `q`.
pub async fn tracks(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    let filter = access_filter(&params, AccessFilter::playable_preview())?;
    let mut inner = shared.lock();
    let caller = inner.auth.caller(&headers)?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let ids: Vec<u64> = if let Some(list) = params.get("urns").or_else(|| params.get("ids")) {
        list.split(',')
            .map(str::trim)
            .filter_map(|s| parse_id("tracks", s))
            .filter(|id| world.tracks.contains_key(id))
            .collect()
    } else {
        let q = params.get("q").unwrap_or("").to_lowercase();
        world
            .tracks
            .values()
            .filter(|t| t.title.to_lowercase().contains(&q))
            .map(|t| t.id)
            .collect()
    };
    let v = view(&shared, caller.user);
    let collection: Vec<_> = ids[page.window(ids.len())]
        .iter()
        .filter_map(|id| world.tracks.get(id))
        .filter(|t| filter.admits(t.access) && world.track_visible(t, caller.user))
        .map(|t| render::track(world, &v, t))
        .collect();
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, ids.len()))
}

pub async fn playlist(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(urn): Path<String>,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let show_tracks = params.flag("show_tracks", true)?;
    let filter = access_filter(&params, AccessFilter::playable_preview())?;
    let mut inner = shared.lock();
    let caller = inner.auth.caller(&headers)?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let p = parse_id("playlists", &urn)
        .and_then(|id| world.playlists.get(&id))
        .filter(|p| {
            world.playlist_visible(p, caller.user)
                || params.get("secret_token") == Some(p.secret_token.as_str())
        })
        .ok_or_else(|| ApiError::not_found(""))?;
    Ok(json_response(
        StatusCode::OK,
        &render::playlist(
            world,
            &view(&shared, caller.user),
            p,
            show_tracks.then_some(&filter),
        ),
    ))
}

pub async fn playlist_tracks(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    Path(urn): Path<String>,
    fault: Fault,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let page = PageRequest::parse(&params)?;
    let filter = access_filter(&params, AccessFilter::playable_preview())?;
    let mut inner = shared.lock();
    let caller = inner.auth.caller(&headers)?;
    inner.world.refresh_counts();
    let world = &inner.world;
    let p = parse_id("playlists", &urn)
        .and_then(|id| world.playlists.get(&id))
        .filter(|p| {
            world.playlist_visible(p, caller.user)
                || params.get("secret_token") == Some(p.secret_token.as_str())
        })
        .ok_or_else(|| ApiError::not_found(""))?;
    let v = view(&shared, caller.user);
    let total = p.tracks.len();
    let collection = p.tracks[page.window(total)]
        .iter()
        .filter_map(|id| world.tracks.get(id))
        .filter(|t| filter.admits(t.access) && world.track_visible(t, caller.user))
        .map(|t| render::track(world, &v, t))
        .collect();
    Ok(listing(&shared, &uri, &params, &fault).respond(&page, collection, total))
}
