//! The seed: the emulator's whole world as data (JSON or YAML).
//!
//! `GET /_emulator/state` answers in this same shape, so a dump can be
//! seeded again. Items take the fields the spec gives their schema; ids are
//! numbers and the emulator derives URNs, permalink URLs, counts and (when
//! absent) timestamps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Default access-token lifetime, as the service answers (`expires_in`).
pub const DEFAULT_TOKEN_TTL_S: u64 = 3599;

/// Why a seed could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the seed is not valid {format}: {message}")]
    Parse {
        format: &'static str,
        message: String,
    },
    #[error("the seed is inconsistent: {0}")]
    Invalid(String),
}

/// The emulator's world: apps, users, tracks, playlists, the signed-in
/// user, followings, likes and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Registered OAuth applications.
    #[serde(default)]
    pub apps: Vec<SeedApp>,
    /// The user `GET /authorize` signs in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me: Option<u64>,
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub tracks: Vec<SeedTrack>,
    #[serde(default)]
    pub playlists: Vec<SeedPlaylist>,
    /// User id (as a string key) -> ids of the users they follow, newest first.
    #[serde(default)]
    pub followings: BTreeMap<String, Vec<u64>>,
    /// User id (as a string key) -> what they like, newest first.
    #[serde(default)]
    pub likes: BTreeMap<String, SeedLikes>,
    #[serde(default)]
    pub limits: Limits,
    /// Access-token lifetime in seconds (`expires_in`).
    #[serde(default = "default_token_ttl")]
    pub token_ttl_s: u64,
}

fn default_token_ttl() -> u64 {
    DEFAULT_TOKEN_TTL_S
}

/// An empty world with the service's limits and token lifetime.
impl Default for Seed {
    fn default() -> Seed {
        Seed {
            apps: Vec::new(),
            me: None,
            users: Vec::new(),
            tracks: Vec::new(),
            playlists: Vec::new(),
            followings: BTreeMap::new(),
            likes: BTreeMap::new(),
            limits: Limits::default(),
            token_ttl_s: DEFAULT_TOKEN_TTL_S,
        }
    }
}

/// A registered application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedApp {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// A public client may exchange a PKCE code without its secret
    /// (as SoundCloud's own CLI does); confidential ones may not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

/// A user. Any other field of the spec's `User`/`Me` schema may be given
/// (city, full_name, plan, ...); counts are derived.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedUser {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A track. Any other field of the spec's `Track` schema may be given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedTrack {
    pub id: u64,
    pub user_id: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
    /// `public` (default) or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<String>,
    /// `playable` (default), `preview` or `blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_token: Option<String>,
    /// SHA-256 (hex) of the uploaded audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_size: Option<u64>,
    /// SHA-256 (hex) of the uploaded artwork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artwork_sha256: Option<String>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A playlist (set). Any other field of the spec's `Playlist` schema may be
/// given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedPlaylist {
    pub id: u64,
    pub user_id: u64,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permalink: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<String>,
    /// `album` or `playlist` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_type: Option<String>,
    /// Track ids in playlist order.
    #[serde(default)]
    pub tracks: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artwork_sha256: Option<String>,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// What one user likes, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedLikes {
    #[serde(default)]
    pub tracks: Vec<u64>,
    #[serde(default)]
    pub playlists: Vec<u64>,
}

/// Service limits the emulator enforces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Follows per account; a follow past it answers 422.
    pub max_followings: usize,
    /// Tracks per playlist; a create/update past it answers 422.
    pub max_playlist_tracks: usize,
    /// Largest accepted `track[asset_data]`, in bytes.
    pub max_upload_bytes: u64,
    /// Client-credentials tokens one app may obtain per 12 hours.
    pub client_credentials_per_12h: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_followings: 2000,
            max_playlist_tracks: 500,
            max_upload_bytes: 4 << 30,
            client_credentials_per_12h: 50,
        }
    }
}

impl Seed {
    /// Parses a seed written as JSON or YAML.
    pub fn from_text(text: &str) -> Result<Seed, SeedError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            serde_json::from_str(trimmed).map_err(|e| SeedError::Parse {
                format: "JSON",
                message: e.to_string(),
            })
        } else {
            serde_yaml::from_str(text).map_err(|e| SeedError::Parse {
                format: "YAML",
                message: e.to_string(),
            })
        }
    }

    /// A small world for `scsync demo` and the README: app `demo`/`s3cret`
    /// (redirect `http://127.0.0.1/callback`, any port), signed-in user
    /// `alice` (1), and `bob` (2) with a few tracks, one of them blocked.
    pub fn demo() -> Seed {
        let text = include_str!("demo-seed.yaml");
        // The demo seed is part of the crate and covered by a test.
        Seed::from_text(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_service_in_code_and_in_files() {
        let empty = Seed::default();
        assert_eq!(empty.token_ttl_s, 3599);
        assert_eq!(empty.limits.max_playlist_tracks, 500);
        assert_eq!(Seed::from_text("{}").expect("empty JSON seed"), empty);
        assert_eq!(Seed::from_text("users: []").expect("YAML seed"), empty);
    }

    #[test]
    fn parse_errors_name_the_format() {
        let err = Seed::from_text("{ nope").expect_err("bad JSON");
        assert!(err.to_string().contains("JSON"), "{err}");
        let err = Seed::from_text("users: [unclosed").expect_err("bad YAML");
        assert!(err.to_string().contains("YAML"), "{err}");
    }
}
