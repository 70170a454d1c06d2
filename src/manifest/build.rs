//! From checked files to a [`Manifest`]: merging files, the rules that span
//! items (unique keys, references, limits), files on disk, and credentials.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::formats::{
    self, DEFAULT_API_URL, DEFAULT_AUTH_URL, Origin, RefSite, Template, closest, parse_adopt,
    parse_reference,
};
use super::schema::{self, Checked, CheckedObject, MAX_FOLLOWS, Problem};
use super::yaml::{self, Pos};
use super::{Account, Credentials, DaemonSettings, Diagnostic, Manifest, ManifestErrors};
use crate::model::{
    Desired, DesiredPlaylist, DesiredTrack, FieldType, FieldValue, Fields, OnAudioChange,
    PLAYLIST_FIELDS, Policy, Prune, Reference, RetrySettings, TRACK_FIELDS, Urn, UrnKind,
};
use crate::secret::Secret;

/// A manifest file larger than this is refused (a real one is far smaller).
const MAX_MANIFEST_BYTES: u64 = 32 * 1024 * 1024;
/// A secret file larger than this is not a secret.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// One file of the manifest after its own checks.
struct LoadedFile {
    /// As shown in messages (the path given, joined with the file name).
    shown: PathBuf,
    /// The folder relative paths in it resolve against (absolute).
    dir: PathBuf,
    doc: Option<CheckedObject>,
}

/// Collects diagnostics.
struct Report {
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    fn at(&mut self, file: &Path, pos: Pos, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    fn whole_file(&mut self, file: &Path, message: impl Into<String>) {
        self.at(file, Pos::default(), message);
    }
}

pub(super) fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
    let mut report = Report {
        diagnostics: Vec::new(),
    };
    let Some((files, base_dir)) = list_files(path, &mut report) else {
        return Err(ManifestErrors::new(report.diagnostics));
    };
    let mut digest = Sha256::new();
    let mut loaded = Vec::with_capacity(files.len());
    for shown in &files {
        let Some(text) = read_text(shown, &mut report) else {
            continue;
        };
        let name = shown
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        digest.update((name.len() as u64).to_le_bytes());
        digest.update(name);
        digest.update((text.len() as u64).to_le_bytes());
        digest.update(text.as_bytes());

        let parsed = yaml::parse(&text);
        for error in &parsed.errors {
            report.at(shown, error.pos, error.message.clone());
        }
        let doc = match &parsed.root {
            Some(root) => {
                let mut problems: Vec<Problem> = Vec::new();
                let doc = schema::check_manifest(root, &mut problems);
                for problem in problems {
                    report.at(shown, problem.pos, problem.message);
                }
                doc
            }
            None => {
                if parsed.errors.is_empty() {
                    report.at(
                        shown,
                        Pos { line: 1, column: 1 },
                        "the file holds no YAML; expected a manifest starting with `version: 1`",
                    );
                }
                None
            }
        };
        loaded.push(LoadedFile {
            shown: shown.clone(),
            dir: base_dir.clone(),
            doc,
        });
    }
    let digest = format!("sha256:{}", hex(&digest.finalize()));
    let assembled = assemble(&loaded, &mut report);
    match assembled {
        Some((account, policy, daemon, desired)) if report.diagnostics.is_empty() => Ok(Manifest {
            files: files.iter().map(|f| absolute(f)).collect(),
            base_dir,
            digest,
            account,
            policy,
            daemon,
            desired,
        }),
        _ => {
            if report.diagnostics.is_empty() {
                // Never answer "invalid" without saying why.
                report.at(
                    &files[0],
                    Pos::default(),
                    "the manifest could not be read as a whole (no single problem was \
                     identified; please report this)",
                );
            }
            Err(ManifestErrors::new(report.diagnostics))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The files to read (as shown in messages) and the base folder (absolute).
fn list_files(path: &Path, report: &mut Report) -> Option<(Vec<PathBuf>, PathBuf)> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) => {
            report.whole_file(path, format!("cannot read the manifest: {err}"));
            return None;
        }
    };
    if !meta.is_dir() {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        return Some((vec![path.to_path_buf()], absolute(&parent)));
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) => {
            report.whole_file(path, format!("cannot list the manifest directory: {err}"));
            return None;
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                report.whole_file(path, format!("cannot list the manifest directory: {err}"));
                return None;
            }
        };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Editors leave `.#name.yaml` lock files and the like.
        if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let file = path.join(name);
        if fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        report.whole_file(
            path,
            "the directory holds no *.yaml or *.yml file; expected the manifest's files",
        );
        return None;
    }
    Some((files, absolute(path)))
}

