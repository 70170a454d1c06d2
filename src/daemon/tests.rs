//! The reconcile loop against a scripted reconciler: every run blocks until
//! the test releases it, so "a trigger during a run" is a fact, not a race.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
enum Call {
    Load,
    /// Trigger, and which load (1-based) produced the manifest it got.
    Reconcile(Trigger, u32),
}

/// Loads answer from a script (then fall back to `fallback`); each
/// reconcile reports itself and waits for a release, or for the stop
/// signal unless told to ignore it.
struct Scripted {
    loads: Mutex<VecDeque<Result<Settings, String>>>,
    fallback: Settings,
    load_count: AtomicU32,
    calls: mpsc::UnboundedSender<Call>,
    release: tokio::sync::Mutex<mpsc::UnboundedReceiver<RunReport>>,
    ignore_stop: bool,
    /// What `record` was told, one line each.
    milestones: Arc<Mutex<Vec<String>>>,
}

impl Reconciler for Scripted {
    type Manifest = u32;

    async fn load(&self) -> Result<Loaded<u32>, String> {
        let n = self.load_count.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.calls.send(Call::Load);
        let scripted = self.loads.lock().unwrap().pop_front();
        scripted
            .unwrap_or_else(|| Ok(self.fallback.clone()))
            .map(|settings| Loaded {
                settings,
                manifest: n,
            })
    }

    async fn reconcile(&self, manifest: u32, trigger: Trigger, stop: &StopSignal) -> RunReport {
        let _ = self.calls.send(Call::Reconcile(trigger, manifest));
        let mut release = self.release.lock().await;
        if self.ignore_stop {
            return release
                .recv()
                .await
                .unwrap_or_else(|| RunReport::failed("released"));
        }
        tokio::select! {
            report = release.recv() => report.unwrap_or_else(|| RunReport::failed("released")),
            () = stop.stopped() => RunReport::ok("stopped after the request in flight"),
        }
    }

    fn record(&self, milestone: Milestone<'_>, next_run: Option<DateTime<Utc>>) {
        let what = match milestone {
            Milestone::Ready => "ready".to_owned(),
            Milestone::Ran {
                trigger,
                report,
                started,
                finished,
            } => {
                assert!(started <= finished);
                format!("ran {trigger}: {} {}", report.result(), report.summary)
            }
            Milestone::Rejected { trigger, message } => format!("rejected {trigger}: {message}"),
            Milestone::Stopped => "stopped".to_owned(),
        };
        let next = match next_run {
            Some(at) => format!("next {}", stamp(at)),
            None => "no next".to_owned(),
        };
        self.milestones
            .lock()
            .unwrap()
            .push(format!("{what}; {next}"));
    }
}

struct Rig {
    events: mpsc::Sender<Event>,
    calls: mpsc::UnboundedReceiver<Call>,
    release: mpsc::UnboundedSender<RunReport>,
    notes: mpsc::UnboundedReceiver<String>,
    daemon: JoinHandle<Result<(), DaemonError>>,
    milestones: Arc<Mutex<Vec<String>>>,
}

struct RigBuilder {
    loads: Vec<Result<Settings, String>>,
    fallback: Settings,
    manifest_path: PathBuf,
    ignore_stop: bool,
    watchdog: Option<Duration>,
    stop_grace: Duration,
}

impl RigBuilder {
    fn loads(mut self, loads: Vec<Result<Settings, String>>) -> Self {
        self.loads = loads;
        self
    }
    fn fallback(mut self, settings: Settings) -> Self {
        self.fallback = settings;
        self
    }
    fn manifest(mut self, path: PathBuf) -> Self {
        self.manifest_path = path;
        self
    }
    fn ignoring_stop(mut self) -> Self {
        self.ignore_stop = true;
        self
    }
    fn watchdog(mut self, interval: Duration) -> Self {
        self.watchdog = Some(interval);
        self
    }

    fn start(self) -> Rig {
        let (calls_tx, calls) = mpsc::unbounded_channel();
        let (release, release_rx) = mpsc::unbounded_channel();
        let (notifier, notes) = Notifier::recorder();
        // Capacity 1: once `drained()` returns, the loop has taken every
        // event sent before it.
        let (events, events_rx) = mpsc::channel(1);
        let reconciler = Scripted {
            loads: Mutex::new(self.loads.into()),
            fallback: self.fallback,
            load_count: AtomicU32::new(0),
            calls: calls_tx,
            release: tokio::sync::Mutex::new(release_rx),
            ignore_stop: self.ignore_stop,
            milestones: Arc::default(),
        };
        let milestones = reconciler.milestones.clone();
        let options = Options {
            notifier,
            watchdog: self.watchdog,
            watch_settle: Duration::from_millis(100),
            stop_grace: self.stop_grace,
            ..Options::new(self.manifest_path)
        };
        let daemon = tokio::spawn(run_with(options, reconciler, events.clone(), events_rx));
        Rig {
            events,
            calls,
            release,
            notes,
            daemon,
            milestones,
        }
    }
}

