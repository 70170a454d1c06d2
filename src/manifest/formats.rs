//! What a text value in the manifest may look like: keys, references, enum
//! values, `${VAR}` templates, cron schedules. Each format checks a value
//! (with a message saying what was expected) and describes itself to the
//! JSON Schema. A schema pattern is never stricter than the check (a test
//! holds them to that), so an editor never flags what `validate` accepts.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Map, Value as Json, json};

use crate::model::{Reference, Urn, UrnKind};

pub const DEFAULT_API_URL: &str = "https://api.soundcloud.com";
pub const DEFAULT_AUTH_URL: &str = "https://secure.soundcloud.com";

/// The longest manifest key accepted.
const MAX_KEY_LEN: usize = 100;

pub(crate) const SHARING: &[&str] = &["public", "private"];
pub(crate) const LICENSES: &[&str] = &[
    "no-rights-reserved",
    "all-rights-reserved",
    "cc-by",
    "cc-by-nc",
    "cc-by-nd",
    "cc-by-sa",
    "cc-by-nc-nd",
    "cc-by-nc-sa",
];
pub(crate) const SET_TYPES: &[&str] = &["album", "playlist"];
pub(crate) const EMBEDDABLE_BY: &[&str] = &["all", "me", "none"];
pub(crate) const ON_AUDIO_CHANGE: &[&str] = &["warn", "replace"];

/// Where a reference appears, which decides the forms it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefSite {
    /// A playlist's track: a manifest track key, a track URN or a track URL.
    PlaylistTrack,
    /// `follows`: a user URN or a profile URL.
    Follow,
    /// `likes.tracks`: a track URN or URL.
    LikedTrack,
    /// `likes.playlists`: a playlist URN or URL.
    LikedPlaylist,
}

impl RefSite {
    pub fn kind(self) -> UrnKind {
        match self {
            RefSite::PlaylistTrack | RefSite::LikedTrack => UrnKind::Track,
            RefSite::Follow => UrnKind::User,
            RefSite::LikedPlaylist => UrnKind::Playlist,
        }
    }

    /// The accepted forms, for messages.
    pub fn expected(self) -> &'static str {
        match self {
            RefSite::PlaylistTrack => {
                "a manifest track key, soundcloud:tracks:N, or https://soundcloud.com/USER/TRACK"
            }
            RefSite::Follow => "soundcloud:users:N or https://soundcloud.com/USER",
            RefSite::LikedTrack => "soundcloud:tracks:N or https://soundcloud.com/USER/TRACK",
            RefSite::LikedPlaylist => {
                "soundcloud:playlists:N or https://soundcloud.com/USER/sets/PLAYLIST"
            }
        }
    }
}

/// The format of a text value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Free text; numbers are taken as written.
    Any,
    /// A file path (not empty).
    Path,
    OneOf(&'static [&'static str]),
    /// A manifest key.
    Key,
    /// One tag of a `tags` list.
    Tag,
    Ref(RefSite),
    /// `adopt:`: a URN of this kind.
    Adopt(UrnKind),
    /// Account text that may hold `${VAR}`.
    Template,
    /// Account URL: `${VAR}` somewhere, or an http(s) URL.
    UrlTemplate,
    /// `client_secret`: exactly one `${VAR}`, never the secret itself.
    SecretRef,
    Cron,
    Timezone,
    SocketAddr,
    /// A permalink slug.
    Permalink,
    /// An http(s) URL.
    HttpUrl,
}

