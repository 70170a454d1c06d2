//! Response bodies in the shapes of the spec's `User`, `Me`, `Track` and
//! `Playlist` schemas, with the deprecated numeric `id` beside `urn`.
//!
//! Unset values follow the spec's example bodies: null where an example
//! shows null for that field, otherwise an empty string or zero.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::world::{Access, Fields, Playlist, Sharing, Track, User, World, format_time};

/// Who is asking and where the emulator lives.
pub struct View<'a> {
    pub base: &'a str,
    pub viewer: Option<u64>,
}

/// Which tracks a listing shows, by `Track#access`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFilter(pub HashSet<Access>);

impl AccessFilter {
    /// The spec's `access` default: blocked tracks hidden.
    pub fn playable_preview() -> AccessFilter {
        AccessFilter([Access::Playable, Access::Preview].into_iter().collect())
    }

    /// The spec's `access_explicit` default: everything.
    pub fn all() -> AccessFilter {
        AccessFilter(
            [Access::Playable, Access::Preview, Access::Blocked]
                .into_iter()
                .collect(),
        )
    }

    pub fn admits(&self, access: Access) -> bool {
        self.0.contains(&access)
    }
}

pub fn track_urn(id: u64) -> String {
    format!("soundcloud:tracks:{id}")
}

pub fn playlist_urn(id: u64) -> String {
    format!("soundcloud:playlists:{id}")
}

pub fn user_urn(id: u64) -> String {
    format!("soundcloud:users:{id}")
}

fn stored(fields: &Fields, name: &str, default: Value) -> Value {
    fields.get(name).cloned().unwrap_or(default)
}

fn user_common(world: &World, view: &View, u: &User) -> Map<String, Value> {
    let c = world.user_counts(u.id);
    let f = &u.fields;
    let mut m = Map::new();
    m.insert("kind".into(), json!("user"));
    m.insert("id".into(), json!(u.id));
    m.insert("urn".into(), json!(user_urn(u.id)));
    m.insert("username".into(), json!(u.username));
    m.insert("permalink".into(), json!(u.permalink));
    m.insert(
        "permalink_url".into(),
        json!(format!("https://soundcloud.com/{}", u.permalink)),
    );
    m.insert(
        "uri".into(),
        json!(format!("{}/users/{}", view.base, user_urn(u.id))),
    );
    m.insert(
        "avatar_url".into(),
        stored(
            f,
            "avatar_url",
            json!(format!(
                "https://i1.sndcdn.com/avatars-{:09}-large.jpg",
                u.id
            )),
        ),
    );
    for name in ["city", "country", "first_name", "last_name", "full_name"] {
        m.insert(name.into(), stored(f, name, json!("")));
    }
    for name in ["description", "discogs_name", "website", "website_title"] {
        m.insert(name.into(), stored(f, name, Value::Null));
    }
    m.insert("plan".into(), stored(f, "plan", json!("Free")));
    m.insert("created_at".into(), json!(format_time(&u.created_at)));
    m.insert("last_modified".into(), json!(format_time(&u.created_at)));
    m.insert("followers_count".into(), json!(c.followers));
    m.insert("followings_count".into(), json!(c.followings));
    m.insert("track_count".into(), json!(c.public_tracks));
    m.insert("playlist_count".into(), json!(c.public_playlists));
    m.insert("public_favorites_count".into(), json!(c.public_favorites));
    m.insert("reposts_count".into(), stored(f, "reposts_count", json!(0)));
    m.insert("subscriptions".into(), json!([]));
    m
}

/// A `User` body.
pub fn user(world: &World, view: &View, u: &User) -> Value {
    Value::Object(user_common(world, view, u))
}

/// The `Me` body: the user plus private counts and upload quota.
pub fn me(world: &World, view: &View, u: &User) -> Value {
    let c = world.user_counts(u.id);
    let f = &u.fields;
    let mut m = user_common(world, view, u);
    // Three hours of upload time, as a free account has.
    let seconds_left = 10_800u64.saturating_sub(c.upload_seconds);
    m.insert("comments_count".into(), json!(0));
    m.insert(
        "likes_count".into(),
        json!(c.liked_tracks + c.liked_playlists),
    );
    m.insert("locale".into(), stored(f, "locale", Value::Null));
    m.insert("online".into(), stored(f, "online", json!(false)));
    m.insert(
        "primary_email_confirmed".into(),
        stored(f, "primary_email_confirmed", json!(true)),
    );
    m.insert("private_tracks_count".into(), json!(c.private_tracks));
    m.insert("private_playlists_count".into(), json!(c.private_playlists));
    m.insert(
        "quota".into(),
        json!({
            "unlimited_upload_quota": false,
            "upload_seconds_used": c.upload_seconds,
            "upload_seconds_left": seconds_left,
        }),
    );
    m.insert("upload_seconds_left".into(), json!(seconds_left));
    Value::Object(m)
}

