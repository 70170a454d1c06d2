//! The planner: desired (manifest) + remote (pulled) + local (state) -> [`Plan`].
//!
//! Pure and deterministic: no IO, no clock, no randomness. The same inputs
//! always give the same plan, byte for byte once rendered.
//!
//! Ownership rule for removals: for tracks and playlists, prune deletes only
//! what scsync manages (created or adopted, so recorded in `local.managed`).
//! An upload or playlist that scsync never managed is never touched, whatever
//! the prune flags say. Follows and likes have no owner, so with their prune
//! flag on, every one not in the manifest is removed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{
    Desired, DesiredTrack, FieldValue, Fields, LocalState, ManagedItem, ManagedKind, OnAudioChange,
    Policy, Reference, RemotePlaylist, RemoteState, RemoteTrack, RemoteUser, Urn, UrnKind,
};
use crate::tag_list::decode_tag_list;

use super::{
    Action, ActionKind, Change, FORMAT_VERSION, Forget, Op, Plan, Request, Summary, TrackRef,
};

/// An audio file as read from disk: its SHA-256 (hex) and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioFile {
    pub sha256: String,
    pub size: u64,
}

/// Everything the planner reads.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub desired: &'a Desired,
    pub remote: &'a RemoteState,
    pub local: &'a LocalState,
    pub policy: &'a Policy,
    /// By track key, for the manifest tracks whose file was read.
    pub audio: &'a BTreeMap<String, AudioFile>,
    /// `sha256:HEX` of the manifest as loaded; copied into the plan.
    pub manifest_digest: String,
}

/// Input the planner cannot turn into a plan. Manifest validation catches
/// most of these earlier; the planner still checks, so it never guesses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "{context}: the URL {url} has not been resolved to a SoundCloud URN; \
         check that it points at an existing, public {expected} and run the command again"
    )]
    UnresolvedUrl {
        context: String,
        url: String,
        expected: &'static str,
    },
    #[error(
        "{context}: {reference} is a {found}, but a {expected} is expected here; fix the reference"
    )]
    WrongKind {
        context: String,
        reference: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error(
        "{context}: {key:?} is not a {expected} key in the manifest; fix the reference or add the {expected}"
    )]
    UnknownKey {
        context: String,
        key: String,
        expected: &'static str,
    },
    #[error(
        "{context}: {key:?} looks like a manifest key, but only URNs and soundcloud.com URLs are allowed here"
    )]
    KeyNotAllowed { context: String, key: String },
    #[error(
        "{kind} {key:?}: adopt: {urn} is not one of this account's {kind}s; \
         check the URN (only your own uploads and playlists can be adopted); \
         if it was deleted, remove the adopt line so that scsync creates it anew"
    )]
    AdoptNotOnAccount {
        kind: &'static str,
        key: String,
        urn: Urn,
    },
    #[error(
        "{kind} {key:?}: {urn} is already managed as {kind} {other:?}; \
         a {kind} on the account can belong to one manifest key only"
    )]
    AlreadyManaged {
        kind: &'static str,
        key: String,
        urn: Urn,
        other: String,
    },
    #[error(
        "{kind} key {key:?} appears more than once in the manifest; keys must be unique per kind"
    )]
    DuplicateKey { kind: &'static str, key: String },
    #[error(
        "track {key:?}: the audio file {file} has not been read, so it cannot be uploaded; \
         check that the file exists and is readable"
    )]
    MissingAudio { key: String, file: String },
}

/// A plan refused by a safety policy (the CLI exits with status 3).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "refusing the plan: it would delete {deletes} item(s) ({breakdown}), \
     more than policy.max_deletes ({max_deletes}); nothing was changed. \
     If the manifest is complete and these deletions are intended, raise policy.max_deletes \
     (or apply in smaller steps); otherwise fix the manifest or turn the prune flag off"
)]
pub struct PolicyRefusal {
    pub deletes: usize,
    pub max_deletes: usize,
    /// Counts by kind, e.g. `3 tracks, 9 track likes`.
    pub breakdown: String,
}