impl Rig {
    fn builder() -> RigBuilder {
        RigBuilder {
            loads: Vec::new(),
            fallback: Settings::default(),
            manifest_path: PathBuf::from("/nonexistent/scsync.yaml"),
            ignore_stop: false,
            watchdog: None,
            stop_grace: Duration::from_secs(45),
        }
    }

    async fn send(&self, event: Event) {
        self.events.send(event).await.unwrap();
    }

    /// Wait until the loop has taken everything sent so far.
    async fn drained(&self) {
        drop(self.events.reserve().await.unwrap());
    }

    async fn call(&mut self) -> Call {
        tokio::time::timeout(PATIENCE, self.calls.recv())
            .await
            .expect("the daemon calls the reconciler in time")
            .expect("the reconciler is alive")
    }

    fn finish_run(&self, summary: &str) {
        self.release.send(RunReport::ok(summary)).unwrap();
    }

    /// Notifications up to and including the first that contains `needle`.
    async fn notes_until(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let note = tokio::time::timeout(PATIENCE, self.notes.recv())
                .await
                .unwrap_or_else(|_| panic!("no notification containing {needle:?}; saw {seen:?}"))
                .expect("the notifier is alive");
            let found = note.contains(needle);
            seen.push(note);
            if found {
                return seen;
            }
        }
    }

    fn notes_so_far(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.notes.try_recv().ok()).collect()
    }

    /// Stop the daemon (idle) and return what it still called on the way.
    async fn stop(mut self) -> Vec<Call> {
        self.send(Event::Stop).await;
        let result = tokio::time::timeout(PATIENCE, self.daemon)
            .await
            .expect("the daemon exits in time")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
        std::iter::from_fn(|| self.calls.try_recv().ok()).collect()
    }
}

fn settings(schedule: Option<&str>, watch: bool) -> Settings {
    Settings {
        schedule: schedule.map(str::to_owned),
        timezone: None,
        watch,
        listen: None,
    }
}

#[tokio::test]
async fn ready_comes_after_the_first_load_and_before_the_first_run() {
    let mut rig = Rig::builder().start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    let notes = rig.notes_so_far();
    assert!(
        notes.iter().any(|n| n.starts_with("READY=1\n")),
        "READY=1 was sent before the first run started: {notes:?}"
    );
    rig.finish_run("2 added");
    let notes = rig.notes_until("last run ok").await;
    let status = notes.last().unwrap();
    assert!(status.contains("(startup): 2 added"), "{status}");
    assert_eq!(rig.stop().await, vec![]);
}

#[tokio::test]
async fn triggers_during_a_run_queue_exactly_one_follow_up() {
    let mut rig = Rig::builder().start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));

    // Three triggers while the startup run is in flight.
    rig.send(Event::Run(Trigger::Schedule)).await;
    rig.send(Event::Run(Trigger::ManifestChanged)).await;
    rig.send(Event::Run(Trigger::Schedule)).await;
    rig.drained().await;
    rig.finish_run("first");

    // One follow-up, named by the strongest trigger, on a fresh load.
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(
        rig.call().await,
        Call::Reconcile(Trigger::ManifestChanged, 2)
    );
    rig.finish_run("second");
    rig.notes_until("(manifest change): second").await;

    assert_eq!(rig.stop().await, vec![], "no third run");
}

#[tokio::test]
async fn a_trigger_while_idle_runs_at_once() {
    let mut rig = Rig::builder().start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.finish_run("first");
    rig.notes_until("last run ok").await;

    rig.send(Event::Run(Trigger::Schedule)).await;
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Schedule, 2));
    rig.finish_run("second");
    rig.notes_until("(schedule): second").await;
    assert_eq!(rig.stop().await, vec![]);
}