/// Reads a manifest file as UTF-8 text, reporting what stops it.
fn read_text(file: &Path, report: &mut Report) -> Option<String> {
    let opened = fs::File::open(file).and_then(|f| {
        let len = f.metadata()?.len();
        Ok((f, len))
    });
    let (handle, len) = match opened {
        Ok(ok) => ok,
        Err(err) => {
            report.whole_file(file, format!("cannot read the manifest: {err}"));
            return None;
        }
    };
    if len > MAX_MANIFEST_BYTES {
        report.whole_file(
            file,
            format!("the file is {len} bytes; a manifest may be at most {MAX_MANIFEST_BYTES}"),
        );
        return None;
    }
    let mut bytes = Vec::new();
    if let Err(err) = handle.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes) {
        report.whole_file(file, format!("cannot read the manifest: {err}"));
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(err) => {
            let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
            let valid = String::from_utf8_lossy(valid);
            let line = valid.matches('\n').count() + 1;
            let column = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            report.at(
                file,
                Pos { line, column },
                "the file is not UTF-8 text; save it as UTF-8",
            );
            None
        }
    }
}

/// Where an item was first seen, for "first at" in duplicate messages.
#[derive(Clone)]
struct Seen {
    file: PathBuf,
    pos: Pos,
}

impl Seen {
    /// Where it was, as read from `current` (the file of the new message).
    fn at(&self, current: &Path) -> String {
        if self.file == current {
            format!("line {}, column {}", self.pos.line, self.pos.column)
        } else {
            format!(
                "{}:{}:{}",
                self.file.display(),
                self.pos.line,
                self.pos.column
            )
        }
    }
}

/// The merged manifest's sections, or `None` when something essential is
/// missing (every problem is in `report` either way).
fn assemble(
    files: &[LoadedFile],
    report: &mut Report,
) -> Option<(Account, Policy, DaemonSettings, Desired)> {
    let docs: Vec<(&LoadedFile, &CheckedObject)> = files
        .iter()
        .filter_map(|f| f.doc.as_ref().map(|d| (f, d)))
        .collect();

    let account_doc = single_section(&docs, "account", report);
    let policy_doc = single_section(&docs, "policy", report);
    let daemon_doc = single_section(&docs, "daemon", report);

    let account = match account_doc {
        Some((file, object)) => build_account(file, object, report),
        None => {
            // Report a missing section only when every file could be read
            // and none wrote one (a bad one is reported where it is).
            let written = docs.iter().any(|(_, d)| d.wrote("account"));
            if !written
                && docs.len() == files.len()
                && let Some(first) = files.first()
            {
                report.at(
                    &first.shown,
                    Pos { line: 1, column: 1 },
                    "no `account` section; add one with at least \
                     `client_id: ${SOUNDCLOUD_CLIENT_ID}`",
                );
            }
            None
        }
    };
    let policy = policy_doc.map_or_else(Policy::default, |(_, o)| build_policy(o));
    let daemon = daemon_doc.map_or_else(DaemonSettings::default, |(_, o)| build_daemon(o));
    let desired = build_desired(&docs, report);
    Some((account?, policy, daemon, desired))
}

/// The one file that writes `name`; a second one is an error.
fn single_section<'a>(
    docs: &[(&'a LoadedFile, &'a CheckedObject)],
    name: &str,
    report: &mut Report,
) -> Option<(&'a LoadedFile, &'a CheckedObject)> {
    let mut first: Option<(&LoadedFile, Pos)> = None;
    let mut found = None;
    for (file, doc) in docs {
        let Some(pos) = doc.key_pos(name) else {
            continue;
        };
        if let Some((first_file, first_pos)) = first {
            let seen = Seen {
                file: first_file.shown.clone(),
                pos: first_pos,
            };
            report.at(
                &file.shown,
                pos,
                format!(
                    "`{name}` is already set in {}; write each section in one file only",
                    seen.at(&file.shown)
                ),
            );
            continue;
        }
        first = Some((file, pos));
        found = doc.object(name).map(|o| (*file, o));
    }
    found
}

