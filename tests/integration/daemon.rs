//! `scsync daemon`, the real binary, against the emulator, with a
//! `NOTIFY_SOCKET` of its own: what systemd would hear (READY, STATUS,
//! RELOADING, STOPPING, WATCHDOG), what reaches the account, and how it
//! answers signals, a second instance, and a concurrent `apply`.
//!
//! Everything waits on events (a notify datagram, an emulator state, a log
//! line, the child's exit) with a generous deadline; nothing sleeps to
//! synchronise.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{World, base_seed};

/// The upper bound for anything to happen. Generous: the machine may be
/// busy; tests proceed as soon as the awaited event arrives.
const PATIENCE: Duration = Duration::from_secs(90);

/// How often to look again at something that has no event to wait on
/// (emulator state, a child's exit).
const POLL: Duration = Duration::from_millis(25);

/// A schedule that fires only at New Year: never during a test.
const NEVER_DURING_A_TEST: &str = "0 0 0 1 1 *";

fn body(schedule: &str, watch: bool, title: &str) -> String {
    format!(
        r#"daemon:
  schedule: "{schedule}"
  watch: {watch}
tracks:
  - key: night-drive
    file: audio/night-drive.wav
    title: {title}
follows:
  - soundcloud:users:2
"#
    )
}

/// A signed-in world; each test then writes the manifest it needs.
fn world() -> World {
    let world = World::new(base_seed());
    world
        .wav("audio/night-drive.wav", 220.0)
        .manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"))
        .login();
    world
}

// ---- the notify socket -------------------------------------------------

/// The service manager's end of `NOTIFY_SOCKET`: every datagram the daemon
/// sent, in order.
struct Notes {
    socket: UnixDatagram,
    seen: Vec<String>,
}

impl Notes {
    fn bind(path: &Path) -> Notes {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        Notes {
            socket,
            seen: Vec::new(),
        }
    }

    /// The next datagram, or `None` if none comes before `deadline`.
    fn next_before(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.checked_duration_since(Instant::now())?;
        self.socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = vec![0u8; 8192];
        match self.socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(text.clone());
                Some(text)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("reading the notify socket: {e}"),
        }
    }

    /// Datagrams up to and including the first for which `wanted` holds.
    fn until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let from = self.seen.len();
        loop {
            match self.next_before(deadline) {
                Some(note) if wanted(&note) => return self.seen[from..].to_vec(),
                Some(_) => continue,
                None => panic!(
                    "no notification {what} within {PATIENCE:?}; received so far:\n{:#?}",
                    self.seen
                ),
            }
        }
    }

    /// The first datagram carrying `line` (e.g. `READY=1`).
    fn until_line(&mut self, line: &str) -> String {
        let notes = self.until(line, |n| has_line(n, line));
        notes.last().cloned().unwrap_or_default()
    }

    /// The STATUS= text of the first status that contains `needle`.
    fn until_status(&mut self, needle: &str) -> String {
        let notes = self.until(&format!("with a STATUS containing {needle:?}"), |n| {
            status_of(n).is_some_and(|s| s.contains(needle))
        });
        notes
            .last()
            .and_then(|n| status_of(n))
            .unwrap_or_default()
            .to_owned()
    }

    /// The STATUS= text that ends the next run made for `trigger`
    /// ("startup", "manifest change", "reload", "schedule").
    fn until_run_end(&mut self, trigger: &str) -> String {
        let tag = format!("({trigger})");
        let notes = self.until(&format!("ending a run {tag}"), |n| {
            status_of(n).is_some_and(|s| s.starts_with("last run") && s.contains(&tag))
        });
        notes
            .last()
            .and_then(|n| status_of(n))
            .unwrap_or_default()
            .to_owned()
    }

    /// Whatever is already queued (after the sender has exited: all of it).
    fn drain(&mut self) -> Vec<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.seen
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false).unwrap();
        self.seen.clone()
    }
}