/// Refuses a plan that deletes more than `policy.max_deletes` items.
///
/// A replacing upload (`on_audio_change: replace`) counts as a deletion: it
/// deletes the old track with its plays, likes and comments.
pub fn check_policy(plan: &Plan, policy: &Policy) -> Result<(), PolicyRefusal> {
    let mut by_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
    for action in &plan.actions {
        let label = match (&action.op, &action.request, action.kind) {
            (
                Op::Change,
                Request::UploadTrack {
                    replaces: Some(_), ..
                },
                _,
            ) => "replaced tracks",
            (Op::Remove, _, ActionKind::Track) => "tracks",
            (Op::Remove, _, ActionKind::Playlist) => "playlists",
            (Op::Remove, _, ActionKind::Follow) => "follows",
            (Op::Remove, _, ActionKind::TrackLike) => "track likes",
            (Op::Remove, _, ActionKind::PlaylistLike) => "playlist likes",
            _ => continue,
        };
        *by_kind.entry(label).or_default() += 1;
    }
    let deletes: usize = by_kind.values().sum();
    if deletes <= policy.max_deletes {
        return Ok(());
    }
    let breakdown = by_kind
        .iter()
        .map(|(label, n)| format!("{n} {label}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(PolicyRefusal {
        deletes,
        max_deletes: policy.max_deletes,
        breakdown,
    })
}

/// `sha256:HEX` of the account's state in a canonical form: collections
/// sorted by URN (a playlist's track order is kept, it is part of the state),
/// so the same account always gives the same digest whatever order the API
/// listed it in.
pub fn remote_digest(remote: &RemoteState) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        me: &'a RemoteUser,
        tracks: Vec<&'a RemoteTrack>,
        playlists: Vec<&'a RemotePlaylist>,
        followings: Vec<&'a RemoteUser>,
        liked_tracks: Vec<Urn>,
        liked_playlists: Vec<Urn>,
    }
    let mut tracks: Vec<&RemoteTrack> = remote.tracks.iter().collect();
    tracks.sort_by_key(|t| t.urn);
    let mut playlists: Vec<&RemotePlaylist> = remote.playlists.iter().collect();
    playlists.sort_by_key(|p| p.urn);
    let mut followings: Vec<&RemoteUser> = remote.followings.iter().collect();
    followings.sort_by_key(|u| u.urn);
    let mut liked_tracks = remote.liked_tracks.clone();
    liked_tracks.sort();
    let mut liked_playlists = remote.liked_playlists.clone();
    liked_playlists.sort();
    let canonical = Canonical {
        me: &remote.me,
        tracks,
        playlists,
        followings,
        liked_tracks,
        liked_playlists,
    };
    // Serialising these types cannot fail (string map keys, no custom
    // serialisers that error); an empty body would still give a digest.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    format!("sha256:{:x}", Sha256::digest(&bytes))
}

/// Computes the plan. Actions come in the order `apply` must run them:
/// track uploads and updates, playlists (after the uploads they use),
/// follows, track likes, playlist likes, then removals (follows, likes,
/// playlists, tracks). Within a group, items are sorted by key (by URN for
/// follows and likes).
pub fn diff(input: &PlanInput) -> Result<Plan, PlanError> {
    let mut planner = Planner::new(input)?;
    planner.tracks()?;
    planner.playlists()?;
    planner.follows()?;
    planner.likes()?;
    planner.removals();
    Ok(planner.finish())
}