impl Format {
    /// Checks a value. The error says what is wrong and what was expected;
    /// it never repeats the value of a secret.
    pub fn check(self, text: &str) -> Result<(), String> {
        match self {
            Format::Any => Ok(()),
            Format::Path => {
                if text.trim().is_empty() {
                    Err("expected a file path, found empty text".to_owned())
                } else {
                    Ok(())
                }
            }
            Format::OneOf(choices) => {
                if choices.contains(&text) {
                    Ok(())
                } else {
                    Err(one_of_message(text, choices))
                }
            }
            Format::Key => check_key(text),
            Format::Tag => check_tag(text),
            Format::Ref(site) => parse_reference(text, site).map(|_| ()),
            Format::Adopt(kind) => parse_adopt(text, kind).map(|_| ()),
            Format::Template => Template::parse_pieces(text).map(|_| ()),
            Format::UrlTemplate => {
                let pieces = Template::parse_pieces(text)?;
                if pieces.iter().any(|p| matches!(p, Piece::Var(_))) {
                    Ok(())
                } else {
                    check_base_url(text)
                }
            }
            Format::SecretRef => check_secret_ref(text),
            Format::Cron => check_cron(text),
            Format::Timezone => check_timezone(text),
            Format::SocketAddr => text.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
                format!(
                    "expected an address and port such as 127.0.0.1:9090, found {:?}",
                    text
                )
            }),
            Format::Permalink => check_permalink(text),
            Format::HttpUrl => check_http_url(text),
        }
    }

    /// Whether a number written without quotes is accepted as this text.
    pub fn takes_numbers(self) -> bool {
        matches!(self, Format::Any | Format::Tag)
    }

    /// Short wording of what is expected, for type errors.
    pub fn expected(self) -> String {
        match self {
            Format::Any | Format::Template => "text".to_owned(),
            Format::Path => "a file path".to_owned(),
            Format::OneOf(choices) => format!("one of {}", choices.join(", ")),
            Format::Key => "a key (lowercase letters, digits, '.', '_' or '-')".to_owned(),
            Format::Tag => "a tag (text)".to_owned(),
            Format::Ref(site) => site.expected().to_owned(),
            Format::Adopt(kind) => format!("soundcloud:{}:N", kind.as_str()),
            Format::UrlTemplate => "an http(s) URL or ${VAR}".to_owned(),
            Format::SecretRef => "${VAR} naming an environment variable".to_owned(),
            Format::Cron => "a cron expression such as \"0 */15 * * * *\"".to_owned(),
            Format::Timezone => "a time zone such as UTC or Europe/Berlin".to_owned(),
            Format::SocketAddr => "an address and port such as 127.0.0.1:9090".to_owned(),
            Format::Permalink => "a permalink (lowercase letters, digits, '-' or '_')".to_owned(),
            Format::HttpUrl => "an http(s) URL".to_owned(),
        }
    }

    /// JSON Schema keywords for a string of this format.
    pub fn json(self) -> Map<String, Json> {
        let mut out = Map::new();
        let ty = if self.takes_numbers() {
            json!(["string", "number"])
        } else {
            json!("string")
        };
        out.insert("type".into(), ty);
        if let Format::OneOf(choices) = self {
            out.insert("enum".into(), json!(choices));
        }
        if let Some(pattern) = self.pattern() {
            out.insert("pattern".into(), json!(pattern));
        }
        if matches!(self, Format::Path) {
            out.insert("minLength".into(), json!(1));
        }
        out
    }

    /// A regular expression (valid in both ECMA-262 and the `regex` crate)
    /// that every value passing [`Format::check`] matches. Some checks are
    /// finer than a pattern can say (reserved URL words, URN kinds in URLs).
    pub fn pattern(self) -> Option<&'static str> {
        Some(match self {
            Format::Key => "^[a-z0-9][a-z0-9._-]*$",
            Format::Tag => "^[^\"]*\\S[^\"]*$",
            Format::Ref(RefSite::PlaylistTrack) => {
                "^([a-z0-9][a-z0-9._-]*|soundcloud:tracks:[0-9]+|(https?://)?((www|m)\\.)?soundcloud\\.com/[^/?#]+/[^/?#]+(/[^/?#]*)?/?([?#].*)?)$"
            }
            Format::Ref(RefSite::LikedTrack) => {
                "^(soundcloud:tracks:[0-9]+|(https?://)?((www|m)\\.)?soundcloud\\.com/[^/?#]+/[^/?#]+(/[^/?#]*)?/?([?#].*)?)$"
            }
            Format::Ref(RefSite::LikedPlaylist) => {
                "^(soundcloud:playlists:[0-9]+|(https?://)?((www|m)\\.)?soundcloud\\.com/[^/?#]+/sets/[^/?#]+(/[^/?#]*)?/?([?#].*)?)$"
            }
            Format::Ref(RefSite::Follow) => {
                "^(soundcloud:users:[0-9]+|(https?://)?((www|m)\\.)?soundcloud\\.com/[^/?#]+/?([?#].*)?)$"
            }
            Format::Adopt(UrnKind::Track) => "^soundcloud:tracks:[0-9]+$",
            Format::Adopt(UrnKind::Playlist) => "^soundcloud:playlists:[0-9]+$",
            Format::Adopt(UrnKind::User) => "^soundcloud:users:[0-9]+$",
            Format::SecretRef => "^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$",
            Format::Permalink => "^[a-z0-9_-]+$",
            Format::HttpUrl => "^https?://",
            Format::Any
            | Format::Path
            | Format::OneOf(_)
            | Format::Template
            | Format::UrlTemplate
            | Format::Cron
            | Format::Timezone
            | Format::SocketAddr => return None,
        })
    }
}

