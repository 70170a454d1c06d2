//! `scsync daemon`: the reconcile loop and what feeds it.
//!
//! Everything that wants a run (the cron schedule, the manifest watcher,
//! SIGHUP, the start itself) sends an [`Event`] into one bounded queue with
//! one consumer, this loop. So runs never overlap: while a run is in flight,
//! further triggers collapse into exactly one follow-up run. Every run first
//! loads (re-reads and validates) the manifest through the [`Reconciler`];
//! a broken manifest is reported and the run skipped, keeping the last good
//! settings, and nothing is applied. SIGTERM/SIGINT raise the [`StopSignal`]
//! so the run in flight finishes its current request, then the daemon exits
//! cleanly.
//!
//! The loop knows nothing of SoundCloud: what a run does is the
//! [`Reconciler`]'s business (plan + apply, wired up by the binary).
//!
//! Invariant: at most one `load` or `reconcile` future exists at any time.

mod health;
mod schedule;
pub mod systemd;
mod watch;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub use health::Metrics;
pub use schedule::{Schedule, ScheduleError};
pub use systemd::{Heartbeat, Notifier};
pub use watch::WatchError;

use watch::ManifestWatcher;

/// Why a run happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The first run after the daemon starts.
    Startup,
    /// `daemon.schedule` fired.
    Schedule,
    /// The manifest changed on disk (`daemon.watch: true`).
    ManifestChanged,
    /// SIGHUP (`systemctl reload`): re-read the manifest and settings, then run.
    Reload,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Schedule => "schedule",
            Trigger::ManifestChanged => "manifest change",
            Trigger::Reload => "reload",
        }
    }

    /// When triggers collapse into one follow-up run, the strongest names
    /// it: a reload also rebuilds the schedule and the watch.
    fn strength(self) -> u8 {
        match self {
            Trigger::Startup => 0,
            Trigger::Schedule => 1,
            Trigger::ManifestChanged => 2,
            Trigger::Reload => 3,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The manifest's `daemon:` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Cron expression (5 or 6 fields, or @hourly etc.); `None`: no scheduled runs.
    pub schedule: Option<String>,
    /// IANA timezone for the schedule; `None`: UTC.
    pub timezone: Option<String>,
    /// Run when the manifest changes on disk.
    pub watch: bool,
    /// Serve `/healthz` and `/metrics` here (loopback only).
    pub listen: Option<SocketAddr>,
}

/// A manifest that loaded and validated, with its daemon settings.
#[derive(Debug)]
pub struct Loaded<M> {
    pub settings: Settings,
    pub manifest: M,
}

/// The outcome of one run, for STATUS= and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    pub ok: bool,
    /// Cut short by a stop request (so not `ok`); the next run finishes it.
    pub interrupted: bool,
    /// One line, e.g. "2 changed, 1 added; account matches the manifest".
    pub summary: String,
}

impl RunReport {
    pub fn ok(summary: impl Into<String>) -> RunReport {
        RunReport {
            ok: true,
            interrupted: false,
            summary: summary.into(),
        }
    }

    pub fn failed(summary: impl Into<String>) -> RunReport {
        RunReport {
            ok: false,
            interrupted: false,
            summary: summary.into(),
        }
    }

    pub fn interrupted(summary: impl Into<String>) -> RunReport {
        RunReport {
            ok: false,
            interrupted: true,
            summary: summary.into(),
        }
    }

    /// "ok", "failed" or "interrupted".
    pub fn result(&self) -> &'static str {
        match (self.ok, self.interrupted) {
            (true, _) => "ok",
            (false, true) => "interrupted",
            (false, false) => "failed",
        }
    }
}

/// A moment in the daemon's life, told to the [`Reconciler`] so that it can
/// be recorded for `scsync status` and monitoring.
#[derive(Clone, Copy, Debug)]
pub enum Milestone<'a> {
    /// The first manifest loaded; READY=1 went out.
    Ready,
    /// A run ended (however it ended).
    Ran {
        trigger: Trigger,
        report: &'a RunReport,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
    },
    /// A manifest was rejected: nothing ran, the last good settings stay.
    Rejected { trigger: Trigger, message: &'a str },
    /// The daemon is about to exit after a stop request.
    Stopped,
}

