//! Pulls the account's actual state through [`crate::api`].
//!
//! A pull is all or nothing: if any collection cannot be read completely,
//! the pull fails, so a plan is never computed (and nothing is removed)
//! from partial data.

use crate::api::{ApiError, ApiReader};
use crate::model::{RemoteState, Urn};

/// Reads the whole account: identity, own tracks, own playlists (with
/// complete track lists, blocked tracks included), followings and likes.
/// The collections are fetched concurrently with each other.
pub async fn pull(api: &ApiReader) -> Result<RemoteState, ApiError> {
    let (me, tracks, playlists, followings, liked_tracks, liked_playlists) = tokio::try_join!(
        api.me(),
        api.my_tracks(),
        api.my_playlists(),
        api.my_followings(),
        api.my_liked_tracks(),
        api.my_liked_playlists(),
    )?;
    Ok(RemoteState {
        me,
        tracks,
        playlists,
        followings,
        liked_tracks,
        liked_playlists,
    })
}

/// Resolves one soundcloud.com URL to a URN. A URL that names nothing is
/// [`ApiError::ResolveNotFound`], naming the URL.
pub async fn resolve(api: &ApiReader, url: &str) -> Result<Urn, ApiError> {
    api.resolve(url).await
}