fn has_line(note: &str, line: &str) -> bool {
    note.lines().any(|l| l == line)
}

fn status_of(note: &str) -> Option<&str> {
    note.lines().find_map(|l| l.strip_prefix("STATUS="))
}

// ---- the daemon process ------------------------------------------------

/// A running `scsync daemon`, its notify socket and its log.
struct Daemon {
    child: Child,
    notes: Notes,
    log: Arc<Mutex<Vec<String>>>,
    /// Keeps the socket's folder (outside the watched manifest folder).
    _sock_dir: tempfile::TempDir,
}

struct Start<'a> {
    world: &'a World,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl<'a> Start<'a> {
    fn new(world: &'a World) -> Start<'a> {
        Start {
            world,
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    fn spawn(self) -> Daemon {
        let sock_dir = tempfile::tempdir().unwrap();
        let sock = sock_dir.path().join("notify.sock");
        let notes = Notes::bind(&sock);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_scsync"));
        cmd.arg("daemon")
            .args(&self.args)
            .arg("-c")
            .arg(self.world.manifest_path())
            .arg("--state")
            .arg(self.world.state_path())
            .current_dir(self.world.dir.path())
            .env("NOTIFY_SOCKET", &sock)
            .env("NO_COLOR", "1")
            // Whatever runs the tests must not leak its own service
            // manager settings into the daemon.
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("JOURNAL_STREAM")
            .env_remove("STATE_DIRECTORY")
            .env_remove("SCSYNC_LOG")
            .env_remove("SCSYNC_LOCK_TIMEOUT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("scsync daemon starts");
        let log = collect_lines(child.stderr.take().unwrap());
        Daemon {
            child,
            notes,
            log,
            _sock_dir: sock_dir,
        }
    }
}

/// Reads a child's output into memory line by line on a thread (so the pipe
/// never fills).
fn collect_lines(out: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Daemon {
    fn start(world: &World) -> Daemon {
        Start::new(world).spawn()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        signal(self.pid(), name);
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// READY=1, then the end of the first run; returns its STATUS text.
    fn first_run(&mut self) -> String {
        self.notes.until_line("READY=1");
        self.notes.until_run_end("startup")
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to end.
    fn exit(&mut self) -> ExitStatus {
        wait_exit(&mut self.child, &self.log)
    }

    /// SIGTERM; it must exit 0 having said STOPPING=1.
    fn stop(self) -> Vec<String> {
        self.stop_with("TERM")
    }

    /// SIGTERM or SIGINT; it must exit 0 having said STOPPING=1.
    fn stop_with(mut self, signal: &str) -> Vec<String> {
        self.signal(signal);
        let status = self.exit();
        assert_eq!(
            status.code(),
            Some(0),
            "the daemon exits 0 on SIG{signal}\n--- log\n{}",
            self.log()
        );
        let notes = self.notes.drain();
        assert!(
            notes.iter().any(|n| has_line(n, "STOPPING=1")),
            "STOPPING=1 before exit: {notes:#?}"
        );
        notes
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed assertion must not leave a daemon behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -s {name} {pid}");
}

fn wait_exit(child: &mut Child, log: &Mutex<Vec<String>>) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {PATIENCE:?}\n--- log\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(POLL);
    }
}

// ---- the emulator ------------------------------------------------------

fn my_track_titles(state: &Value) -> Vec<String> {
    let mut titles: Vec<String> = state["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["user_id"] == 1)
        .map(|t| t["title"].as_str().unwrap_or("").to_owned())
        .collect();
    titles.sort();
    titles
}

fn follows(state: &Value) -> Vec<u64> {
    state["followings"]["1"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// How often a fault rule has bitten so far.
fn fired(world: &World) -> u64 {
    let report: Value = reqwest::blocking::get(format!("{}/_emulator/faults", world.base_url()))
        .unwrap()
        .json()
        .unwrap();
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["fired"].as_u64())
        .sum()
}

fn clear_faults(world: &World) {
    let resp = reqwest::blocking::Client::new()
        .delete(format!("{}/_emulator/faults", world.base_url()))
        .send()
        .unwrap();
    assert!(resp.status().is_success());
}

fn write_by_rename(path: &Path, text: &str) {
    let temp: PathBuf = path.with_file_name(".scsync.yaml.swp");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

// ---- the tests ---------------------------------------------------------

#[test]
fn ready_then_the_first_run_makes_the_account_match_and_status_shows_it() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, true, "Night Drive"));
    let mut daemon = Daemon::start(&world);

    let ready = daemon.notes.until_line("READY=1");
    let ready_status = status_of(&ready).unwrap_or_default();
    assert!(
        ready_status.contains("Next scheduled run 20") && ready_status.contains("-01-01T00:00:00Z"),
        "{ready_status}"
    );
    assert!(
        ready_status.contains("watching the manifest"),
        "{ready_status}"
    );
    daemon.notes.until_status("running (startup)");
    let status = daemon.notes.until_run_end("startup");
    assert!(
        status.contains("last run ok")
            && status.contains("(startup)")
            && status.contains("2 to add, 0 to change, 0 to remove: 2 done, 0 failed, 0 skipped"),
        "{status}"
    );
    let state = world.emulator_state();
    assert_eq!(my_track_titles(&state), vec!["Night Drive"]);
    assert_eq!(follows(&state), vec![2]);

    let shown = world.scsync(["status"]).expect(0).stdout();
    let pid = daemon.pid();
    assert!(
        shown.contains(&format!("Daemon:   running (pid {pid}) since ")),
        "{shown}"
    );
    assert!(
        shown.contains("Next run: 20") && shown.contains("-01-01 00:00:00 UTC (in "),
        "{shown}"
    );
    assert!(
        shown.contains("Last run: ok at ")
            && shown.contains("(startup): 2 to add, 0 to change, 0 to remove: 2 done"),
        "{shown}"
    );
    assert!(
        shown.contains("Drift:    at the last check (")
            && shown.contains("): 2 to add, 0 to change, 0 to remove"),
        "{shown}"
    );
    assert!(
        shown.contains(" daemon ok "),
        "the run is recorded: {shown}"
    );
    assert!(!shown.contains("Last error"), "{shown}");
    assert!(shown.contains("Managed:  1 tracks, 0 playlists"), "{shown}");

    daemon.stop();
    let shown = world.scsync(["status"]).expect(0).stdout();
    assert!(shown.contains("Daemon:   stopped at "), "{shown}");
    assert!(!shown.contains("Next run:"), "{shown}");
}

#[test]
fn edits_are_applied_through_the_watch_plain_writes_and_renames_alike() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, true, "Night Drive"));
    let mut daemon = Daemon::start(&world);
    assert!(daemon.first_run().contains("last run ok"));

    // An editor that writes in place.
    world.manifest(&body(NEVER_DURING_A_TEST, true, "Night Drive (edit)"));
    let status = daemon.notes.until_run_end("manifest change");
    assert!(status.contains("last run ok"), "{status}");
    assert!(status.contains("0 to add, 1 to change"), "{status}");
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive (edit)"]
    );

    // An editor that writes a temp file and renames it over the manifest,
    // twice: the watch must survive the first rename.
    let mut previous = "Night Drive (edit)";
    for title in ["Night Drive (renamed)", "Night Drive (again)"] {
        let text = std::fs::read_to_string(world.manifest_path())
            .unwrap()
            .replace(&format!("title: {previous}"), &format!("title: {title}"));
        write_by_rename(&world.manifest_path(), &text);
        let status = daemon.notes.until_run_end("manifest change");
        assert!(status.contains("last run ok"), "{status}");
        assert_eq!(my_track_titles(&world.emulator_state()), vec![title]);
        previous = title;
    }
    daemon.stop();
}

#[test]
fn a_broken_edit_is_reported_changes_nothing_and_fixing_it_applies() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, true, "Night Drive"));
    let mut daemon = Daemon::start(&world);
    assert!(daemon.first_run().contains("last run ok"));
    world.clear_requests();

    // A typo in a key, together with a change that must not be applied.
    let broken = body(NEVER_DURING_A_TEST, true, "Broken")
        .replace("    title: Broken", "    title: Broken\n    titel: typo");
    world.manifest(&broken);
    // (Wait for the rejection that names the typo: on a very slow machine
    // the watch might also catch the file half-written.)
    let status = daemon
        .notes
        .until("rejecting the typo", |n| {
            status_of(n).is_some_and(|s| s.contains("manifest rejected") && s.contains("titel"))
        })
        .last()
        .and_then(|n| status_of(n).map(str::to_owned))
        .unwrap_or_default();
    assert!(
        status.contains("(manifest change), nothing applied, last good settings kept"),
        "{status}"
    );
    assert!(
        status.contains("titel"),
        "the status names the problem: {status}"
    );
    assert!(
        status.contains("Next scheduled run") && status.contains("watching the manifest"),
        "{status}"
    );
    assert!(daemon.is_running(), "the daemon lives on");
    assert_eq!(world.writes(), Vec::<Value>::new());
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive"]
    );
    let shown = world.scsync(["status"]).expect(0).stdout();
    assert!(
        shown.contains("Last error: ") && shown.contains("manifest rejected, nothing applied"),
        "{shown}"
    );

    world.manifest(&body(NEVER_DURING_A_TEST, true, "Fixed"));
    let status = daemon.notes.until_run_end("manifest change");
    assert!(status.contains("last run ok"), "{status}");
    assert_eq!(my_track_titles(&world.emulator_state()), vec!["Fixed"]);
    daemon.stop();
}