/// What the daemon runs. Implemented by the binary over manifest, plan and
/// apply; by a script in tests.
pub trait Reconciler: Send + Sync + 'static {
    /// A loaded, validated manifest, handed to the run that follows.
    type Manifest: Send + 'static;

    /// Re-read and validate the manifest. `Err(message)`: the manifest is
    /// broken; the daemon reports it, skips the run and keeps the last good
    /// settings.
    fn load(&self) -> impl Future<Output = Result<Loaded<Self::Manifest>, String>> + Send;

    /// One full plan + apply of `manifest` (just returned by `load`). When
    /// `stop` is raised, finish the request in flight, record it, and
    /// return promptly.
    fn reconcile(
        &self,
        manifest: Self::Manifest,
        trigger: Trigger,
        stop: &StopSignal,
    ) -> impl Future<Output = RunReport> + Send;

    /// Told of every [`Milestone`], with the next scheduled run then in
    /// force (`None`: no schedule). Must be quick; failures are the
    /// implementation's to log. Default: nothing.
    fn record(&self, milestone: Milestone<'_>, next_run: Option<DateTime<Utc>>) {
        let _ = (milestone, next_run);
    }
}

/// Raised when the daemon is asked to stop. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct StopSignal(CancellationToken);

impl StopSignal {
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Ask everyone holding a clone to stop after the current request.
    pub fn stop(&self) {
        self.0.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Completes once a stop is asked for.
    pub async fn stopped(&self) {
        self.0.cancelled().await
    }
}

/// What arrives in the daemon's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Run (now, or as the one follow-up to the run in flight).
    Run(Trigger),
    /// SIGTERM/SIGINT: finish the request in flight and exit. A second one
    /// abandons the run at once.
    Stop,
}

/// How the daemon talks to its surroundings.
pub struct Options {
    /// The manifest file or directory (what `-c` names); watched when
    /// `daemon.watch` is true.
    pub manifest_path: PathBuf,
    /// Where READY/STATUS/... go.
    pub notifier: Notifier,
    /// `WatchdogSec=`: ping at half of it while the loop is alive.
    pub watchdog: Option<Duration>,
    /// How long the manifest's folder must be quiet before a change counts.
    pub watch_settle: Duration,
    /// How long a run may take to honour a stop before it is abandoned.
    pub stop_grace: Duration,
    /// Counters for `/metrics`; the reconciler may hold a clone to add its own.
    pub metrics: Arc<Metrics>,
}

impl Options {
    /// Defaults, with no service manager.
    pub fn new(manifest_path: PathBuf) -> Options {
        Options {
            manifest_path,
            notifier: Notifier::disabled(),
            watchdog: None,
            watch_settle: Duration::from_millis(300),
            stop_grace: Duration::from_secs(45),
            metrics: Arc::new(Metrics::new(|| 0)),
        }
    }

    /// Defaults, with `NOTIFY_SOCKET` and `WATCHDOG_USEC` read now.
    pub fn from_env(manifest_path: PathBuf) -> Options {
        Options {
            notifier: Notifier::from_env(),
            watchdog: systemd::watchdog_from_env(),
            ..Options::new(manifest_path)
        }
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "the daemon did not start because the manifest {} is not usable: {message}. Fix it (`scsync validate -c {}` shows the problem) and start the daemon again",
        manifest.display(), manifest.display()
    )]
    InitialLoad { manifest: PathBuf, message: String },
    #[error("could not listen for {signal}: {source}")]
    Signals {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Queue size; a full queue already holds a pending run, so extra triggers
/// may be dropped.
const EVENT_QUEUE: usize = 32;

/// Run the daemon until SIGTERM/SIGINT, with signals from the OS (and
/// systemd as `options` say, see [`Options::from_env`]). Returns `Ok(())`
/// after a clean stop.
pub async fn run(options: Options, reconciler: impl Reconciler) -> Result<(), DaemonError> {
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let _signals = TaskGuard(spawn_signal_listener(tx.clone())?);
    run_with(options, reconciler, tx, rx).await
}

/// Run the daemon on an event queue the caller controls (tests, or an
/// embedding that has its own signal handling). `events_tx` must send into
/// `events_rx`; the schedule and the watcher send through it too.
pub async fn run_with<R: Reconciler>(
    options: Options,
    reconciler: R,
    events_tx: mpsc::Sender<Event>,
    events_rx: mpsc::Receiver<Event>,
) -> Result<(), DaemonError> {
    let heartbeat = Heartbeat::new();
    let _watchdog = options.watchdog.map(|interval| {
        TaskGuard(systemd::spawn_watchdog(
            options.notifier.clone(),
            heartbeat.clone(),
            interval,
        ))
    });
    let beat = options.watchdog.map(|interval| {
        let mut ticker = tokio::time::interval(interval / 4);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        ticker
    });
    let daemon = Daemon {
        reconciler,
        manifest_path: options.manifest_path,
        watch_settle: options.watch_settle,
        notifier: options.notifier.clone(),
        metrics: options.metrics,
        inbox: Inbox {
            rx: events_rx,
            heartbeat,
            beat,
            stop: StopSignal::new(),
            stop_grace: options.stop_grace,
            notifier: options.notifier,
            follow_up: None,
        },
        events_tx,
        active: Active::default(),
        last_run: None,
    };
    daemon.serve().await
}

fn spawn_signal_listener(tx: mpsc::Sender<Event>) -> Result<JoinHandle<()>, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|source| DaemonError::Signals {
            signal: name,
            source,
        })
    };
    let mut hangup = listen(SignalKind::hangup(), "SIGHUP")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    Ok(tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                Some(()) = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the manifest");
                    Event::Run(Trigger::Reload)
                }
                Some(()) = terminate.recv() => {
                    tracing::info!("SIGTERM: stopping");
                    Event::Stop
                }
                Some(()) = interrupt.recv() => {
                    tracing::info!("SIGINT: stopping");
                    Event::Stop
                }
                else => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }))
}