fn origin(file: &LoadedFile, pos: Pos) -> Origin {
    Origin {
        file: file.shown.clone(),
        line: pos.line,
        column: pos.column,
    }
}

fn build_account(
    file: &LoadedFile,
    object: &CheckedObject,
    report: &mut Report,
) -> Option<Account> {
    let template = |name: &str| {
        object.text(name).map(|(raw, pos)| Template {
            raw: raw.to_owned(),
            origin: origin(file, pos),
            dir: file.dir.clone(),
        })
    };
    // A base URL without `${VAR}` is final now: drop a trailing slash so
    // `Account::api_url` equals `Credentials::api_url`.
    let base_url = |name: &str, default: &str| {
        let mut url = template(name).unwrap_or_else(|| Template {
            raw: default.to_owned(),
            origin: origin(file, object.pos),
            dir: file.dir.clone(),
        });
        if !url.raw.contains('$') {
            url.raw = url.raw.trim_end_matches('/').to_owned();
        }
        url
    };
    if object.wrote("client_secret")
        && let Some(pos) = object.key_pos("client_secret_file")
    {
        report.at(
            &file.shown,
            pos,
            "set either `client_secret` or `client_secret_file`, not both",
        );
    }
    Some(Account {
        client_id: template("client_id")?,
        client_secret: template("client_secret"),
        client_secret_file: template("client_secret_file"),
        api_url: base_url("api_url", DEFAULT_API_URL),
        auth_url: base_url("auth_url", DEFAULT_AUTH_URL),
    })
}

fn build_policy(object: &CheckedObject) -> Policy {
    let defaults = Policy::default();
    let prune = object
        .object("prune")
        .map_or_else(Prune::default, |p| Prune {
            tracks: p.bool("tracks").unwrap_or(false),
            playlists: p.bool("playlists").unwrap_or(false),
            follows: p.bool("follows").unwrap_or(false),
            likes: p.bool("likes").unwrap_or(false),
        });
    let count = |name: &str, default: usize| {
        object
            .int(name)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(default)
    };
    Policy {
        prune,
        max_deletes: count("max_deletes", defaults.max_deletes),
        on_audio_change: match object.text("on_audio_change") {
            Some(("replace", _)) => OnAudioChange::Replace,
            Some(_) => OnAudioChange::Warn,
            None => defaults.on_audio_change,
        },
        concurrency: count("concurrency", defaults.concurrency),
        writes_per_minute: object
            .int("writes_per_minute")
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(defaults.writes_per_minute),
        retry: object
            .object("retry")
            .map_or(defaults.retry, |r| build_retry(r, defaults.retry)),
    }
}

fn build_retry(object: &CheckedObject, defaults: RetrySettings) -> RetrySettings {
    let number = |name: &str| object.int(name).and_then(|i| u64::try_from(i).ok());
    RetrySettings {
        attempts: number("attempts").map_or(defaults.attempts, |n| n as u32),
        first_delay_ms: number("first_delay_ms").unwrap_or(defaults.first_delay_ms),
        max_wait_s: number("max_wait_s").unwrap_or(defaults.max_wait_s),
    }
}

fn build_daemon(object: &CheckedObject) -> DaemonSettings {
    DaemonSettings {
        schedule: object.text("schedule").map(|(t, _)| t.trim().to_owned()),
        timezone: object.text("timezone").map(|(t, _)| t.to_owned()),
        watch: object.bool("watch").unwrap_or(true),
        listen: object
            .text("listen")
            .and_then(|(t, _)| t.parse::<SocketAddr>().ok()),
    }
}