fn user_or_null(world: &World, view: &View, id: u64) -> Value {
    world
        .users
        .get(&id)
        .map_or(Value::Null, |u| user(world, view, u))
}

/// A `Track` body.
pub fn track(world: &World, view: &View, t: &Track) -> Value {
    let f = &t.fields;
    let urn = track_urn(t.id);
    let api_uri = format!("{}/tracks/{}", view.base, urn);
    let owner = world.users.get(&t.user_id);
    let owner_permalink = owner.map_or("", |u| u.permalink.as_str());
    let mut m = Map::new();
    m.insert("kind".into(), json!("track"));
    m.insert("id".into(), json!(t.id));
    m.insert("urn".into(), json!(urn));
    m.insert("user_id".into(), json!(t.user_id));
    m.insert("user_urn".into(), json!(user_urn(t.user_id)));
    m.insert("title".into(), json!(t.title));
    m.insert("permalink".into(), json!(t.permalink));
    m.insert(
        "permalink_url".into(),
        json!(format!(
            "https://soundcloud.com/{owner_permalink}/{}",
            t.permalink
        )),
    );
    m.insert("uri".into(), json!(api_uri));
    m.insert("sharing".into(), json!(t.sharing.as_str()));
    m.insert(
        "secret_uri".into(),
        match t.sharing {
            Sharing::Private => json!(format!("{api_uri}?secret_token={}", t.secret_token)),
            Sharing::Public => Value::Null,
        },
    );
    m.insert("access".into(), json!(t.access.as_str()));
    m.insert("created_at".into(), json!(format_time(&t.created_at)));
    m.insert("last_modified".into(), json!(format_time(&t.last_modified)));
    for name in ["genre", "tag_list", "metadata_artist"] {
        m.insert(name.into(), stored(f, name, json!("")));
    }
    for name in [
        "description",
        "label_name",
        "purchase_url",
        "purchase_title",
        "release",
        "isrc",
        "key_signature",
        "bpm",
        "available_country_codes",
        "release_day",
        "release_month",
        "release_year",
    ] {
        m.insert(name.into(), stored(f, name, Value::Null));
    }
    m.insert(
        "license".into(),
        stored(f, "license", json!("all-rights-reserved")),
    );
    m.insert(
        "embeddable_by".into(),
        stored(f, "embeddable_by", json!("all")),
    );
    for name in [
        "streamable",
        "downloadable",
        "commentable",
        "reveal_stats",
        "reveal_comments",
    ] {
        m.insert(name.into(), stored(f, name, json!(true)));
    }
    let artwork = match &t.artwork_sha256 {
        Some(sha) => json!(format!(
            "https://i1.sndcdn.com/artworks-{}-large.jpg",
            &sha[..sha.len().min(12)]
        )),
        None => json!(""),
    };
    m.insert("artwork_url".into(), stored(f, "artwork_url", artwork));
    m.insert(
        "waveform_url".into(),
        stored(
            f,
            "waveform_url",
            json!(format!("https://wave.sndcdn.com/{}_m.png", t.id)),
        ),
    );
    m.insert("stream_url".into(), json!(format!("{api_uri}/stream")));
    let downloadable = f
        .get("downloadable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    m.insert(
        "download_url".into(),
        if downloadable {
            json!(format!("{api_uri}/download"))
        } else {
            Value::Null
        },
    );
    m.insert("duration".into(), stored(f, "duration", json!(0)));
    for name in [
        "playback_count",
        "comment_count",
        "download_count",
        "reposts_count",
        "user_playback_count",
    ] {
        m.insert(name.into(), stored(f, name, json!(0)));
    }
    m.insert("favoritings_count".into(), json!(world.track_likers(t.id)));
    let liked = view.viewer.is_some_and(|v| {
        world
            .track_likes
            .get(&v)
            .is_some_and(|set| set.contains(t.id))
    });
    m.insert("user_favorite".into(), json!(liked));
    m.insert("user".into(), user_or_null(world, view, t.user_id));
    Value::Object(m)
}