#[test]
fn a_failed_run_is_reported_and_the_daemon_lives_on_to_the_next() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"));
    // The first read of the account is refused (403 is not retried).
    world.faults(json!([{"method": "GET", "path": "^/me$", "status": 403, "times": 1}]));
    let mut daemon = Daemon::start(&world);
    let status = daemon.first_run();
    assert!(status.contains("last run FAILED"), "{status}");
    assert!(daemon.is_running(), "a failed run does not end the daemon");
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        Vec::<String>::new()
    );
    let shown = world.scsync(["status"]).expect(0).stdout();
    assert!(shown.contains("Last run: failed at "), "{shown}");
    assert!(shown.contains("Last error: "), "{shown}");

    daemon.signal("HUP");
    let status = daemon.notes.until_run_end("reload");
    assert!(status.contains("last run ok"), "{status}");
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive"]
    );
    daemon.stop();
}

#[test]
fn sighup_reloads_the_manifest_and_runs() {
    let world = world();
    // No watch: only the reload can pick up the edit.
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"));
    let mut daemon = Daemon::start(&world);
    assert!(daemon.first_run().contains("last run ok"));

    world.manifest(&body(NEVER_DURING_A_TEST, false, "Reloaded"));
    daemon.signal("HUP");
    let reloading = daemon.notes.until_line("RELOADING=1");
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "systemd 253+ wants the timestamp with RELOADING=1: {reloading}"
    );
    let ready = daemon.notes.until_line("READY=1");
    assert!(
        status_of(&ready).is_some_and(|s| s.contains("manifest reloaded")),
        "{ready}"
    );
    let status = daemon.notes.until_run_end("reload");
    assert!(status.contains("last run ok"), "{status}");
    assert_eq!(my_track_titles(&world.emulator_state()), vec!["Reloaded"]);
    daemon.stop_with("INT");
}

