//! Talking to the service manager: `sd_notify` messages (READY, STATUS,
//! RELOADING, STOPPING, WATCHDOG) and the watchdog task.
//!
//! The socket comes in explicitly (`Notifier::to_socket`) or once from
//! `NOTIFY_SOCKET` (`Notifier::from_env`); nothing here reads the
//! environment later, so tests can run side by side. Message formatting is
//! sd-notify's; we send the datagram ourselves because sd-notify only knows
//! the environment variable.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// Longest STATUS= text we send; systemctl shows one line anyway.
const MAX_STATUS_CHARS: usize = 480;

/// Sends state changes to the service manager, or nowhere when there is
/// none (a shell, CI). Cheap to clone. Send failures are logged once and
/// never stop the daemon.
#[derive(Clone)]
pub struct Notifier {
    sink: Arc<Sink>,
    warned: Arc<AtomicBool>,
}

enum Sink {
    Disabled,
    Socket {
        socket: UnixDatagram,
        addr: SocketAddr,
        shown: String,
    },
    #[cfg(test)]
    Recorder(tokio::sync::mpsc::UnboundedSender<String>),
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier::with_sink(Sink::Disabled)
    }

    /// Use `$NOTIFY_SOCKET` if set (read once, now). A malformed value is
    /// logged and notifications are disabled.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Notifier::disabled(),
            Some(path) => Notifier::to_socket(&path).unwrap_or_else(|e| {
                tracing::warn!(
                    socket = %path.to_string_lossy(),
                    "NOTIFY_SOCKET is set but unusable ({e}); systemd will not hear READY or STATUS"
                );
                Notifier::disabled()
            }),
        }
    }

    /// Send to the Unix datagram socket at `path`; a leading `@` names a
    /// Linux abstract socket, as in `NOTIFY_SOCKET`.
    pub fn to_socket(path: &OsStr) -> io::Result<Notifier> {
        let bytes = path.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None if bytes.starts_with(b"/") => SocketAddr::from_pathname(path)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the socket must be an absolute path or start with @",
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        // Never stall the runtime on a full manager queue; a dropped STATUS
        // is harmless and the next one replaces it.
        socket.set_nonblocking(true)?;
        Ok(Notifier::with_sink(Sink::Socket {
            socket,
            addr,
            shown: path.to_string_lossy().into_owned(),
        }))
    }

    #[cfg(test)]
    pub(crate) fn recorder() -> (Notifier, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Notifier::with_sink(Sink::Recorder(tx)), rx)
    }

    fn with_sink(sink: Sink) -> Notifier {
        Notifier {
            sink: Arc::new(sink),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        !matches!(*self.sink, Sink::Disabled)
    }

    /// Send one datagram with these states, one `KEY=VALUE` line each.
    pub fn send(&self, states: &[NotifyState<'_>]) {
        if !self.is_enabled() {
            return;
        }
        let mut message = String::new();
        for state in states {
            let line = match state {
                NotifyState::Status(text) => format!("STATUS={}", one_line(text)),
                other => other.to_string(),
            };
            message.push_str(&line);
            message.push('\n');
        }
        if let Err(e) = self.deliver(message)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("could not notify the service manager ({e}); carrying on without it");
        }
    }

    fn deliver(&self, message: String) -> io::Result<()> {
        match &*self.sink {
            Sink::Disabled => Ok(()),
            Sink::Socket {
                socket,
                addr,
                shown,
            } => {
                let sent = socket
                    .send_to_addr(message.as_bytes(), addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("{shown}: {e}")))?;
                if sent == message.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("{shown}: short write"),
                    ))
                }
            }
            #[cfg(test)]
            Sink::Recorder(tx) => tx
                .send(message)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "recorder dropped")),
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `STATUS=...`
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `RELOADING=1` with the monotonic timestamp systemd ≥ 253 requires.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`
    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }
}

/// Status text must be one line: newlines would start new `KEY=` lines.
fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(MAX_STATUS_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// The watchdog interval systemd asked for (`WatchdogSec=` →
/// `WATCHDOG_USEC`, for this pid), read once.
pub fn watchdog_from_env() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// When the daemon's main loop last showed it was alive. The loop beats
/// while idle and while it waits on a run; a loop stuck on a blocked thread
/// stops beating, the watchdog stops pinging, and systemd restarts us.
#[derive(Clone)]
pub struct Heartbeat(Arc<watch::Sender<Instant>>);

impl Heartbeat {
    pub fn new() -> Heartbeat {
        Heartbeat(Arc::new(watch::Sender::new(Instant::now())))
    }

    pub fn beat(&self) {
        self.0.send_replace(Instant::now());
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        Instant::now().saturating_duration_since(*self.0.borrow())
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat::new()
    }
}

/// Ping `WATCHDOG=1` every half `interval` while the heartbeat is younger
/// than `interval`; otherwise withhold the ping (say so once in STATUS and
/// the log) so systemd restarts the wedged daemon.
pub(crate) fn spawn_watchdog(
    notifier: Notifier,
    heartbeat: Heartbeat,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval / 2);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut withholding = false;
        loop {
            ticker.tick().await;
            let age = heartbeat.age();
            if age < interval {
                if withholding {
                    tracing::warn!("the main loop is responsive again; watchdog pings resume");
                    withholding = false;
                }
                notifier.watchdog();
            } else if !withholding {
                withholding = true;
                let text = format!(
                    "main loop unresponsive for {}s; withholding the watchdog ping so systemd restarts scsync",
                    age.as_secs()
                );
                tracing::error!("{text}");
                notifier.status(&text);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_datagram_socket_in_the_sd_notify_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::to_socket(path.as_os_str()).unwrap();
        assert!(notifier.is_enabled());

        notifier.ready("idle; next run 12:15Z");
        notifier.status("line one\nline two");
        notifier.stopping("stopping");
        notifier.watchdog();
        notifier.reloading();

        let mut buf = [0u8; 1024];
        let mut next = || {
            let n = manager.recv(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!(next(), "READY=1\nSTATUS=idle; next run 12:15Z\n");
        assert_eq!(
            next(),
            "STATUS=line one line two\n",
            "status is kept to one line"
        );
        assert_eq!(next(), "STOPPING=1\nSTATUS=stopping\n");
        assert_eq!(next(), "WATCHDOG=1\n");
        let reloading = next();
        assert!(
            reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{reloading}"
        );
        let usec = reloading
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("MONOTONIC_USEC=");
        assert!(usec.parse::<u64>().unwrap() > 0, "{reloading}");
    }

    #[test]
    fn abstract_sockets_are_named_with_an_at_sign() {
        let name = format!("scsync-test-{}-{}", std::process::id(), line!());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        let notifier = Notifier::to_socket(OsStr::new(&format!("@{name}"))).unwrap();
        notifier.ready("up");
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up\n");
    }

    #[test]
    fn a_relative_socket_path_is_refused_and_a_dead_one_does_not_panic() {
        assert!(Notifier::to_socket(OsStr::new("relative.sock")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let gone = Notifier::to_socket(dir.path().join("nobody-listens").as_os_str()).unwrap();
        gone.ready("up"); // logged, not fatal
        gone.ready("up again");
    }

    #[test]
    fn long_status_is_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_STATUS_CHARS + 10);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), MAX_STATUS_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_pings_while_the_heartbeat_is_fresh_and_withholds_when_stale() {
        let (notifier, mut sent) = Notifier::recorder();
        let heartbeat = Heartbeat::new();
        let interval = Duration::from_secs(20);
        let task = spawn_watchdog(notifier, heartbeat.clone(), interval);

        // Fresh at 0 s and 10 s (the interval's first tick fires at once).
        assert_eq!(sent.recv().await.unwrap(), "WATCHDOG=1\n");
        assert_eq!(heartbeat.age(), Duration::ZERO);
        assert_eq!(sent.recv().await.unwrap(), "WATCHDOG=1\n");
        assert_eq!(heartbeat.age(), Duration::from_secs(10));
        // At 20 s the beat is as old as the interval: no ping, one status.
        let status = sent.recv().await.unwrap();
        assert!(
            status.starts_with("STATUS=main loop unresponsive for 20s"),
            "{status}"
        );
        assert_eq!(heartbeat.age(), Duration::from_secs(20));
        // A beat brings the pings back at the next tick.
        heartbeat.beat();
        assert_eq!(sent.recv().await.unwrap(), "WATCHDOG=1\n");
        assert_eq!(heartbeat.age(), Duration::from_secs(10));
        task.abort();
    }

    /// The unit files shipped in `systemd/`.
    mod units {
        use std::path::{Path, PathBuf};
        use std::process::Command;

        const SERVICES: [&str; 3] = ["scsync.service", "scsync@.service", "scsync-plan.service"];
        const MAX_EXPOSURE: f64 = 2.5;

        fn unit_dir() -> PathBuf {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd")
        }

        fn read(unit: &str) -> String {
            std::fs::read_to_string(unit_dir().join(unit)).unwrap()
        }

        fn directive<'a>(text: &'a str, key: &str) -> Option<&'a str> {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        }

        fn seconds(value: &str) -> u64 {
            let value = value.trim();
            if let Some(min) = value.strip_suffix("min") {
                min.parse::<u64>().unwrap() * 60
            } else {
                value.trim_end_matches('s').parse().unwrap()
            }
        }

        #[test]
        fn the_daemon_units_carry_what_the_daemon_relies_on() {
            for unit in ["scsync.service", "scsync@.service"] {
                let text = read(unit);
                for (key, want) in [
                    ("Type", "notify"),
                    ("Restart", "on-failure"),
                    ("ExecReload", "/bin/kill -HUP $MAINPID"),
                    ("DynamicUser", "yes"),
                ] {
                    assert_eq!(directive(&text, key), Some(want), "{unit}: {key}");
                }
                for key in [
                    "WatchdogSec",
                    "StartLimitIntervalSec",
                    "StartLimitBurst",
                    "StateDirectory",
                    "LoadCredential",
                ] {
                    assert!(directive(&text, key).is_some(), "{unit} sets {key}");
                }
                let exec = directive(&text, "ExecStart").unwrap();
                assert!(
                    exec.starts_with("/usr/local/bin/scsync daemon -c /etc/scsync/"),
                    "{unit}: {exec}"
                );
                // systemd must not SIGKILL a stop the daemon is still allowed to finish.
                let stop_timeout = seconds(directive(&text, "TimeoutStopSec").unwrap());
                let grace = crate::daemon::Options::new(PathBuf::new())
                    .stop_grace
                    .as_secs();
                assert!(
                    stop_timeout > grace,
                    "{unit}: TimeoutStopSec {stop_timeout}s > grace {grace}s"
                );
            }
            let template = read("scsync@.service");
            assert_eq!(directive(&template, "StateDirectory"), Some("scsync/%i"));
            assert!(
                directive(&template, "ExecStart")
                    .unwrap()
                    .ends_with("/etc/scsync/%i.yaml")
            );
        }

        fn on_path(tool: &str) -> Option<PathBuf> {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join(tool))
                .find(|path| path.is_file())
        }

        /// `systemd-analyze verify` insists that ExecStart= exists, so check
        /// copies whose binary path points at a stand-in script.
        fn staged_units() -> (tempfile::TempDir, Vec<PathBuf>) {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let stand_in = dir.path().join("scsync");
            std::fs::write(&stand_in, "#!/bin/sh\nexit 0\n").unwrap();
            std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
            let mut staged = Vec::new();
            for unit in SERVICES.iter().chain(&["scsync-plan.timer"]) {
                let text = read(unit).replace("/usr/local/bin/scsync", stand_in.to_str().unwrap());
                // A template is checked as one of its instances.
                let name = unit.replace("@.", "@example.");
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                staged.push(path);
            }
            (dir, staged)
        }

        #[test]
        fn units_verify_and_expose_at_most_2_5() {
            let Some(analyze) = on_path("systemd-analyze") else {
                eprintln!("note: systemd-analyze is not installed; unit verification skipped");
                return;
            };
            let help = Command::new(&analyze).arg("--help").output().unwrap();
            if !String::from_utf8_lossy(&help.stdout).contains("--offline") {
                eprintln!("note: this systemd-analyze has no --offline; unit verification skipped");
                return;
            }
            let (dir, staged) = staged_units();

            let verify = Command::new(&analyze)
                .arg("verify")
                .args(&staged)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                verify.status.success() && verify.stderr.is_empty(),
                "systemd-analyze verify: {}{}",
                String::from_utf8_lossy(&verify.stdout),
                String::from_utf8_lossy(&verify.stderr)
            );

            for unit in staged
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "service"))
            {
                let out = Command::new(&analyze)
                    .args(["security", "--offline=true", "--no-pager"])
                    .arg(unit)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                let score: f64 = text
                    .lines()
                    .find_map(|line| {
                        line.split_once("Overall exposure level for ")?
                            .1
                            .split_once(": ")?
                            .1
                            .split_whitespace()
                            .next()?
                            .parse()
                            .ok()
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "no exposure score for {}: {text}{}",
                            unit.display(),
                            String::from_utf8_lossy(&out.stderr)
                        )
                    });
                eprintln!("{}: exposure {score}", unit.display());
                assert!(
                    score <= MAX_EXPOSURE,
                    "{}: exposure {score} > {MAX_EXPOSURE}",
                    unit.display()
                );
            }
        }
    }
}
