//! `scsync daemon`: the reconcile loop of `daemon/` wired to the real
//! pipeline (load, recover, plan, policy check, apply), and what it
//! records for `scsync status`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::apply::ApplyReport;
use crate::apply::StopCheck;
use crate::cli::GlobalArgs;
use crate::daemon::{
    self, Loaded, Metrics, Milestone, Options, Reconciler, RunReport, Settings, StopSignal, Trigger,
};
use crate::manifest::{self, Manifest};
use crate::plan::diff;
use crate::plan::{ActionKind, Plan};
use crate::state::Store;

use super::apply_cmd::{execute_as, lock_state};
use super::{CommandError, Result, Session, session};

/// The keys in the state database's metadata that the daemon keeps up to
/// date and `scsync status` shows.
pub(super) mod meta {
    /// pid of the running daemon (cleared when it stops).
    pub const PID: &str = "daemon.pid";
    /// When it became ready; when it stopped (RFC 3339).
    pub const STARTED_AT: &str = "daemon.started_at";
    pub const STOPPED_AT: &str = "daemon.stopped_at";
    /// When the last run finished, why it ran, how it ended
    /// (ok/failed/interrupted), and its one-line summary.
    pub const LAST_RUN: &str = "daemon.last_run";
    pub const LAST_TRIGGER: &str = "daemon.last_trigger";
    pub const LAST_RESULT: &str = "daemon.last_result";
    pub const LAST_SUMMARY: &str = "daemon.last_summary";
    /// "TIME (trigger): message" of the last failed run or rejected manifest.
    pub const LAST_ERROR: &str = "daemon.last_error";
    /// The next scheduled run (RFC 3339); absent without a schedule.
    pub const NEXT_RUN: &str = "daemon.next_run";
    /// What the last plan found: "N to add, N to change, N to remove".
    pub const DRIFT: &str = "daemon.drift";
    pub const NO_DRIFT: &str = "0 to add, 0 to change, 0 to remove";
    pub const DRIFT_AT: &str = "daemon.drift_at";
}

pub async fn run(global: &GlobalArgs) -> Result<super::Status> {
    let store = Arc::new(session::open_store(global)?);
    // Held for the daemon's life: a concurrent `apply` waits, then refuses.
    let _lock = lock_state(store.path(), global)?;
    let metrics = Arc::new(Metrics::new(crate::api::rate_limited_responses));
    let reconciler = Reconcile {
        manifest_path: global.config.clone(),
        store,
        metrics: metrics.clone(),
    };
    let options = Options {
        metrics,
        ..Options::from_env(global.config.clone())
    };
    daemon::run(options, reconciler)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    Ok(super::Status::Success)
}

struct Reconcile {
    manifest_path: PathBuf,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
}

impl Reconciler for Reconcile {
    type Manifest = Manifest;

    async fn load(&self) -> std::result::Result<Loaded<Manifest>, String> {
        let manifest = manifest::load(&self.manifest_path).map_err(|e| e.to_string())?;
        let settings = Settings {
            schedule: manifest.daemon.schedule.clone(),
            timezone: manifest.daemon.timezone.clone(),
            watch: manifest.daemon.watch,
            listen: manifest.daemon.listen,
        };
        Ok(Loaded { settings, manifest })
    }

    async fn reconcile(
        &self,
        manifest: Manifest,
        trigger: Trigger,
        stop: &StopSignal,
    ) -> RunReport {
        match self.reconcile_once(manifest, stop).await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(%trigger, "{}", error.report());
                RunReport::failed(error.to_string())
            }
        }
    }

    fn record(&self, milestone: Milestone<'_>, next_run: Option<DateTime<Utc>>) {
        if let Err(e) = self.write_milestone(milestone, next_run) {
            tracing::warn!("could not record the daemon's progress for `scsync status`: {e}");
        }
    }
}