/// Aborts a background task when dropped.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The schedule and watch currently in force (from the last good manifest).
#[derive(Default)]
struct Active {
    schedule: Option<Schedule>,
    schedule_task: Option<TaskGuard>,
    watcher: Option<ManifestWatcher>,
    /// The `/healthz` + `/metrics` endpoint and where it listens.
    endpoint: Option<(SocketAddr, TaskGuard)>,
}

struct LastRun {
    report: RunReport,
    trigger: Trigger,
    finished: DateTime<Utc>,
}

struct Daemon<R: Reconciler> {
    reconciler: R,
    manifest_path: PathBuf,
    watch_settle: Duration,
    notifier: Notifier,
    metrics: Arc<Metrics>,
    inbox: Inbox,
    /// For the schedule task and the watcher.
    events_tx: mpsc::Sender<Event>,
    active: Active,
    last_run: Option<LastRun>,
}

impl<R: Reconciler> Daemon<R> {
    async fn serve(mut self) -> Result<(), DaemonError> {
        self.notifier.status("loading the manifest");
        let first = match self.inbox.during(self.reconciler.load()).await {
            Waited::Abandoned => return Ok(()),
            Waited::Done(loaded) => loaded.and_then(|loaded| {
                self.adopt(&loaded.settings, true)?;
                Ok(loaded.manifest)
            }),
        };
        let manifest = match first {
            Ok(manifest) => manifest,
            Err(message) => {
                return Err(DaemonError::InitialLoad {
                    manifest: self.manifest_path.clone(),
                    message,
                });
            }
        };
        if self.inbox.stop.is_stopping() {
            return Ok(());
        }
        self.notifier.ready(&format!(
            "manifest loaded; first run starting. {}",
            self.plans()
        ));
        tracing::info!(manifest = %self.manifest_path.display(), "daemon ready; {}", self.plans());
        self.reconciler.record(Milestone::Ready, self.next_run());

        let mut next = Some((Trigger::Startup, Some(manifest)));
        loop {
            let (trigger, loaded) = match next.take() {
                Some(run) => run,
                None => match self.inbox.next_trigger().await {
                    Some(trigger) => (trigger, None),
                    None => break,
                },
            };
            self.run(trigger, loaded).await;
            if self.inbox.stop.is_stopping() {
                break;
            }
        }
        self.reconciler.record(Milestone::Stopped, None);
        tracing::info!("daemon stopped");
        Ok(())
    }

    /// One run: load (unless already loaded), adopt the settings, reconcile.
    async fn run(&mut self, trigger: Trigger, loaded: Option<R::Manifest>) {
        let manifest = match loaded {
            Some(manifest) => manifest,
            None => match self.load(trigger).await {
                Some(manifest) => manifest,
                None => return,
            },
        };
        if self.inbox.stop.is_stopping() {
            return;
        }

        tracing::info!(trigger = %trigger, "run started");
        self.notifier.status(&format!("running ({trigger})"));
        self.metrics.run_started();
        let started = Instant::now();
        let started_at = Utc::now();
        let stop = self.inbox.stop.clone();
        let report = match self
            .inbox
            .during(self.reconciler.reconcile(manifest, trigger, &stop))
            .await
        {
            Waited::Done(report) => report,
            Waited::Abandoned => RunReport::interrupted("abandoned at shutdown"),
        };
        let secs = started.elapsed().as_secs_f64();
        if report.ok {
            tracing::info!(trigger = %trigger, seconds = secs, "run finished: {}", report.summary);
        } else {
            tracing::warn!(trigger = %trigger, seconds = secs, "run {}: {}", report.result(), report.summary);
        }
        let finished = Utc::now();
        self.metrics.run_finished(&report, finished);
        self.reconciler.record(
            Milestone::Ran {
                trigger,
                report: &report,
                started: started_at,
                finished,
            },
            self.next_run(),
        );
        self.last_run = Some(LastRun {
            report,
            trigger,
            finished,
        });
        self.notifier.status(&self.idle_status());
    }

