//! Executes a plan: ordering, bounded concurrency, the journal, outcomes.
//!
//! Writes of one kind run in plan order, one lane per kind; the lanes run
//! side by side, at most `policy.concurrency` requests in flight. Playlists
//! wait for the uploads they reference; removals run after everything else.
//! Every action's intent is committed to the journal before its request and
//! its outcome after, so a crash at any point is recovered on the next run.
//! One failed action does not stop independent ones; the ones that depend on
//! it are skipped; all are reported.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures_util::future::join_all;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::api::{ApiError, ApiWriter};
use crate::audio::hex;
use crate::model::{ManagedItem, ManagedKind, Urn};
use crate::plan::{Action, ActionKind, Op, Plan, Request, TrackRef};
use crate::state::{IntentId, IntentOutcome, ManagedChange, NewIntent, RunId, StateError, Store};

mod verify;

pub use verify::{RecoverError, recover, unsettled_key};

/// Lets a caller (SIGINT/SIGTERM, the daemon) stop an apply between requests:
/// the request in flight finishes and is recorded, the rest are skipped.
pub trait StopCheck: Sync {
    fn should_stop(&self) -> bool;
}

/// Never stops: for one-shot runs without signal handling.
pub struct NeverStop;

impl StopCheck for NeverStop {
    fn should_stop(&self) -> bool {
        false
    }
}

/// What happened to each action.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub succeeded: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Not run because something they need failed or was not done.
    pub skipped: Vec<(String, String)>,
    /// Not started because the run stopped (a signal, or `parked_until`).
    pub not_started: Vec<String>,
    pub interrupted: bool,
    /// SoundCloud's rate limit asked for a longer wait than this run
    /// accepts: nothing more was sent; run again after this time.
    pub parked_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
            && self.skipped.is_empty()
            && self.not_started.is_empty()
            && !self.interrupted
            && self.parked_until.is_none()
    }

    /// One line: `3 done, 1 failed, 2 skipped`.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} done, {} failed, {} skipped",
            self.succeeded.len(),
            self.failed.len(),
            self.skipped.len()
        );
        if !self.not_started.is_empty() {
            line.push_str(&format!(", {} not started", self.not_started.len()));
        }
        if self.interrupted {
            line.push_str(" (interrupted)");
        }
        if let Some(until) = self.parked_until {
            line.push_str(&format!(" (rate limited until {})", resume_time(until)));
        }
        line
    }
}

/// A resume time as users read it: whole seconds, UTC.
pub fn resume_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Everything apply needs besides the plan.
pub struct Applier<'a> {
    pub api: &'a ApiWriter,
    pub store: &'a Store,
    pub run: RunId,
    pub concurrency: usize,
    pub stop: &'a dyn StopCheck,
}

/// The result of one action's request(s).
enum Outcome {
    Done(Option<Urn>),
    Failed(String),
    /// The write may have happened and reading the account back could not
    /// tell: its intent stays open, for the next run's recovery to settle.
    Unknown(String),
    /// Not sent: the rate limit asks for a wait longer than the run accepts.
    Parked {
        until: chrono::DateTime<chrono::Utc>,
        error: String,
    },
    Skipped(String),
}

/// Shared between lanes: what each track key became.
#[derive(Default)]
struct Progress {
    /// Track key -> URN, for uploads done in this run.
    uploaded: HashMap<String, Urn>,
    /// Track keys whose upload failed or was skipped.
    broken: HashMap<String, String>,
}

