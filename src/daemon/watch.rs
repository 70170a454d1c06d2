//! Watching the manifest for changes (`daemon.watch: true`).
//!
//! Editors save by writing a temp file and renaming it over the manifest,
//! `git checkout` replaces files, and config systems swap symlinks, so a
//! watch on the file's inode goes deaf after the first save. We watch the
//! *directory* instead (non-recursively), and decide whether the manifest
//! changed by its content: after the directory has been quiet for a moment
//! we fingerprint the manifest (one file, or every `*.yaml`/`*.yml` in a
//! manifest directory) and send one `Trigger::ManifestChanged` only if the
//! fingerprint differs from the last one seen. Unrelated files, `touch`,
//! and saves that write identical bytes trigger nothing; a burst of writes
//! triggers once.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_debouncer_full::notify::{self, EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Event, Trigger};

/// notify-debouncer-full's per-path quiet time, and how often it checks.
const DEBOUNCE: Duration = Duration::from_millis(250);
const DEBOUNCE_TICK: Duration = Duration::from_millis(250);

/// The watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error(
    "could not watch {dir} for manifest changes: {source}; scheduled runs continue (if the inotify watch limit is reached, raise fs.inotify.max_user_watches)"
)]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: notify_debouncer_full::notify::Error,
}

/// A running watch; dropping it stops watching.
pub(crate) struct ManifestWatcher {
    _debouncer: Arc<Mutex<FsDebouncer>>,
    task: JoinHandle<()>,
}

type FsDebouncer = Debouncer<RecommendedWatcher, NoCache>;

impl Drop for ManifestWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the manifest is on disk.
#[derive(Clone, Debug)]
enum Target {
    File(PathBuf),
    Dir(PathBuf),
}

impl ManifestWatcher {
    /// Watch `manifest` (a file, or a directory of YAML files). `settle` is
    /// how long the directory must stay quiet before we look.
    pub(crate) fn start(
        manifest: &Path,
        settle: Duration,
        events: mpsc::Sender<Event>,
    ) -> Result<ManifestWatcher, WatchError> {
        Self::start_observed(manifest, settle, events, None)
    }

    /// As `start`; `observer` (tests) hears about every settled burst.
    fn start_observed(
        manifest: &Path,
        settle: Duration,
        events: mpsc::Sender<Event>,
        observer: Option<mpsc::UnboundedSender<Burst>>,
    ) -> Result<ManifestWatcher, WatchError> {
        let target = target_of(manifest);
        let roots = roots_of(&target);
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let debouncer = new_debouncer_opt::<_, RecommendedWatcher, NoCache>(
            DEBOUNCE,
            Some(DEBOUNCE_TICK),
            move |batch: DebounceEventResult| {
                if let Some(activity) = Activity::of(batch) {
                    let _ = raw_tx.send(activity);
                }
            },
            NoCache,
            Default::default(),
        )
        .map_err(|source| WatchError {
            dir: roots[0].clone(),
            source,
        })?;
        let debouncer = Arc::new(Mutex::new(debouncer));
        let mut watched = Vec::new();
        for root in roots {
            let id = dir_id(&root);
            watch_dir(&debouncer, &root)?;
            watched.push((root, id));
        }
        let baseline = fingerprint(&target);
        tracing::debug!(dirs = ?watched.iter().map(|(d, _)| d).collect::<Vec<_>>(), "watching for manifest changes");
        let task = tokio::spawn(watch_loop(WatchLoop {
            target,
            watched,
            debouncer: debouncer.clone(),
            raw_rx,
            events,
            settle,
            baseline,
            observer,
        }));
        Ok(ManifestWatcher {
            _debouncer: debouncer,
            task,
        })
    }
}

fn watch_dir(debouncer: &Mutex<FsDebouncer>, dir: &Path) -> Result<(), WatchError> {
    let mut guard = debouncer.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError {
            dir: dir.to_owned(),
            source,
        })
}

fn target_of(manifest: &Path) -> Target {
    // Absolute without canonicalizing: mid-rename the file may not exist,
    // and a symlinked manifest must stay the path the user gave.
    let path = std::path::absolute(manifest).unwrap_or_else(|_| manifest.to_owned());
    if path.is_dir() {
        Target::Dir(path)
    } else {
        Target::File(path)
    }
}

/// The directories to watch: the file's folder; or the manifest directory
/// and its parent (so a swapped directory is noticed).
fn roots_of(target: &Target) -> Vec<PathBuf> {
    let parent = |p: &Path| {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("/"), Path::to_owned)
    };
    match target {
        Target::File(file) => vec![parent(file)],
        Target::Dir(dir) => vec![dir.clone(), parent(dir)],
    }
}