/// Builds the managed fields: only the keys written.
fn fields(object: &CheckedObject, table: &[(&str, FieldType)]) -> Fields {
    let mut out = Fields::new();
    for &(name, ty) in table {
        let Some(checked) = object.get(name) else {
            continue;
        };
        let value = match (ty, &checked.value) {
            (FieldType::Text, schema::CheckedValue::Text(t)) => FieldValue::Text(t.clone()),
            (FieldType::Bool, schema::CheckedValue::Bool(b)) => FieldValue::Bool(*b),
            (FieldType::Tags, schema::CheckedValue::List(items)) => FieldValue::Tags(
                items
                    .iter()
                    .filter_map(Checked::as_text)
                    .map(|t| t.trim().to_owned())
                    .collect(),
            ),
            _ => continue,
        };
        out.insert(name.to_owned(), value);
    }
    out
}

/// The items of a list section across all files, with their file.
fn items<'a>(
    docs: &[(&'a LoadedFile, &'a CheckedObject)],
    section: impl Fn(&'a CheckedObject) -> &'a [Checked],
) -> Vec<(&'a LoadedFile, &'a Checked)> {
    docs.iter()
        .flat_map(|(file, doc)| section(doc).iter().map(move |item| (*file, item)))
        .collect()
}

fn build_desired(docs: &[(&LoadedFile, &CheckedObject)], report: &mut Report) -> Desired {
    let track_items = items(docs, |d| d.list("tracks"));
    let playlist_items = items(docs, |d| d.list("playlists"));

    // Keys first, so references can be checked whatever the file order.
    let track_keys = unique_keys(&track_items, "track", report);
    let playlist_keys = unique_keys(&playlist_items, "playlist", report);
    let _ = playlist_keys;

    let mut adopted: HashMap<Urn, Seen> = HashMap::new();
    let mut desired = Desired::default();

    for (file, item) in &track_items {
        let Some(object) = item.as_object() else {
            continue;
        };
        let key = object.text("key").map(|(k, _)| k.to_owned());
        let name = key
            .as_deref()
            .map_or("this track".to_owned(), |k| format!("track `{k}`"));
        let adopt = adopt_urn(file, object, UrnKind::Track, &mut adopted, report);
        // A bad `adopt` is reported where it is; it still means "not new".
        let adopting = object.wrote("adopt");
        let audio = match object.text("file") {
            Some((text, pos)) => existing_file(file, text, pos, "audio file", report)
                .map(|path| (path, text.to_owned())),
            None => {
                if !adopting && !object.wrote("file") {
                    report.at(
                        &file.shown,
                        object.pos,
                        format!("{name} needs `file` (its audio) unless it sets `adopt`"),
                    );
                }
                None
            }
        };
        if !adopting && !object.wrote("title") {
            report.at(
                &file.shown,
                object.pos,
                format!("{name} needs `title` (a new track is uploaded with one)"),
            );
        }
        blank_title(file, object, &name, report);
        let artwork = object
            .text("artwork")
            .and_then(|(text, pos)| existing_file(file, text, pos, "artwork", report));
        let Some(key) = key else { continue };
        let (file_path, file_display) = audio.unwrap_or_default();
        desired.tracks.push(DesiredTrack {
            key,
            file: file_path,
            file_display,
            artwork,
            adopt,
            fields: fields(object, TRACK_FIELDS),
        });
    }

    for (file, item) in &playlist_items {
        let Some(object) = item.as_object() else {
            continue;
        };
        let key = object.text("key").map(|(k, _)| k.to_owned());
        let name = key
            .as_deref()
            .map_or("this playlist".to_owned(), |k| format!("playlist `{k}`"));
        let adopt = adopt_urn(file, object, UrnKind::Playlist, &mut adopted, report);
        if !object.wrote("adopt") && !object.wrote("title") {
            report.at(
                &file.shown,
                object.pos,
                format!("{name} needs `title` (a new playlist is created with one)"),
            );
        }
        blank_title(file, object, &name, report);
        let mut tracks = Vec::new();
        for entry in object.list("tracks") {
            let Some(text) = entry.as_text() else {
                continue;
            };
            let Ok(reference) = parse_reference(text, RefSite::PlaylistTrack) else {
                continue;
            };
            if let Reference::Key(k) = &reference
                && !track_keys.contains_key(k)
            {
                report.at(&file.shown, entry.pos, dangling(k, &track_keys));
                continue;
            }
            tracks.push(reference);
        }
        let Some(key) = key else { continue };
        desired.playlists.push(DesiredPlaylist {
            key,
            adopt,
            fields: fields(object, PLAYLIST_FIELDS),
            tracks,
        });
    }

    let follows = items(docs, |d| d.list("follows"));
    // One file over the limit is reported by the schema; this catches the sum.
    let one_file_over = docs
        .iter()
        .any(|(_, d)| d.list("follows").len() > MAX_FOLLOWS);
    if !one_file_over && let Some((file, extra)) = follows.get(MAX_FOLLOWS) {
        report.at(
            &file.shown,
            extra.pos,
            format!(
                "`follows` lists {} users across the manifest's files, but SoundCloud \
                 allows following at most {MAX_FOLLOWS}",
                follows.len()
            ),
        );
    }
    desired.follows = references(&follows, RefSite::Follow, "follows", report);
    let liked_tracks = items(docs, |d| {
        d.object("likes").map_or(&[], |l| l.list("tracks"))
    });
    desired.liked_tracks = references(&liked_tracks, RefSite::LikedTrack, "likes.tracks", report);
    let liked_playlists = items(docs, |d| {
        d.object("likes").map_or(&[], |l| l.list("playlists"))
    });
    desired.liked_playlists = references(
        &liked_playlists,
        RefSite::LikedPlaylist,
        "likes.playlists",
        report,
    );
    desired
}