impl Applier<'_> {
    pub async fn apply(&self, plan: &Plan) -> Result<ApplyReport, StateError> {
        for forget in &plan.forget {
            self.store.forget_managed(forget.kind, &forget.key)?;
        }
        let report = Mutex::new(ApplyReport::default());
        let progress = Mutex::new(Progress::default());
        let permits = Semaphore::new(self.concurrency.max(1));
        let ctx = LaneContext {
            applier: self,
            report: &report,
            progress: &progress,
            permits: &permits,
        };

        let lane = |kind: ActionKind, removals: bool| -> Vec<&Action> {
            plan.actions
                .iter()
                .filter(|a| a.kind == kind && (a.op == Op::Remove) == removals)
                .collect()
        };
        // Tracks before the playlists that use them; other kinds alongside.
        let tracks_then_playlists = async {
            ctx.run_lane(lane(ActionKind::Track, false)).await?;
            ctx.run_lane(lane(ActionKind::Playlist, false)).await
        };
        let others = [
            ActionKind::Follow,
            ActionKind::TrackLike,
            ActionKind::PlaylistLike,
        ]
        .map(|kind| ctx.run_lane(lane(kind, false)));
        let (first, rest) = tokio::join!(tracks_then_playlists, join_all(others));
        first?;
        rest.into_iter().collect::<Result<(), _>>()?;

        // Removals last, once everything they might affect is settled.
        let removals = [
            ActionKind::TrackLike,
            ActionKind::PlaylistLike,
            ActionKind::Follow,
            ActionKind::Playlist,
            ActionKind::Track,
        ]
        .map(|kind| ctx.run_lane(lane(kind, true)));
        join_all(removals)
            .await
            .into_iter()
            .collect::<Result<(), _>>()?;

        Ok(report.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

struct LaneContext<'a> {
    applier: &'a Applier<'a>,
    report: &'a Mutex<ApplyReport>,
    progress: &'a Mutex<Progress>,
    permits: &'a Semaphore,
}

impl LaneContext<'_> {
    async fn run_lane(&self, actions: Vec<&Action>) -> Result<(), StateError> {
        for action in actions {
            let label = label(action);
            if self.halted() {
                self.not_started(action, label);
                continue;
            }
            let outcome = match self.dependencies_ready(action) {
                Err(reason) => Outcome::Skipped(reason),
                Ok(tracks) => {
                    let permit = self.permits.acquire().await;
                    // A stop asked for (or a rate limit met) while this lane
                    // waited for its turn: only requests in flight finish.
                    if self.halted() {
                        drop(permit);
                        self.not_started(action, label);
                        continue;
                    }
                    // Recorded with the permit held, so that the journal's
                    // open intents are the requests actually in flight.
                    let intent = self.record_intent(action)?;
                    let outcome = self.perform(action, &tracks).await;
                    drop(permit);
                    self.record(action, intent, &outcome)?;
                    outcome
                }
            };
            match outcome {
                Outcome::Done(urn) => {
                    if let (Request::UploadTrack { .. }, Some(urn)) = (&action.request, urn) {
                        self.with_progress(|p| p.uploaded.insert(action.key.clone(), urn));
                    }
                    tracing::info!(action = %label, "done");
                    self.with_report(|r| r.succeeded.push(label));
                }
                Outcome::Failed(error) => {
                    tracing::error!(action = %label, %error, "failed");
                    self.note_broken(action, "failed");
                    self.with_report(|r| r.failed.push((label, error)));
                }
                Outcome::Unknown(error) => {
                    tracing::error!(action = %label, %error, "outcome unknown");
                    self.note_broken(action, "may not have happened");
                    let error = format!("{error}; the next run checks the account again");
                    self.with_report(|r| r.failed.push((label, error)));
                }
                Outcome::Parked { until, error } => {
                    tracing::warn!(action = %label, %error, "rate limited: stopping");
                    self.note_broken(action, "was not done");
                    self.with_report(|r| {
                        r.parked_until = r.parked_until.max(Some(until));
                        r.not_started.push(label);
                    });
                }
                Outcome::Skipped(reason) => {
                    tracing::warn!(action = %label, %reason, "skipped");
                    self.note_broken(action, "was skipped");
                    self.with_report(|r| r.skipped.push((label, reason)));
                }
            }
        }
        Ok(())
    }

    /// Whether no more requests may start: the run was asked to stop, or a
    /// rate limit asked for a longer wait than the run accepts.
    fn halted(&self) -> bool {
        if self.applier.stop.should_stop() {
            self.with_report(|r| r.interrupted = true);
            return true;
        }
        self.with_report(|r| r.parked_until.is_some())
    }

    /// An action not started because the run stopped.
    fn not_started(&self, action: &Action, label: String) {
        self.with_report(|r| r.not_started.push(label));
        self.note_broken(action, "was not done");
    }

    fn with_report<T>(&self, f: impl FnOnce(&mut ApplyReport) -> T) -> T {
        f(&mut self.report.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn with_progress<T>(&self, f: impl FnOnce(&mut Progress) -> T) -> T {
        f(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn note_broken(&self, action: &Action, what: &str) {
        if matches!(action.request, Request::UploadTrack { .. }) {
            let reason = format!("its track {} {what}", action.key);
            self.with_progress(|p| p.broken.insert(action.key.clone(), reason));
        }
    }

    /// The playlist's track list with every key replaced by its URN, or why
    /// the action cannot run.
    fn dependencies_ready(&self, action: &Action) -> Result<Vec<Urn>, String> {
        let refs = match &action.request {
            Request::CreatePlaylist { tracks, .. } | Request::UpdatePlaylist { tracks, .. } => {
                tracks
            }
            _ => return Ok(Vec::new()),
        };
        self.with_progress(|p| {
            refs.iter()
                .map(|r| match r {
                    TrackRef::Urn(urn) => Ok(*urn),
                    TrackRef::Key(key) => match (p.uploaded.get(key), p.broken.get(key)) {
                        (Some(urn), _) => Ok(*urn),
                        (None, Some(reason)) => Err(reason.clone()),
                        (None, None) => Err(format!("its track {key} was not uploaded")),
                    },
                })
                .collect()
        })
    }

    fn record_intent(&self, action: &Action) -> Result<IntentId, StateError> {
        let action_json = serde_json::to_string(action).unwrap_or_default();
        let request_digest = format!("sha256:{}", hex(&Sha256::digest(action_json.as_bytes())));
        let hint = |name: &str| match &action.request {
            Request::UploadTrack { fields, .. } | Request::CreatePlaylist { fields, .. } => {
                verify::text_field(fields, name).map(str::to_owned)
            }
            _ => None,
        };
        self.applier.store.record_intent(
            self.applier.run,
            &NewIntent {
                op: action.op,
                kind: action.kind,
                key: action.key.clone(),
                title_hint: hint("title"),
                permalink_hint: hint("permalink"),
                action_json,
                request_digest,
            },
        )
    }

    /// Writes the outcome to the journal together with the change it makes
    /// to the managed-object map, in one transaction.
    fn record(
        &self,
        action: &Action,
        intent: IntentId,
        outcome: &Outcome,
    ) -> Result<(), StateError> {
        let (journal, changes) = match outcome {
            Outcome::Done(urn) => (
                IntentOutcome::Succeeded { urn: *urn },
                managed_changes(action, *urn),
            ),
            Outcome::Failed(error) => (
                IntentOutcome::Failed {
                    error: error.clone(),
                },
                Vec::new(),
            ),
            // Left open: the next run's recovery reads the account.
            Outcome::Unknown(_) => return Ok(()),
            Outcome::Parked { error, .. } => (
                IntentOutcome::Skipped {
                    reason: format!("not sent: {error}"),
                },
                Vec::new(),
            ),
            Outcome::Skipped(reason) => (
                IntentOutcome::Skipped {
                    reason: reason.clone(),
                },
                Vec::new(),
            ),
        };
        self.applier
            .store
            .record_outcome_with(intent, &journal, &changes)
    }

    async fn perform(&self, action: &Action, tracks: &[Urn]) -> Outcome {
        let sent_at = chrono::Utc::now();
        match self.send(action, tracks).await {
            Ok(urn) => Outcome::Done(urn),
            Err(error) if error.is_ambiguous_write() => {
                tracing::warn!(action = %label(action), %error, "the write may have happened; reading back");
                self.settle_ambiguous(action, tracks, sent_at, error).await
            }
            Err(error) => match error.resume_at() {
                Some(until) => Outcome::Parked {
                    until,
                    error: error.to_string(),
                },
                None => Outcome::Failed(error.to_string()),
            },
        }
    }

    /// The request(s) for one action. Returns the URN the action created or
    /// touched.
    async fn send(&self, action: &Action, tracks: &[Urn]) -> Result<Option<Urn>, ApiError> {
        let api = self.applier.api;
        let urn = action.urn;
        let target = || urn.ok_or_else(|| no_urn(action));
        match &action.request {
            Request::UploadTrack {
                file,
                fields,
                artwork,
                replaces,
                ..
            } => {
                let created = api.upload_track(file, artwork.as_deref(), fields).await?;
                // The new track exists; only now may the old one go. If it
                // cannot, the new one is still recorded (else the next run
                // would upload it again) and the old one is reported.
                if let Some(old) = replaces
                    && let Err(error) = api.delete_track(*old).await.or_else(ignore_not_found)
                {
                    let problem = format!(
                        "uploaded the new audio as {}, but the track it replaces, {old}, \
                         could not be deleted ({error}); delete it on SoundCloud by hand",
                        created.urn
                    );
                    tracing::error!(action = %label(action), "{problem}");
                    self.with_report(|r| r.failed.push((label(action), problem)));
                }
                Ok(Some(created.urn))
            }
            Request::UpdateTrack { fields, .. } => {
                let urn = target()?;
                if !fields.is_empty() {
                    api.update_track(urn, fields).await?;
                }
                Ok(Some(urn))
            }
            Request::DeleteTrack => {
                api.delete_track(target()?)
                    .await
                    .or_else(ignore_not_found)?;
                Ok(urn)
            }
            Request::CreatePlaylist { fields, .. } => {
                let created = api.create_playlist(fields, tracks).await?;
                Ok(Some(created.urn))
            }
            Request::UpdatePlaylist { fields, .. } => {
                let urn = target()?;
                api.update_playlist(urn, fields, tracks).await?;
                Ok(Some(urn))
            }
            Request::DeletePlaylist => {
                api.delete_playlist(target()?)
                    .await
                    .or_else(ignore_not_found)?;
                Ok(urn)
            }
            Request::Follow => {
                api.follow(target()?).await?;
                Ok(urn)
            }
            Request::Unfollow => {
                api.unfollow(target()?).await.or_else(ignore_not_found)?;
                Ok(urn)
            }
            Request::Like => {
                let target = target()?;
                match action.kind {
                    ActionKind::PlaylistLike => api.like_playlist(target).await?,
                    _ => api.like_track(target).await?,
                }
                Ok(urn)
            }
            Request::Unlike => {
                let target = target()?;
                match action.kind {
                    ActionKind::PlaylistLike => api.unlike_playlist(target).await,
                    _ => api.unlike_track(target).await,
                }
                .or_else(ignore_not_found)?;
                Ok(urn)
            }
        }
    }
}

/// What a successful action changes in the managed-object map.
fn managed_changes(action: &Action, urn: Option<Urn>) -> Vec<ManagedChange> {
    let upsert = |kind, audio_sha256| match urn {
        Some(urn) => vec![ManagedChange::Upsert {
            item: ManagedItem {
                kind,
                key: action.key.clone(),
                urn,
                audio_sha256,
            },
            applied_digest: applied_digest(action),
        }],
        None => Vec::new(),
    };
    let forget = |kind| {
        vec![ManagedChange::Forget {
            kind,
            key: action.key.clone(),
        }]
    };
    match &action.request {
        Request::UploadTrack { sha256, .. } => upsert(ManagedKind::Track, Some(sha256.clone())),
        // An adopted track's audio is unknown until scsync uploads it.
        Request::UpdateTrack { adopt: true, .. } => upsert(ManagedKind::Track, None),
        Request::CreatePlaylist { .. } | Request::UpdatePlaylist { adopt: true, .. } => {
            upsert(ManagedKind::Playlist, None)
        }
        Request::DeleteTrack => forget(ManagedKind::Track),
        Request::DeletePlaylist => forget(ManagedKind::Playlist),
        _ => Vec::new(),
    }
}

fn no_urn(action: &Action) -> ApiError {
    ApiError::Config {
        detail: format!("the plan names no URN for {}", label(action)),
    }
}

/// A delete of something already gone has reached its goal.
fn ignore_not_found(error: ApiError) -> Result<(), ApiError> {
    if error.is_not_found() {
        Ok(())
    } else {
        Err(error)
    }
}

/// `sha256:HEX` of the fields an action applied, kept with the managed object.
fn applied_digest(action: &Action) -> String {
    let fields: BTreeMap<&str, String> = match &action.request {
        Request::UploadTrack { fields, .. }
        | Request::UpdateTrack { fields, .. }
        | Request::CreatePlaylist { fields, .. }
        | Request::UpdatePlaylist { fields, .. } => fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let json = serde_json::to_string(&fields).unwrap_or_default();
    format!("sha256:{}", hex(&Sha256::digest(json.as_bytes())))
}

/// `track night-drive`, `follow soundcloud:users:42`.
pub fn label(action: &Action) -> String {
    let kind = match action.kind {
        ActionKind::Track => "track",
        ActionKind::Playlist => "playlist",
        ActionKind::Follow => "follow",
        ActionKind::TrackLike => "track like",
        ActionKind::PlaylistLike => "playlist like",
    };
    format!("{kind} {}", action.key)
}
