//! One scsync process at a time per state database.
//!
//! The lock is an advisory `flock` (std's `File::try_lock`) on `<db>.lock`,
//! so the kernel drops it when the holder dies, however it dies: there is no
//! stale lock to clean up. The holder writes its pid into the file so that a
//! refused process can say who holds it. The file is never deleted: deleting
//! it would let two processes lock two different inodes of the same name.
//!
//! flock locks belong to an open file description, so two opens in the same
//! process also exclude each other.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::paths::{create_private_dir, with_suffix};

/// How often a waiting process checks whether the lock was released.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another scsync process{} is using this state database (it holds {}); wait for it \
         to finish, or stop it (for the daemon: `systemctl stop scsync`) and try again, or \
         use another --state",
        holder(*pid),
        path.display()
    )]
    Held { pid: Option<u32>, path: PathBuf },
    #[error(
        "another scsync process{} is refreshing the login tokens (it holds {}) and did not \
         finish in time; try again in a moment",
        holder(*pid),
        path.display()
    )]
    RefreshBusy { pid: Option<u32>, path: PathBuf },
    #[error("cannot lock {}: {source}; check that its directory is writable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

/// Held for the life of a daemon or an apply; released on drop (or when the
/// process dies).
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Best effort: clear our pid so nobody names a process that let go.
        // The lock itself goes when the file is closed right after.
        let _ = self.file.set_len(0);
    }
}

/// Takes the single-instance lock on the state database at `db_path`
/// (`<db>.lock`), waiting up to `wait` for a holder to let go (zero: try once).
pub fn lock(db_path: &Path, wait: Duration) -> Result<StateLock, LockError> {
    acquire(with_suffix(db_path, ".lock"), wait, |pid, path| {
        LockError::Held { pid, path }
    })
}

/// Takes the token-refresh lock (`<db>.refresh.lock`), so that two processes
/// sharing a database (a daemon and a `plan`, say) never spend the same
/// single-use refresh token. Hold it from re-reading the stored tokens until
/// the new ones are saved. It blocks the thread while it waits: from async
/// code, call it in `spawn_blocking`.
pub fn refresh_lock(db_path: &Path, wait: Duration) -> Result<StateLock, LockError> {
    acquire(with_suffix(db_path, ".refresh.lock"), wait, |pid, path| {
        LockError::RefreshBusy { pid, path }
    })
}

fn acquire(
    path: PathBuf,
    wait: Duration,
    held: impl Fn(Option<u32>, PathBuf) -> LockError,
) -> Result<StateLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(io_err)?;
    }
    // No truncate on open: the holder's pid must survive until we own the lock.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(held(read_pid(&mut file), path));
                }
                std::thread::sleep(POLL.min(deadline - now));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
    }
    write_pid(&mut file).map_err(io_err)?;
    Ok(StateLock { file, path })
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

/// The holder's pid, if it has written one yet.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    const CHILD_ENV: &str = "SCSYNC_TEST_LOCK_CHILD";
    const READY: &str = "SCSYNC-CHILD-LOCKED";

    /// Not a test on its own: when started by `a_lock_held_by_another_process_…`
    /// with `CHILD_ENV` set, it takes the lock, says so on stdout, and holds it
    /// until its stdin closes.
    #[test]
    fn child_process_holding_the_lock() {
        let Some(db) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let _lock = lock(Path::new(&db), Duration::ZERO).unwrap();
        println!("{READY}");
        io::stdout().flush().unwrap();
        let mut rest = Vec::new();
        io::stdin().read_to_end(&mut rest).unwrap();
    }

    struct Child {
        process: std::process::Child,
        /// Kept open (and drained at the end) so the child never writes
        /// into a closed pipe.
        stdout: io::Lines<io::BufReader<std::process::ChildStdout>>,
    }

    impl Child {
        /// Starts a copy of this test binary that holds the lock on `db`, and
        /// returns once it has it.
        fn holding_lock(db: &Path) -> Child {
            let mut process = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "state::lock::tests::child_process_holding_the_lock",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, db)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdout = io::BufReader::new(process.stdout.take().unwrap()).lines();
            // libtest prints the test's name on the same line before its output.
            loop {
                match stdout.next() {
                    Some(Ok(line)) if line.trim_end().ends_with(READY) => break,
                    Some(Ok(_)) => continue,
                    other => panic!("lock child ended before locking: {other:?}"),
                }
            }
            Child { process, stdout }
        }

        /// Closes its stdin so it lets go and exits, and waits for that.
        fn release(mut self) {
            drop(self.process.stdin.take());
            for line in self.stdout.by_ref() {
                line.unwrap();
            }
            assert!(self.process.wait().unwrap().success());
        }
    }

    #[test]
    fn a_lock_held_by_another_process_is_refused_with_its_pid_then_granted_once_released() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state.db");
        let child = Child::holding_lock(&db);
        let child_pid = child.process.id();

        let err = lock(&db, Duration::ZERO).unwrap_err();
        match &err {
            LockError::Held { pid, path } => {
                assert_eq!(*pid, Some(child_pid));
                assert_eq!(path, &tmp.path().join("state.db.lock"));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(&format!("pid {child_pid}")), "{message}");
        assert!(message.contains("state.db.lock"), "{message}");

        // A waiting lock gets it once the holder exits. The wait is only an
        // upper bound; the test proceeds as soon as the child has gone.
        let waiter = {
            let db = db.clone();
            std::thread::spawn(move || lock(&db, Duration::from_secs(60)))
        };
        child.release();
        let ours = waiter.join().unwrap().unwrap();
        let written = std::fs::read_to_string(ours.path()).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
    }

    #[test]
    fn two_locks_in_one_process_exclude_each_other_and_drop_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state.db");
        let first = lock(&db, Duration::ZERO).unwrap();
        match lock(&db, Duration::ZERO) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("state.db.lock")).unwrap(),
            ""
        );
        let _again = lock(&db, Duration::ZERO).unwrap();
    }

    #[test]
    fn the_refresh_lock_is_separate_from_the_state_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("state.db");
        let _state = lock(&db, Duration::ZERO).unwrap();
        let refresh = refresh_lock(&db, Duration::ZERO).unwrap();
        assert_eq!(refresh.path(), tmp.path().join("state.db.refresh.lock"));
        let err = refresh_lock(&db, Duration::ZERO).unwrap_err();
        assert!(matches!(err, LockError::RefreshBusy { .. }), "{err:?}");
    }

    #[test]
    fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(&tmp.path().join("state.db"), Duration::ZERO).unwrap();
        let mode = std::fs::metadata(held.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