fn one_of_message(text: &str, choices: &[&str]) -> String {
    let mut message = format!("{:?} is not one of {}", text, choices.join(", "));
    if let Some(close) = closest(text, choices.iter().copied()) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message
}

/// The candidate closest to `word`, if close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (strsim::damerau_levenshtein(&word_lower, c), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

fn check_key(text: &str) -> Result<(), String> {
    let valid_chars = text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    let starts_well = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if text.is_empty() {
        return Err("a key must not be empty".to_owned());
    }
    if text.chars().count() > MAX_KEY_LEN {
        return Err(format!(
            "a key must be at most {MAX_KEY_LEN} characters long"
        ));
    }
    if valid_chars && starts_well {
        return Ok(());
    }
    let mut message = format!(
        "{text:?} is not a valid key: use lowercase letters, digits, '.', '_' and '-', \
         starting with a letter or digit"
    );
    let suggestion = suggest_key(text);
    if check_key_chars(&suggestion) {
        message.push_str(&format!(" (for example `{suggestion}`)"));
    }
    Err(message)
}

fn check_key_chars(text: &str) -> bool {
    !text.is_empty()
        && text.chars().count() <= MAX_KEY_LEN
        && text.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn suggest_key(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches(|c| matches!(c, '-' | '.' | '_'))
        .to_owned()
}

fn check_tag(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("a tag must not be empty".to_owned());
    }
    if text.contains('"') {
        // SoundCloud's tag_list quotes multiword tags with '"'.
        return Err(format!(
            "the tag {text:?} contains '\"', which SoundCloud uses to quote tags; remove it"
        ));
    }
    Ok(())
}

/// Parses a reference in the forms `site` accepts.
pub(crate) fn parse_reference(text: &str, site: RefSite) -> Result<Reference, String> {
    let expected = site.expected();
    if text.trim() != text || text.is_empty() {
        return Err(format!(
            "{text:?} has surrounding spaces or is empty; expected {expected}"
        ));
    }
    if text.starts_with("soundcloud:") {
        let urn = Urn::parse(text).ok_or_else(|| {
            format!(
                "{text:?} is not a valid URN (soundcloud:tracks|playlists|users:NUMBER); \
                 expected {expected}"
            )
        })?;
        if urn.kind != site.kind() {
            return Err(format!(
                "{text} names a {}, but this list takes {}s; expected {expected}",
                kind_word(urn.kind),
                kind_word(site.kind())
            ));
        }
        return Ok(Reference::Urn(urn));
    }
    if looks_like_url(text) {
        return parse_url(text, site).map(Reference::Url);
    }
    if site == RefSite::PlaylistTrack {
        check_key(text).map_err(|e| format!("{e}; expected {expected}"))?;
        return Ok(Reference::Key(text.to_owned()));
    }
    Err(format!(
        "{text:?} is neither a URN nor a soundcloud.com URL (manifest keys are accepted \
         only in a playlist's tracks); expected {expected}"
    ))
}

pub(crate) fn kind_word(kind: UrnKind) -> &'static str {
    match kind {
        UrnKind::Track => "track",
        UrnKind::Playlist => "playlist",
        UrnKind::User => "user",
    }
}

fn looks_like_url(text: &str) -> bool {
    text.contains("://") || text.contains('/') || text.contains("soundcloud.com")
}

/// Path words that are pages of a profile, not tracks.
const PROFILE_PAGES: &[&str] = &[
    "sets",
    "likes",
    "tracks",
    "albums",
    "reposts",
    "followers",
    "following",
    "popular-tracks",
    "comments",
    "spotlight",
];

