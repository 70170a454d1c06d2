//! Finding out what really happened: reading the account back after a
//! write of unknown fate, and settling the intents a dead run left open.

use std::collections::HashSet;

use crate::api::ApiError;
use crate::model::{FieldValue, Fields, ManagedItem, ManagedKind, Urn};
use crate::plan::{Action, Request};
use crate::state::{IntentOutcome, IntentRecord, ManagedChange, StateError, Store};

use super::{LaneContext, Outcome, no_urn};

impl LaneContext<'_> {
    /// After a write that may or may not have happened (a 5xx, a timeout, a
    /// dropped connection), read the account before deciding: a create that
    /// happened is adopted, an update that holds is done, and only a write
    /// that verifiably did not happen is sent again, once. A POST is never
    /// repeated blindly.
    pub(super) async fn settle_ambiguous(
        &self,
        action: &Action,
        tracks: &[Urn],
        sent_at: chrono::DateTime<chrono::Utc>,
        error: ApiError,
    ) -> Outcome {
        match self.read_back(action, tracks, sent_at).await {
            Ok(ReadBack::Happened(urn)) => Outcome::Done(urn),
            Ok(ReadBack::DidNotHappen) => match self.send(action, tracks).await {
                Ok(urn) => Outcome::Done(urn),
                Err(again) if again.is_ambiguous_write() => {
                    Outcome::Unknown(format!("{again} (after an earlier {error})"))
                }
                Err(again) => Outcome::Failed(format!("{again} (after an earlier {error})")),
            },
            Ok(ReadBack::Ambiguous(candidates)) => {
                let kind = match action.request {
                    Request::CreatePlaylist { .. } => ManagedKind::Playlist,
                    _ => ManagedKind::Track,
                };
                if let Err(e) = hold_back(self.applier.store, kind, &action.key, &candidates) {
                    return Outcome::Failed(format!("{error}; and {e}"));
                }
                Outcome::Failed(format!(
                    "{error}; several objects on the account could be it ({}); not guessing which: \
                     set `adopt:` to the right one in the manifest",
                    urn_list(&candidates)
                ))
            }
            Err(read) => Outcome::Unknown(format!("{error}; reading it back failed too ({read})")),
        }
    }

    async fn read_back(
        &self,
        action: &Action,
        tracks: &[Urn],
        sent_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<ReadBack, ApiError> {
        let api = self.applier.api;
        let managed = || -> HashSet<Urn> {
            self.applier
                .store
                .local_state()
                .map(|l| l.managed.iter().map(|m| m.urn).collect())
                .unwrap_or_default()
        };
        Ok(match &action.request {
            Request::UploadTrack { fields, .. } => {
                let hints = CreateHints::from_fields(fields, sent_at);
                let tracks = api.my_tracks().await?;
                ReadBack::from_candidates(
                    &hints.candidates(
                        tracks
                            .iter()
                            .map(|t| (t.urn, &t.fields, t.created_at.as_deref())),
                        &managed(),
                    ),
                )
            }
            Request::CreatePlaylist { fields, .. } => {
                let hints = CreateHints::from_fields(fields, sent_at);
                let playlists = api.my_playlists().await?;
                ReadBack::from_candidates(
                    &hints.candidates(
                        playlists
                            .iter()
                            .map(|p| (p.urn, &p.fields, p.created_at.as_deref())),
                        &managed(),
                    ),
                )
            }
            Request::UpdatePlaylist { fields, .. } => {
                let urn = action.urn.ok_or_else(|| no_urn(action))?;
                let now = api.playlist(urn).await?;
                if now.tracks == tracks && crate::plan::diff::fields_match(fields, &now.fields) {
                    ReadBack::Happened(Some(urn))
                } else {
                    ReadBack::DidNotHappen
                }
            }
            Request::UpdateTrack { fields, .. } => {
                let urn = action.urn.ok_or_else(|| no_urn(action))?;
                let now = api.track(urn).await?;
                if crate::plan::diff::fields_match(fields, &now.fields) {
                    ReadBack::Happened(Some(urn))
                } else {
                    ReadBack::DidNotHappen
                }
            }
            // Deletes, follows and likes are idempotent: sending again is safe.
            _ => ReadBack::DidNotHappen,
        })
    }
}

