//! `scsync apply`: plan (or load a saved plan), confirm, execute, record.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::apply::{Applier, ApplyReport, StopCheck};
use crate::cli::{ApplyArgs, GlobalArgs};
use crate::plan::{FORMAT_VERSION, Plan, diff, render};
use crate::state::{self, RunOutcome, RunResult};

use super::plan_cmd::{color_stdout, with_newline};
use super::{CommandError, Result, Session, Status};

pub async fn run(global: &GlobalArgs, args: &ApplyArgs) -> Result<Status> {
    if args.dry_run {
        // Exactly what `plan` prints, and nothing else.
        let plan_args = crate::cli::PlanArgs {
            format: crate::cli::PlanFormat::Text,
            out: None,
            detailed_exitcode: false,
        };
        return super::plan_cmd::run(global, &plan_args).await;
    }
    let session = Session::open(global)?;
    let _lock = lock_state(session.store.path(), global)?;
    crate::apply::recover(session.reader(), &session.store).await?;

    let plan = match &args.plan {
        Some(path) => load_saved_plan(&session, path).await?,
        None => session.plan().await?.plan,
    };
    out!("{}", with_newline(render::text(&plan, color_stdout())));
    if plan.is_empty() {
        return Ok(Status::Success);
    }
    diff::check_policy(&plan, &session.manifest.policy)?;
    if !args.yes {
        confirm()?;
    }

    let stop = StopOnSignal::install();
    let report = execute(&session, &plan, &*stop).await?;
    outln!("Apply: {}.", report.summary());
    for (what, why) in &report.failed {
        eprintln!("failed: {what}: {why}");
    }
    for (what, why) in &report.skipped {
        eprintln!("skipped: {what}: {why}");
    }
    let not_done = report.not_started.len() + report.skipped.len();
    if report.ok() {
        Ok(Status::Success)
    } else if let Some(until) = report.parked_until {
        Err(CommandError::Failed(format!(
            "SoundCloud asks to wait until {}, longer than this run waits \
             (policy.retry.max_wait_s); {not_done} action(s) were not done; run `scsync apply` \
             again after that time",
            crate::apply::resume_time(until)
        )))
    } else if report.interrupted {
        Err(CommandError::Failed(format!(
            "apply was interrupted; {not_done} action(s) were not done; run it again to finish"
        )))
    } else {
        Err(CommandError::Failed(format!(
            "{} action(s) failed and {} were skipped; the rest was applied",
            report.failed.len(),
            report.skipped.len()
        )))
    }
}

/// Takes the single-instance lock on the state database, waiting up to
/// `--lock-timeout` for a holder (the daemon, say) to let go, and saying so.
pub(super) fn lock_state(db: &std::path::Path, global: &GlobalArgs) -> Result<state::StateLock> {
    match state::lock(db, Duration::ZERO) {
        Err(state::LockError::Held { pid, .. }) if global.lock_timeout > 0 => {
            let holder = pid.map_or_else(|| "another scsync".to_owned(), |p| format!("pid {p}"));
            tracing::info!(
                "the state database is in use by {holder}; waiting up to {} s for it (--lock-timeout)",
                global.lock_timeout
            );
            Ok(state::lock(db, Duration::from_secs(global.lock_timeout))?)
        }
        other => Ok(other?),
    }
}

/// Runs a plan inside a recorded run.
pub async fn execute(session: &Session, plan: &Plan, stop: &dyn StopCheck) -> Result<ApplyReport> {
    execute_as(session, plan, stop, "apply").await
}

/// Runs a plan inside a run recorded under `command` ("apply", "daemon").
pub async fn execute_as(
    session: &Session,
    plan: &Plan,
    stop: &dyn StopCheck,
    command: &str,
) -> Result<ApplyReport> {
    let store = &session.store;
    let run = store.begin_run(command, &plan.manifest_digest)?;
    let applier = Applier {
        api: &session.api,
        store,
        run,
        concurrency: session.manifest.policy.concurrency,
        stop,
    };
    let report = applier.apply(plan).await?;
    store.finish_run(
        run,
        &RunOutcome {
            result: if report.interrupted {
                RunResult::Interrupted
            } else if report.ok() {
                RunResult::Succeeded
            } else {
                RunResult::Failed
            },
            detail: Some(report.summary()),
        },
    )?;
    Ok(report)
}

/// A saved plan applies only to the manifest and account it was made from.
async fn load_saved_plan(session: &Session, path: &std::path::Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CommandError::io(format!("cannot read the plan {}", path.display()), e))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| {
        CommandError::Failed(format!("{} is not a scsync plan: {e}", path.display()))
    })?;
    if plan.format_version != FORMAT_VERSION {
        return Err(CommandError::Failed(format!(
            "{} has plan format {}; this scsync reads format {FORMAT_VERSION}",
            path.display(),
            plan.format_version
        )));
    }
    if plan.manifest_digest != session.manifest.digest {
        return Err(CommandError::Failed(format!(
            "the manifest changed since {} was made; run `scsync plan` again",
            path.display()
        )));
    }
    let current = session.plan().await?;
    if diff::remote_digest(&current.remote) != plan.remote_digest {
        return Err(CommandError::Failed(format!(
            "the account changed since {} was made; run `scsync plan` again",
            path.display()
        )));
    }
    // The file must be exactly what scsync would do now: this refuses an
    // edited plan, a moved folder and an audio file changed since.
    if current.plan.actions != plan.actions || current.plan.forget != plan.forget {
        return Err(CommandError::Failed(format!(
            "{} no longer matches what scsync would do now (edited, made in another folder, \
             or an audio file changed since); run `scsync plan` again",
            path.display()
        )));
    }
    Ok(plan)
}

/// Asks on the terminal; without one, refuses (a script must say `--yes`).
fn confirm() -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Failed(
            "refusing to apply without confirmation: no terminal to ask on; pass --yes".into(),
        ));
    }
    out!("Apply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::io("cannot read the answer", e))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CommandError::Failed("apply cancelled".into()))
    }
}

/// Set by SIGINT or SIGTERM: the requests in flight finish and are
/// recorded, the rest are skipped. A second signal quits at once (an upload
/// can take long); the journal lets the next run settle what was in flight.
pub struct StopOnSignal(AtomicBool);

impl StopOnSignal {
    pub fn install() -> Arc<StopOnSignal> {
        let flag = Arc::new(StopOnSignal(AtomicBool::new(false)));
        let weak = Arc::downgrade(&flag);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let Some(flag) = weak.upgrade() else {
                return;
            };
            flag.0.store(true, Ordering::SeqCst);
            drop(flag);
            tracing::warn!(
                "stopping after the requests in flight; send the signal again to quit at once"
            );
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if weak.strong_count() > 0 {
                eprintln!(
                    "error: quit at once; the next run settles the requests that were in flight"
                );
                std::process::exit(1);
            }
        });
        flag
    }
}

impl StopCheck for StopOnSignal {
    fn should_stop(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