#[test]
fn sigterm_during_a_slow_write_lets_it_finish_records_it_and_exits_0() {
    let world = world();
    world.wav("audio/sunrise.wav", 330.0);
    world.manifest(&format!(
        "{}  - key: sunrise\n    file: audio/sunrise.wav\n    title: Sunrise\n",
        body(NEVER_DURING_A_TEST, false, "Night Drive")
            .replace("follows:\n  - soundcloud:users:2\n", "")
    ));
    // Uploads hang for a while; the first one is in flight when we stop.
    world.faults(json!([{"method": "POST", "path": "^/tracks$", "delay_ms": 2000}]));
    let mut daemon = Daemon::start(&world);
    daemon.notes.until_line("READY=1");
    let deadline = Instant::now() + PATIENCE;
    while fired(&world) == 0 {
        assert!(
            Instant::now() < deadline,
            "no upload started\n{}",
            daemon.log()
        );
        std::thread::sleep(POLL);
    }

    daemon.signal("TERM");
    let status = daemon.exit();
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    let notes = daemon.notes.drain();
    assert!(
        notes.iter().any(|n| has_line(n, "STOPPING=1")),
        "{notes:#?}"
    );
    let last = notes
        .iter()
        .rev()
        .find_map(|n| status_of(n))
        .unwrap_or_default();
    assert!(last.contains("last run interrupted"), "{notes:#?}");

    // The upload in flight finished and was recorded; the next was not sent.
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive"]
    );
    let shown = world.scsync(["status"]).expect(0).stdout();
    assert!(shown.contains("Managed:  1 tracks"), "{shown}");
    assert!(shown.contains("Last run: interrupted at "), "{shown}");
    assert!(shown.contains(" daemon interrupted"), "{shown}");

    // The next apply finishes the job, without a second copy of the first.
    clear_faults(&world);
    world.scsync(["apply", "--yes"]).expect(0);
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive", "Sunrise"]
    );
}