/// (device, inode) of a directory, to notice it being replaced.
fn dir_id(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

type Fingerprint = Option<[u8; 32]>;

/// A digest of the manifest's bytes (for a directory: of every
/// `*.yaml`/`*.yml` in it, with names); `None` when it cannot be read.
fn fingerprint(target: &Target) -> Fingerprint {
    let mut hash = Sha256::new();
    match target {
        Target::File(file) => hash.update(std::fs::read(file).ok()?),
        Target::Dir(dir) => {
            for file in yaml_files(dir).ok()? {
                hash.update(file.as_os_str().as_encoded_bytes());
                hash.update([0]);
                match std::fs::read(&file) {
                    Ok(bytes) => hash.update(Sha256::digest(bytes)),
                    Err(_) => hash.update(b"unreadable"),
                }
            }
        }
    }
    Some(hash.finalize().into())
}

/// The manifest files of a manifest directory, sorted.
fn yaml_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) && path.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What the debouncer thread hands over.
enum Activity {
    /// Something other than a read happened to these paths.
    Touched(Vec<PathBuf>),
    Errors(Vec<notify::Error>),
}

impl Activity {
    /// Reads are dropped: fingerprinting reads the manifest, and so do the
    /// runs, which would otherwise wake the watcher again and again.
    fn of(batch: DebounceEventResult) -> Option<Activity> {
        match batch {
            Ok(events) => {
                let mut touched = events
                    .into_iter()
                    .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                    .peekable();
                touched.peek()?;
                Some(Activity::Touched(
                    touched.flat_map(|e| e.event.paths).collect(),
                ))
            }
            Err(errors) => Some(Activity::Errors(errors)),
        }
    }
}

/// One settled burst of activity, as seen by the test observer.
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code, reason = "only the tests observe bursts"))]
struct Burst {
    paths: Vec<PathBuf>,
    changed: bool,
}

struct WatchLoop {
    target: Target,
    watched: Vec<(PathBuf, Option<(u64, u64)>)>,
    debouncer: Arc<Mutex<FsDebouncer>>,
    raw_rx: mpsc::UnboundedReceiver<Activity>,
    events: mpsc::Sender<Event>,
    settle: Duration,
    baseline: Fingerprint,
    observer: Option<mpsc::UnboundedSender<Burst>>,
}

async fn watch_loop(mut w: WatchLoop) {
    loop {
        // Wait for activity, then for the directory to go quiet.
        let Some(activity) = w.raw_rx.recv().await else {
            return;
        };
        let mut paths = Vec::new();
        take(activity, &mut paths);
        loop {
            match tokio::time::timeout(w.settle, w.raw_rx.recv()).await {
                Ok(Some(activity)) => take(activity, &mut paths),
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        rewatch_replaced(&mut w);
        let target = w.target.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&target)).await else {
            return;
        };
        let changed = now != w.baseline;
        if changed {
            w.baseline = now;
            tracing::info!("the manifest changed on disk; queueing a run");
            // A full queue already holds a run that will read the new manifest.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                w.events.try_send(Event::Run(Trigger::ManifestChanged))
            {
                return;
            }
        }
        if let Some(observer) = &w.observer {
            let _ = observer.send(Burst { paths, changed });
        }
    }
}

fn take(activity: Activity, paths: &mut Vec<PathBuf>) {
    match activity {
        Activity::Touched(touched) => paths.extend(touched),
        Activity::Errors(errors) => {
            for e in errors {
                tracing::warn!("file watch error: {e}");
            }
        }
    }
}

