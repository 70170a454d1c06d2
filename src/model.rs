//! Domain types shared by the manifest, the remote pull, the state store, the
//! planner and the applier.
//!
//! This module is the contract between those parts: it holds data only, does
//! no IO, and knows nothing of YAML, HTTP or SQL.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The kind of object a URN names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UrnKind {
    Track,
    Playlist,
    User,
}

impl UrnKind {
    /// The plural word SoundCloud uses inside URNs and API paths.
    pub fn as_str(self) -> &'static str {
        match self {
            UrnKind::Track => "tracks",
            UrnKind::Playlist => "playlists",
            UrnKind::User => "users",
        }
    }
}

/// A SoundCloud identifier such as `soundcloud:tracks:123`.
///
/// Numeric ids exceed 2^31 in the wild, so they are kept as `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Urn {
    pub kind: UrnKind,
    pub id: u64,
}

impl Urn {
    pub fn track(id: u64) -> Urn {
        Urn {
            kind: UrnKind::Track,
            id,
        }
    }

    pub fn playlist(id: u64) -> Urn {
        Urn {
            kind: UrnKind::Playlist,
            id,
        }
    }

    pub fn user(id: u64) -> Urn {
        Urn {
            kind: UrnKind::User,
            id,
        }
    }

    /// Parses `soundcloud:KIND:DIGITS`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Urn> {
        let rest = text.strip_prefix("soundcloud:")?;
        let (kind, id) = rest.split_once(':')?;
        let kind = match kind {
            "tracks" => UrnKind::Track,
            "playlists" => UrnKind::Playlist,
            "users" => UrnKind::User,
            _ => return None,
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Urn {
            kind,
            id: id.parse().ok()?,
        })
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "soundcloud:{}:{}", self.kind.as_str(), self.id)
    }
}

/// Error for a string that is not a URN.
#[derive(Debug, thiserror::Error)]
#[error("not a SoundCloud URN (expected soundcloud:tracks|playlists|users:NUMBER): {0:?}")]
pub struct BadUrn(pub String);

impl FromStr for Urn {
    type Err = BadUrn;
    fn from_str(s: &str) -> Result<Urn, BadUrn> {
        Urn::parse(s).ok_or_else(|| BadUrn(s.to_owned()))
    }
}

impl Serialize for Urn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Urn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Urn, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A field's value as the planner compares it and the API sends it.
///
/// `Tags` holds tags already split (quote-aware) and trimmed; the API layer
/// encodes them as SoundCloud's space-separated `tag_list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Text(String),
    Tags(Vec<String>),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Text(t) => write!(f, "{t:?}"),
            FieldValue::Tags(tags) => {
                f.write_str("[")?;
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{tag:?}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// Metadata fields keyed by their manifest name (see [`TRACK_FIELDS`] and
/// [`PLAYLIST_FIELDS`]). Desired fields hold only what the manifest sets:
/// a field left out is never managed.
pub type Fields = BTreeMap<String, FieldValue>;

/// The type of a managed metadata field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Bool,
    Tags,
}

/// Track fields scsync can manage: (manifest name, type). The wire name is
/// the same except `tags`, which travels as `tag_list`.
pub const TRACK_FIELDS: &[(&str, FieldType)] = &[
    ("title", FieldType::Text),
    ("description", FieldType::Text),
    ("genre", FieldType::Text),
    ("tags", FieldType::Tags),
    ("sharing", FieldType::Text),
    ("downloadable", FieldType::Bool),
    ("streamable", FieldType::Bool),
    ("commentable", FieldType::Bool),
    ("license", FieldType::Text),
    ("label_name", FieldType::Text),
    ("purchase_url", FieldType::Text),
    ("release", FieldType::Text),
    ("isrc", FieldType::Text),
    ("embeddable_by", FieldType::Text),
    ("permalink", FieldType::Text),
    ("reveal_stats", FieldType::Bool),
    ("reveal_comments", FieldType::Bool),
];

/// Playlist fields scsync can manage (the track list is separate).
pub const PLAYLIST_FIELDS: &[(&str, FieldType)] = &[
    ("title", FieldType::Text),
    ("description", FieldType::Text),
    ("sharing", FieldType::Text),
    ("set_type", FieldType::Text),
    ("genre", FieldType::Text),
    ("tags", FieldType::Tags),
    ("label_name", FieldType::Text),
    ("license", FieldType::Text),
    ("purchase_url", FieldType::Text),
    ("purchase_title", FieldType::Text),
    ("release", FieldType::Text),
    ("ean", FieldType::Text),
    ("permalink", FieldType::Text),
];

/// A reference from the manifest to a track, playlist or user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Reference {
    /// A manifest key (tracks and playlists only).
    Key(String),
    Urn(Urn),
    /// A soundcloud.com URL, resolved through `/resolve`.
    Url(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Key(k) => f.write_str(k),
            Reference::Urn(u) => write!(f, "{u}"),
            Reference::Url(u) => f.write_str(u),
        }
    }
}