    /// Load and adopt the settings. `None`: broken manifest (reported) or
    /// shutting down.
    async fn load(&mut self, trigger: Trigger) -> Option<R::Manifest> {
        let reload = trigger == Trigger::Reload;
        if reload {
            self.notifier.reloading();
        }
        let loaded = match self.inbox.during(self.reconciler.load()).await {
            Waited::Done(loaded) => loaded,
            Waited::Abandoned => return None,
        };
        match loaded.and_then(|loaded| {
            self.adopt(&loaded.settings, reload)?;
            Ok(loaded.manifest)
        }) {
            Ok(manifest) => {
                if reload {
                    let text = format!("manifest reloaded. {}", self.plans());
                    tracing::info!("{text}");
                    self.notifier.ready(&text);
                }
                Some(manifest)
            }
            Err(message) => {
                tracing::warn!(
                    trigger = %trigger,
                    "manifest rejected, run skipped, last good settings kept: {message}"
                );
                self.metrics.manifest_rejected();
                self.reconciler.record(
                    Milestone::Rejected {
                        trigger,
                        message: &message,
                    },
                    self.next_run(),
                );
                let text = format!(
                    "manifest rejected ({trigger}), nothing applied, last good settings kept: {message}. {}",
                    self.plans()
                );
                if reload {
                    // systemd waits for READY=1 to end the reload either way.
                    self.notifier
                        .send(&[NotifyState::Ready, NotifyState::Status(&text)]);
                } else {
                    self.notifier.status(&text);
                }
                None
            }
        }
    }