#[test]
fn a_second_daemon_on_the_same_state_refuses_naming_the_holder() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"));
    let mut first = Daemon::start(&world);
    assert!(first.first_run().contains("last run ok"));

    let mut second = Start::new(&world).arg("--lock-timeout").arg("1").spawn();
    let status = second.exit();
    assert_eq!(status.code(), Some(1), "{}", second.log());
    let log = second.log();
    assert!(log.contains(&format!("(pid {})", first.pid())), "{log}");
    assert!(
        log.contains("systemctl stop scsync"),
        "says what to do: {log}"
    );
    let notes = second.notes.drain();
    assert!(
        !notes.iter().any(|n| has_line(n, "READY=1")),
        "the refused daemon never says READY: {notes:#?}"
    );
    assert!(first.is_running());
    first.stop();
}

#[test]
fn apply_refuses_or_waits_while_the_daemon_holds_the_state() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"));
    let mut daemon = Daemon::start(&world);
    assert!(daemon.first_run().contains("last run ok"));

    let refused = world
        .scsync(["apply", "--yes", "--lock-timeout", "0"])
        .expect(1);
    assert!(
        refused
            .stderr()
            .contains(&format!("(pid {})", daemon.pid())),
        "{}",
        refused.stderr()
    );

    // With time to wait, apply waits for the daemon to go, then applies.
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Applied by hand"));
    let mut apply = Command::new(env!("CARGO_BIN_EXE_scsync"))
        .args(["apply", "--yes", "--lock-timeout", "600", "-c"])
        .arg(world.manifest_path())
        .arg("--state")
        .arg(world.state_path())
        .env_remove("SCSYNC_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let apply_log = collect_lines(apply.stderr.take().unwrap());
    let deadline = Instant::now() + PATIENCE;
    while !apply_log.lock().unwrap().iter().any(|l| {
        l.contains(&format!(
            "in use by pid {}; waiting up to 600 s",
            daemon.pid()
        ))
    }) {
        assert!(
            apply.try_wait().unwrap().is_none() && Instant::now() < deadline,
            "apply did not say it waits: {:?}",
            apply_log.lock().unwrap()
        );
        std::thread::sleep(POLL);
    }
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive"]
    );
    daemon.stop();
    let status = wait_exit(&mut apply, &apply_log);
    assert!(status.success(), "{:?}", apply_log.lock().unwrap());
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Applied by hand"]
    );
}