/// Checks a soundcloud.com URL for the kind `site` takes and returns it in
/// a canonical form (`https://soundcloud.com/PATH`, no query or fragment),
/// so one object written two ways is one reference.
fn parse_url(text: &str, site: RefSite) -> Result<String, String> {
    let expected = site.expected();
    let with_scheme = if text.starts_with("https://") || text.starts_with("http://") {
        text.to_owned()
    } else if text.contains("://") {
        return Err(format!(
            "{text:?} is not an http(s) URL; expected {expected}"
        ));
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| format!("{text:?} is not a valid URL ({e}); expected {expected}"))?;
    let host = url.host_str().unwrap_or_default();
    if url.port().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?} carries a port or user name; expected {expected}"
        ));
    }
    if host == "on.soundcloud.com" {
        return Err(format!(
            "{text:?} is a short link, whose kind cannot be checked without the network; \
             open it and use the full soundcloud.com URL"
        ));
    }
    if !matches!(
        host,
        "soundcloud.com" | "www.soundcloud.com" | "m.soundcloud.com"
    ) {
        return Err(format!(
            "{text:?} is not a soundcloud.com URL; expected {expected}"
        ));
    }
    let mut segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    if segments.last() == Some(&"") {
        segments.pop();
    }
    if segments.iter().any(|seg| seg.is_empty()) {
        return Err(format!(
            "{text:?} has an empty path segment; expected {expected}"
        ));
    }
    let found = match segments.as_slice() {
        [_user] => Some(UrnKind::User),
        [_user, page] if PROFILE_PAGES.contains(page) => None,
        [_user, _track] => Some(UrnKind::Track),
        // A private track's secret link.
        [_user, track, secret] if !PROFILE_PAGES.contains(track) && secret.starts_with("s-") => {
            Some(UrnKind::Track)
        }
        [_user, "sets", _set] => Some(UrnKind::Playlist),
        [_user, "sets", _set, secret] if secret.starts_with("s-") => Some(UrnKind::Playlist),
        _ => None,
    };
    match found {
        Some(kind) if kind == site.kind() => {
            Ok(format!("https://soundcloud.com/{}", segments.join("/")))
        }
        Some(kind) => Err(format!(
            "{text} is a {}'s URL, but this list takes {}s; expected {expected}",
            kind_word(kind),
            kind_word(site.kind())
        )),
        None => Err(format!(
            "{text} is not the URL of a user, track or playlist; expected {expected}"
        )),
    }
}

/// Parses `adopt:`.
pub(crate) fn parse_adopt(text: &str, kind: UrnKind) -> Result<Urn, String> {
    let expected = format!("soundcloud:{}:N", kind.as_str());
    match Urn::parse(text) {
        Some(urn) if urn.kind == kind => Ok(urn),
        Some(urn) => Err(format!(
            "{text} names a {}; adopt takes a {} URN ({expected})",
            kind_word(urn.kind),
            kind_word(kind)
        )),
        None => Err(format!(
            "{text:?} is not a URN; adopt takes {expected} (find it with `scsync import`)"
        )),
    }
}

fn check_permalink(text: &str) -> Result<(), String> {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
    {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not a valid permalink; use lowercase letters, digits, '-' and '_'"
        ))
    }
}

fn check_http_url(text: &str) -> Result<(), String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(format!("{text:?} is not an http(s) URL")),
    }
}

fn check_base_url(text: &str) -> Result<(), String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if url.query().is_some() || url.fragment().is_some() {
                Err(format!(
                    "{text:?} has a query or fragment; expected a base URL such as {DEFAULT_API_URL}"
                ))
            } else {
                Ok(())
            }
        }
        _ => Err(format!(
            "{text:?} is not an http(s) URL; expected a base URL such as {DEFAULT_API_URL}"
        )),
    }
}

/// Expands and checks a base URL; drops a trailing slash.
pub(crate) fn normalise_base_url(text: &str) -> Result<String, String> {
    check_base_url(text)?;
    Ok(text.trim_end_matches('/').to_owned())
}

fn check_secret_ref(text: &str) -> Result<(), String> {
    let pieces = Template::parse_pieces(text).ok();
    match pieces.as_deref() {
        Some([Piece::Var(_)]) => Ok(()),
        // The value may be the secret itself: never repeat it.
        _ => Err(
            "the secret is written literally, and secrets never sit in the manifest; \
                  use `client_secret: ${VAR}` (an environment variable) or \
                  `client_secret_file: PATH`"
                .to_owned(),
        ),
    }
}

/// A cron expression, checked by the very parser the daemon schedules with,
/// so `validate` passes exactly what `daemon` accepts.
fn check_cron(text: &str) -> Result<(), String> {
    crate::daemon::Schedule::parse(text.trim(), None)
        .map(|_| ())
        .map_err(|e| {
            let message = e.to_string();
            // The location already names the field.
            message
                .strip_prefix("daemon.schedule ")
                .map_or(message.clone(), str::to_owned)
        })
}