    /// Put a manifest's daemon settings in force. Nothing changes when the
    /// settings are invalid. `rebuild` restarts the schedule and watch even
    /// if unchanged (SIGHUP: a way to recover a watch gone deaf).
    fn adopt(&mut self, settings: &Settings, rebuild: bool) -> Result<(), String> {
        let schedule = settings
            .schedule
            .as_deref()
            .map(|spec| Schedule::parse(spec, settings.timezone.as_deref()))
            .transpose()
            .map_err(|e| e.to_string())?;
        if let Some(addr) = settings.listen {
            health::check_address(addr)?;
        }

        let unchanged = match (&self.active.schedule, &schedule) {
            (Some(old), Some(new)) => old.same_as(new),
            (None, None) => true,
            _ => false,
        };
        if rebuild || !unchanged {
            self.active.schedule_task = schedule
                .clone()
                .map(|s| TaskGuard(schedule::spawn(s, self.events_tx.clone())));
            match &schedule {
                Some(s) => tracing::info!(schedule = %s, "scheduled runs in force"),
                None => tracing::info!("no daemon.schedule: no scheduled runs"),
            }
        }
        self.active.schedule = schedule;

        if !settings.watch {
            if self.active.watcher.take().is_some() {
                tracing::info!("daemon.watch is off: no longer watching the manifest");
            }
        } else if rebuild || self.active.watcher.is_none() {
            self.active.watcher = None;
            match ManifestWatcher::start(
                &self.manifest_path,
                self.watch_settle,
                self.events_tx.clone(),
            ) {
                Ok(watcher) => {
                    tracing::info!(manifest = %self.manifest_path.display(), "watching the manifest for changes");
                    self.active.watcher = Some(watcher);
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }

        self.adopt_endpoint(settings.listen);
        Ok(())
    }

    /// Start, move or stop the monitoring endpoint. An address that cannot
    /// be bound is logged, not fatal: syncing matters more than metrics.
    fn adopt_endpoint(&mut self, listen: Option<SocketAddr>) {
        let current = self.active.endpoint.as_ref().map(|(addr, _)| *addr);
        if current == listen {
            return;
        }
        if self.active.endpoint.take().is_some() && listen.is_none() {
            tracing::info!("daemon.listen removed: the monitoring endpoint is closed");
        }
        let Some(addr) = listen else {
            return;
        };
        match health::serve(addr, self.metrics.clone()) {
            Ok(task) => {
                tracing::info!(%addr, "serving /healthz and /metrics");
                self.active.endpoint = Some((addr, TaskGuard(task)));
            }
            Err(e) => tracing::warn!(
                %addr,
                "cannot serve /healthz and /metrics on {addr}: {e}; carrying on without them"
            ),
        }
    }

    /// The next scheduled run, if a schedule is in force.
    fn next_run(&self) -> Option<DateTime<Utc>> {
        self.active
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(Utc::now()))
    }

    /// What will make the next run happen, for STATUS= and the log.
    fn plans(&self) -> String {
        let mut parts = Vec::new();
        if let Some(schedule) = &self.active.schedule {
            match schedule.next_after(Utc::now()) {
                Some(next) => parts.push(format!("next scheduled run {}", stamp(next))),
                None => parts.push(format!("schedule {schedule} has no further run")),
            }
        }
        if self.active.watcher.is_some() {
            parts.push("watching the manifest".to_owned());
        }
        if parts.is_empty() {
            "Runs on SIGHUP only".to_owned()
        } else {
            let mut text = parts.join("; ");
            if let Some(first) = text.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            text
        }
    }

    fn idle_status(&self) -> String {
        let Some(last) = &self.last_run else {
            return self.plans();
        };
        format!(
            "last run {} at {} ({}): {}. {}",
            match last.report.result() {
                "failed" => "FAILED",
                other => other,
            },
            stamp(last.finished),
            last.trigger,
            last.report.summary,
            self.plans()
        )
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

enum Waited<T> {
    Done(T),
    /// A second stop request, or the stop grace ran out.
    Abandoned,
}

/// The consumer side of the event queue, plus what the loop keeps alive
/// while it waits: the watchdog heartbeat and the stop signal.
struct Inbox {
    rx: mpsc::Receiver<Event>,
    heartbeat: Heartbeat,
    /// Beats the heartbeat while waiting; `None` without a watchdog.
    beat: Option<Interval>,
    stop: StopSignal,
    stop_grace: Duration,
    notifier: Notifier,
    /// The one run queued behind the run in flight.
    follow_up: Option<Trigger>,
}

impl Inbox {
    /// While idle: the next run to do, or `None` to shut down.
    async fn next_trigger(&mut self) -> Option<Trigger> {
        if let Some(trigger) = self.follow_up.take() {
            return Some(trigger);
        }
        loop {
            tokio::select! {
                event = self.rx.recv() => match event {
                    Some(Event::Run(trigger)) => return Some(trigger),
                    Some(Event::Stop) | None => {
                        self.begin_stop("stopping");
                        return None;
                    }
                },
                () = tick(&mut self.beat) => self.heartbeat.beat(),
            }
        }
    }

    /// Drive `work` (a load or a run) to completion while taking events:
    /// triggers collapse into one follow-up run; a stop raises the stop
    /// signal and starts the grace period; a second stop, or the end of the
    /// grace period, abandons `work`.
    async fn during<F: Future>(&mut self, work: F) -> Waited<F::Output> {
        let mut work = std::pin::pin!(work);
        let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            tokio::select! {
                output = &mut work => return Waited::Done(output),
                event = self.rx.recv() => match event {
                    Some(Event::Run(trigger)) => self.queue(trigger),
                    Some(Event::Stop) | None => {
                        if self.stop.is_stopping() {
                            tracing::warn!("asked again to stop: abandoning the run in flight");
                            return Waited::Abandoned;
                        }
                        self.begin_stop("stopping after the request in flight");
                        grace = Some(Box::pin(tokio::time::sleep(self.stop_grace)));
                    }
                },
                () = tick(&mut self.beat) => self.heartbeat.beat(),
                () = async { if let Some(grace) = grace.as_mut() { grace.await } }, if grace.is_some() => {
                    tracing::warn!(
                        grace_seconds = self.stop_grace.as_secs(),
                        "the run did not stop within the grace period: abandoning it"
                    );
                    return Waited::Abandoned;
                }
            }
        }
    }

    fn queue(&mut self, trigger: Trigger) {
        let stronger = match self.follow_up {
            None => true,
            Some(queued) => trigger.strength() > queued.strength(),
        };
        if stronger {
            if self.follow_up.is_none() {
                tracing::info!(trigger = %trigger, "a run is in flight; one follow-up run queued");
            }
            self.follow_up = Some(trigger);
        }
    }

    fn begin_stop(&mut self, status: &str) {
        self.follow_up = None;
        if !self.stop.is_stopping() {
            self.stop.stop();
            self.notifier.stopping(status);
        }
    }
}

/// A heartbeat tick, or never when there is no watchdog.
async fn tick(beat: &mut Option<Interval>) {
    match beat {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