/// A track as the manifest wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTrack {
    pub key: String,
    /// Absolute path of the audio file.
    pub file: PathBuf,
    /// The path as written in the manifest (for messages and plans).
    pub file_display: String,
    pub artwork: Option<PathBuf>,
    /// Manage an already-uploaded track instead of uploading one.
    pub adopt: Option<Urn>,
    pub fields: Fields,
}

/// A playlist as the manifest wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPlaylist {
    pub key: String,
    pub adopt: Option<Urn>,
    pub fields: Fields,
    /// Ordered; `Reference::Key` names a manifest track.
    pub tracks: Vec<Reference>,
}

/// Everything the manifest asks the account to be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub tracks: Vec<DesiredTrack>,
    pub playlists: Vec<DesiredPlaylist>,
    /// Users to follow (URN or URL references).
    pub follows: Vec<Reference>,
    pub liked_tracks: Vec<Reference>,
    pub liked_playlists: Vec<Reference>,
}

/// What to do when a managed track's audio file changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAudioChange {
    #[default]
    Warn,
    Replace,
}

/// Per-kind prune switches; all off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prune {
    pub tracks: bool,
    pub playlists: bool,
    pub follows: bool,
    pub likes: bool,
}

/// The manifest's `policy` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub prune: Prune,
    pub max_deletes: usize,
    pub on_audio_change: OnAudioChange,
    pub concurrency: usize,
    /// Client-side cap on writes, so large applies stay under the service's
    /// limits in the first place.
    pub writes_per_minute: u32,
    pub retry: RetrySettings,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            prune: Prune::default(),
            max_deletes: 10,
            on_audio_change: OnAudioChange::Warn,
            concurrency: 4,
            writes_per_minute: 60,
            retry: RetrySettings::default(),
        }
    }
}

/// The manifest's `policy.retry`: how hard to retry failed requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// First backoff step for a server error, in milliseconds; a rate limit
    /// without a reset time starts at ten times this.
    pub first_delay_ms: u64,
    /// The longest wait a run accepts; a longer server-given wait stops the
    /// run and reports when it can resume.
    pub max_wait_s: u64,
}

impl Default for RetrySettings {
    fn default() -> RetrySettings {
        RetrySettings {
            attempts: 6,
            first_delay_ms: 1000,
            max_wait_s: 900,
        }
    }
}

/// A user as read from the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUser {
    pub urn: Urn,
    pub username: String,
    pub permalink_url: String,
}

/// One of the account's own tracks as read from the service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteTrack {
    pub urn: Urn,
    /// Every field in [`TRACK_FIELDS`] the service returned, normalised
    /// (tags split, text trimmed).
    pub fields: Fields,
    pub permalink_url: String,
    /// As the service writes it: `yyyy/MM/dd HH:mm:ss +0000`.
    pub created_at: Option<String>,
}

/// One of the account's own playlists as read from the service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemotePlaylist {
    pub urn: Urn,
    /// Every field in [`PLAYLIST_FIELDS`] the service returned, normalised.
    pub fields: Fields,
    /// In playlist order, blocked tracks included.
    pub tracks: Vec<Urn>,
    pub permalink_url: String,
    pub created_at: Option<String>,
}

/// The account as it is, pulled completely (a partial read is an error, never
/// a `RemoteState`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteState {
    pub me: RemoteUser,
    pub tracks: Vec<RemoteTrack>,
    pub playlists: Vec<RemotePlaylist>,
    pub followings: Vec<RemoteUser>,
    pub liked_tracks: Vec<Urn>,
    pub liked_playlists: Vec<Urn>,
}

/// The kinds of object scsync creates or adopts and so tracks by key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedKind {
    Track,
    Playlist,
}

/// A track or playlist scsync created or adopted, as recorded in state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedItem {
    pub kind: ManagedKind,
    pub key: String,
    pub urn: Urn,
    /// SHA-256 (hex) of the audio file last uploaded, for tracks.
    pub audio_sha256: Option<String>,
}

/// What the planner needs from the state database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalState {
    pub managed: Vec<ManagedItem>,
    /// URL references already resolved (from the resolve cache or this run).
    pub resolved: BTreeMap<String, Urn>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_round_trips_through_text() {
        let urn = Urn::parse("soundcloud:tracks:2162380995").unwrap();
        assert_eq!(urn, Urn::track(2_162_380_995));
        assert_eq!(urn.to_string(), "soundcloud:tracks:2162380995");
    }

    #[test]
    fn urn_rejects_malformed_text() {
        for bad in [
            "",
            "soundcloud:tracks:",
            "soundcloud:comments:1",
            "soundcloud:tracks:12a",
            "tracks:1",
            "soundcloud:tracks:-1",
            "soundcloud:tracks:99999999999999999999999",
        ] {
            assert_eq!(Urn::parse(bad), None, "{bad}");
        }
    }
}