/// A `Playlist` body. `tracks` lists the tracks `filter` admits (and the
/// viewer may see), in playlist order; `None` leaves them out
/// (`show_tracks=false`).
pub fn playlist(world: &World, view: &View, p: &Playlist, tracks: Option<&AccessFilter>) -> Value {
    let f = &p.fields;
    let urn = playlist_urn(p.id);
    let api_uri = format!("{}/playlists/{}", view.base, urn);
    let owner_permalink = world
        .users
        .get(&p.user_id)
        .map_or("", |u| u.permalink.as_str());
    let mut permalink_url = format!(
        "https://soundcloud.com/{owner_permalink}/sets/{}",
        p.permalink
    );
    if p.sharing == Sharing::Private {
        // Private sets carry their secret token in the URL (observed).
        permalink_url = format!("{permalink_url}/{}", p.secret_token);
    }
    let mut m = Map::new();
    m.insert("kind".into(), json!("playlist"));
    m.insert("id".into(), json!(p.id));
    m.insert("urn".into(), json!(urn));
    m.insert("user_id".into(), json!(p.user_id));
    m.insert("user_urn".into(), json!(user_urn(p.user_id)));
    m.insert("title".into(), json!(p.title));
    m.insert("permalink".into(), json!(p.permalink));
    m.insert("permalink_url".into(), json!(permalink_url));
    m.insert(
        "uri".into(),
        json!(match p.sharing {
            Sharing::Private => format!("{api_uri}?secret_token={}", p.secret_token),
            Sharing::Public => api_uri.clone(),
        }),
    );
    m.insert("tracks_uri".into(), json!(format!("{api_uri}/tracks")));
    m.insert("sharing".into(), json!(p.sharing.as_str()));
    m.insert("set_type".into(), json!(p.set_type));
    m.insert("playlist_type".into(), json!(p.set_type));
    m.insert("type".into(), json!(p.set_type));
    m.insert("created_at".into(), json!(format_time(&p.created_at)));
    m.insert("last_modified".into(), json!(format_time(&p.last_modified)));
    m.insert("genre".into(), stored(f, "genre", json!("")));
    let tag_list = stored(f, "tag_list", json!(""));
    m.insert("tags".into(), tag_list.clone());
    m.insert("tag_list".into(), tag_list);
    for name in [
        "description",
        "ean",
        "label_name",
        "label_id",
        "purchase_title",
        "purchase_url",
        "release",
        "release_day",
        "release_month",
        "release_year",
    ] {
        m.insert(name.into(), stored(f, name, Value::Null));
    }
    m.insert("label".into(), Value::Null);
    m.insert(
        "license".into(),
        stored(f, "license", json!("all-rights-reserved")),
    );
    m.insert(
        "embeddable_by".into(),
        stored(f, "embeddable_by", json!("all")),
    );
    m.insert(
        "downloadable".into(),
        stored(f, "downloadable", json!(true)),
    );
    m.insert("streamable".into(), stored(f, "streamable", json!(true)));
    let artwork = match &p.artwork_sha256 {
        Some(sha) => json!(format!(
            "https://i1.sndcdn.com/artworks-{}-large.jpg",
            &sha[..sha.len().min(12)]
        )),
        None => json!(""),
    };
    m.insert("artwork_url".into(), stored(f, "artwork_url", artwork));
    let duration: u64 = p
        .tracks
        .iter()
        .filter_map(|id| world.tracks.get(id))
        .map(|t| {
            t.fields
                .get("duration")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        })
        .sum();
    m.insert("duration".into(), json!(duration));
    m.insert("track_count".into(), json!(p.tracks.len()));
    m.insert("likes_count".into(), json!(world.playlist_likers(p.id)));
    m.insert("user".into(), user_or_null(world, view, p.user_id));
    if let Some(filter) = tracks {
        let list: Vec<Value> = p
            .tracks
            .iter()
            .filter_map(|id| world.tracks.get(id))
            .filter(|t| filter.admits(t.access) && world.track_visible(t, view.viewer))
            .map(|t| track(world, view, t))
            .collect();
        m.insert("tracks".into(), Value::Array(list));
    }
    Value::Object(m)
}