#[tokio::test]
async fn a_broken_manifest_is_reported_and_skipped_and_the_daemon_lives_on() {
    let mut rig = Rig::builder()
        .loads(vec![
            Ok(Settings::default()),
            Err("scsync.yaml:3:1: unknown key `trakcs`".to_owned()),
        ])
        .start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.finish_run("first");

    rig.send(Event::Run(Trigger::ManifestChanged)).await;
    assert_eq!(rig.call().await, Call::Load);
    let notes = rig.notes_until("manifest rejected").await;
    let status = notes.last().unwrap();
    assert!(status.starts_with("STATUS="), "{status}");
    assert!(status.contains("unknown key `trakcs`"), "{status}");
    assert!(status.contains("nothing applied"), "{status}");

    // The next trigger loads again (now fine) and runs.
    rig.send(Event::Run(Trigger::Schedule)).await;
    assert_eq!(
        rig.call().await,
        Call::Load,
        "no reconcile for the broken load"
    );
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Schedule, 3));
    rig.finish_run("third");
    rig.notes_until("(schedule): third").await;
    assert_eq!(rig.stop().await, vec![]);
}

#[tokio::test]
async fn milestones_are_recorded_with_the_next_scheduled_run() {
    let yearly = settings(Some("0 0 0 1 1 *"), false);
    let mut rig = Rig::builder()
        .loads(vec![
            Ok(yearly.clone()),
            Err("bad key".to_owned()),
            Ok(Settings::default()),
        ])
        .start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.release.send(RunReport::interrupted("half")).unwrap();
    rig.notes_until("last run interrupted").await;
    rig.send(Event::Run(Trigger::ManifestChanged)).await;
    rig.notes_until("manifest rejected").await;
    // The schedule goes with a manifest that has none.
    rig.send(Event::Run(Trigger::Reload)).await;
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Reload, 3));
    rig.finish_run("done");
    rig.notes_until("(reload): done").await;
    let milestones = rig.milestones.clone();
    assert_eq!(rig.stop().await, vec![]);

    let next = format!(
        "next {}",
        stamp(
            Schedule::parse("0 0 0 1 1 *", None)
                .unwrap()
                .next_after(Utc::now())
                .unwrap()
        )
    );
    assert_eq!(
        *milestones.lock().unwrap(),
        vec![
            format!("ready; {next}"),
            format!("ran startup: interrupted half; {next}"),
            format!("rejected manifest change: bad key; {next}"),
            "ran reload: ok done; no next".to_owned(),
            "stopped; no next".to_owned(),
        ]
    );
}

#[tokio::test]
async fn sighup_reloads_with_reloading_then_ready_even_when_the_manifest_is_broken() {
    let mut rig = Rig::builder()
        .loads(vec![
            Ok(Settings::default()),
            Ok(Settings::default()),
            Err("bad indentation".to_owned()),
        ])
        .start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.finish_run("first");
    rig.notes_until("last run ok").await;

    rig.send(Event::Run(Trigger::Reload)).await;
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Reload, 2));
    let notes = rig.notes_so_far();
    assert!(
        notes[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("READY=1\nSTATUS=manifest reloaded"),
        "{notes:?}"
    );
    rig.finish_run("second");
    rig.notes_until("(reload): second").await;

    rig.send(Event::Run(Trigger::Reload)).await;
    assert_eq!(rig.call().await, Call::Load);
    let notes = rig.notes_until("manifest rejected").await;
    assert!(notes[0].starts_with("RELOADING=1\n"), "{notes:?}");
    let last = notes.last().unwrap();
    assert!(last.starts_with("READY=1\nSTATUS="), "{last}");
    assert!(last.contains("bad indentation"), "{last}");
    assert_eq!(rig.stop().await, vec![], "the broken reload ran nothing");
}

#[tokio::test]
async fn stop_lets_the_run_in_flight_finish_and_drops_the_follow_up() {
    let mut rig = Rig::builder().start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.send(Event::Run(Trigger::Schedule)).await;
    rig.send(Event::Stop).await;
    // The scripted run returns as soon as it sees the stop signal.
    let notes = rig.notes_until("STOPPING=1").await;
    assert!(
        notes
            .last()
            .unwrap()
            .contains("after the request in flight")
    );
    let result = tokio::time::timeout(PATIENCE, rig.daemon)
        .await
        .expect("the daemon exits in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        rig.calls.try_recv().is_err(),
        "the queued follow-up did not run"
    );
}

#[tokio::test]
async fn a_second_stop_abandons_a_run_that_ignores_the_first() {
    let mut rig = Rig::builder().ignoring_stop().start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.send(Event::Stop).await;
    rig.send(Event::Stop).await;
    let result = tokio::time::timeout(PATIENCE, rig.daemon)
        .await
        .expect("the daemon exits in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn the_stop_grace_period_bounds_a_run_that_ignores_the_stop() {
    let mut rig = Rig::builder().ignoring_stop().start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    let asked = Instant::now();
    rig.send(Event::Stop).await;
    let result = rig.daemon.await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_secs(45) && waited < Duration::from_secs(46),
        "virtual time: the grace period, got {waited:?}"
    );
}

