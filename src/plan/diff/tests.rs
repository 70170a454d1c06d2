//! Unit tests of the planner. A `World` holds the four inputs; `apply_plan`
//! plays a plan against it the way the service and `apply` would, so tests
//! can check that a second plan after a perfect apply is empty.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::model::{DesiredPlaylist, DesiredTrack, Prune};
use crate::plan::{ListDelta, list_delta};

fn text(s: &str) -> FieldValue {
    FieldValue::Text(s.to_owned())
}

fn tags(list: &[&str]) -> FieldValue {
    FieldValue::Tags(list.iter().map(|s| (*s).to_owned()).collect())
}

fn fields(pairs: &[(&str, FieldValue)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn key(k: &str) -> Reference {
    Reference::Key(k.to_owned())
}

fn urn_ref(urn: Urn) -> Reference {
    Reference::Urn(urn)
}

fn user(id: u64, name: &str) -> RemoteUser {
    RemoteUser {
        urn: Urn::user(id),
        username: name.to_owned(),
        permalink_url: format!("https://soundcloud.com/{}", name.to_lowercase()),
    }
}

struct World {
    desired: Desired,
    remote: RemoteState,
    local: LocalState,
    policy: Policy,
    audio: BTreeMap<String, AudioFile>,
    next_id: u64,
}

impl World {
    fn new() -> World {
        World {
            desired: Desired::default(),
            remote: RemoteState {
                me: user(1, "Me"),
                tracks: Vec::new(),
                playlists: Vec::new(),
                followings: Vec::new(),
                liked_tracks: Vec::new(),
                liked_playlists: Vec::new(),
            },
            local: LocalState::default(),
            policy: Policy::default(),
            audio: BTreeMap::new(),
            next_id: 90_000,
        }
    }

    /// A manifest track whose audio file has been read (digest `sha`).
    fn want_track(&mut self, key: &str, sha: &str, f: Fields) -> &mut DesiredTrack {
        self.audio.insert(
            key.to_owned(),
            AudioFile {
                sha256: sha.to_owned(),
                size: 3_250_000,
            },
        );
        self.desired.tracks.push(DesiredTrack {
            key: key.to_owned(),
            file: PathBuf::from(format!("/music/audio/{key}.wav")),
            file_display: format!("audio/{key}.wav"),
            artwork: None,
            adopt: None,
            fields: f,
        });
        self.desired.tracks.last_mut().expect("just pushed")
    }

    fn want_playlist(&mut self, key: &str, f: Fields, tracks: Vec<Reference>) {
        self.desired.playlists.push(DesiredPlaylist {
            key: key.to_owned(),
            adopt: None,
            fields: f,
            tracks,
        });
    }

    fn remote_track(&mut self, id: u64, f: Fields) {
        self.remote.tracks.push(RemoteTrack {
            urn: Urn::track(id),
            fields: f,
            permalink_url: format!("https://soundcloud.com/me/t{id}"),
            created_at: None,
        });
    }

    fn remote_playlist(&mut self, id: u64, f: Fields, tracks: &[u64]) {
        self.remote.playlists.push(RemotePlaylist {
            urn: Urn::playlist(id),
            fields: f,
            tracks: tracks.iter().map(|t| Urn::track(*t)).collect(),
            permalink_url: format!("https://soundcloud.com/me/sets/p{id}"),
            created_at: None,
        });
    }

    fn managed(&mut self, kind: ManagedKind, key: &str, urn: Urn, sha: Option<&str>) {
        self.local.managed.push(ManagedItem {
            kind,
            key: key.to_owned(),
            urn,
            audio_sha256: sha.map(str::to_owned),
        });
    }

    fn plan(&self) -> Result<Plan, PlanError> {
        diff(&PlanInput {
            desired: &self.desired,
            remote: &self.remote,
            local: &self.local,
            policy: &self.policy,
            audio: &self.audio,
            manifest_digest: "sha256:manifest".to_owned(),
        })
    }

    fn fresh_urn(&mut self, kind: UrnKind) -> Urn {
        self.next_id += 1;
        Urn {
            kind,
            id: self.next_id,
        }
    }

    fn record(&mut self, kind: ManagedKind, key: &str, urn: Urn, sha: Option<String>) {
        self.local
            .managed
            .retain(|m| !(m.kind == kind && m.key == key));
        self.local.managed.push(ManagedItem {
            kind,
            key: key.to_owned(),
            urn,
            audio_sha256: sha,
        });
    }

    /// Plays `plan` as a perfect apply would: the service stores what is
    /// sent (trimming text, as it does), state records what was managed.
    fn apply_plan(&mut self, plan: &Plan) {
        let mut uploaded: BTreeMap<String, Urn> = BTreeMap::new();
        for action in &plan.actions {
            match &action.request {
                Request::UploadTrack {
                    fields,
                    sha256,
                    replaces,
                    ..
                } => {
                    let urn = self.fresh_urn(UrnKind::Track);
                    self.remote.tracks.push(RemoteTrack {
                        urn,
                        fields: service_fields(fields),
                        permalink_url: String::new(),
                        created_at: None,
                    });
                    if let Some(old) = replaces {
                        self.remote.tracks.retain(|t| t.urn != *old);
                    }
                    uploaded.insert(action.key.clone(), urn);
                    self.record(ManagedKind::Track, &action.key, urn, Some(sha256.clone()));
                }
                Request::UpdateTrack { fields, adopt } => {
                    let urn = action.urn.expect("update has a urn");
                    let t = self
                        .remote
                        .tracks
                        .iter_mut()
                        .find(|t| t.urn == urn)
                        .expect("updated track exists");
                    t.fields.extend(service_fields(fields));
                    let sha = if *adopt {
                        self.audio.get(&action.key).map(|a| a.sha256.clone())
                    } else {
                        self.local
                            .managed
                            .iter()
                            .find(|m| m.key == action.key && m.kind == ManagedKind::Track)
                            .and_then(|m| m.audio_sha256.clone())
                    };
                    self.record(ManagedKind::Track, &action.key, urn, sha);
                }
                Request::CreatePlaylist { fields, tracks } => {
                    let urn = self.fresh_urn(UrnKind::Playlist);
                    let tracks = resolve_refs(tracks, &uploaded);
                    self.remote.playlists.push(RemotePlaylist {
                        urn,
                        fields: service_fields(fields),
                        tracks,
                        permalink_url: String::new(),
                        created_at: None,
                    });
                    self.record(ManagedKind::Playlist, &action.key, urn, None);
                }
                Request::UpdatePlaylist { fields, tracks, .. } => {
                    let urn = action.urn.expect("update has a urn");
                    let tracks = resolve_refs(tracks, &uploaded);
                    let p = self
                        .remote
                        .playlists
                        .iter_mut()
                        .find(|p| p.urn == urn)
                        .expect("updated playlist exists");
                    p.fields.extend(service_fields(fields));
                    p.tracks = tracks;
                    self.record(ManagedKind::Playlist, &action.key, urn, None);
                }
                Request::DeleteTrack => {
                    let urn = action.urn.expect("delete has a urn");
                    self.remote.tracks.retain(|t| t.urn != urn);
                    self.local.managed.retain(|m| m.urn != urn);
                }
                Request::DeletePlaylist => {
                    let urn = action.urn.expect("delete has a urn");
                    self.remote.playlists.retain(|p| p.urn != urn);
                    self.local.managed.retain(|m| m.urn != urn);
                }
                Request::Follow => {
                    let urn = action.urn.expect("follow has a urn");
                    self.remote.followings.push(user(urn.id, "Someone"));
                }
                Request::Unfollow => {
                    let urn = action.urn.expect("unfollow has a urn");
                    self.remote.followings.retain(|u| u.urn != urn);
                }
                Request::Like => {
                    let urn = action.urn.expect("like has a urn");
                    match action.kind {
                        ActionKind::TrackLike => self.remote.liked_tracks.push(urn),
                        _ => self.remote.liked_playlists.push(urn),
                    }
                }
                Request::Unlike => {
                    let urn = action.urn.expect("unlike has a urn");
                    self.remote.liked_tracks.retain(|u| *u != urn);
                    self.remote.liked_playlists.retain(|u| *u != urn);
                }
            }
        }
        for f in &plan.forget {
            self.local
                .managed
                .retain(|m| !(m.kind == f.kind && m.key == f.key));
        }
    }
}

/// What the service stores: text trimmed (it drops surrounding whitespace).
fn service_fields(sent: &Fields) -> Fields {
    sent.iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Text(t) => FieldValue::Text(t.trim().to_owned()),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn resolve_refs(refs: &[TrackRef], uploaded: &BTreeMap<String, Urn>) -> Vec<Urn> {
    refs.iter()
        .map(|r| match r {
            TrackRef::Urn(u) => *u,
            TrackRef::Key(k) => *uploaded.get(k).expect("dependency uploaded first"),
        })
        .collect()
}

/// (op, kind, key) of each action, for order assertions.
fn shape(plan: &Plan) -> Vec<(Op, ActionKind, String)> {
    plan.actions
        .iter()
        .map(|a| (a.op, a.kind, a.key.clone()))
        .collect()
}

fn only_action(plan: &Plan) -> &Action {
    assert_eq!(plan.actions.len(), 1, "expected one action: {plan:#?}");
    &plan.actions[0]
}

/// An account with a bit of everything, and a manifest that changes it all.
fn rich_world() -> World {
    let mut w = World::new();
    w.policy.prune = Prune {
        tracks: true,
        playlists: true,
        follows: true,
        likes: true,
    };
    // Managed and changed title; managed and unchanged; managed and dropped.
    w.remote_track(11, fields(&[("title", text("Sunrise"))]));
    w.managed(ManagedKind::Track, "sunrise", Urn::track(11), Some("aa"));
    w.want_track(
        "sunrise",
        "aa",
        fields(&[("title", text("Sunrise (Remaster)"))]),
    );
    w.remote_track(12, fields(&[("title", text("Calm"))]));
    w.managed(ManagedKind::Track, "calm", Urn::track(12), Some("bb"));
    w.want_track("calm", "bb", fields(&[("title", text("Calm"))]));
    w.remote_track(13, fields(&[("title", text("Old"))]));
    w.managed(ManagedKind::Track, "old-demo", Urn::track(13), Some("cc"));
    // Never managed: must survive prune.
    w.remote_track(14, fields(&[("title", text("Not mine to delete"))]));
    // New upload.
    w.want_track(
        "night-drive",
        "dd",
        fields(&[
            ("title", text("Night Drive")),
            ("tags", tags(&["synthwave"])),
        ]),
    );
    // A playlist using the new upload, and a dropped managed playlist.
    w.want_playlist(
        "best-of",
        fields(&[("title", text("Best of 2026"))]),
        vec![key("night-drive"), key("calm"), urn_ref(Urn::track(500))],
    );
    w.remote_playlist(77, fields(&[("title", text("Gone soon"))]), &[12]);
    w.managed(ManagedKind::Playlist, "gone", Urn::playlist(77), None);
    // Follows: keep 2, add 42 (via URL), drop 3.
    w.remote.followings = vec![user(2, "Bob"), user(3, "Carol")];
    w.desired.follows = vec![
        urn_ref(Urn::user(2)),
        Reference::Url("https://soundcloud.com/someone".into()),
    ];
    w.local
        .resolved
        .insert("https://soundcloud.com/someone".into(), Urn::user(42));
    // Likes: add track 9, drop track 8, add playlist 70.
    w.remote.liked_tracks = vec![Urn::track(8)];
    w.desired.liked_tracks = vec![urn_ref(Urn::track(9))];
    w.desired.liked_playlists = vec![urn_ref(Urn::playlist(70))];
    w
}

#[test]
fn actions_come_in_apply_order_and_sorted_within_groups() {
    let plan = rich_world().plan().unwrap();
    let expected = vec![
        (Op::Add, ActionKind::Track, "night-drive".to_owned()),
        (Op::Change, ActionKind::Track, "sunrise".to_owned()),
        (Op::Add, ActionKind::Playlist, "best-of".to_owned()),
        (
            Op::Add,
            ActionKind::Follow,
            "soundcloud:users:42".to_owned(),
        ),
        (
            Op::Add,
            ActionKind::TrackLike,
            "soundcloud:tracks:9".to_owned(),
        ),
        (
            Op::Add,
            ActionKind::PlaylistLike,
            "soundcloud:playlists:70".to_owned(),
        ),
        (
            Op::Remove,
            ActionKind::Follow,
            "soundcloud:users:3".to_owned(),
        ),
        (
            Op::Remove,
            ActionKind::TrackLike,
            "soundcloud:tracks:8".to_owned(),
        ),
        (Op::Remove, ActionKind::Playlist, "gone".to_owned()),
        (Op::Remove, ActionKind::Track, "old-demo".to_owned()),
    ];
    assert_eq!(shape(&plan), expected);
    assert_eq!(
        plan.summary,
        Summary {
            add: 5,
            change: 1,
            remove: 4
        }
    );
    assert_eq!(plan.format_version, 1);
    assert_eq!(plan.manifest_digest, "sha256:manifest");
    assert!(plan.forget.is_empty());
}

#[test]
fn the_same_inputs_give_the_same_plan_whatever_the_input_order() {
    let w = rich_world();
    let first = w.plan().unwrap();
    let mut shuffled = rich_world();
    shuffled.desired.tracks.reverse();
    shuffled.remote.tracks.reverse();
    shuffled.remote.followings.reverse();
    shuffled.local.managed.reverse();
    assert_eq!(shuffled.plan().unwrap(), first);
}

#[test]
fn a_second_plan_after_a_perfect_apply_is_empty() {
    let mut w = rich_world();
    let plan = w.plan().unwrap();
    assert!(!plan.is_empty());
    w.apply_plan(&plan);
    let second = w.plan().unwrap();
    assert!(second.is_empty(), "second plan: {second:#?}");
    assert!(second.warnings.is_empty());
    assert_eq!(second.summary, Summary::default());
    // The never-managed track is still there.
    assert!(w.remote.tracks.iter().any(|t| t.urn == Urn::track(14)));
}

#[test]
fn text_is_compared_trimmed_and_enum_values_ignoring_case() {
    let mut w = World::new();
    w.remote_track(
        11,
        fields(&[
            ("title", text("  Night Drive \n")),
            ("description", text("line one\r\nline two")),
            ("sharing", text("Public")),
        ]),
    );
    w.managed(ManagedKind::Track, "nd", Urn::track(11), None);
    w.want_track(
        "nd",
        "aa",
        fields(&[
            ("title", text("Night Drive")),
            ("description", text("line one\nline two\n")),
            ("sharing", text("public")),
        ]),
    );
    assert!(w.plan().unwrap().is_empty());
}

#[test]
fn tags_are_compared_as_sets_whatever_their_spelling() {
    let mut w = World::new();
    w.remote_track(
        11,
        fields(&[("tags", tags(&["b", " a ", "a", "late night"]))]),
    );
    w.remote_track(12, fields(&[("tags", text("synthwave \"late night\"  "))]));
    w.managed(ManagedKind::Track, "one", Urn::track(11), None);
    w.managed(ManagedKind::Track, "two", Urn::track(12), None);
    w.want_track(
        "one",
        "aa",
        fields(&[("tags", tags(&["late night", "a", "b"]))]),
    );
    w.want_track(
        "two",
        "bb",
        fields(&[("tags", tags(&["late night", "synthwave"]))]),
    );
    assert!(w.plan().unwrap().is_empty());

    // A real difference is still one.
    w.desired.tracks[0].fields = fields(&[("tags", tags(&["a", "b"]))]);
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    assert_eq!(action.key, "one");
    assert_eq!(action.changes[0].field, "tags");
}

#[test]
fn only_fields_the_manifest_sets_are_compared_and_sent() {
    let mut w = World::new();
    w.remote_track(
        11,
        fields(&[
            ("title", text("Old title")),
            ("description", text("Edited in the web app")),
            ("genre", text("Ambient")),
        ]),
    );
    w.managed(ManagedKind::Track, "t", Urn::track(11), None);
    w.want_track(
        "t",
        "aa",
        fields(&[("title", text("New title")), ("genre", text("Ambient"))]),
    );
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    assert_eq!((action.op, action.urn), (Op::Change, Some(Urn::track(11))));
    assert_eq!(
        action.request,
        Request::UpdateTrack {
            fields: fields(&[("title", text("New title"))]),
            adopt: false
        }
    );
    assert_eq!(
        action.changes,
        vec![Change {
            field: "title".into(),
            old: Some(serde_json::json!("Old title")),
            new: Some(serde_json::json!("New title")),
        }]
    );
}

#[test]
fn an_absent_remote_field_is_a_change_unless_the_wanted_value_is_empty() {
    let mut w = World::new();
    w.remote_track(11, Fields::new());
    w.managed(ManagedKind::Track, "t", Urn::track(11), None);
    w.want_track(
        "t",
        "aa",
        fields(&[
            ("genre", text("Rock")),
            ("downloadable", FieldValue::Bool(false)),
            ("description", text("")),
            ("tags", tags(&[])),
        ]),
    );
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    let changed: Vec<&str> = action.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(changed, ["downloadable", "genre"]);
    assert!(action.changes.iter().all(|c| c.old.is_none()));
}

#[test]
fn a_boolean_differs_from_its_opposite() {
    let mut w = World::new();
    w.remote_track(11, fields(&[("downloadable", FieldValue::Bool(true))]));
    w.managed(ManagedKind::Track, "t", Urn::track(11), None);
    w.want_track(
        "t",
        "aa",
        fields(&[("downloadable", FieldValue::Bool(false))]),
    );
    let plan = w.plan().unwrap();
    assert_eq!(
        only_action(&plan).changes[0],
        Change {
            field: "downloadable".into(),
            old: Some(serde_json::json!(true)),
            new: Some(serde_json::json!(false)),
        }
    );
}

#[test]
fn a_new_track_is_uploaded_with_all_its_fields_and_file_facts() {
    let mut w = World::new();
    let f = fields(&[("title", text("Night Drive")), ("sharing", text("private"))]);
    w.want_track("nd", "abc123", f.clone()).artwork = Some(PathBuf::from("/music/art.jpg"));
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    assert_eq!(
        (action.op, action.kind, action.urn),
        (Op::Add, ActionKind::Track, None)
    );
    assert_eq!(
        action.request,
        Request::UploadTrack {
            file: PathBuf::from("/music/audio/nd.wav"),
            file_display: "audio/nd.wav".into(),
            size: 3_250_000,
            sha256: "abc123".into(),
            fields: f,
            artwork: Some(PathBuf::from("/music/art.jpg")),
            replaces: None,
        }
    );
}

#[test]
fn a_new_track_without_its_audio_read_is_an_error() {
    let mut w = World::new();
    w.want_track("nd", "aa", Fields::new());
    w.audio.clear();
    assert_eq!(
        w.plan(),
        Err(PlanError::MissingAudio {
            key: "nd".into(),
            file: "audio/nd.wav".into()
        })
    );
}

#[test]
fn a_managed_track_deleted_in_the_web_app_is_uploaded_again() {
    let mut w = World::new();
    w.managed(ManagedKind::Track, "nd", Urn::track(11), Some("aa"));
    w.want_track("nd", "aa", fields(&[("title", text("Night Drive"))]));
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    assert_eq!(action.op, Op::Add);
    assert_eq!(action.note.as_deref(), Some("missing on the account"));
    assert!(matches!(
        action.request,
        Request::UploadTrack { replaces: None, .. }
    ));
}

#[test]
fn adopting_a_track_is_a_change_even_without_field_changes() {
    let mut w = World::new();
    w.remote_track(55, fields(&[("title", text("Already there"))]));
    w.want_track("there", "aa", fields(&[("title", text("Already there"))]))
        .adopt = Some(Urn::track(55));
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    assert_eq!((action.op, action.urn), (Op::Change, Some(Urn::track(55))));
    assert_eq!(
        action.request,
        Request::UpdateTrack {
            fields: Fields::new(),
            adopt: true
        }
    );
    assert!(action.changes.is_empty());
    w.apply_plan(&plan);
    assert!(w.plan().unwrap().is_empty());
}

#[test]
fn adopting_a_urn_that_is_not_on_the_account_is_an_error() {
    let mut w = World::new();
    w.want_track("x", "aa", Fields::new()).adopt = Some(Urn::track(404));
    let err = w.plan().unwrap_err();
    assert_eq!(
        err,
        PlanError::AdoptNotOnAccount {
            kind: "track",
            key: "x".into(),
            urn: Urn::track(404)
        }
    );
    assert!(err.to_string().contains("soundcloud:tracks:404"));

    let mut w = World::new();
    w.want_playlist("p", Fields::new(), Vec::new());
    w.desired.playlists[0].adopt = Some(Urn::playlist(404));
    assert!(matches!(
        w.plan(),
        Err(PlanError::AdoptNotOnAccount {
            kind: "playlist",
            ..
        })
    ));
}

#[test]
fn an_adopted_item_deleted_in_the_web_app_is_an_error_not_a_re_upload() {
    let mut w = World::new();
    w.managed(ManagedKind::Track, "x", Urn::track(55), Some("aa"));
    w.want_track("x", "aa", Fields::new()).adopt = Some(Urn::track(55));
    let err = w.plan().unwrap_err();
    assert!(matches!(err, PlanError::AdoptNotOnAccount { .. }));
    assert!(err.to_string().contains("remove the adopt line"), "{err}");
    // Once adopted and still there, the adopt line is a no-op.
    w.remote_track(55, Fields::new());
    assert!(w.plan().unwrap().is_empty());
}

#[test]
fn two_keys_cannot_manage_one_track() {
    let mut w = World::new();
    w.remote_track(55, Fields::new());
    w.want_track("a", "aa", Fields::new()).adopt = Some(Urn::track(55));
    w.want_track("b", "bb", Fields::new()).adopt = Some(Urn::track(55));
    assert_eq!(
        w.plan(),
        Err(PlanError::AlreadyManaged {
            kind: "track",
            key: "b".into(),
            urn: Urn::track(55),
            other: "a".into()
        })
    );

    let mut w = World::new();
    w.remote_track(55, Fields::new());
    w.managed(ManagedKind::Track, "a", Urn::track(55), None);
    w.want_track("a", "aa", Fields::new());
    w.want_track("b", "bb", Fields::new()).adopt = Some(Urn::track(55));
    assert_eq!(
        w.plan(),
        Err(PlanError::AlreadyManaged {
            kind: "track",
            key: "b".into(),
            urn: Urn::track(55),
            other: "a".into()
        })
    );
}

#[test]
fn a_renamed_key_that_adopts_the_old_urn_is_not_pruned() {
    let mut w = World::new();
    w.policy.prune.tracks = true;
    w.remote_track(55, fields(&[("title", text("T"))]));
    w.managed(ManagedKind::Track, "old-name", Urn::track(55), Some("aa"));
    w.want_track("new-name", "aa", fields(&[("title", text("T"))]))
        .adopt = Some(Urn::track(55));
    let plan = w.plan().unwrap();
    assert_eq!(
        shape(&plan),
        vec![(Op::Change, ActionKind::Track, "new-name".to_owned())]
    );
    assert_eq!(
        plan.forget,
        vec![Forget {
            kind: ManagedKind::Track,
            key: "old-name".into(),
            urn: Urn::track(55)
        }]
    );
}

#[test]
fn changed_audio_warns_by_default_and_names_the_way_to_replace() {
    let mut w = World::new();
    w.remote_track(11, fields(&[("title", text("Night Drive"))]));
    w.managed(ManagedKind::Track, "nd", Urn::track(11), Some("aaaa1111"));
    w.want_track("nd", "BBBB2222", fields(&[("title", text("Night Drive"))]));
    let plan = w.plan().unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(plan.warnings.len(), 1);
    let warning = &plan.warnings[0];
    assert!(warning.contains("track nd"), "{warning}");
    assert!(warning.contains("on_audio_change: replace"), "{warning}");

    // The same digest in another spelling is no change.
    w.audio.get_mut("nd").unwrap().sha256 = "sha256:AAAA1111".into();
    assert!(w.plan().unwrap().warnings.is_empty());
}

#[test]
fn changed_audio_with_replace_uploads_a_new_track_that_replaces_the_old() {
    let mut w = World::new();
    w.policy.on_audio_change = OnAudioChange::Replace;
    w.remote_track(11, fields(&[("title", text("Night Drive"))]));
    w.managed(ManagedKind::Track, "nd", Urn::track(11), Some("aaaa"));
    let f = fields(&[("title", text("Night Drive"))]);
    w.want_track("nd", "bbbb", f.clone());
    // A playlist holding the track must follow it to the new upload.
    w.remote_playlist(70, Fields::new(), &[11]);
    w.managed(ManagedKind::Playlist, "pl", Urn::playlist(70), None);
    w.want_playlist("pl", Fields::new(), vec![key("nd")]);

    let plan = w.plan().unwrap();
    assert_eq!(
        shape(&plan),
        vec![
            (Op::Change, ActionKind::Track, "nd".to_owned()),
            (Op::Change, ActionKind::Playlist, "pl".to_owned())
        ]
    );
    let upload = &plan.actions[0];
    assert_eq!(upload.urn, Some(Urn::track(11)));
    assert_eq!(upload.changes[0].field, "audio");
    assert!(matches!(
        &upload.request,
        Request::UploadTrack { replaces: Some(old), sha256, fields, .. }
            if *old == Urn::track(11) && sha256 == "bbbb" && *fields == f
    ));
    assert!(matches!(
        &plan.actions[1].request,
        Request::UpdatePlaylist { tracks, .. } if *tracks == vec![TrackRef::Key("nd".into())]
    ));
    assert!(plan.warnings.is_empty());

    w.apply_plan(&plan);
    assert!(w.plan().unwrap().is_empty());
    assert!(!w.remote.tracks.iter().any(|t| t.urn == Urn::track(11)));
}

#[test]
fn a_playlist_names_a_track_uploaded_in_the_same_plan_by_key() {
    let mut w = World::new();
    w.remote_track(11, Fields::new());
    w.managed(ManagedKind::Track, "old", Urn::track(11), None);
    w.want_track("old", "aa", Fields::new());
    w.want_track("new", "bb", Fields::new());
    w.want_playlist(
        "mix",
        fields(&[("title", text("Mix"))]),
        vec![key("new"), key("old"), urn_ref(Urn::track(7))],
    );
    let plan = w.plan().unwrap();
    let create = plan.actions.last().unwrap();
    assert_eq!((create.op, create.kind), (Op::Add, ActionKind::Playlist));
    assert_eq!(
        create.request,
        Request::CreatePlaylist {
            fields: fields(&[("title", text("Mix"))]),
            tracks: vec![
                TrackRef::Key("new".into()),
                TrackRef::Urn(Urn::track(11)),
                TrackRef::Urn(Urn::track(7)),
            ],
        }
    );
    // The upload it depends on comes first.
    let upload = plan.actions.iter().position(|a| a.key == "new").unwrap();
    let playlist = plan.actions.iter().position(|a| a.key == "mix").unwrap();
    assert!(upload < playlist);
}

#[test]
fn a_playlist_keeps_blocked_tracks_when_another_field_changes() {
    let mut w = World::new();
    // 101 is blocked in this region: the pull still lists it (access=blocked).
    w.remote_playlist(70, fields(&[("title", text("Mine"))]), &[100, 101]);
    w.managed(ManagedKind::Playlist, "mine", Urn::playlist(70), None);
    w.want_playlist(
        "mine",
        fields(&[("title", text("Mine, renamed"))]),
        vec![urn_ref(Urn::track(100)), urn_ref(Urn::track(101))],
    );
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    let fields_changed: Vec<&str> = action.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields_changed, ["title"]);
    assert_eq!(
        action.request,
        Request::UpdatePlaylist {
            fields: fields(&[("title", text("Mine, renamed"))]),
            tracks: vec![
                TrackRef::Urn(Urn::track(100)),
                TrackRef::Urn(Urn::track(101))
            ],
            adopt: false,
        }
    );
}

#[test]
fn playlist_track_lists_report_membership_and_order_apart() {
    let mut w = World::new();
    w.remote_playlist(70, Fields::new(), &[1, 2, 3]);
    w.managed(ManagedKind::Playlist, "p", Urn::playlist(70), None);
    w.want_playlist(
        "p",
        Fields::new(),
        [3, 2, 4, 5]
            .iter()
            .map(|id| urn_ref(Urn::track(*id)))
            .collect(),
    );
    let plan = w.plan().unwrap();
    let action = only_action(&plan);
    let change = &action.changes[0];
    assert_eq!(change.field, "tracks");
    assert_eq!(
        change.old,
        Some(serde_json::json!([
            "soundcloud:tracks:1",
            "soundcloud:tracks:2",
            "soundcloud:tracks:3"
        ]))
    );
    let old: Vec<String> = serde_json::from_value(change.old.clone().unwrap()).unwrap();
    let new: Vec<String> = serde_json::from_value(change.new.clone().unwrap()).unwrap();
    assert_eq!(
        list_delta(&old, &new),
        ListDelta {
            added: 2,
            removed: 1,
            reordered: true
        }
    );
    // The PUT carries the whole list, not the delta.
    assert!(matches!(&action.request, Request::UpdatePlaylist { tracks, .. } if tracks.len() == 4));
}

#[test]
fn an_unchanged_playlist_gives_no_action_and_an_emptied_one_does() {
    let mut w = World::new();
    w.remote_playlist(70, fields(&[("title", text("P"))]), &[1, 2]);
    w.managed(ManagedKind::Playlist, "p", Urn::playlist(70), None);
    w.want_playlist(
        "p",
        fields(&[("title", text("P"))]),
        vec![urn_ref(Urn::track(1)), urn_ref(Urn::track(2))],
    );
    assert!(w.plan().unwrap().is_empty());
    w.desired.playlists[0].tracks.clear();
    let plan = w.plan().unwrap();
    assert!(matches!(
        &only_action(&plan).request,
        Request::UpdatePlaylist { tracks, .. } if tracks.is_empty()
    ));
}

#[test]
fn list_delta_counts_duplicates_and_detects_moves() {
    let d = |old: &[u8], new: &[u8]| list_delta(old, new);
    assert_eq!(d(&[1, 2, 3], &[1, 2, 3]), ListDelta::default());
    assert!(d(&[1, 2, 3], &[1, 2, 3]).is_empty());
    assert_eq!(
        d(&[1, 2, 3], &[1, 3, 2]),
        ListDelta {
            added: 0,
            removed: 0,
            reordered: true
        }
    );
    assert_eq!(
        d(&[1, 2], &[1, 2, 2]),
        ListDelta {
            added: 1,
            removed: 0,
            reordered: false
        }
    );
    // A replaced member is not a move.
    assert_eq!(
        d(&[1, 2, 3], &[1, 3, 4]),
        ListDelta {
            added: 1,
            removed: 1,
            reordered: false
        }
    );
    // Dropping the first of two copies is not a move.
    assert_eq!(
        d(&[1, 2, 1], &[2, 1]),
        ListDelta {
            added: 0,
            removed: 1,
            reordered: false
        }
    );
    assert_eq!(
        d(&[], &[4, 5]),
        ListDelta {
            added: 2,
            removed: 0,
            reordered: false
        }
    );
}

#[test]
fn url_references_resolve_through_the_cache_or_fail_clearly() {
    let mut w = World::new();
    let url = "https://soundcloud.com/someone/a-track";
    w.desired.liked_tracks = vec![Reference::Url(url.into())];
    let err = w.plan().unwrap_err();
    assert!(matches!(&err, PlanError::UnresolvedUrl { url: u, .. } if u == url));
    assert!(err.to_string().contains("likes.tracks, entry 1"), "{err}");

    w.local.resolved.insert(url.into(), Urn::track(9));
    let plan = w.plan().unwrap();
    assert_eq!(only_action(&plan).urn, Some(Urn::track(9)));
}

#[test]
fn a_reference_of_the_wrong_kind_is_an_error() {
    let mut w = World::new();
    w.want_playlist("p", Fields::new(), vec![urn_ref(Urn::user(5))]);
    assert!(matches!(
        w.plan(),
        Err(PlanError::WrongKind {
            found: "user",
            expected: "track",
            ..
        })
    ));

    let mut w = World::new();
    w.desired.follows = vec![key("bob")];
    assert!(matches!(w.plan(), Err(PlanError::KeyNotAllowed { .. })));

    let mut w = World::new();
    w.want_playlist("p", Fields::new(), vec![key("no-such-track")]);
    assert!(matches!(w.plan(), Err(PlanError::UnknownKey { .. })));
}

#[test]
fn duplicate_manifest_keys_are_an_error() {
    let mut w = World::new();
    w.want_track("a", "aa", Fields::new());
    w.want_track("a", "bb", Fields::new());
    assert_eq!(
        w.plan(),
        Err(PlanError::DuplicateKey {
            kind: "track",
            key: "a".into()
        })
    );
}

#[test]
fn follows_are_added_with_a_readable_note_and_kept_when_prune_is_off() {
    let mut w = World::new();
    w.remote.followings = vec![user(2, "Bob"), user(3, "Carol")];
    w.desired.follows = vec![
        urn_ref(Urn::user(2)),
        urn_ref(Urn::user(43)),
        Reference::Url("https://soundcloud.com/someone".into()),
        // The same user twice is one follow.
        urn_ref(Urn::user(43)),
    ];
    w.local
        .resolved
        .insert("https://soundcloud.com/someone".into(), Urn::user(42));
    let plan = w.plan().unwrap();
    let notes: Vec<(String, Option<String>)> = plan
        .actions
        .iter()
        .map(|a| (a.key.clone(), a.note.clone()))
        .collect();
    assert_eq!(
        notes,
        vec![
            (
                "soundcloud:users:42".to_owned(),
                Some("https://soundcloud.com/someone".to_owned())
            ),
            ("soundcloud:users:43".to_owned(), None),
        ]
    );
    // Carol is not in the manifest, but prune.follows is off.
    assert!(plan.actions.iter().all(|a| a.op == Op::Add));
}

#[test]
fn prune_on_removes_follows_and_likes_not_in_the_manifest() {
    let mut w = World::new();
    w.policy.prune.follows = true;
    w.policy.prune.likes = true;
    w.remote.followings = vec![user(3, "Carol")];
    w.remote.liked_tracks = vec![Urn::track(8), Urn::track(9)];
    w.remote.liked_playlists = vec![Urn::playlist(70)];
    w.desired.liked_tracks = vec![urn_ref(Urn::track(9))];
    let plan = w.plan().unwrap();
    assert_eq!(
        shape(&plan),
        vec![
            (
                Op::Remove,
                ActionKind::Follow,
                "soundcloud:users:3".to_owned()
            ),
            (
                Op::Remove,
                ActionKind::TrackLike,
                "soundcloud:tracks:8".to_owned()
            ),
            (
                Op::Remove,
                ActionKind::PlaylistLike,
                "soundcloud:playlists:70".to_owned()
            ),
        ]
    );
    assert!(
        plan.actions
            .iter()
            .all(|a| a.note.as_deref() == Some("prune"))
    );
    assert_eq!(plan.actions[1].request, Request::Unlike);
}

#[test]
fn likes_that_include_blocked_tracks_show_no_change() {
    let mut w = World::new();
    w.policy.prune.likes = true;
    // 101 is blocked; the pull lists it because it asks for access=blocked.
    w.remote.liked_tracks = vec![Urn::track(100), Urn::track(101)];
    w.desired.liked_tracks = vec![urn_ref(Urn::track(101)), urn_ref(Urn::track(100))];
    assert!(w.plan().unwrap().is_empty());
}

#[test]
fn prune_off_forgets_managed_items_that_left_the_manifest() {
    let mut w = World::new();
    w.remote_track(13, Fields::new());
    w.managed(ManagedKind::Track, "old-demo", Urn::track(13), Some("aa"));
    w.remote_playlist(77, Fields::new(), &[13]);
    w.managed(ManagedKind::Playlist, "old-list", Urn::playlist(77), None);
    let plan = w.plan().unwrap();
    assert!(plan.actions.is_empty());
    assert_eq!(
        plan.forget,
        vec![
            Forget {
                kind: ManagedKind::Track,
                key: "old-demo".into(),
                urn: Urn::track(13)
            },
            Forget {
                kind: ManagedKind::Playlist,
                key: "old-list".into(),
                urn: Urn::playlist(77)
            },
        ]
    );
    assert!(!plan.is_empty(), "forgetting is a change to state");
}

#[test]
fn prune_on_deletes_only_what_scsync_manages() {
    let mut w = World::new();
    w.policy.prune.tracks = true;
    w.policy.prune.playlists = true;
    w.remote_track(13, Fields::new());
    w.managed(ManagedKind::Track, "old-demo", Urn::track(13), None);
    w.remote_track(14, Fields::new()); // never managed
    w.remote_playlist(78, Fields::new(), &[]); // never managed
    // Managed but already deleted in the web app: nothing to delete.
    w.managed(ManagedKind::Playlist, "vanished", Urn::playlist(79), None);
    let plan = w.plan().unwrap();
    assert_eq!(
        shape(&plan),
        vec![(Op::Remove, ActionKind::Track, "old-demo".to_owned())]
    );
    assert_eq!(plan.actions[0].request, Request::DeleteTrack);
    assert_eq!(plan.actions[0].note.as_deref(), Some("prune"));
    assert_eq!(plan.forget.len(), 1);
    assert_eq!(plan.forget[0].key, "vanished");
}

#[test]
fn a_like_of_a_track_uploaded_by_this_plan_waits_for_the_next_run() {
    let mut w = World::new();
    w.want_track("mine", "aa", Fields::new());
    w.desired.liked_tracks = vec![key("mine")];
    let plan = w.plan().unwrap();
    assert_eq!(
        shape(&plan),
        vec![(Op::Add, ActionKind::Track, "mine".to_owned())]
    );
    assert_eq!(plan.warnings.len(), 1);
    w.apply_plan(&plan);
    let next = w.plan().unwrap();
    assert_eq!(shape(&next)[0].1, ActionKind::TrackLike);
}

#[test]
fn max_deletes_refuses_a_plan_that_deletes_too_much() {
    let w = rich_world();
    let plan = w.plan().unwrap();
    assert_eq!(plan.removals(), 4);
    let mut policy = w.policy.clone();
    policy.max_deletes = 4;
    assert_eq!(check_policy(&plan, &policy), Ok(()));
    policy.max_deletes = 3;
    let refusal = check_policy(&plan, &policy).unwrap_err();
    assert_eq!((refusal.deletes, refusal.max_deletes), (4, 3));
    let message = refusal.to_string();
    assert!(
        message.contains("1 follows, 1 playlists, 1 track likes, 1 tracks"),
        "{message}"
    );
    assert!(message.contains("policy.max_deletes (3)"), "{message}");
}

#[test]
fn a_replacing_upload_counts_as_a_deletion() {
    let mut w = World::new();
    w.policy.on_audio_change = OnAudioChange::Replace;
    w.policy.max_deletes = 0;
    w.remote_track(11, Fields::new());
    w.managed(ManagedKind::Track, "nd", Urn::track(11), Some("aa"));
    w.want_track("nd", "bb", Fields::new());
    let plan = w.plan().unwrap();
    let refusal = check_policy(&plan, &w.policy).unwrap_err();
    assert_eq!(refusal.breakdown, "1 replaced tracks");
}

#[test]
fn remote_digest_ignores_listing_order_but_not_content() {
    let w = rich_world();
    let digest = remote_digest(&w.remote);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 7 + 64,
        "{digest}"
    );
    let mut reordered = w.remote.clone();
    reordered.tracks.reverse();
    reordered.followings.reverse();
    reordered.liked_tracks.reverse();
    assert_eq!(remote_digest(&reordered), digest);

    let mut edited = w.remote.clone();
    edited.tracks[0]
        .fields
        .insert("title".into(), text("Edited"));
    assert_ne!(remote_digest(&edited), digest);
    let mut moved = w.remote.clone();
    moved.playlists[0].tracks.push(Urn::track(1));
    assert_ne!(remote_digest(&moved), digest);
}

#[test]
fn tag_list_text_splits_on_spaces_and_keeps_quoted_words_together() {
    assert_eq!(
        crate::tag_list::decode_tag_list(r#"synthwave "late night"  drive "unclosed tag"#),
        ["synthwave", "late night", "drive", "unclosed tag"]
    );
    assert!(crate::tag_list::decode_tag_list("   ").is_empty());
}

/// A small deterministic generator, so the property test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A random world: some tracks and playlists managed, some only remote,
/// some adopted, some missing; random follows, likes and prune flags.
fn random_world(rng: &mut Rng) -> World {
    let mut w = World::new();
    w.policy.prune = Prune {
        tracks: rng.chance(50),
        playlists: rng.chance(50),
        follows: rng.chance(50),
        likes: rng.chance(50),
    };
    let titles = ["A", "B", " A ", "C"];
    let mut track_keys = Vec::new();
    for i in 0..rng.below(6) {
        let id = 100 + i;
        let title = titles[rng.below(4) as usize];
        if rng.chance(70) {
            w.remote_track(id, fields(&[("title", text(title))]));
        }
        let key_name = format!("t{i}");
        if rng.chance(60) {
            w.managed(ManagedKind::Track, &key_name, Urn::track(id), Some("same"));
        }
        if rng.chance(75) {
            let title = titles[rng.below(4) as usize];
            let t = w.want_track(&key_name, "same", fields(&[("title", text(title))]));
            if rng.chance(15) {
                t.adopt = Some(Urn::track(id));
            }
            track_keys.push(key_name);
        }
    }
    // Adopting needs the track on the account and unmanaged elsewhere.
    let remote: Vec<Urn> = w.remote.tracks.iter().map(|t| t.urn).collect();
    for t in &mut w.desired.tracks {
        if t.adopt.is_some_and(|u| !remote.contains(&u)) {
            t.adopt = None;
        }
    }
    for i in 0..rng.below(4) {
        let id = 200 + i;
        if rng.chance(70) {
            let tracks: Vec<u64> = (0..rng.below(4)).map(|_| 100 + rng.below(6)).collect();
            w.remote_playlist(id, Fields::new(), &tracks);
        }
        let key_name = format!("p{i}");
        if rng.chance(60) {
            w.managed(ManagedKind::Playlist, &key_name, Urn::playlist(id), None);
        }
        if rng.chance(75) {
            let mut refs = Vec::new();
            for _ in 0..rng.below(5) {
                if !track_keys.is_empty() && rng.chance(50) {
                    refs.push(key(&track_keys[rng.below(track_keys.len() as u64) as usize]));
                } else {
                    refs.push(urn_ref(Urn::track(100 + rng.below(8))));
                }
            }
            w.want_playlist(&key_name, fields(&[("title", text("P"))]), refs);
        }
    }
    for id in 2..8 {
        if rng.chance(40) {
            w.remote.followings.push(user(id, "U"));
        }
        if rng.chance(40) {
            w.desired.follows.push(urn_ref(Urn::user(id)));
        }
        if rng.chance(40) {
            w.remote.liked_tracks.push(Urn::track(id));
        }
        if rng.chance(40) {
            w.desired.liked_tracks.push(urn_ref(Urn::track(id)));
        }
        if rng.chance(30) {
            w.remote.liked_playlists.push(Urn::playlist(id));
        }
        if rng.chance(30) {
            w.desired.liked_playlists.push(urn_ref(Urn::playlist(id)));
        }
    }
    w
}

#[test]
fn any_plan_applied_perfectly_converges_in_one_step() {
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut planned = 0;
    // What the random worlds exercised: removes, forgets, adoptions and
    // playlist entries naming a pending upload.
    let mut seen = [0usize; 4];
    for case in 0..400 {
        let mut w = random_world(&mut rng);
        let Ok(plan) = w.plan() else {
            // Some random worlds are invalid (e.g. one URN adopted twice);
            // the point is that they give an error, not a panic.
            continue;
        };
        planned += 1;
        // Removals are last, and nothing is deleted that was never managed.
        let first_removal = plan.actions.iter().position(|a| a.op == Op::Remove);
        if let Some(i) = first_removal {
            assert!(
                plan.actions[i..].iter().all(|a| a.op == Op::Remove),
                "case {case}"
            );
        }
        let managed: Vec<Urn> = w.local.managed.iter().map(|m| m.urn).collect();
        for a in &plan.actions {
            if matches!(a.request, Request::DeleteTrack | Request::DeletePlaylist) {
                assert!(managed.contains(&a.urn.unwrap()), "case {case}: {a:?}");
            }
        }
        seen[0] += plan.removals();
        seen[1] += plan.forget.len();
        seen[2] += plan
            .actions
            .iter()
            .filter(|a| matches!(a.request, Request::UpdateTrack { adopt: true, .. }))
            .count();
        seen[3] += plan
            .actions
            .iter()
            .filter(|a| match &a.request {
                Request::CreatePlaylist { tracks, .. } | Request::UpdatePlaylist { tracks, .. } => {
                    tracks.iter().any(|t| matches!(t, TrackRef::Key(_)))
                }
                _ => false,
            })
            .count();
        w.apply_plan(&plan);
        let second = w.plan().unwrap();
        assert!(second.is_empty(), "case {case}: second plan {second:#?}");
    }
    assert!(planned > 300, "only {planned} random worlds planned");
    assert!(
        seen.iter().all(|n| *n > 10),
        "too little exercised: {seen:?}"
    );
}