#[test]
fn a_broken_manifest_at_start_exits_1_without_ready() {
    let world = world();
    world.manifest("tracks:\n  - key: night-drive\n    file: audio/missing.wav\n    title: X\n");
    let mut daemon = Daemon::start(&world);
    let status = daemon.exit();
    assert_eq!(status.code(), Some(1), "{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("the daemon did not start"), "{log}");
    assert!(log.contains("missing.wav"), "names the problem: {log}");
    let notes = daemon.notes.drain();
    assert!(
        !notes.iter().any(|n| has_line(n, "READY=1")),
        "no READY for a manifest that does not load: {notes:#?}"
    );
    assert_eq!(world.writes(), Vec::<Value>::new());
}

#[test]
fn watchdog_usec_gives_watchdog_pings() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"));
    let mut daemon = Start::new(&world).env("WATCHDOG_USEC", "400000").spawn();
    daemon.notes.until_line("READY=1");
    // Several pings, while idle after the first run too.
    daemon.notes.until_status("last run ok");
    for _ in 0..3 {
        daemon.notes.until_line("WATCHDOG=1");
    }
    daemon.stop();
}

#[test]
fn a_schedule_every_second_never_overlaps_runs() {
    let world = world();
    world.manifest(&body("* * * * * *", false, "Night Drive"));
    // Every run reads /me slowly, so the schedule fires during each run.
    world.faults(json!([{"method": "GET", "path": "^/me$", "delay_ms": 1500}]));
    let mut daemon = Daemon::start(&world);
    daemon.notes.until_line("READY=1");
    for _ in 0..3 {
        let status = daemon.notes.until_run_end("schedule");
        assert!(status.contains("last run ok"), "{status}");
    }
    let notes = daemon.stop();
    // Every "running" is followed by its "last run" before the next one starts.
    let mut in_flight = false;
    for status in notes.iter().filter_map(|n| status_of(n)) {
        if status.starts_with("running (") {
            assert!(!in_flight, "a run started during another: {notes:#?}");
            in_flight = true;
        } else if status.starts_with("last run") {
            in_flight = false;
        }
    }
    assert_eq!(
        my_track_titles(&world.emulator_state()),
        vec!["Night Drive"]
    );
}

/// Not a check: the numbers for the issue. Run with
/// `cargo test --test integration daemon::measure -- --ignored --nocapture`.
/// Idle CPU and memory of the daemon over a minute (from /proc), and the
/// time from a manifest save to the start of the run it causes.
#[test]
#[ignore = "a measurement that takes a minute; prints numbers, asserts none"]
fn measure_idle_cost_and_save_to_run_latency() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, true, "Night Drive"));
    let mut daemon = Daemon::start(&world);
    assert!(daemon.first_run().contains("last run ok"));

    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // Fields after the command name (which may hold spaces): utime is
        // the 14th field of the line, stime the 15th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let status_kb = |pid: u32, key: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    let clk_tck = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse::<u64>()
    .unwrap();
    let pid = daemon.pid();
    let threads = status_kb(pid, "Threads:");
    let before = ticks(pid);
    let started = Instant::now();
    let mut rss = Vec::new();
    for _ in 0..12 {
        std::thread::sleep(Duration::from_secs(5)); // measuring, not synchronising
        rss.push(status_kb(pid, "VmRSS:"));
    }
    let cpu_ticks = ticks(pid) - before;
    let wall = started.elapsed().as_secs_f64();
    let cpu_s = cpu_ticks as f64 / clk_tck as f64;
    println!(
        "idle over {wall:.1} s: {cpu_ticks} ticks = {cpu_s:.3} s CPU = {:.3} % of one core; \
         VmRSS {}..{} kB, VmHWM {} kB, {threads} threads",
        100.0 * cpu_s / wall,
        rss.iter().min().unwrap(),
        rss.iter().max().unwrap(),
        status_kb(pid, "VmHWM:"),
    );

    let mut latencies = Vec::new();
    for n in 0..10 {
        let saved = Instant::now();
        world.manifest(&body(
            NEVER_DURING_A_TEST,
            true,
            &format!("Night Drive {n}"),
        ));
        daemon.notes.until_status("running (manifest change)");
        latencies.push(saved.elapsed().as_millis());
        daemon.notes.until_run_end("manifest change");
    }
    latencies.sort();
    println!(
        "manifest save to run start, 10 saves: min {} ms, median {} ms, max {} ms",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    daemon.stop();
}