impl Reconcile {
    async fn reconcile_once(&self, manifest: Manifest, stop: &StopSignal) -> Result<RunReport> {
        let credentials = manifest.account.credentials()?;
        let session = Session::with(manifest, credentials, self.store.clone())?;
        crate::apply::recover(session.reader(), &session.store).await?;
        let plan = session.plan().await?.plan;
        let s = plan.summary;
        let drift = format!(
            "{} to add, {} to change, {} to remove",
            s.add, s.change, s.remove
        );
        self.store.set_meta(meta::DRIFT, &drift)?;
        self.store.set_meta(meta::DRIFT_AT, &stamp(Utc::now()))?;
        self.metrics.drift(s.add, s.change, s.remove);
        if plan.is_empty() {
            return Ok(RunReport::ok(
                "no changes; the account matches the manifest",
            ));
        }
        diff::check_policy(&plan, &session.manifest.policy)?;
        let report = execute_as(&session, &plan, stop, "daemon").await?;
        self.count_actions(&plan, &report);
        let line = format!("{drift}: {}", report.summary());
        for (what, why) in &report.failed {
            tracing::warn!("failed: {what}: {why}");
        }
        Ok(if report.ok() {
            RunReport::ok(line)
        } else if report.interrupted {
            RunReport::interrupted(line)
        } else {
            RunReport::failed(line)
        })
    }

    /// Adds the run's actions to the metrics, by kind and outcome.
    fn count_actions(&self, plan: &Plan, report: &ApplyReport) {
        let kinds: std::collections::HashMap<String, ActionKind> = plan
            .actions
            .iter()
            .map(|a| (crate::apply::label(a), a.kind))
            .collect();
        let outcomes = [
            ("succeeded", report.succeeded.iter().collect::<Vec<_>>()),
            ("failed", report.failed.iter().map(|(l, _)| l).collect()),
            ("skipped", report.skipped.iter().map(|(l, _)| l).collect()),
        ];
        for (outcome, labels) in outcomes {
            let mut counts = std::collections::BTreeMap::<&str, u64>::new();
            for label in labels {
                let kind = kinds.get(label).map_or("other", |k| k.as_str());
                *counts.entry(kind).or_default() += 1;
            }
            for (kind, n) in counts {
                self.metrics.actions(kind, outcome, n);
            }
        }
    }

    fn write_milestone(
        &self,
        milestone: Milestone<'_>,
        next_run: Option<DateTime<Utc>>,
    ) -> std::result::Result<(), crate::state::StateError> {
        let store = &self.store;
        match milestone {
            Milestone::Ready => {
                store.set_meta(meta::PID, &std::process::id().to_string())?;
                store.set_meta(meta::STARTED_AT, &stamp(Utc::now()))?;
                store.delete_meta(meta::STOPPED_AT)?;
            }
            Milestone::Ran {
                trigger,
                report,
                finished,
                ..
            } => {
                store.set_meta(meta::LAST_RUN, &stamp(finished))?;
                store.set_meta(meta::LAST_TRIGGER, trigger.as_str())?;
                store.set_meta(meta::LAST_RESULT, report.result())?;
                store.set_meta(meta::LAST_SUMMARY, &report.summary)?;
                if !report.ok {
                    let line = format!("{} ({trigger}): {}", stamp(finished), report.summary);
                    store.set_meta(meta::LAST_ERROR, &line)?;
                }
            }
            Milestone::Rejected { trigger, message } => {
                let line = format!(
                    "{} ({trigger}): manifest rejected, nothing applied: {message}",
                    stamp(Utc::now())
                );
                store.set_meta(meta::LAST_ERROR, &line)?;
            }
            Milestone::Stopped => {
                store.delete_meta(meta::PID)?;
                store.set_meta(meta::STOPPED_AT, &stamp(Utc::now()))?;
            }
        }
        match next_run {
            Some(at) => store.set_meta(meta::NEXT_RUN, &stamp(at)),
            None => store.delete_meta(meta::NEXT_RUN),
        }
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl StopCheck for StopSignal {
    fn should_stop(&self) -> bool {
        self.is_stopping()
    }
}