#[tokio::test]
async fn an_unusable_first_manifest_stops_the_daemon_before_ready() {
    let mut rig = Rig::builder()
        .loads(vec![Err("scsync.yaml:1:1: expected a mapping".to_owned())])
        .start();
    assert_eq!(rig.call().await, Call::Load);
    let result = tokio::time::timeout(PATIENCE, rig.daemon)
        .await
        .expect("the daemon exits in time")
        .unwrap();
    let err = result.unwrap_err();
    assert!(matches!(err, DaemonError::InitialLoad { .. }));
    let msg = err.to_string();
    assert!(msg.contains("expected a mapping"), "{msg}");
    assert!(
        msg.contains("scsync validate -c /nonexistent/scsync.yaml"),
        "{msg}"
    );
    let notes: Vec<String> = std::iter::from_fn(|| rig.notes.try_recv().ok()).collect();
    assert!(!notes.iter().any(|n| n.contains("READY=1")), "{notes:?}");
}

#[tokio::test]
async fn an_invalid_schedule_is_a_broken_manifest() {
    // At start: the daemon refuses to start.
    let mut rig = Rig::builder()
        .loads(vec![Ok(settings(Some("0 0 1 * MON"), false))])
        .start();
    assert_eq!(rig.call().await, Call::Load);
    let err = rig.daemon.await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("day-of-month and day-of-week"),
        "{err}"
    );

    // Later: the run is skipped and the good schedule stays.
    let mut rig = Rig::builder()
        .loads(vec![
            Ok(settings(Some("@daily"), false)),
            Ok(settings(Some("*/5 * * *"), false)),
        ])
        .start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.finish_run("first");
    rig.send(Event::Run(Trigger::Reload)).await;
    assert_eq!(rig.call().await, Call::Load);
    let notes = rig.notes_until("manifest rejected").await;
    let last = notes.last().unwrap();
    assert!(last.contains("has 4 fields"), "{last}");
    assert!(
        last.contains("Next scheduled run"),
        "the @daily schedule stays: {last}"
    );
    assert_eq!(rig.stop().await, vec![]);
}

#[tokio::test]
async fn an_edit_to_the_manifest_runs_through_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("scsync.yaml");
    std::fs::write(&manifest, "version: 1\n").unwrap();
    let mut rig = Rig::builder()
        .manifest(manifest.clone())
        .fallback(settings(None, true))
        .start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    rig.finish_run("first");
    let notes = rig.notes_until("last run ok").await;
    let status = notes.last().unwrap().to_lowercase();
    assert!(status.contains("watching the manifest"), "{status}");

    // An editor's atomic save.
    let temp = dir.path().join(".scsync.yaml.tmp");
    std::fs::write(&temp, "version: 1\nfollows: []\n").unwrap();
    std::fs::rename(&temp, &manifest).unwrap();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(
        rig.call().await,
        Call::Reconcile(Trigger::ManifestChanged, 2)
    );
    rig.finish_run("second");
    rig.notes_until("(manifest change): second").await;
    assert_eq!(rig.stop().await, vec![]);
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_stays_fed_while_idle_and_during_a_long_run() {
    let mut rig = Rig::builder().watchdog(Duration::from_secs(20)).start();
    assert_eq!(rig.call().await, Call::Load);
    assert_eq!(rig.call().await, Call::Reconcile(Trigger::Startup, 1));
    // The run stays in flight for ten watchdog periods of virtual time.
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_secs(200) {
        let note = rig.notes.recv().await.unwrap();
        assert!(!note.contains("unresponsive"), "{note}");
        if note == "WATCHDOG=1\n" {
            pings += 1;
        }
    }
    assert!(pings >= 19, "a ping every 10 s, got {pings}");
    rig.finish_run("long");
    rig.notes_until("(startup): long").await;
    assert_eq!(rig.stop().await, vec![]);
}

#[test]
fn stronger_triggers_name_the_follow_up() {
    let mut inbox = Inbox {
        rx: mpsc::channel(1).1,
        heartbeat: Heartbeat::new(),
        beat: None,
        stop: StopSignal::new(),
        stop_grace: Duration::from_secs(1),
        notifier: Notifier::disabled(),
        follow_up: None,
    };
    inbox.queue(Trigger::Schedule);
    assert_eq!(inbox.follow_up, Some(Trigger::Schedule));
    inbox.queue(Trigger::Reload);
    inbox.queue(Trigger::ManifestChanged);
    assert_eq!(inbox.follow_up, Some(Trigger::Reload));
}