/// What reading the account back said about a write of unknown fate.
enum ReadBack {
    Happened(Option<Urn>),
    DidNotHappen,
    /// Several unmanaged objects match a create: one of them may be it.
    Ambiguous(Vec<Urn>),
}

impl ReadBack {
    fn from_candidates(found: &[Urn]) -> ReadBack {
        match found {
            [] => ReadBack::DidNotHappen,
            [urn] => ReadBack::Happened(Some(*urn)),
            many => ReadBack::Ambiguous(many.to_vec()),
        }
    }
}

/// How a create is recognised on the account when its answer was lost:
/// same title, same permalink when one was set, created no earlier than the
/// request (machine tags are not used: the service drops them).
struct CreateHints {
    title: Option<String>,
    permalink: Option<String>,
    sent_at: chrono::DateTime<chrono::Utc>,
}

impl CreateHints {
    fn from_fields(fields: &Fields, sent_at: chrono::DateTime<chrono::Utc>) -> CreateHints {
        CreateHints {
            title: text_field(fields, "title").map(str::to_owned),
            permalink: text_field(fields, "permalink").map(str::to_owned),
            sent_at,
        }
    }

    fn from_intent(intent: &IntentRecord) -> CreateHints {
        CreateHints {
            title: intent.title_hint.clone(),
            permalink: intent.permalink_hint.clone(),
            sent_at: intent.created_at,
        }
    }

    /// The unmanaged objects (URN, fields, `created_at`) that could be the
    /// one the create made.
    fn candidates<'a>(
        &self,
        objects: impl Iterator<Item = (Urn, &'a Fields, Option<&'a str>)>,
        managed: &HashSet<Urn>,
    ) -> Vec<Urn> {
        objects
            .filter(|(urn, fields, created_at)| {
                !managed.contains(urn) && self.matches(fields, *created_at)
            })
            .map(|(urn, ..)| urn)
            .collect()
    }

    fn matches(&self, fields: &Fields, created_at: Option<&str>) -> bool {
        let title_ok = self
            .title
            .as_deref()
            .is_some_and(|t| text_field(fields, "title") == Some(t.trim()));
        let permalink_ok = self
            .permalink
            .as_deref()
            .is_none_or(|p| text_field(fields, "permalink").is_none_or(|have| have == p));
        // The service's timestamps have whole seconds; allow for clock skew too.
        let time_ok = created_at
            .and_then(parse_service_time)
            .is_none_or(|created| created + chrono::Duration::minutes(5) >= self.sent_at);
        title_ok && permalink_ok && time_ok
    }
}

pub(super) fn text_field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    match fields.get(name) {
        Some(FieldValue::Text(t)) => Some(t.trim()),
        _ => None,
    }
}

