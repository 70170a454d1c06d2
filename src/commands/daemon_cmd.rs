//! `scsync daemon`: the reconcile loop of `daemon/` wired to the real
//! pipeline (load, recover, plan, policy check, apply).

use std::path::PathBuf;
use std::sync::Arc;

use crate::apply::StopCheck;
use crate::cli::GlobalArgs;
use crate::daemon::{self, Loaded, Reconciler, RunReport, Settings, StopSignal, Trigger};
use crate::manifest::{self, Manifest};
use crate::plan::diff;
use crate::state::{self, Store};

use super::apply_cmd::{LOCK_WAIT, execute};
use super::{CommandError, Result, Session, Status, session};

pub async fn run(global: &GlobalArgs) -> Result<Status> {
    let store = Arc::new(session::open_store(global)?);
    // Held for the daemon's life: a concurrent `apply` waits, then refuses.
    let _lock = state::lock(
        store.path(),
        LOCK_WAIT.min(std::time::Duration::from_secs(1)),
    )?;
    let reconciler = Reconcile {
        manifest_path: global.config.clone(),
        store,
    };
    daemon::run(global.config.clone(), reconciler)
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    Ok(Status::Success)
}

struct Reconcile {
    manifest_path: PathBuf,
    store: Arc<Store>,
}

impl Reconciler for Reconcile {
    type Manifest = Manifest;

    async fn load(&self) -> std::result::Result<Loaded<Manifest>, String> {
        let manifest = manifest::load(&self.manifest_path).map_err(|e| e.to_string())?;
        let settings = Settings {
            schedule: manifest.daemon.schedule.clone(),
            timezone: manifest.daemon.timezone.clone(),
            watch: manifest.daemon.watch,
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
            Ok(summary) => RunReport::ok(summary),
            Err(error) => {
                tracing::error!(%trigger, "{}", error.report());
                RunReport::failed(error.to_string())
            }
        }
    }
}

impl Reconcile {
    async fn reconcile_once(&self, manifest: Manifest, stop: &StopSignal) -> Result<String> {
        let credentials = manifest.account.credentials()?;
        let session = Session::with(manifest, credentials, self.store.clone())?;
        crate::apply::recover(session.reader(), &session.store).await?;
        let plan = session.plan().await?.plan;
        if plan.is_empty() {
            return Ok("no changes".into());
        }
        diff::check_policy(&plan, &session.manifest.policy)?;
        let s = plan.summary;
        let report = execute(&session, &plan, stop).await?;
        let line = format!(
            "{} to add, {} to change, {} to remove: {}",
            s.add,
            s.change,
            s.remove,
            report.summary()
        );
        if report.ok() {
            Ok(line)
        } else {
            Err(CommandError::Failed(line))
        }
    }
}

impl StopCheck for StopSignal {
    fn should_stop(&self) -> bool {
        self.is_stopping()
    }
}