/// Where a manifest track will be once the plan is applied.
enum TrackTarget {
    /// Exists now (managed, adopted) and is not being re-uploaded.
    Urn(Urn),
    /// Uploaded by this plan; playlists name it by key.
    Uploading,
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    managed: BTreeMap<(ManagedKind, &'a str), &'a ManagedItem>,
    remote_tracks: BTreeMap<Urn, &'a RemoteTrack>,
    remote_playlists: BTreeMap<Urn, &'a RemotePlaylist>,
    track_targets: BTreeMap<&'a str, TrackTarget>,
    playlist_urns: BTreeMap<&'a str, Urn>,
    /// URNs a manifest item will manage after this plan, per kind: a managed
    /// item that left the manifest but whose URN one of these claims (a
    /// renamed key that adopts it) is forgotten, never deleted.
    claimed: BTreeMap<(ManagedKind, Urn), &'a str>,
    track_actions: Vec<Action>,
    playlist_actions: Vec<Action>,
    follow_actions: Vec<Action>,
    track_like_actions: Vec<Action>,
    playlist_like_actions: Vec<Action>,
    removals: Vec<Action>,
    forget: Vec<Forget>,
    warnings: Vec<String>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>) -> Result<Planner<'a>, PlanError> {
        let mut seen = BTreeSet::new();
        for t in &input.desired.tracks {
            if !seen.insert(t.key.as_str()) {
                return Err(PlanError::DuplicateKey {
                    kind: "track",
                    key: t.key.clone(),
                });
            }
        }
        seen.clear();
        for p in &input.desired.playlists {
            if !seen.insert(p.key.as_str()) {
                return Err(PlanError::DuplicateKey {
                    kind: "playlist",
                    key: p.key.clone(),
                });
            }
        }
        Ok(Planner {
            input,
            managed: input
                .local
                .managed
                .iter()
                .map(|m| ((m.kind, m.key.as_str()), m))
                .collect(),
            remote_tracks: input.remote.tracks.iter().map(|t| (t.urn, t)).collect(),
            remote_playlists: input.remote.playlists.iter().map(|p| (p.urn, p)).collect(),
            track_targets: BTreeMap::new(),
            playlist_urns: BTreeMap::new(),
            claimed: BTreeMap::new(),
            track_actions: Vec::new(),
            playlist_actions: Vec::new(),
            follow_actions: Vec::new(),
            track_like_actions: Vec::new(),
            playlist_like_actions: Vec::new(),
            removals: Vec::new(),
            forget: Vec::new(),
            warnings: Vec::new(),
        })
    }

    /// Which URN a manifest item manages, if any, and whether it is adopted
    /// in this plan. An `adopt` that differs from the recorded URN wins: the
    /// manifest says which item to manage.
    fn target(
        &self,
        kind: ManagedKind,
        key: &str,
        adopt: Option<Urn>,
    ) -> Result<Target, PlanError> {
        let kind_word = kind_word(kind);
        let managed = self.managed.get(&(kind, key)).map(|m| m.urn);
        if let Some(urn) = adopt {
            // An adopt line must name an existing item, even one already
            // managed: otherwise a deleted item would be re-created, and the
            // next run would find the adopt line pointing at nothing.
            if !self.on_account(kind, urn) {
                return Err(PlanError::AdoptNotOnAccount {
                    kind: kind_word,
                    key: key.to_owned(),
                    urn,
                });
            }
            if managed == Some(urn) {
                return Ok(Target::Managed(urn));
            }
            if let Some(other) = self.managed_owner(kind, urn, key) {
                return Err(PlanError::AlreadyManaged {
                    kind: kind_word,
                    key: key.to_owned(),
                    urn,
                    other: other.to_owned(),
                });
            }
            return Ok(Target::Adopt(urn));
        }
        match managed {
            None => Ok(Target::New),
            Some(urn) => Ok(if self.on_account(kind, urn) {
                Target::Managed(urn)
            } else {
                Target::Missing
            }),
        }
    }

    fn on_account(&self, kind: ManagedKind, urn: Urn) -> bool {
        match kind {
            ManagedKind::Track => self.remote_tracks.contains_key(&urn),
            ManagedKind::Playlist => self.remote_playlists.contains_key(&urn),
        }
    }

    /// Another key that still manages `urn` after this plan: one recorded in
    /// state whose key is still in the manifest, or one already adopted.
    fn managed_owner(&self, kind: ManagedKind, urn: Urn, key: &str) -> Option<&'a str> {
        let in_manifest = |k: &str| match kind {
            ManagedKind::Track => self.input.desired.tracks.iter().any(|t| t.key == k),
            ManagedKind::Playlist => self.input.desired.playlists.iter().any(|p| p.key == k),
        };
        self.managed
            .values()
            .find(|m| m.kind == kind && m.urn == urn && m.key != key && in_manifest(&m.key))
            .map(|m| m.key.as_str())
    }

    fn tracks(&mut self) -> Result<(), PlanError> {
        let mut desired: Vec<_> = self.input.desired.tracks.iter().collect();
        desired.sort_by(|a, b| a.key.cmp(&b.key));
        for t in desired {
            let target = self.target(ManagedKind::Track, &t.key, t.adopt)?;
            match target {
                Target::Managed(urn) | Target::Adopt(urn) => {
                    let adopt = matches!(target, Target::Adopt(_));
                    self.claim(ManagedKind::Track, urn, &t.key)?;
                    let empty = Fields::new();
                    let remote_fields = self.remote_tracks.get(&urn).map_or(&empty, |r| &r.fields);
                    let (changed, mut changes) = field_changes(&t.fields, remote_fields);
                    let audio_changed = if adopt {
                        None
                    } else {
                        self.audio_change(&t.key)
                    };
                    match audio_changed {
                        Some((old, new))
                            if self.input.policy.on_audio_change == OnAudioChange::Replace =>
                        {
                            let audio = self.audio_for(&t.key, &t.file_display)?;
                            changes.insert(
                                0,
                                Change {
                                    field: "audio".into(),
                                    old: Some(serde_json::Value::String(old)),
                                    new: Some(serde_json::Value::String(new)),
                                },
                            );
                            self.track_targets
                                .insert(t.key.as_str(), TrackTarget::Uploading);
                            let mut action = upload(t, audio, Some(urn));
                            action.op = Op::Change;
                            action.urn = Some(urn);
                            action.changes = changes;
                            self.track_actions.push(action);
                            continue;
                        }
                        Some((old, new)) => {
                            self.warnings.push(format!(
                                "track {key}: {file} differs from the audio last uploaded \
                                 ({old} now {new}); SoundCloud cannot swap a track's audio in \
                                 place, so the track keeps its old audio. To re-upload it as a \
                                 new track that replaces {urn} (its plays, likes and comments \
                                 are lost), set policy.on_audio_change: replace; to silence \
                                 this, restore the original file",
                                key = t.key,
                                file = t.file_display,
                                old = short_digest(&old),
                                new = short_digest(&new),
                            ));
                        }
                        None => {}
                    }
                    self.track_targets
                        .insert(t.key.as_str(), TrackTarget::Urn(urn));
                    if adopt || !changes.is_empty() {
                        self.track_actions.push(Action {
                            op: Op::Change,
                            kind: ActionKind::Track,
                            key: t.key.clone(),
                            urn: Some(urn),
                            changes,
                            note: None,
                            request: Request::UpdateTrack {
                                fields: changed,
                                adopt,
                            },
                        });
                    }
                }
                Target::New | Target::Missing => {
                    let audio = self.audio_for(&t.key, &t.file_display)?;
                    self.track_targets
                        .insert(t.key.as_str(), TrackTarget::Uploading);
                    let mut action = upload(t, audio, None);
                    action.note = matches!(target, Target::Missing)
                        .then(|| "missing on the account".to_owned());
                    self.track_actions.push(action);
                }
            }
        }
        Ok(())
    }

    /// Records that `key` manages `urn` after this plan; one URN, one key.
    fn claim(&mut self, kind: ManagedKind, urn: Urn, key: &'a str) -> Result<(), PlanError> {
        match self.claimed.insert((kind, urn), key) {
            Some(other) if other != key => Err(PlanError::AlreadyManaged {
                kind: kind_word(kind),
                key: key.to_owned(),
                urn,
                other: other.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// The (recorded, current) digests when a managed track's audio changed.
    fn audio_change(&self, key: &str) -> Option<(String, String)> {
        let recorded = self
            .managed
            .get(&(ManagedKind::Track, key))?
            .audio_sha256
            .as_deref()?;
        let current = &self.input.audio.get(key)?.sha256;
        let (old, new) = (normalise_digest(recorded), normalise_digest(current));
        (old != new).then(|| (format!("sha256:{old}"), format!("sha256:{new}")))
    }

    fn audio_for(&self, key: &str, file: &str) -> Result<&'a AudioFile, PlanError> {
        self.input
            .audio
            .get(key)
            .ok_or_else(|| PlanError::MissingAudio {
                key: key.to_owned(),
                file: file.to_owned(),
            })
    }

    fn playlists(&mut self) -> Result<(), PlanError> {
        let mut desired: Vec<_> = self.input.desired.playlists.iter().collect();
        desired.sort_by(|a, b| a.key.cmp(&b.key));
        for p in desired {
            let tracks = p
                .tracks
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let context = format!("playlist {:?}, track {}", p.key, i + 1);
                    self.track_ref(r, &context)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let target = self.target(ManagedKind::Playlist, &p.key, p.adopt)?;
            match target {
                Target::Managed(urn) | Target::Adopt(urn) => {
                    let adopt = matches!(target, Target::Adopt(_));
                    self.claim(ManagedKind::Playlist, urn, &p.key)?;
                    self.playlist_urns.insert(p.key.as_str(), urn);
                    let remote = self.remote_playlists.get(&urn);
                    let empty = Fields::new();
                    let remote_fields = remote.map_or(&empty, |r| &r.fields);
                    let remote_tracks: &[Urn] = remote.map_or(&[], |r| &r.tracks);
                    let (changed, mut changes) = field_changes(&p.fields, remote_fields);
                    let same_list = tracks.len() == remote_tracks.len()
                        && tracks
                            .iter()
                            .zip(remote_tracks)
                            .all(|(d, r)| matches!(d, TrackRef::Urn(u) if u == r));
                    if !same_list {
                        changes.push(Change {
                            field: "tracks".into(),
                            old: Some(urn_list_json(remote_tracks)),
                            new: Some(track_refs_json(&tracks)),
                        });
                    }
                    if adopt || !changes.is_empty() {
                        self.playlist_actions.push(Action {
                            op: Op::Change,
                            kind: ActionKind::Playlist,
                            key: p.key.clone(),
                            urn: Some(urn),
                            changes,
                            note: None,
                            request: Request::UpdatePlaylist {
                                fields: changed,
                                tracks,
                                adopt,
                            },
                        });
                    }
                }
                Target::New | Target::Missing => {
                    self.playlist_actions.push(Action {
                        op: Op::Add,
                        kind: ActionKind::Playlist,
                        key: p.key.clone(),
                        urn: None,
                        changes: Vec::new(),
                        note: matches!(target, Target::Missing)
                            .then(|| "missing on the account".to_owned()),
                        request: Request::CreatePlaylist {
                            fields: p.fields.clone(),
                            tracks,
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// Resolves one entry of a playlist's track list.
    fn track_ref(&self, reference: &Reference, context: &str) -> Result<TrackRef, PlanError> {
        match reference {
            Reference::Key(key) => match self.track_targets.get(key.as_str()) {
                Some(TrackTarget::Urn(urn)) => Ok(TrackRef::Urn(*urn)),
                Some(TrackTarget::Uploading) => Ok(TrackRef::Key(key.clone())),
                None => Err(PlanError::UnknownKey {
                    context: context.to_owned(),
                    key: key.clone(),
                    expected: "track",
                }),
            },
            other => self
                .resolve(other, UrnKind::Track, context)
                .map(TrackRef::Urn),
        }
    }

    /// Resolves a URN or URL reference to a URN of `kind`.
    fn resolve(
        &self,
        reference: &Reference,
        kind: UrnKind,
        context: &str,
    ) -> Result<Urn, PlanError> {
        let urn = match reference {
            Reference::Urn(urn) => *urn,
            Reference::Url(url) => {
                *self
                    .input
                    .local
                    .resolved
                    .get(url)
                    .ok_or_else(|| PlanError::UnresolvedUrl {
                        context: context.to_owned(),
                        url: url.clone(),
                        expected: urn_kind_word(kind),
                    })?
            }
            Reference::Key(key) => {
                return Err(PlanError::KeyNotAllowed {
                    context: context.to_owned(),
                    key: key.clone(),
                });
            }
        };
        if urn.kind != kind {
            return Err(PlanError::WrongKind {
                context: context.to_owned(),
                reference: reference.to_string(),
                found: urn_kind_word(urn.kind),
                expected: urn_kind_word(kind),
            });
        }
        Ok(urn)
    }

    fn follows(&mut self) -> Result<(), PlanError> {
        let mut desired: BTreeMap<Urn, &Reference> = BTreeMap::new();
        for (i, r) in self.input.desired.follows.iter().enumerate() {
            let context = format!("follows, entry {}", i + 1);
            let urn = self.resolve(r, UrnKind::User, &context)?;
            desired.entry(urn).or_insert(r);
        }
        let current: BTreeMap<Urn, &RemoteUser> = self
            .input
            .remote
            .followings
            .iter()
            .map(|u| (u.urn, u))
            .collect();
        for (urn, reference) in &desired {
            if current.contains_key(urn) {
                continue;
            }
            let note = self.username(*urn).or_else(|| match reference {
                Reference::Url(url) => Some(url.clone()),
                // The key column already shows the URN as written.
                _ => None,
            });
            self.follow_actions.push(Action {
                op: Op::Add,
                kind: ActionKind::Follow,
                key: urn.to_string(),
                urn: Some(*urn),
                changes: Vec::new(),
                note,
                request: Request::Follow,
            });
        }
        if self.input.policy.prune.follows {
            for urn in current.keys().filter(|u| !desired.contains_key(u)) {
                self.removals.push(Action {
                    op: Op::Remove,
                    kind: ActionKind::Follow,
                    key: urn.to_string(),
                    urn: Some(*urn),
                    changes: Vec::new(),
                    note: Some("prune".into()),
                    request: Request::Unfollow,
                });
            }
        }
        Ok(())
    }

    fn username(&self, urn: Urn) -> Option<String> {
        let remote = self.input.remote;
        std::iter::once(&remote.me)
            .chain(&remote.followings)
            .find(|u| u.urn == urn && !u.username.trim().is_empty())
            .map(|u| u.username.trim().to_owned())
    }

    fn likes(&mut self) -> Result<(), PlanError> {
        let desired = self.input.desired;
        let remote = self.input.remote;
        let tracks = self.like_set(&desired.liked_tracks, UrnKind::Track, "likes.tracks")?;
        let playlists = self.like_set(
            &desired.liked_playlists,
            UrnKind::Playlist,
            "likes.playlists",
        )?;
        let prune = self.input.policy.prune.likes;
        let (adds, mut removes) =
            like_actions(&tracks, &remote.liked_tracks, ActionKind::TrackLike, prune);
        self.track_like_actions = adds;
        let (adds, playlist_removes) = like_actions(
            &playlists,
            &remote.liked_playlists,
            ActionKind::PlaylistLike,
            prune,
        );
        self.playlist_like_actions = adds;
        removes.extend(playlist_removes);
        self.removals.extend(removes);
        Ok(())
    }

    /// The set of URNs a likes list asks for. A manifest key names a track or
    /// playlist of the manifest; one uploaded or created by this very plan
    /// has no URN yet, so its like waits for the next run (with a warning).
    fn like_set(
        &mut self,
        refs: &[Reference],
        kind: UrnKind,
        section: &str,
    ) -> Result<BTreeSet<Urn>, PlanError> {
        let mut set = BTreeSet::new();
        for (i, r) in refs.iter().enumerate() {
            let context = format!("{section}, entry {}", i + 1);
            let urn = match (r, kind) {
                (Reference::Key(key), UrnKind::Track) => match self.track_targets.get(key.as_str())
                {
                    Some(TrackTarget::Urn(urn)) => Some(*urn),
                    Some(TrackTarget::Uploading) => None,
                    None => {
                        return Err(PlanError::UnknownKey {
                            context,
                            key: key.clone(),
                            expected: "track",
                        });
                    }
                },
                (Reference::Key(key), _) => {
                    if let Some(urn) = self.playlist_urns.get(key.as_str()) {
                        Some(*urn)
                    } else if desired_has_playlist(self.input.desired, key) {
                        None
                    } else {
                        return Err(PlanError::UnknownKey {
                            context,
                            key: key.clone(),
                            expected: "playlist",
                        });
                    }
                }
                _ => Some(self.resolve(r, kind, &context)?),
            };
            match urn {
                Some(urn) => {
                    set.insert(urn);
                }
                None => self.warnings.push(format!(
                    "{context}: {r} is created by this plan, so it can be liked only once it \
                     exists; run apply again afterwards to add the like"
                )),
            }
        }
        Ok(set)
    }

    /// Managed tracks and playlists whose key left the manifest.
    fn removals(&mut self) {
        let mut playlist_removals = Vec::new();
        let mut track_removals = Vec::new();
        let desired = self.input.desired;
        let mut managed: Vec<&ManagedItem> = self.managed.values().copied().collect();
        managed.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        for m in managed {
            let still_wanted = match m.kind {
                ManagedKind::Track => desired.tracks.iter().any(|t| t.key == m.key),
                ManagedKind::Playlist => desired.playlists.iter().any(|p| p.key == m.key),
            };
            if still_wanted {
                continue;
            }
            let prune = match m.kind {
                ManagedKind::Track => self.input.policy.prune.tracks,
                ManagedKind::Playlist => self.input.policy.prune.playlists,
            };
            let on_account = self.on_account(m.kind, m.urn);
            // Deleted only when pruning, when it still exists, and when no
            // manifest item takes it over under another key.
            if prune && on_account && !self.claimed.contains_key(&(m.kind, m.urn)) {
                let (kind, request, list) = match m.kind {
                    ManagedKind::Track => {
                        (ActionKind::Track, Request::DeleteTrack, &mut track_removals)
                    }
                    ManagedKind::Playlist => (
                        ActionKind::Playlist,
                        Request::DeletePlaylist,
                        &mut playlist_removals,
                    ),
                };
                list.push(Action {
                    op: Op::Remove,
                    kind,
                    key: m.key.clone(),
                    urn: Some(m.urn),
                    changes: Vec::new(),
                    note: Some("prune".into()),
                    request,
                });
            } else {
                self.forget.push(Forget {
                    kind: m.kind,
                    key: m.key.clone(),
                    urn: m.urn,
                });
            }
        }
        self.removals.extend(playlist_removals);
        self.removals.extend(track_removals);
    }

    fn finish(self) -> Plan {
        let actions: Vec<Action> = self
            .track_actions
            .into_iter()
            .chain(self.playlist_actions)
            .chain(self.follow_actions)
            .chain(self.track_like_actions)
            .chain(self.playlist_like_actions)
            .chain(self.removals)
            .collect();
        let mut summary = Summary::default();
        for a in &actions {
            match a.op {
                Op::Add => summary.add += 1,
                Op::Change => summary.change += 1,
                Op::Remove => summary.remove += 1,
            }
        }
        Plan {
            format_version: FORMAT_VERSION,
            manifest_digest: self.input.manifest_digest.clone(),
            remote_digest: remote_digest(self.input.remote),
            summary,
            actions,
            forget: self.forget,
            warnings: self.warnings,
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    /// Not managed yet and not adopted: create it.
    New,
    /// Managed, and on the account.
    Managed(Urn),
    /// Managed, but deleted on the account (e.g. in the web app).
    Missing,
    /// Adopted by this plan (on the account, not managed under this URN).
    Adopt(Urn),
}

/// An upload of a manifest track (op add; the caller adjusts a replacement).
fn upload(t: &DesiredTrack, audio: &AudioFile, replaces: Option<Urn>) -> Action {
    Action {
        op: Op::Add,
        kind: ActionKind::Track,
        key: t.key.clone(),
        urn: None,
        changes: Vec::new(),
        note: None,
        request: Request::UploadTrack {
            file: t.file.clone(),
            file_display: t.file_display.clone(),
            size: audio.size,
            sha256: audio.sha256.clone(),
            fields: t.fields.clone(),
            artwork: t.artwork.clone(),
            replaces,
        },
    }
}

fn desired_has_playlist(desired: &Desired, key: &str) -> bool {
    desired.playlists.iter().any(|p| p.key == key)
}

/// Likes to add (desired, not on the account) and, when pruning, to remove.
fn like_actions(
    desired: &BTreeSet<Urn>,
    current: &[Urn],
    kind: ActionKind,
    prune: bool,
) -> (Vec<Action>, Vec<Action>) {
    let current: BTreeSet<Urn> = current.iter().copied().collect();
    let action = |op: Op, urn: Urn, note: Option<String>, request: Request| Action {
        op,
        kind,
        key: urn.to_string(),
        urn: Some(urn),
        changes: Vec::new(),
        note,
        request,
    };
    let adds = desired
        .difference(&current)
        .map(|u| action(Op::Add, *u, None, Request::Like))
        .collect();
    let removes = if prune {
        current
            .difference(desired)
            .map(|u| action(Op::Remove, *u, Some("prune".into()), Request::Unlike))
            .collect()
    } else {
        Vec::new()
    };
    (adds, removes)
}

fn kind_word(kind: ManagedKind) -> &'static str {
    match kind {
        ManagedKind::Track => "track",
        ManagedKind::Playlist => "playlist",
    }
}

fn urn_kind_word(kind: UrnKind) -> &'static str {
    match kind {
        UrnKind::Track => "track",
        UrnKind::Playlist => "playlist",
        UrnKind::User => "user",
    }
}

fn urn_list_json(urns: &[Urn]) -> serde_json::Value {
    serde_json::Value::Array(
        urns.iter()
            .map(|u| serde_json::Value::String(u.to_string()))
            .collect(),
    )
}

/// A track list as JSON strings: URNs, or manifest keys of pending uploads.
fn track_refs_json(refs: &[TrackRef]) -> serde_json::Value {
    serde_json::Value::Array(
        refs.iter()
            .map(|r| serde_json::Value::String(r.to_string()))
            .collect(),
    )
}

fn normalise_digest(digest: &str) -> String {
    let digest = digest.trim();
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .to_ascii_lowercase()
}

/// `sha256:1a2b3c4d…` for messages.
fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let short: String = hex.chars().take(12).collect();
    if short.len() < hex.len() {
        format!("sha256:{short}…")
    } else {
        format!("sha256:{short}")
    }
}

/// The desired fields that differ from the remote ones, and a [`Change`] for
/// each (old = the remote value as read, new = the manifest's).
/// Whether every desired field already holds on the remote side, by the
/// planner's own comparison (used to verify a write that may have happened).
pub fn fields_match(desired: &Fields, remote: &Fields) -> bool {
    field_changes(desired, remote).1.is_empty()
}

fn field_changes(desired: &Fields, remote: &Fields) -> (Fields, Vec<Change>) {
    let mut changed = Fields::new();
    let mut changes = Vec::new();
    for (name, want) in desired {
        let have = remote.get(name);
        if same_value(name, want, have) {
            continue;
        }
        changed.insert(name.clone(), want.clone());
        changes.push(Change {
            field: name.clone(),
            old: have.map(field_json),
            new: Some(field_json(want)),
        });
    }
    (changed, changes)
}

fn field_json(value: &FieldValue) -> serde_json::Value {
    match value {
        FieldValue::Bool(b) => serde_json::Value::Bool(*b),
        FieldValue::Text(t) => serde_json::Value::String(t.clone()),
        FieldValue::Tags(tags) => serde_json::Value::Array(
            tags.iter()
                .map(|t| serde_json::Value::String(t.clone()))
                .collect(),
        ),
    }
}

/// Fields whose values are a closed set of lowercase words, which the
/// service may echo in another case.
const ENUM_FIELDS: &[&str] = &["sharing", "license", "set_type", "embeddable_by"];

/// Whether the account already has the desired value, ignoring differences
/// the service introduces: surrounding whitespace and line endings in text,
/// tag order, duplicates and quoting, the case of enumerated values. An
/// absent remote value equals only an empty desired text or tag list (the
/// service returns null for an empty description).
fn same_value(name: &str, want: &FieldValue, have: Option<&FieldValue>) -> bool {
    let Some(have) = have else {
        return match want {
            FieldValue::Text(t) => t.trim().is_empty(),
            FieldValue::Tags(tags) => tags.iter().all(|t| t.trim().is_empty()),
            FieldValue::Bool(_) => false,
        };
    };
    if name == "tags" || matches!(want, FieldValue::Tags(_)) || matches!(have, FieldValue::Tags(_))
    {
        return match (tag_set(want), tag_set(have)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
    }
    match (want, have) {
        (FieldValue::Bool(a), FieldValue::Bool(b)) => a == b,
        (FieldValue::Bool(a), FieldValue::Text(t)) | (FieldValue::Text(t), FieldValue::Bool(a)) => {
            parse_bool(t) == Some(*a)
        }
        (FieldValue::Text(a), FieldValue::Text(b)) => {
            let (a, b) = (normalise_text(a), normalise_text(b));
            if ENUM_FIELDS.contains(&name) {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        }
        _ => false,
    }
}

fn normalise_text(text: &str) -> String {
    text.trim().replace("\r\n", "\n")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn tag_set(value: &FieldValue) -> Option<BTreeSet<String>> {
    match value {
        FieldValue::Tags(tags) => Some(
            tags.iter()
                .map(|t| t.trim().trim_matches('"').trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        ),
        FieldValue::Text(text) => Some(decode_tag_list(text).into_iter().collect()),
        FieldValue::Bool(_) => None,
    }
}

#[cfg(test)]
mod tests;