/// Settles the intents a dead run left open, before anything is planned.
///
/// An upload or playlist creation that was sent but never recorded may have
/// happened: look for it on the account (same title, and permalink when one
/// was set, created no earlier than the intent) and adopt it, so the next
/// plan does not upload or create it twice. An ambiguous match is reported,
/// not guessed. Every other write is idempotent, and the next plan re-checks
/// it against the account.
pub async fn recover(api: &crate::api::ApiReader, store: &Store) -> Result<(), RecoverError> {
    let open = store.open_intents()?;
    if !open.is_empty() {
        tracing::warn!(
            count = open.len(),
            "settling writes left open by an interrupted run"
        );
        let remote = crate::remote::pull(api).await?;
        let local = store.local_state()?;
        let mut managed: HashSet<Urn> = local.managed.iter().map(|m| m.urn).collect();
        for intent in open {
            let hints = CreateHints::from_intent(&intent);
            let action: Option<Action> = serde_json::from_str(&intent.action_json).ok();
            let (outcome, changes) = match action.as_ref().map(|a| &a.request) {
                Some(Request::UploadTrack { sha256, .. }) => {
                    let candidates = hints.candidates(
                        remote
                            .tracks
                            .iter()
                            .map(|t| (t.urn, &t.fields, t.created_at.as_deref())),
                        &managed,
                    );
                    settle_create(
                        store,
                        &intent,
                        ManagedKind::Track,
                        Some(sha256.clone()),
                        &candidates,
                    )
                }
                Some(Request::CreatePlaylist { .. }) => {
                    let candidates = hints.candidates(
                        remote
                            .playlists
                            .iter()
                            .map(|p| (p.urn, &p.fields, p.created_at.as_deref())),
                        &managed,
                    );
                    settle_create(store, &intent, ManagedKind::Playlist, None, &candidates)
                }
                _ => (
                    IntentOutcome::Recovered {
                        urn: None,
                        applied: false,
                        note: "interrupted; idempotent, so the next plan re-checks it".into(),
                    },
                    Vec::new(),
                ),
            };
            for change in &changes {
                if let ManagedChange::Upsert { item, .. } = change {
                    managed.insert(item.urn);
                }
            }
            store.record_outcome_with(intent.id, &outcome, &changes)?;
        }
    }
    for run in store.dead_runs()? {
        store.close_dead_run(run.id)?;
    }
    Ok(())
}

/// The outcome of a create whose fate was unknown, given the account's
/// unmanaged objects that match it.
fn settle_create(
    store: &Store,
    intent: &IntentRecord,
    kind: ManagedKind,
    audio_sha256: Option<String>,
    candidates: &[Urn],
) -> (IntentOutcome, Vec<ManagedChange>) {
    match candidates {
        [urn] => {
            tracing::info!(key = %intent.key, %urn, "adopting what the interrupted run created");
            let item = ManagedItem {
                kind,
                key: intent.key.clone(),
                urn: *urn,
                audio_sha256,
            };
            (
                IntentOutcome::Recovered {
                    urn: Some(*urn),
                    applied: true,
                    note: "found on the account and adopted".into(),
                },
                vec![ManagedChange::Upsert {
                    item,
                    applied_digest: String::new(),
                }],
            )
        }
        [] => (
            IntentOutcome::Recovered {
                urn: None,
                applied: false,
                note: "not on the account: the service never created it".into(),
            },
            Vec::new(),
        ),
        many => {
            let list: Vec<String> = many.iter().map(Urn::to_string).collect();
            tracing::warn!(key = %intent.key, candidates = %list.join(", "),
                "an interrupted run may have created one of these; not guessing which");
            if let Err(e) = hold_back(store, kind, &intent.key, many) {
                tracing::error!("{e}");
            }
            (
                IntentOutcome::Failed {
                    error: format!(
                        "ambiguous after a crash: one of {} may be this {}; adopt the right one in the manifest",
                        list.join(", "),
                        intent.key
                    ),
                },
                Vec::new(),
            )
        }
    }
}

/// Where a key held back after an ambiguous create is recorded.
pub fn unsettled_key(kind: ManagedKind, key: &str) -> String {
    let kind = match kind {
        ManagedKind::Track => "track",
        ManagedKind::Playlist => "playlist",
    };
    format!("unsettled.{kind}.{key}")
}

/// Holds a key back: until the manifest adopts one of `candidates`, the
/// planner refuses to create it again (a third copy would only add to the
/// confusion).
fn hold_back(
    store: &Store,
    kind: ManagedKind,
    key: &str,
    candidates: &[Urn],
) -> Result<(), StateError> {
    store.set_meta(&unsettled_key(kind, key), &urn_list(candidates))
}

fn urn_list(urns: &[Urn]) -> String {
    urns.iter()
        .map(Urn::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The service's timestamp form: `2026/01/02 03:04:05 +0000`.
fn parse_service_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_str(text, "%Y/%m/%d %H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot settle the writes of an interrupted run: {0}")]
    Api(#[from] ApiError),
}
