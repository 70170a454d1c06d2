//! Response bodies in the shapes of the spec's `User`, `Me`, `Track` and
//! `Playlist` schemas, with the deprecated numeric `id` beside `urn`.
//!
//! Unset values follow the spec's example bodies: null where an example
//! shows null for that field, otherwise an empty string or zero.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use crate::world::{Access, Fields, Playlist, Sharing, Track, User, World, format_time};

/// A JSON object with the spec's field names as keys, in insertion order,
/// serialised straight to text (no map of owned keys to build).
#[derive(Debug, Default)]
pub struct Object(Vec<(&'static str, Item)>);

/// A value in an [`Object`].
#[derive(Debug)]
pub enum Item {
    Value(Value),
    Object(Object),
    Shared(Rc<Object>),
    Objects(Vec<Object>),
}

impl From<Value> for Item {
    fn from(v: Value) -> Item {
        Item::Value(v)
    }
}

impl From<Object> for Item {
    fn from(o: Object) -> Item {
        Item::Object(o)
    }
}

impl Object {
    /// Adds a field; each name is put once per object.
    pub fn put(&mut self, name: &'static str, value: impl Into<Item>) {
        self.0.push((name, value.into()));
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, item) in &self.0 {
            map.serialize_entry(name, item)?;
        }
        map.end()
    }
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Item::Value(v) => v.serialize(serializer),
            Item::Object(o) => o.serialize(serializer),
            Item::Shared(o) => o.serialize(serializer),
            Item::Objects(list) => list.serialize(serializer),
        }
    }
}

/// Who is asking and where the emulator lives.
pub struct View<'a> {
    pub base: &'a str,
    pub viewer: Option<u64>,
    /// Users already rendered for this response: a listing embeds the same
    /// owner in many items.
    users: RefCell<HashMap<u64, Rc<Object>>>,
}