/// A watched directory that was replaced (deleted and recreated, or a
/// different directory moved into place) leaves the old watch deaf; watch
/// the new one.
fn rewatch_replaced(w: &mut WatchLoop) {
    for (dir, id) in &mut w.watched {
        let now = dir_id(dir);
        if now == *id || now.is_none() {
            continue;
        }
        {
            let mut guard = w.debouncer.lock().unwrap_or_else(|e| e.into_inner());
            let _ = guard.unwatch(&*dir);
        }
        match watch_dir(&w.debouncer, dir) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "watched directory was replaced; watching the new one");
                *id = now;
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const SETTLE: Duration = Duration::from_millis(100);
    const PATIENCE: Duration = Duration::from_secs(10);

    struct Harness {
        _watcher: ManifestWatcher,
        triggers: mpsc::Receiver<Event>,
        bursts: mpsc::UnboundedReceiver<Burst>,
    }

    impl Harness {
        fn start(manifest: &Path) -> Harness {
            let (tx, triggers) = mpsc::channel(8);
            let (otx, bursts) = mpsc::unbounded_channel();
            let watcher = ManifestWatcher::start_observed(manifest, SETTLE, tx, Some(otx)).unwrap();
            Harness {
                _watcher: watcher,
                triggers,
                bursts,
            }
        }

        async fn next_burst(&mut self) -> Burst {
            tokio::time::timeout(PATIENCE, self.bursts.recv())
                .await
                .expect("the watcher reacts within the time limit")
                .unwrap()
        }

        /// A settled burst changed the manifest and sent one trigger. (On a
        /// slow machine a burst may split; its unchanged part sends nothing.)
        async fn expect_change(&mut self) {
            while !self.next_burst().await.changed {
                assert!(
                    self.triggers.try_recv().is_err(),
                    "no trigger for an unchanged burst"
                );
            }
            assert!(matches!(
                self.triggers.try_recv(),
                Ok(Event::Run(Trigger::ManifestChanged))
            ));
            assert!(self.triggers.try_recv().is_err(), "exactly one trigger");
        }

        /// The next settled burst left the manifest alone, and sent nothing.
        async fn expect_no_change(&mut self) -> Burst {
            let burst = self.next_burst().await;
            assert!(
                !burst.changed,
                "should not count as a manifest change: {burst:?}"
            );
            assert!(self.triggers.try_recv().is_err(), "no trigger");
            burst
        }
    }

    #[tokio::test]
    async fn a_plain_write_triggers_once() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("scsync.yaml");
        fs::write(&manifest, "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        fs::write(&manifest, "version: 1\nfollows: []\n").unwrap();
        h.expect_change().await;
    }

    #[tokio::test]
    async fn an_editor_save_by_rename_triggers_and_the_next_save_too() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("scsync.yaml");
        fs::write(&manifest, "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        for (n, body) in ["version: 1\n# one\n", "version: 1\n# two\n"]
            .iter()
            .enumerate()
        {
            let temp = dir.path().join(format!(".scsync.yaml.swp{n}"));
            fs::write(&temp, body).unwrap();
            fs::rename(&temp, &manifest).unwrap();
            h.expect_change().await;
        }
    }

    #[tokio::test]
    async fn unrelated_files_and_identical_rewrites_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("scsync.yaml");
        fs::write(&manifest, "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        h.expect_no_change().await;
        fs::write(&manifest, "version: 1\n").unwrap();
        h.expect_no_change().await;
    }

    #[tokio::test]
    async fn reading_the_manifest_is_not_activity() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("scsync.yaml");
        fs::write(&manifest, "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        // Each burst makes the watcher read the manifest; if reads counted,
        // that read would be the next burst, not the write that follows.
        let marker = dir.path().join("marker");
        for round in 0..3 {
            fs::read(&manifest).unwrap();
            fs::write(&marker, round.to_string()).unwrap();
            let burst = h.expect_no_change().await;
            assert!(burst.paths.contains(&marker), "round {round}: {burst:?}");
            assert!(!burst.paths.contains(&manifest), "round {round}: {burst:?}");
        }
    }

    #[tokio::test]
    async fn a_burst_of_writes_is_one_trigger() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("scsync.yaml");
        fs::write(&manifest, "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        // Like a checkout: several files replaced, the manifest among them.
        for i in 0..5 {
            fs::write(dir.path().join(format!("other{i}.txt")), "x").unwrap();
            fs::write(&manifest, format!("version: 1\n# {i}\n")).unwrap();
        }
        h.expect_change().await;
    }

    #[tokio::test]
    async fn a_manifest_directory_reacts_to_its_yaml_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("manifest.d");
        fs::create_dir(&manifest).unwrap();
        fs::write(manifest.join("account.yaml"), "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        fs::write(manifest.join("README.md"), "docs").unwrap();
        h.expect_no_change().await;
        fs::write(manifest.join("tracks.yml"), "tracks: []\n").unwrap();
        h.expect_change().await;
        fs::remove_file(manifest.join("tracks.yml")).unwrap();
        h.expect_change().await;
    }

    #[tokio::test]
    async fn a_deleted_manifest_counts_as_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("scsync.yaml");
        fs::write(&manifest, "version: 1\n").unwrap();
        let mut h = Harness::start(&manifest);

        fs::remove_file(&manifest).unwrap();
        h.expect_change().await; // the run's load then reports it missing
    }
}
