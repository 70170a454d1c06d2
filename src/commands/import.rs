//! `scsync import`: write a manifest describing what the account has now.
//!
//! Tracks and playlists come out as `adopt:` entries, so applying the
//! imported manifest manages them in place instead of uploading anything.
//! Follows and likes come out as URNs with the name as a comment.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::model::{FieldValue, Fields, RemoteState, Urn};

use super::{CommandError, Result, Session, Status};

pub async fn run(global: &GlobalArgs, args: &ImportArgs) -> Result<Status> {
    if let Some(path) = &args.output
        && path.exists()
        && !args.force
    {
        // It may be the live manifest: never replace it silently.
        return Err(CommandError::Failed(format!(
            "{} exists; choose another file, or pass --force to replace it",
            path.display()
        )));
    }
    let session = Session::open(global)?;
    let remote = crate::remote::pull(session.reader()).await?;
    let text = render(&remote);
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| CommandError::io(format!("cannot write {}", path.display()), e))?;
            eprintln!(
                "Wrote {} ({} tracks, {} playlists, {} follows, {} likes).",
                path.display(),
                remote.tracks.len(),
                remote.playlists.len(),
                remote.followings.len(),
                remote.liked_tracks.len() + remote.liked_playlists.len()
            );
        }
        None => out!("{text}"),
    }
    Ok(Status::Success)
}

/// The manifest text for an account.
pub fn render(remote: &RemoteState) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported by scsync from {}.",
        remote.me.permalink_url
    );
    out.push_str(
        "version: 1\naccount:\n  client_id: ${SOUNDCLOUD_CLIENT_ID}\n  client_secret_file: /run/credentials/scsync.service/client_secret\n",
    );
    let mut keys = KeyMaker::default();
    let mut track_keys: BTreeMap<Urn, String> = BTreeMap::new();
    if !remote.tracks.is_empty() {
        out.push_str("tracks:\n");
        for track in &remote.tracks {
            let key = keys.make(&track.fields, &track.permalink_url, track.urn);
            track_keys.insert(track.urn, key.clone());
            let _ = writeln!(out, "  - key: {key}\n    adopt: {}", track.urn);
            write_fields(&mut out, &track.fields);
        }
    }
    if !remote.playlists.is_empty() {
        out.push_str("playlists:\n");
        let mut keys = KeyMaker::default();
        for playlist in &remote.playlists {
            let key = keys.make(&playlist.fields, &playlist.permalink_url, playlist.urn);
            let _ = writeln!(out, "  - key: {key}\n    adopt: {}", playlist.urn);
            write_fields(&mut out, &playlist.fields);
            out.push_str("    tracks:\n");
            for urn in &playlist.tracks {
                match track_keys.get(urn) {
                    Some(key) => writeln!(out, "      - {key}"),
                    None => writeln!(out, "      - {urn}"),
                }
                .ok();
            }
        }
    }
    if !remote.followings.is_empty() {
        out.push_str("follows:\n");
        for user in &remote.followings {
            let _ = writeln!(out, "  - {}  # {}", user.urn, one_line(&user.username));
        }
    }
    if !remote.liked_tracks.is_empty() || !remote.liked_playlists.is_empty() {
        out.push_str("likes:\n  tracks:\n");
        for urn in &remote.liked_tracks {
            let _ = writeln!(out, "    - {urn}");
        }
        out.push_str("  playlists:\n");
        for urn in &remote.liked_playlists {
            let _ = writeln!(out, "    - {urn}");
        }
    }
    out
}

fn write_fields(out: &mut String, fields: &Fields) {
    for (name, value) in fields {
        let text = match value {
            // An empty value is what an absent one means; leave it unmanaged.
            FieldValue::Text(t) if t.trim().is_empty() => continue,
            FieldValue::Tags(tags) if tags.is_empty() => continue,
            FieldValue::Bool(b) => b.to_string(),
            // JSON strings are valid YAML scalars, with every escape.
            FieldValue::Text(t) => serde_json::to_string(t).unwrap_or_default(),
            FieldValue::Tags(tags) => serde_json::to_string(tags).unwrap_or_default(),
        };
        let _ = writeln!(out, "    {name}: {text}");
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Keys from permalinks (`night-drive`), made valid and unique.
#[derive(Default)]
struct KeyMaker(HashSet<String>);

impl KeyMaker {
    fn make(&mut self, fields: &Fields, permalink_url: &str, urn: Urn) -> String {
        let source = match fields.get("permalink") {
            Some(FieldValue::Text(p)) => p.clone(),
            _ => permalink_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        let mut key: String = source
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        key = key
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_owned();
        key.truncate(80);
        if key.is_empty() {
            key = format!("{}-{}", urn.kind.as_str().trim_end_matches('s'), urn.id);
        }
        let mut unique = key.clone();
        let mut n = 2;
        while !self.0.insert(unique.clone()) {
            unique = format!("{key}-{n}");
            n += 1;
        }
        unique
    }
}