/// A port nobody listens on right now (the kernel's pick, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn daemon_listen_serves_healthz_and_metrics_on_loopback() {
    let world = world();
    let port = free_port();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive").replacen(
        "daemon:\n",
        &format!("daemon:\n  listen: 127.0.0.1:{port}\n"),
        1,
    ));
    // One 429 on the first read, retried.
    world.faults(json!([{"method": "GET", "path": "^/me$", "status": 429, "times": 1}]));
    let mut daemon = Daemon::start(&world);
    assert!(daemon.first_run().contains("last run ok"));

    let base = format!("http://127.0.0.1:{port}");
    let health = reqwest::blocking::get(format!("{base}/healthz")).unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().unwrap(), "ok\n");
    let metrics = reqwest::blocking::get(format!("{base}/metrics")).unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().unwrap();
    for line in [
        "scsync_runs_total{result=\"ok\"} 1",
        "scsync_runs_total{result=\"failed\"} 0",
        "scsync_run_in_progress 0",
        "scsync_rate_limited_total 1",
        "scsync_actions_total{kind=\"track\",outcome=\"succeeded\"} 1",
        "scsync_actions_total{kind=\"follow\",outcome=\"succeeded\"} 1",
        "scsync_drift_actions{op=\"add\"} 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("scsync_last_success_timestamp_seconds 1")),
        "{text}"
    );
    let missing = reqwest::blocking::get(format!("{base}/other")).unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    daemon.stop();
}

#[test]
fn daemon_listen_on_a_non_loopback_address_is_refused_at_start() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive").replacen(
        "daemon:\n",
        "daemon:\n  listen: 0.0.0.0:9\n",
        1,
    ));
    let mut daemon = Daemon::start(&world);
    let status = daemon.exit();
    assert_eq!(status.code(), Some(1), "{}", daemon.log());
    assert!(
        daemon.log().contains("not a loopback address"),
        "{}",
        daemon.log()
    );
    let notes = daemon.notes.drain();
    assert!(!notes.iter().any(|n| has_line(n, "READY=1")), "{notes:#?}");
}

#[test]
fn a_killed_daemon_shows_in_status_and_a_new_one_takes_over() {
    let world = world();
    world.manifest(&body(NEVER_DURING_A_TEST, false, "Night Drive"));
    let mut first = Daemon::start(&world);
    assert!(first.first_run().contains("last run ok"));
    let pid = first.pid();
    first.signal("KILL");
    first.exit();

    let shown = world.scsync(["status"]).expect(0).stdout();
    assert!(
        shown.contains(&format!(
            "Daemon:   not running (pid {pid} ended without stopping cleanly)"
        )),
        "{shown}"
    );
    assert!(!shown.contains("Next run:"), "{shown}");

    // The kernel dropped its lock with it: no stale lock to clean up.
    let mut second = Daemon::start(&world);
    let status = second.first_run();
    assert!(
        status.contains("last run ok") && status.contains("no changes"),
        "{status}"
    );
    let shown = world.scsync(["status"]).expect(0).stdout();
    assert!(
        shown.contains(&format!("Daemon:   running (pid {})", second.pid())),
        "{shown}"
    );
    assert!(
        shown.contains("Drift:    none at the last check ("),
        "{shown}"
    );
    second.stop();
}