/// Collects the keys of one kind, reporting duplicates (across files too).
fn unique_keys(
    items: &[(&LoadedFile, &Checked)],
    kind: &str,
    report: &mut Report,
) -> HashMap<String, Seen> {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    for (file, item) in items {
        let Some((key, pos)) = item.as_object().and_then(|o| o.text("key")) else {
            continue;
        };
        if let Some(first) = seen.get(key) {
            report.at(
                &file.shown,
                pos,
                format!(
                    "duplicate {kind} key `{key}` (first at {}); keys are unique per kind",
                    first.at(&file.shown)
                ),
            );
            continue;
        }
        seen.insert(
            key.to_owned(),
            Seen {
                file: file.shown.clone(),
                pos,
            },
        );
    }
    seen
}

fn dangling(key: &str, track_keys: &HashMap<String, Seen>) -> String {
    let mut message = format!("`tracks` item: no track in the manifest has the key `{key}`");
    match closest(key, track_keys.keys().map(String::as_str)) {
        Some(close) => message.push_str(&format!("; did you mean `{close}`?")),
        None => message.push_str(
            "; list the track under `tracks`, or refer to it by URN or soundcloud.com URL",
        ),
    }
    message
}

fn adopt_urn(
    file: &LoadedFile,
    object: &CheckedObject,
    kind: UrnKind,
    adopted: &mut HashMap<Urn, Seen>,
    report: &mut Report,
) -> Option<Urn> {
    let (text, pos) = object.text("adopt")?;
    let urn = parse_adopt(text, kind).ok()?;
    if let Some(first) = adopted.get(&urn) {
        report.at(
            &file.shown,
            pos,
            format!(
                "`adopt`: {urn} is already adopted at {}; one object can be managed by one key",
                first.at(&file.shown)
            ),
        );
        return Some(urn);
    }
    adopted.insert(
        urn,
        Seen {
            file: file.shown.clone(),
            pos,
        },
    );
    Some(urn)
}

/// Parses a list of follow or like references, reporting repeats.
fn references(
    items: &[(&LoadedFile, &Checked)],
    site: RefSite,
    label: &str,
    report: &mut Report,
) -> Vec<Reference> {
    let mut seen: HashMap<Reference, Seen> = HashMap::new();
    let mut out = Vec::new();
    for (file, item) in items {
        let Some(text) = item.as_text() else { continue };
        let Ok(reference) = parse_reference(text, site) else {
            continue;
        };
        if let Some(first) = seen.get(&reference) {
            report.at(
                &file.shown,
                item.pos,
                format!(
                    "`{label}` item: {reference} is already listed at {}",
                    first.at(&file.shown)
                ),
            );
            continue;
        }
        seen.insert(
            reference.clone(),
            Seen {
                file: file.shown.clone(),
                pos: item.pos,
            },
        );
        out.push(reference);
    }
    out
}