/// A time zone the daemon can schedule in: UTC or an IANA name.
fn check_timezone(text: &str) -> Result<(), String> {
    match text.parse::<chrono_tz::Tz>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{text:?} is not a known time zone; expected UTC or an IANA name such as Europe/Berlin"
        )),
    }
}

/// Where a value was written, for messages raised after loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Account text as written, possibly holding `${VAR}` references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pub raw: String,
    pub origin: Origin,
    /// The folder of the file that holds it (relative `*_file` paths).
    pub dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Var(String),
}

impl Template {
    /// Splits `text` into literal text and `${NAME}` references; `$$` is a
    /// literal `$`, and a `$` not followed by `{` or `$` is literal too.
    pub fn parse_pieces(text: &str) -> Result<Vec<Piece>, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('{') {
                let Some(end) = tail.find('}') else {
                    return Err(
                        "`${` is not closed by `}`; write ${NAME}, or $$ for a literal $"
                            .to_owned(),
                    );
                };
                let name = &tail[..end];
                if !is_var_name(name) {
                    return Err(format!(
                        "`${{{name}}}` is not a valid variable reference; a name is letters, \
                         digits and '_', not starting with a digit"
                    ));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Var(name.to_owned()));
                rest = &tail[end + 1..];
            } else {
                literal.push('$');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(pieces)
    }

