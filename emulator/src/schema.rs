//! Which fields of the spec's schemas the emulator stores, derives or
//! accepts on writes, with their JSON types (from soundcloud-openapi.yaml).

use serde_json::Value;

/// The JSON type of a stored field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Int,
    Num,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Bool => "a boolean",
            Kind::Int => "an integer",
            Kind::Num => "a number",
        }
    }

    /// Whether `value` has this type (null is always accepted: the service
    /// answers null for unset values).
    pub fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) => true,
            (Kind::Text, Value::String(_)) | (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Kind::Num, Value::Number(_)) => true,
            _ => false,
        }
    }
}

/// How a seed field is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Kept as given (under the schema's own name) and returned in bodies.
    Stored(&'static str, Kind),
    /// Computed by the emulator (URNs, URLs, counts, embedded objects); a
    /// value in a seed is ignored, so a real API body can be pasted in.
    Derived,
}

const TRACK_STORED: &[(&str, Kind)] = &[
    ("description", Kind::Text),
    ("genre", Kind::Text),
    ("tag_list", Kind::Text),
    ("label_name", Kind::Text),
    ("license", Kind::Text),
    ("purchase_url", Kind::Text),
    ("purchase_title", Kind::Text),
    ("release", Kind::Text),
    ("isrc", Kind::Text),
    ("embeddable_by", Kind::Text),
    ("metadata_artist", Kind::Text),
    ("key_signature", Kind::Text),
    ("artwork_url", Kind::Text),
    ("waveform_url", Kind::Text),
    ("available_country_codes", Kind::Text),
    ("streamable", Kind::Bool),
    ("downloadable", Kind::Bool),
    ("commentable", Kind::Bool),
    ("reveal_stats", Kind::Bool),
    ("reveal_comments", Kind::Bool),
    ("duration", Kind::Int),
    ("release_day", Kind::Int),
    ("release_month", Kind::Int),
    ("release_year", Kind::Int),
    ("playback_count", Kind::Int),
    ("comment_count", Kind::Int),
    ("download_count", Kind::Int),
    ("reposts_count", Kind::Int),
    ("user_playback_count", Kind::Int),
    ("bpm", Kind::Num),
];

const TRACK_DERIVED: &[&str] = &[
    "kind",
    "urn",
    "uri",
    "user",
    "user_urn",
    "permalink_url",
    "stream_url",
    "download_url",
    "secret_uri",
    "favoritings_count",
    "likes_count",
    "user_favorite",
];

const PLAYLIST_STORED: &[(&str, Kind)] = &[
    ("description", Kind::Text),
    ("genre", Kind::Text),
    ("tag_list", Kind::Text),
    ("label_name", Kind::Text),
    ("license", Kind::Text),
    ("purchase_title", Kind::Text),
    ("purchase_url", Kind::Text),
    ("release", Kind::Text),
    ("ean", Kind::Text),
    ("embeddable_by", Kind::Text),
    ("artwork_url", Kind::Text),
    ("downloadable", Kind::Bool),
    ("streamable", Kind::Bool),
    ("release_day", Kind::Int),
    ("release_month", Kind::Int),
    ("release_year", Kind::Int),
    ("label_id", Kind::Int),
];

const PLAYLIST_DERIVED: &[&str] = &[
    "kind",
    "urn",
    "uri",
    "user",
    "user_urn",
    "permalink_url",
    "playlist_type",
    "type",
    "track_count",
    "duration",
    "tracks_uri",
    "likes_count",
    "tags",
    "label",
    "secret_uri",
];

const USER_STORED: &[(&str, Kind)] = &[
    ("avatar_url", Kind::Text),
    ("city", Kind::Text),
    ("country", Kind::Text),
    ("description", Kind::Text),
    ("discogs_name", Kind::Text),
    ("first_name", Kind::Text),
    ("last_name", Kind::Text),
    ("full_name", Kind::Text),
    ("plan", Kind::Text),
    ("website", Kind::Text),
    ("website_title", Kind::Text),
    ("locale", Kind::Text),
    ("reposts_count", Kind::Int),
    ("online", Kind::Bool),
    ("primary_email_confirmed", Kind::Bool),
];

const USER_DERIVED: &[&str] = &[
    "kind",
    "urn",
    "uri",
    "permalink_url",
    "last_modified",
    "followers_count",
    "followings_count",
    "track_count",
    "playlist_count",
    "public_favorites_count",
    "likes_count",
    "private_tracks_count",
    "private_playlists_count",
    "comments_count",
    "subscriptions",
    "quota",
    "upload_seconds_left",
];

fn lookup(stored: &[(&'static str, Kind)], derived: &[&str], name: &str) -> Option<Rule> {
    if let Some((n, kind)) = stored.iter().find(|(n, _)| *n == name) {
        return Some(Rule::Stored(n, *kind));
    }
    derived.contains(&name).then_some(Rule::Derived)
}

/// The static name and kind of a writable field.
pub fn writable(table: &[(&'static str, Kind)], name: &str) -> Option<(&'static str, Kind)> {
    table.iter().find(|(n, _)| *n == name).copied()
}

pub fn track_field(name: &str) -> Option<Rule> {
    lookup(TRACK_STORED, TRACK_DERIVED, name)
}

pub fn playlist_field(name: &str) -> Option<Rule> {
    lookup(PLAYLIST_STORED, PLAYLIST_DERIVED, name)
}

pub fn user_field(name: &str) -> Option<Rule> {
    lookup(USER_STORED, USER_DERIVED, name)
}

/// Track fields a client may write (`POST`/`PUT /tracks`), besides `title`,
/// `permalink`, `sharing` and the write-only `release_date`.
pub const TRACK_WRITABLE: &[(&str, Kind)] = &[
    ("description", Kind::Text),
    ("genre", Kind::Text),
    ("tag_list", Kind::Text),
    ("label_name", Kind::Text),
    ("license", Kind::Text),
    ("purchase_url", Kind::Text),
    ("release", Kind::Text),
    ("isrc", Kind::Text),
    ("embeddable_by", Kind::Text),
    ("streamable", Kind::Bool),
    ("downloadable", Kind::Bool),
    ("commentable", Kind::Bool),
    ("reveal_stats", Kind::Bool),
    ("reveal_comments", Kind::Bool),
];

/// Playlist fields a client may write, besides `title`, `permalink`,
/// `sharing`, `set_type`, `tracks` and the write-only `release_date`.
pub const PLAYLIST_WRITABLE: &[(&str, Kind)] = &[
    ("description", Kind::Text),
    ("genre", Kind::Text),
    ("tag_list", Kind::Text),
    ("label_name", Kind::Text),
    ("license", Kind::Text),
    ("purchase_title", Kind::Text),
    ("purchase_url", Kind::Text),
    ("release", Kind::Text),
    ("ean", Kind::Text),
];

/// The licences the spec enumerates.
pub const LICENSES: &[&str] = &[
    "no-rights-reserved",
    "all-rights-reserved",
    "cc-by",
    "cc-by-nc",
    "cc-by-nd",
    "cc-by-sa",
    "cc-by-nc-nd",
    "cc-by-nc-sa",
];

pub const EMBEDDABLE_BY: &[&str] = &["all", "me", "none"];