/// A written but blank title: the service refuses it ("title can't be
/// blank"), so say so before anything is sent.
fn blank_title(file: &LoadedFile, object: &CheckedObject, name: &str, report: &mut Report) {
    if let Some((title, pos)) = object.text("title")
        && title.trim().is_empty()
    {
        report.at(
            &file.shown,
            pos,
            format!("{name}: `title` is blank; SoundCloud refuses a blank title"),
        );
    }
}

/// Resolves a path written in the manifest and checks that it names a
/// readable, non-empty regular file.
fn existing_file(
    file: &LoadedFile,
    text: &str,
    pos: Pos,
    what: &str,
    report: &mut Report,
) -> Option<PathBuf> {
    let path = file.dir.join(text);
    match check_readable(&path) {
        Ok(()) => Some(path),
        Err(problem) => {
            report.at(
                &file.shown,
                pos,
                format!("{what} `{text}` {problem} (looked at {})", path.display()),
            );
            None
        }
    }
}

/// Why a path is not a readable file, in words that follow its name.
fn check_readable(path: &Path) -> Result<(), String> {
    // Metadata first: opening a FIFO for reading would block.
    let meta = fs::metadata(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_owned(),
        _ => format!("cannot be read: {err}"),
    })?;
    if meta.is_dir() {
        return Err("is a directory, not a file".to_owned());
    }
    if !meta.is_file() {
        return Err("is not a regular file".to_owned());
    }
    if meta.len() == 0 {
        return Err("is empty".to_owned());
    }
    fs::File::open(path).map_err(|err| format!("cannot be read: {err}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Credentials.

pub(super) fn credentials(
    account: &Account,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, ManifestErrors> {
    let mut diagnostics = Vec::new();
    let mut fail = |origin: &Origin, label: &str, message: String| {
        diagnostics.push(Diagnostic {
            file: origin.file.clone(),
            line: origin.line,
            column: origin.column,
            message: format!("`account.{label}`: {message}"),
        });
    };

    let client_id = match account.client_id.expand(env) {
        Ok(id) if id.trim().is_empty() => {
            fail(
                &account.client_id.origin,
                "client_id",
                "is empty".to_owned(),
            );
            None
        }
        Ok(id) => Some(id.trim().to_owned()),
        Err(message) => {
            fail(&account.client_id.origin, "client_id", message);
            None
        }
    };

    let mut client_secret = None;
    if let Some(template) = &account.client_secret {
        match template.expand(env) {
            Ok(secret) if secret.trim().is_empty() => fail(
                &template.origin,
                "client_secret",
                "the variable is set but empty".to_owned(),
            ),
            Ok(secret) => client_secret = Some(Secret::new(secret.trim())),
            Err(message) => fail(&template.origin, "client_secret", message),
        }
    }
    if let Some(template) = &account.client_secret_file {
        match template.expand(env) {
            Ok(path) => match read_secret_file(&template.dir.join(&path)) {
                Ok(secret) => client_secret = Some(secret),
                Err(message) => fail(&template.origin, "client_secret_file", message),
            },
            Err(message) => fail(&template.origin, "client_secret_file", message),
        }
    }

    let mut url = |template: &Template, label: &str| {
        let expanded = template
            .expand(env)
            .and_then(|text| formats::normalise_base_url(&text));
        match expanded {
            Ok(url) => Some(url),
            Err(message) => {
                fail(&template.origin, label, message);
                None
            }
        }
    };
    let api_url = url(&account.api_url, "api_url");
    let auth_url = url(&account.auth_url, "auth_url");

    match (client_id, api_url, auth_url) {
        (Some(client_id), Some(api_url), Some(auth_url)) if diagnostics.is_empty() => {
            Ok(Credentials {
                client_id,
                client_secret,
                api_url,
                auth_url,
            })
        }
        _ => Err(ManifestErrors::new(diagnostics)),
    }
}

/// Reads a secret from a file (trailing newline dropped); the message names
/// the file, never its contents.
fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    check_readable(path).map_err(|problem| format!("the secret file {shown} {problem}"))?;
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|err| format!("the secret file {shown} cannot be read: {err}"))?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(format!(
            "the secret file {shown} is larger than {MAX_SECRET_BYTES} bytes; is it the right file?"
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("the secret file {shown} is not UTF-8 text"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("the secret file {shown} holds only white space"));
    }
    Ok(Secret::new(secret))
}