    /// Expands every reference; the error names each missing variable.
    pub fn expand(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let pieces = Self::parse_pieces(&self.raw)?;
        let mut out = String::new();
        let mut missing = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Var(name) => match env(&name) {
                    Some(value) => out.push_str(&value),
                    None => missing.push(name),
                },
            }
        }
        match missing.as_slice() {
            [] => Ok(out),
            [one] => Err(format!(
                "the environment variable {one} is not set (or not UTF-8); set it, \
                 or write the value here"
            )),
            many => Err(format!(
                "the environment variables {} are not set (or not UTF-8)",
                many.join(", ")
            )),
        }
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_tracks_take_keys_track_urns_and_track_urls() {
        let site = RefSite::PlaylistTrack;
        assert_eq!(
            parse_reference("night-drive", site),
            Ok(Reference::Key("night-drive".into()))
        );
        assert_eq!(
            parse_reference("soundcloud:tracks:987654", site),
            Ok(Reference::Urn(Urn::track(987_654)))
        );
        assert_eq!(
            parse_reference(
                "https://www.soundcloud.com/someone/a-track?si=abc#t=1",
                site
            ),
            Ok(Reference::Url(
                "https://soundcloud.com/someone/a-track".into()
            ))
        );
        assert_eq!(
            parse_reference("soundcloud.com/someone/a-track/s-SeCrEt", site),
            Ok(Reference::Url(
                "https://soundcloud.com/someone/a-track/s-SeCrEt".into()
            ))
        );
    }

    #[test]
    fn references_of_the_wrong_kind_say_which_kind_they_are() {
        let err = parse_reference("soundcloud:users:42", RefSite::PlaylistTrack).unwrap_err();
        assert!(
            err.contains("names a user, but this list takes tracks"),
            "{err}"
        );
        let err = parse_reference(
            "https://soundcloud.com/someone/sets/mix",
            RefSite::LikedTrack,
        )
        .unwrap_err();
        assert!(
            err.contains("is a playlist's URL, but this list takes tracks"),
            "{err}"
        );
        let err =
            parse_reference("https://soundcloud.com/someone/a-track", RefSite::Follow).unwrap_err();
        assert!(
            err.contains("is a track's URL, but this list takes users"),
            "{err}"
        );
        let err = parse_reference("https://soundcloud.com/someone/likes", RefSite::LikedTrack)
            .unwrap_err();
        assert!(
            err.contains("not the URL of a user, track or playlist"),
            "{err}"
        );
    }

    #[test]
    fn follows_and_likes_refuse_manifest_keys() {
        let err = parse_reference("night-drive", RefSite::LikedTrack).unwrap_err();
        assert!(
            err.contains("manifest keys are accepted only in a playlist"),
            "{err}"
        );
        assert!(parse_reference("someone", RefSite::Follow).is_err());
    }

    #[test]
    fn foreign_hosts_and_short_links_are_refused() {
        let err = parse_reference("https://example.com/a/b", RefSite::LikedTrack).unwrap_err();
        assert!(err.contains("not a soundcloud.com URL"), "{err}");
        let err =
            parse_reference("https://on.soundcloud.com/AbCd", RefSite::LikedTrack).unwrap_err();
        assert!(err.contains("short link"), "{err}");
    }

    #[test]
    fn keys_are_lowercase_words_and_a_fix_is_suggested() {
        assert!(check_key("night-drive.v2_final").is_ok());
        let err = check_key("Night Drive").unwrap_err();
        assert!(err.contains("for example `night-drive`"), "{err}");
        assert!(check_key("").is_err());
        assert!(check_key("-x").is_err());
        assert!(check_key(&"a".repeat(101)).is_err());
    }

    #[test]
    fn templates_expand_variables_and_name_the_missing_ones() {
        let t = Template {
            raw: "${HOST}/x$$y$z".into(),
            origin: Origin {
                file: "m.yaml".into(),
                line: 1,
                column: 1,
            },
            dir: ".".into(),
        };
        let env = |name: &str| (name == "HOST").then(|| "http://h".to_owned());
        assert_eq!(t.expand(&env).as_deref(), Ok("http://h/x$y$z"));
        let none = |_: &str| None;
        let err = t.expand(&none).unwrap_err();
        assert!(err.contains("HOST is not set"), "{err}");
        assert!(Template::parse_pieces("${").is_err());
        assert!(Template::parse_pieces("${1X}").is_err());
        assert!(Template::parse_pieces("${}").is_err());
    }

    #[test]
    fn a_literal_secret_is_refused_without_repeating_it() {
        let err = check_secret_ref("hunter2-very-secret").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("client_secret_file"), "{err}");
        assert!(check_secret_ref("${SC_SECRET}").is_ok());
        assert!(check_secret_ref("x${SC_SECRET}").is_err());
    }

    #[test]
    fn cron_shapes() {
        for ok in [
            "0 */15 * * * *",
            "*/5 * * * *",
            "@hourly",
            "0 0 3 * * Mon-Fri",
        ] {
            assert!(check_cron(ok).is_ok(), "{ok}");
        }
        // The last one sets both day-of-month and day-of-week, which the
        // scheduler would AND, unlike classic cron: refused.
        for bad in [
            "* * * *",
            "@sometimes",
            "0 0 * * * * * *",
            "0 0 * * $",
            "0 9 1 * MON",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
    }

    /// Every value the checks accept must match the schema's pattern, so an
    /// editor using the JSON Schema never flags a manifest `validate` accepts.
    #[test]
    fn schema_patterns_are_never_stricter_than_the_checks() {
        let samples = [
            "night-drive",
            "a",
            "0.9_x-y",
            "Night Drive",
            "soundcloud:tracks:1",
            "soundcloud:playlists:77",
            "soundcloud:users:42",
            "soundcloud:tracks:x",
            "https://soundcloud.com/someone",
            "https://soundcloud.com/someone/",
            "http://m.soundcloud.com/someone?x=1",
            "soundcloud.com/someone/a-track",
            "https://soundcloud.com/someone/a-track?si=1&utm=2",
            "https://soundcloud.com/someone/a-track/s-abc",
            "https://soundcloud.com/someone/sets/mix",
            "https://soundcloud.com/someone/sets/mix/s-abc",
            "https://www.soundcloud.com/someone/sets/mix/",
            "https://soundcloud.com/someone/likes",
            "https://on.soundcloud.com/x",
            "https://example.com/a/b",
            "${SECRET}",
            "literal",
            "synthwave",
            "late night",
            "",
            "bad\"tag",
            "my_permalink-2",
            "https://shop.example/x",
        ];
        let formats = [
            Format::Key,
            Format::Tag,
            Format::Ref(RefSite::PlaylistTrack),
            Format::Ref(RefSite::Follow),
            Format::Ref(RefSite::LikedTrack),
            Format::Ref(RefSite::LikedPlaylist),
            Format::Adopt(UrnKind::Track),
            Format::Adopt(UrnKind::Playlist),
            Format::SecretRef,
            Format::Permalink,
            Format::HttpUrl,
        ];
        for format in formats {
            let pattern = format.pattern().expect("these formats have patterns");
            let re = regex::Regex::new(pattern).expect("pattern compiles");
            for sample in samples {
                if format.check(sample).is_ok() {
                    assert!(
                        re.is_match(sample),
                        "{format:?}: {sample:?} passes the check but not {pattern}"
                    );
                }
            }
        }
    }
}