impl<'a> View<'a> {
    pub fn new(base: &'a str, viewer: Option<u64>) -> View<'a> {
        View {
            base,
            viewer,
            users: RefCell::default(),
        }
    }
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

/// A CDN-looking artwork URL named after the artwork's hash.
fn artwork_url(sha256: &str) -> String {
    let name: String = sha256.chars().take(12).collect();
    format!("https://i1.sndcdn.com/artworks-{name}-large.jpg")
}

fn stored(fields: &Fields, name: &str, default: Value) -> Value {
    fields.get(name).cloned().unwrap_or(default)
}

fn user_common(world: &World, view: &View, u: &User) -> Object {
    let c = world.user_counts(u.id);
    let f = &u.fields;
    let mut m = Object::default();
    m.put("kind", json!("user"));
    m.put("id", json!(u.id));
    m.put("urn", json!(user_urn(u.id)));
    m.put("username", json!(u.username));
    m.put("permalink", json!(u.permalink));
    m.put(
        "permalink_url",
        json!(format!("https://soundcloud.com/{}", u.permalink)),
    );
    m.put(
        "uri",
        json!(format!("{}/users/{}", view.base, user_urn(u.id))),
    );
    m.put(
        "avatar_url",
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
        m.put(name, stored(f, name, json!("")));
    }
    for name in ["description", "discogs_name", "website", "website_title"] {
        m.put(name, stored(f, name, Value::Null));
    }
    m.put("plan", stored(f, "plan", json!("Free")));
    m.put("created_at", json!(format_time(&u.created_at)));
    m.put("last_modified", json!(format_time(&u.created_at)));
    m.put("followers_count", json!(c.followers));
    m.put("followings_count", json!(c.followings));
    m.put("track_count", json!(c.public_tracks));
    m.put("playlist_count", json!(c.public_playlists));
    m.put("public_favorites_count", json!(c.public_favorites));
    m.put("reposts_count", stored(f, "reposts_count", json!(0)));
    m.put("subscriptions", json!([]));
    m
}

/// A `User` body.
pub fn user(world: &World, view: &View, u: &User) -> Object {
    user_common(world, view, u)
}

/// The `Me` body: the user plus private counts and upload quota.
pub fn me(world: &World, view: &View, u: &User) -> Object {
    let c = world.user_counts(u.id);
    let f = &u.fields;
    let mut m = user_common(world, view, u);
    // Three hours of upload time, as a free account has.
    let seconds_left = 10_800u64.saturating_sub(c.upload_seconds);
    m.put("comments_count", json!(0));
    m.put("likes_count", json!(c.liked_tracks + c.liked_playlists));
    m.put("locale", stored(f, "locale", Value::Null));
    m.put("online", stored(f, "online", json!(false)));
    m.put(
        "primary_email_confirmed",
        stored(f, "primary_email_confirmed", json!(true)),
    );
    m.put("private_tracks_count", json!(c.private_tracks));
    m.put("private_playlists_count", json!(c.private_playlists));
    m.put(
        "quota",
        json!({
            "unlimited_upload_quota": false,
            "upload_seconds_used": c.upload_seconds,
            "upload_seconds_left": seconds_left,
        }),
    );
    m.put("upload_seconds_left", json!(seconds_left));
    m
}

fn user_or_null(world: &World, view: &View, id: u64) -> Item {
    if let Some(done) = view.users.borrow().get(&id) {
        return Item::Shared(done.clone());
    }
    let Some(u) = world.users.get(&id) else {
        return Item::Value(Value::Null);
    };
    let rendered = Rc::new(user(world, view, u));
    view.users.borrow_mut().insert(id, rendered.clone());
    Item::Shared(rendered)
}

/// A `Track` body.
pub fn track(world: &World, view: &View, t: &Track) -> Object {
    let f = &t.fields;
    let urn = track_urn(t.id);
    let api_uri = format!("{}/tracks/{}", view.base, urn);
    let owner = world.users.get(&t.user_id);
    let owner_permalink = owner.map_or("", |u| u.permalink.as_str());
    let mut m = Object::default();
    m.put("kind", json!("track"));
    m.put("id", json!(t.id));
    m.put("urn", json!(urn));
    m.put("user_id", json!(t.user_id));
    m.put("user_urn", json!(user_urn(t.user_id)));
    m.put("title", json!(t.title));
    m.put("permalink", json!(t.permalink));
    m.put(
        "permalink_url",
        json!(format!(
            "https://soundcloud.com/{owner_permalink}/{}",
            t.permalink
        )),
    );
    m.put("uri", json!(api_uri));
    m.put("sharing", json!(t.sharing.as_str()));
    m.put(
        "secret_uri",
        match t.sharing {
            Sharing::Private => json!(format!("{api_uri}?secret_token={}", t.secret_token)),
            Sharing::Public => Value::Null,
        },
    );
    m.put("access", json!(t.access.as_str()));
    m.put("created_at", json!(format_time(&t.created_at)));
    m.put("last_modified", json!(format_time(&t.last_modified)));
    for name in ["genre", "tag_list", "metadata_artist"] {
        m.put(name, stored(f, name, json!("")));
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
        m.put(name, stored(f, name, Value::Null));
    }
    m.put(
        "license",
        stored(f, "license", json!("all-rights-reserved")),
    );
    m.put("embeddable_by", stored(f, "embeddable_by", json!("all")));
    for name in [
        "streamable",
        "downloadable",
        "commentable",
        "reveal_stats",
        "reveal_comments",
    ] {
        m.put(name, stored(f, name, json!(true)));
    }
    let artwork = match &t.artwork_sha256 {
        Some(sha) => json!(artwork_url(sha)),
        None => json!(""),
    };
    m.put("artwork_url", stored(f, "artwork_url", artwork));
    m.put(
        "waveform_url",
        stored(
            f,
            "waveform_url",
            json!(format!("https://wave.sndcdn.com/{}_m.png", t.id)),
        ),
    );
    m.put("stream_url", json!(format!("{api_uri}/stream")));
    let downloadable = f
        .get("downloadable")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    m.put(
        "download_url",
        if downloadable {
            json!(format!("{api_uri}/download"))
        } else {
            Value::Null
        },
    );
    m.put("duration", stored(f, "duration", json!(0)));
    for name in [
        "playback_count",
        "comment_count",
        "download_count",
        "reposts_count",
        "user_playback_count",
    ] {
        m.put(name, stored(f, name, json!(0)));
    }
    m.put("favoritings_count", json!(world.track_likers(t.id)));
    let liked = view.viewer.is_some_and(|v| {
        world
            .track_likes
            .get(&v)
            .is_some_and(|set| set.contains(t.id))
    });
    m.put("user_favorite", json!(liked));
    m.put("user", user_or_null(world, view, t.user_id));
    m
}

/// A `Playlist` body. `tracks` lists the tracks `filter` admits (and the
/// viewer may see), in playlist order; `None` leaves them out
/// (`show_tracks=false`).
pub fn playlist(world: &World, view: &View, p: &Playlist, tracks: Option<&AccessFilter>) -> Object {
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
    let mut m = Object::default();
    m.put("kind", json!("playlist"));
    m.put("id", json!(p.id));
    m.put("urn", json!(urn));
    m.put("user_id", json!(p.user_id));
    m.put("user_urn", json!(user_urn(p.user_id)));
    m.put("title", json!(p.title));
    m.put("permalink", json!(p.permalink));
    m.put("permalink_url", json!(permalink_url));
    m.put(
        "uri",
        json!(match p.sharing {
            Sharing::Private => format!("{api_uri}?secret_token={}", p.secret_token),
            Sharing::Public => api_uri.clone(),
        }),
    );
    m.put("tracks_uri", json!(format!("{api_uri}/tracks")));
    m.put("sharing", json!(p.sharing.as_str()));
    m.put("set_type", json!(p.set_type));
    m.put("playlist_type", json!(p.set_type));
    m.put("type", json!(p.set_type));
    m.put("created_at", json!(format_time(&p.created_at)));
    m.put("last_modified", json!(format_time(&p.last_modified)));
    m.put("genre", stored(f, "genre", json!("")));
    let tag_list = stored(f, "tag_list", json!(""));
    m.put("tags", tag_list.clone());
    m.put("tag_list", tag_list);
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
        m.put(name, stored(f, name, Value::Null));
    }
    m.put("label", Value::Null);
    m.put(
        "license",
        stored(f, "license", json!("all-rights-reserved")),
    );
    m.put("embeddable_by", stored(f, "embeddable_by", json!("all")));
    m.put("downloadable", stored(f, "downloadable", json!(true)));
    m.put("streamable", stored(f, "streamable", json!(true)));
    let artwork = match &p.artwork_sha256 {
        Some(sha) => json!(artwork_url(sha)),
        None => json!(""),
    };
    m.put("artwork_url", stored(f, "artwork_url", artwork));
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
        .fold(0u64, u64::saturating_add);
    m.put("duration", json!(duration));
    m.put("track_count", json!(p.tracks.len()));
    m.put("likes_count", json!(world.playlist_likers(p.id)));
    m.put("user", user_or_null(world, view, p.user_id));
    if let Some(filter) = tracks {
        let list: Vec<Object> = p
            .tracks
            .iter()
            .filter_map(|id| world.tracks.get(id))
            .filter(|t| filter.admits(t.access) && world.track_visible(t, view.viewer))
            .map(|t| track(world, view, t))
            .collect();
        m.put("tracks", Item::Objects(list));
    }
    m
}
