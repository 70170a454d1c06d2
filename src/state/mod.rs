//! The state database: the only code in scsync that speaks SQL.
//!
//! One SQLite file per account holds the login tokens, the manifest keys of
//! everything scsync created or adopted (with a digest of what was last
//! applied), the resolve cache, a journal of runs and of every write (intent
//! committed before the request, outcome after), and a little key/value
//! metadata for the daemon's status. The schema is versioned by
//! `PRAGMA user_version` (see `migrations.rs`).
//!
//! Crash recovery rests on two rules: an intent is committed (and synced)
//! before its request is sent, and an intent without an outcome whose run is
//! not live in this process is the trace of a write that may or may not have
//! happened ([`Store::open_intents`]). One process at a time writes a
//! database ([`lock`]), so "not this process" means "dead".

mod lock;
mod migrations;
mod paths;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use migrations::Migrated;

use crate::model::{LocalState, ManagedItem, ManagedKind, Urn};
use crate::plan::{ActionKind, Op};
use crate::secret::Secret;

pub use lock::{LockError, StateLock, lock, refresh_lock};
pub use paths::{default_path, default_path_from};

/// How long a statement waits for another connection's write to finish
/// (a `status` reading while the daemon writes, say) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "cannot decide where to keep the state database: none of STATE_DIRECTORY, \
         XDG_STATE_HOME or HOME is set; pass --state PATH"
    )]
    NoDefaultPath,
    #[error("cannot create the state directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the state database {}: {source}", path.display())]
    CreateFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot open the state database {}: {source}; check that the path names an \
         scsync state file you can read and write",
        path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{} is an SQLite database but not an scsync state database; point --state at \
         another file",
        path.display()
    )]
    NotScsync { path: PathBuf },
    #[error(
        "the state database {} has schema version {found}, written by a newer scsync \
         (this one understands up to version {supported}); upgrade scsync, or point \
         --state at another file",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "cannot upgrade the state database {} to schema version {supported}: {source}; \
         the file was left as it was",
        path.display()
    )]
    Migrate {
        path: PathBuf,
        supported: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database {}: {doing} failed: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the state database {} holds {what}, which scsync cannot read; was it edited by hand?",
        path.display()
    )]
    Corrupt { path: PathBuf, what: String },
    #[error("run {0} is not in the state database")]
    RunNotFound(RunId),
    #[error("run {0} is already finished")]
    RunAlreadyFinished(RunId),
    #[error("run {0} belongs to this process; only a dead run can be closed as crashed")]
    RunIsLive(RunId),
    #[error("run {run} still has {open} intent(s) without an outcome; resolve them first")]
    RunHasOpenIntents { run: RunId, open: usize },
    #[error("intent {0} is not in the journal")]
    IntentNotFound(IntentId),
    #[error("intent {0} already has an outcome; an outcome is recorded once")]
    OutcomeAlreadyRecorded(IntentId),
}

/// Which token a row holds: the signed-in user's, or the app's own
/// client-credentials token used for public reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    User,
    ClientCredentials,
}

/// Tokens as stored. `Debug` shows only placeholders for the secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTokens {
    pub kind: TokenKind,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds. Stored as RFC 3339 text; values outside years
    /// 1970..=9999 are clamped into that range.
    pub expires_at: i64,
    pub scope: String,
}

/// A managed item with what the state knows about its last apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedRecord {
    pub item: ManagedItem,
    pub applied_digest: String,
    pub updated_at: DateTime<Utc>,
}

/// A change to the managed set committed together with an intent's outcome
/// ([`Store::record_outcome_with`]), so a crash cannot leave one without the
/// other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedChange {
    Upsert {
        item: ManagedItem,
        applied_digest: String,
    },
    Forget {
        kind: ManagedKind,
        key: String,
    },
}

/// A run's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(i64);

impl RunId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An intent's row id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IntentId(i64);

impl IntentId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunResult {
    Succeeded,
    /// At least one action failed, or the run stopped on an error.
    Failed,
    /// Stopped by a signal after recording the request in flight.
    Interrupted,
    /// The process died; set by a later run through [`Store::close_dead_run`].
    Crashed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    pub result: RunResult,
    /// A one-line summary or the error, for `status`.
    pub detail: Option<String>,
}

/// How many of a run's intents ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntentCounts {
    pub open: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub recovered: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub id: RunId,
    pub command: String,
    pub manifest_digest: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `None` while unfinished.
    pub outcome: Option<RunOutcome>,
    /// Begun by this process (and so live if unfinished).
    pub this_process: bool,
    pub intents: IntentCounts,
}

/// A write about to be sent, as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIntent {
    pub op: Op,
    pub kind: ActionKind,
    /// The manifest key, or the URN for follows and likes.
    pub key: String,
    /// What a recovering run looks for among the account's tracks or
    /// playlists when a create may have happened.
    pub title_hint: Option<String>,
    pub permalink_hint: Option<String>,
    /// The plan action, serialised by the applier.
    pub action_json: String,
    pub request_digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntentOutcome {
    Succeeded {
        urn: Option<Urn>,
    },
    Failed {
        error: String,
    },
    Skipped {
        reason: String,
    },
    /// Settled by a later run after a crash, by reading the account:
    /// `applied` says whether the write had in fact happened.
    Recovered {
        urn: Option<Urn>,
        applied: bool,
        note: String,
    },
}

/// A journal entry. `outcome` is `None` while the write's fate is unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentRecord {
    pub id: IntentId,
    pub run: RunId,
    /// When the intent was committed, before the request went out.
    pub created_at: DateTime<Utc>,
    pub op: Op,
    pub kind: ActionKind,
    pub key: String,
    pub title_hint: Option<String>,
    pub permalink_hint: Option<String>,
    pub action_json: String,
    pub request_digest: String,
    pub outcome: Option<IntentOutcome>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// The state database. Cheap to share (`Arc<Store>`); every call is a short
/// piece of local SQLite work behind a mutex.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Names this process in the runs it begins: the pid alone could be reused by
/// a later process (after a reboot) and make a dead run look live.
fn this_process() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{}-{:016x}", std::process::id(), rand::random::<u64>()))
}

impl Store {
    /// Opens (creating if needed) the state database at `path` and brings its
    /// schema up to date. A new parent directory is created 0700 and a new
    /// file 0600.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        paths::create_private_file(path)?;
        let open_err = |source| StateError::Open {
            path: path.to_owned(),
            source,
        };
        // No CREATE flag: the file exists now, with our permissions.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        let supported = migrations::latest_version();
        // Refuse before switching to WAL, which would rewrite the header of
        // a file that is not ours to change. (`migrate` checks again inside
        // its transaction.)
        if let Some(refused) = migrations::refusal(&conn).map_err(open_err)? {
            return Err(Store::refused(path, refused, supported));
        }
        // WAL lets `status` and `plan` read while a daemon writes.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                path = %path.display(),
                journal_mode = %mode,
                "the state database could not switch to WAL; concurrent readers will wait on writers"
            );
        }
        // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on a
        // power cut, and a lost intent would mean a duplicate upload. The cost
        // is one fsync per commit, small next to a network round trip.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;

        let migrate_err = |source| StateError::Migrate {
            path: path.to_owned(),
            supported,
            source,
        };
        match migrations::migrate(&mut conn).map_err(migrate_err)? {
            Migrated::UpTo { .. } => Ok(Store {
                path: path.to_owned(),
                conn: Mutex::new(conn),
            }),
            refused => Err(Store::refused(path, refused, supported)),
        }
    }

    fn refused(path: &Path, why: Migrated, supported: i64) -> StateError {
        match why {
            Migrated::TooNew { found } => StateError::TooNew {
                path: path.to_owned(),
                found,
                supported,
            },
            Migrated::NotScsync | Migrated::UpTo { .. } => StateError::NotScsync {
                path: path.to_owned(),
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the guard leaves no half-done
        // transaction behind (rusqlite rolls back on drop), so carry on.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn sql(&self, doing: &'static str) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        move |source| StateError::Sqlite {
            path: self.path.clone(),
            doing,
            source,
        }
    }

    fn corrupt(&self, what: impl Into<String>) -> StateError {
        StateError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    // ---- tokens ----

    pub fn load_tokens(&self, kind: TokenKind) -> Result<Option<StoredTokens>, StateError> {
        let err = self.sql("reading tokens");
        let row = self
            .conn()
            .query_row(
                "SELECT access_token, refresh_token, expires_at, scope FROM tokens WHERE kind = ?1",
                [token_kind_text(kind)],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(err)?;
        let Some((access, refresh, expires_at, scope)) = row else {
            return Ok(None);
        };
        let expires_at = self.timestamp(&expires_at)?.timestamp();
        Ok(Some(StoredTokens {
            kind,
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            expires_at,
            scope,
        }))
    }

    /// Replaces the tokens of `tokens.kind`: access and refresh token are
    /// committed together, so a rotated refresh token is never half-saved.
    pub fn save_tokens(&self, tokens: &StoredTokens) -> Result<(), StateError> {
        let expires_at = DateTime::from_timestamp(tokens.expires_at.clamp(0, MAX_UNIX), 0)
            .unwrap_or(DateTime::UNIX_EPOCH);
        self.conn()
            .execute(
                "INSERT INTO tokens (kind, access_token, refresh_token, expires_at, scope, saved_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (kind) DO UPDATE SET
                     access_token = excluded.access_token,
                     refresh_token = excluded.refresh_token,
                     expires_at = excluded.expires_at,
                     scope = excluded.scope,
                     saved_at = excluded.saved_at",
                params![
                    token_kind_text(tokens.kind),
                    tokens.access_token.expose(),
                    tokens.refresh_token.as_ref().map(Secret::expose),
                    timestamp_text(expires_at),
                    tokens.scope,
                    now_text(),
                ],
            )
            .map_err(self.sql("saving tokens"))?;
        Ok(())
    }

    /// Forgets the tokens of one kind (logout forgets the user's; the
    /// client-credentials token is the app's and costly to fetch again).
    pub fn clear_tokens(&self, kind: TokenKind) -> Result<(), StateError> {
        self.conn()
            .execute(
                "DELETE FROM tokens WHERE kind = ?1",
                [token_kind_text(kind)],
            )
            .map_err(self.sql("deleting tokens"))?;
        Ok(())
    }

    // ---- managed objects and the resolve cache ----

    /// What the planner needs: the managed items (by kind, then key) and the
    /// resolve cache.
    pub fn local_state(&self) -> Result<LocalState, StateError> {
        let managed = self
            .managed_records()?
            .into_iter()
            .map(|record| record.item)
            .collect();
        let rows: Vec<(String, String)> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached("SELECT url, urn FROM resolve_cache")
                .map_err(self.sql("reading the resolve cache"))?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(self.sql("reading the resolve cache"))?
        };
        let mut resolved = std::collections::BTreeMap::new();
        for (url, urn) in rows {
            resolved.insert(url, self.urn(&urn)?);
        }
        Ok(LocalState { managed, resolved })
    }

    /// Every managed item with its applied digest, by kind then key.
    pub fn managed_records(&self) -> Result<Vec<ManagedRecord>, StateError> {
        type Row = (String, String, String, String, Option<String>, String);
        let rows: Vec<Row> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT kind, key, urn, applied_digest, audio_sha256, updated_at
                     FROM managed ORDER BY kind, key",
                )
                .map_err(self.sql("reading managed items"))?;
            stmt.query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(self.sql("reading managed items"))?
        };
        rows.into_iter()
            .map(
                |(kind, key, urn, applied_digest, audio_sha256, updated_at)| {
                    Ok(ManagedRecord {
                        item: ManagedItem {
                            kind: self.managed_kind(&kind)?,
                            key,
                            urn: self.urn(&urn)?,
                            audio_sha256,
                        },
                        applied_digest,
                        updated_at: self.timestamp(&updated_at)?,
                    })
                },
            )
            .collect()
    }

    /// Records (or replaces) the item under its kind and key, exactly as
    /// given: a `None` audio hash is stored as `None`.
    pub fn upsert_managed(
        &self,
        item: &ManagedItem,
        applied_digest: &str,
    ) -> Result<(), StateError> {
        upsert_managed(&self.conn(), item, applied_digest)
            .map_err(self.sql("saving a managed item"))
    }

    /// Stops managing an item; a no-op if it was not managed.
    pub fn forget_managed(&self, kind: ManagedKind, key: &str) -> Result<(), StateError> {
        forget_managed(&self.conn(), kind, key).map_err(self.sql("forgetting a managed item"))
    }

    pub fn cached_resolution(&self, url: &str) -> Result<Option<Urn>, StateError> {
        let urn: Option<String> = self
            .conn()
            .query_row(
                "SELECT urn FROM resolve_cache WHERE url = ?1",
                [url],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sql("reading the resolve cache"))?;
        urn.map(|u| self.urn(&u)).transpose()
    }

    pub fn cache_resolution(&self, url: &str, urn: Urn) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO resolve_cache (url, urn, resolved_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (url) DO UPDATE SET urn = excluded.urn, resolved_at = excluded.resolved_at",
                params![url, urn.to_string(), now_text()],
            )
            .map_err(self.sql("saving to the resolve cache"))?;
        Ok(())
    }

    /// Drops a cached resolution (the URL now names something else, or
    /// nothing).
    pub fn forget_resolution(&self, url: &str) -> Result<(), StateError> {
        self.conn()
            .execute("DELETE FROM resolve_cache WHERE url = ?1", [url])
            .map_err(self.sql("deleting from the resolve cache"))?;
        Ok(())
    }

    // ---- runs and the journal ----

    /// Starts a run, recording this process's pid and the start time.
    pub fn begin_run(&self, command: &str, manifest_digest: &str) -> Result<RunId, StateError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO runs (command, manifest_digest, pid, process, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                command,
                manifest_digest,
                std::process::id(),
                this_process(),
                now_text()
            ],
        )
        .map_err(self.sql("starting a run"))?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    pub fn finish_run(&self, run: RunId, outcome: &RunOutcome) -> Result<(), StateError> {
        let mut conn = self.conn();
        let err = self.sql("finishing a run");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        self.require_unfinished(&tx, run)?;
        tx.execute(
            "UPDATE runs SET finished_at = ?2, result = ?3, detail = ?4 WHERE id = ?1",
            params![
                run.0,
                now_text(),
                run_result_text(outcome.result),
                outcome.detail
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Commits the intent of a write; call it before sending the request.
    /// The commit is synced to disk when this returns.
    pub fn record_intent(&self, run: RunId, intent: &NewIntent) -> Result<IntentId, StateError> {
        let mut conn = self.conn();
        let err = self.sql("recording an intent");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        self.require_unfinished(&tx, run)?;
        tx.execute(
            "INSERT INTO intents (run_id, created_at, op, kind, key, title_hint, permalink_hint,
                                  action_json, request_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                run.0,
                now_text(),
                intent.op.as_str(),
                intent.kind.as_str(),
                intent.key,
                intent.title_hint,
                intent.permalink_hint,
                intent.action_json,
                intent.request_digest,
            ],
        )
        .map_err(&err)?;
        let id = IntentId(tx.last_insert_rowid());
        tx.commit().map_err(&err)?;
        Ok(id)
    }

    /// Records what became of an intent's write. An outcome is recorded once.
    pub fn record_outcome(
        &self,
        intent: IntentId,
        outcome: &IntentOutcome,
    ) -> Result<(), StateError> {
        self.record_outcome_with(intent, outcome, &[])
    }

    /// Records an outcome and the managed-set changes it implies in one
    /// transaction (an upload's new URN and its key, say), so that a crash
    /// can never leave a succeeded intent without its managed row.
    pub fn record_outcome_with(
        &self,
        intent: IntentId,
        outcome: &IntentOutcome,
        changes: &[ManagedChange],
    ) -> Result<(), StateError> {
        let mut conn = self.conn();
        let err = self.sql("recording an outcome");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let (name, urn, applied, detail) = match outcome {
            IntentOutcome::Succeeded { urn } => ("succeeded", *urn, None, None),
            IntentOutcome::Failed { error } => ("failed", None, None, Some(error.as_str())),
            IntentOutcome::Skipped { reason } => ("skipped", None, None, Some(reason.as_str())),
            IntentOutcome::Recovered { urn, applied, note } => {
                ("recovered", *urn, Some(*applied), Some(note.as_str()))
            }
        };
        let updated = tx
            .execute(
                "UPDATE intents
                 SET outcome = ?2, outcome_urn = ?3, outcome_applied = ?4, outcome_detail = ?5,
                     decided_at = ?6
                 WHERE id = ?1 AND outcome IS NULL",
                params![
                    intent.0,
                    name,
                    urn.map(|u| u.to_string()),
                    applied,
                    detail,
                    now_text()
                ],
            )
            .map_err(&err)?;
        if updated == 0 {
            let exists: bool = tx
                .query_row(
                    "SELECT count(*) > 0 FROM intents WHERE id = ?1",
                    [intent.0],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            return Err(if exists {
                StateError::OutcomeAlreadyRecorded(intent)
            } else {
                StateError::IntentNotFound(intent)
            });
        }
        for change in changes {
            match change {
                ManagedChange::Upsert {
                    item,
                    applied_digest,
                } => upsert_managed(&tx, item, applied_digest),
                ManagedChange::Forget { kind, key } => forget_managed(&tx, *kind, key),
            }
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }

    /// Intents whose write may or may not have happened: no outcome, and
    /// their run is not live in this process (it was begun by another, now
    /// dead, process, or it finished without recording this outcome).
    /// Oldest first. Call it while holding the [`lock`].
    pub fn open_intents(&self) -> Result<Vec<IntentRecord>, StateError> {
        self.intents_where(
            "i.outcome IS NULL AND (r.process <> ?1 OR r.finished_at IS NOT NULL)",
            params![this_process()],
        )
    }

    /// Every intent of a run, in the order they were recorded.
    pub fn run_intents(&self, run: RunId) -> Result<Vec<IntentRecord>, StateError> {
        self.intents_where("i.run_id = ?1", params![run.0])
    }

    /// Unfinished runs begun by another process: with the [`lock`] held,
    /// those processes are dead. Oldest first.
    pub fn dead_runs(&self) -> Result<Vec<RunRecord>, StateError> {
        self.runs_where(
            "r.finished_at IS NULL AND r.process <> ?1 ORDER BY r.id ASC",
            params![this_process()],
        )
    }

    /// Marks a dead run as crashed, once every intent it left open has an
    /// outcome (see [`Store::open_intents`]).
    pub fn close_dead_run(&self, run: RunId) -> Result<(), StateError> {
        let mut conn = self.conn();
        let err = self.sql("closing a dead run");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let (pid, process) = self.require_unfinished(&tx, run)?;
        if process == this_process() {
            return Err(StateError::RunIsLive(run));
        }
        let open: i64 = tx
            .query_row(
                "SELECT count(*) FROM intents WHERE run_id = ?1 AND outcome IS NULL",
                [run.0],
                |r| r.get(0),
            )
            .map_err(&err)?;
        if open > 0 {
            return Err(StateError::RunHasOpenIntents {
                run,
                open: open as usize,
            });
        }
        tx.execute(
            "UPDATE runs SET finished_at = ?2, result = ?3, detail = ?4 WHERE id = ?1",
            params![
                run.0,
                now_text(),
                run_result_text(RunResult::Crashed),
                format!("process {pid} ended without finishing this run")
            ],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    pub fn run(&self, run: RunId) -> Result<Option<RunRecord>, StateError> {
        Ok(self
            .runs_where("r.id = ?1", params![run.0])?
            .into_iter()
            .next())
    }

    /// The last `limit` runs, newest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.runs_where("1 ORDER BY r.id DESC LIMIT ?1", params![limit])
    }

    /// Deletes finished runs (and their intents) beyond the newest
    /// `keep_runs`, keeping any run that still has an open intent. Returns
    /// how many runs were deleted.
    pub fn prune_history(&self, keep_runs: usize) -> Result<usize, StateError> {
        let keep = i64::try_from(keep_runs).unwrap_or(i64::MAX);
        self.conn()
            .execute(
                "DELETE FROM runs
                 WHERE finished_at IS NOT NULL
                   AND id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT ?1)
                   AND NOT EXISTS (SELECT 1 FROM intents
                                   WHERE intents.run_id = runs.id AND outcome IS NULL)",
                [keep],
            )
            .map_err(self.sql("pruning old runs"))
    }

    // ---- meta ----

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT INTO meta (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![key, value, now_text()],
            )
            .map_err(self.sql("saving metadata"))?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        self.conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.sql("reading metadata"))
    }

    pub fn delete_meta(&self, key: &str) -> Result<(), StateError> {
        self.conn()
            .execute("DELETE FROM meta WHERE key = ?1", [key])
            .map_err(self.sql("deleting metadata"))?;
        Ok(())
    }

    // ---- helpers ----

    /// Checks the run exists and is unfinished; returns its pid and process.
    fn require_unfinished(
        &self,
        conn: &Connection,
        run: RunId,
    ) -> Result<(u32, String), StateError> {
        let row: Option<(u32, String, Option<String>)> = conn
            .query_row(
                "SELECT pid, process, finished_at FROM runs WHERE id = ?1",
                [run.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sql("reading a run"))?;
        match row {
            None => Err(StateError::RunNotFound(run)),
            Some((_, _, Some(_))) => Err(StateError::RunAlreadyFinished(run)),
            Some((pid, process, None)) => Ok((pid, process)),
        }
    }

    fn intents_where(
        &self,
        condition: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<IntentRecord>, StateError> {
        let sql = format!(
            "SELECT i.id, i.run_id, i.created_at, i.op, i.kind, i.key, i.title_hint,
                    i.permalink_hint, i.action_json, i.request_digest, i.outcome,
                    i.outcome_urn, i.outcome_applied, i.outcome_detail, i.decided_at
             FROM intents i JOIN runs r ON r.id = i.run_id
             WHERE {condition} ORDER BY i.id"
        );
        let err = self.sql("reading the journal");
        let rows: Vec<RawIntent> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
            stmt.query_map(params, |row| {
                Ok(RawIntent {
                    id: row.get(0)?,
                    run: row.get(1)?,
                    created_at: row.get(2)?,
                    op: row.get(3)?,
                    kind: row.get(4)?,
                    key: row.get(5)?,
                    title_hint: row.get(6)?,
                    permalink_hint: row.get(7)?,
                    action_json: row.get(8)?,
                    request_digest: row.get(9)?,
                    outcome: row.get(10)?,
                    outcome_urn: row.get(11)?,
                    outcome_applied: row.get(12)?,
                    outcome_detail: row.get(13)?,
                    decided_at: row.get(14)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(&err)?
        };
        rows.into_iter()
            .map(|raw| self.intent_record(raw))
            .collect()
    }

    fn intent_record(&self, raw: RawIntent) -> Result<IntentRecord, StateError> {
        let urn = raw
            .outcome_urn
            .as_deref()
            .map(|u| self.urn(u))
            .transpose()?;
        let detail = raw.outcome_detail.unwrap_or_default();
        let outcome = match raw.outcome.as_deref() {
            None => None,
            Some("succeeded") => Some(IntentOutcome::Succeeded { urn }),
            Some("failed") => Some(IntentOutcome::Failed { error: detail }),
            Some("skipped") => Some(IntentOutcome::Skipped { reason: detail }),
            Some("recovered") => Some(IntentOutcome::Recovered {
                urn,
                applied: raw.outcome_applied.unwrap_or(false),
                note: detail,
            }),
            Some(other) => return Err(self.corrupt(format!("an intent outcome {other:?}"))),
        };
        Ok(IntentRecord {
            id: IntentId(raw.id),
            run: RunId(raw.run),
            created_at: self.timestamp(&raw.created_at)?,
            op: Op::parse(&raw.op)
                .ok_or_else(|| self.corrupt(format!("an intent op {:?}", raw.op)))?,
            kind: ActionKind::parse(&raw.kind)
                .ok_or_else(|| self.corrupt(format!("an intent kind {:?}", raw.kind)))?,
            key: raw.key,
            title_hint: raw.title_hint,
            permalink_hint: raw.permalink_hint,
            action_json: raw.action_json,
            request_digest: raw.request_digest,
            outcome,
            decided_at: raw
                .decided_at
                .as_deref()
                .map(|t| self.timestamp(t))
                .transpose()?,
        })
    }

    fn runs_where(
        &self,
        condition: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<RunRecord>, StateError> {
        let sql = format!(
            "SELECT r.id, r.command, r.manifest_digest, r.pid, r.process, r.started_at,
                    r.finished_at, r.result, r.detail,
                    (SELECT count(*) FROM intents WHERE run_id = r.id AND outcome IS NULL),
                    (SELECT count(*) FROM intents WHERE run_id = r.id AND outcome = 'succeeded'),
                    (SELECT count(*) FROM intents WHERE run_id = r.id AND outcome = 'failed'),
                    (SELECT count(*) FROM intents WHERE run_id = r.id AND outcome = 'skipped'),
                    (SELECT count(*) FROM intents WHERE run_id = r.id AND outcome = 'recovered')
             FROM runs r WHERE {condition}"
        );
        let err = self.sql("reading runs");
        let rows: Vec<RawRun> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
            stmt.query_map(params, |row| {
                Ok(RawRun {
                    id: row.get(0)?,
                    command: row.get(1)?,
                    manifest_digest: row.get(2)?,
                    pid: row.get(3)?,
                    process: row.get(4)?,
                    started_at: row.get(5)?,
                    finished_at: row.get(6)?,
                    result: row.get(7)?,
                    detail: row.get(8)?,
                    counts: [
                        row.get(9)?,
                        row.get(10)?,
                        row.get(11)?,
                        row.get(12)?,
                        row.get(13)?,
                    ],
                })
            })
            .and_then(Iterator::collect)
            .map_err(&err)?
        };
        rows.into_iter().map(|raw| self.run_record(raw)).collect()
    }

    fn run_record(&self, raw: RawRun) -> Result<RunRecord, StateError> {
        let outcome = match raw.result.as_deref() {
            None => None,
            Some(text) => Some(RunOutcome {
                result: run_result_from_text(text)
                    .ok_or_else(|| self.corrupt(format!("a run result {text:?}")))?,
                detail: raw.detail,
            }),
        };
        let [open, succeeded, failed, skipped, recovered] = raw.counts.map(|n| n as usize);
        Ok(RunRecord {
            id: RunId(raw.id),
            command: raw.command,
            manifest_digest: raw.manifest_digest,
            pid: raw.pid,
            started_at: self.timestamp(&raw.started_at)?,
            finished_at: raw
                .finished_at
                .as_deref()
                .map(|t| self.timestamp(t))
                .transpose()?,
            outcome,
            this_process: raw.process == this_process(),
            intents: IntentCounts {
                open,
                succeeded,
                failed,
                skipped,
                recovered,
            },
        })
    }

    fn urn(&self, text: &str) -> Result<Urn, StateError> {
        Urn::parse(text).ok_or_else(|| self.corrupt(format!("a URN {text:?}")))
    }

    fn managed_kind(&self, text: &str) -> Result<ManagedKind, StateError> {
        match text {
            "track" => Ok(ManagedKind::Track),
            "playlist" => Ok(ManagedKind::Playlist),
            other => Err(self.corrupt(format!("a managed kind {other:?}"))),
        }
    }

    fn timestamp(&self, text: &str) -> Result<DateTime<Utc>, StateError> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.corrupt(format!("a timestamp {text:?}")))
    }
}

struct RawIntent {
    id: i64,
    run: i64,
    created_at: String,
    op: String,
    kind: String,
    key: String,
    title_hint: Option<String>,
    permalink_hint: Option<String>,
    action_json: String,
    request_digest: String,
    outcome: Option<String>,
    outcome_urn: Option<String>,
    outcome_applied: Option<bool>,
    outcome_detail: Option<String>,
    decided_at: Option<String>,
}

struct RawRun {
    id: i64,
    command: String,
    manifest_digest: String,
    pid: u32,
    process: String,
    started_at: String,
    finished_at: Option<String>,
    result: Option<String>,
    detail: Option<String>,
    counts: [u32; 5],
}

fn upsert_managed(
    conn: &Connection,
    item: &ManagedItem,
    applied_digest: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO managed (kind, key, urn, applied_digest, audio_sha256, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, key) DO UPDATE SET
             urn = excluded.urn,
             applied_digest = excluded.applied_digest,
             audio_sha256 = excluded.audio_sha256,
             updated_at = excluded.updated_at",
        params![
            managed_kind_text(item.kind),
            item.key,
            item.urn.to_string(),
            applied_digest,
            item.audio_sha256,
            now_text(),
        ],
    )?;
    Ok(())
}

fn forget_managed(conn: &Connection, kind: ManagedKind, key: &str) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM managed WHERE kind = ?1 AND key = ?2",
        params![managed_kind_text(kind), key],
    )?;
    Ok(())
}

/// 9999-12-31T23:59:59Z, the last instant RFC 3339 can write with four digits.
const MAX_UNIX: i64 = 253_402_300_799;

fn timestamp_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn now_text() -> String {
    timestamp_text(Utc::now())
}

fn token_kind_text(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::User => "user",
        TokenKind::ClientCredentials => "client_credentials",
    }
}

fn managed_kind_text(kind: ManagedKind) -> &'static str {
    match kind {
        ManagedKind::Track => "track",
        ManagedKind::Playlist => "playlist",
    }
}

fn run_result_text(result: RunResult) -> &'static str {
    match result {
        RunResult::Succeeded => "succeeded",
        RunResult::Failed => "failed",
        RunResult::Interrupted => "interrupted",
        RunResult::Crashed => "crashed",
    }
}

fn run_result_from_text(text: &str) -> Option<RunResult> {
    Some(match text {
        "succeeded" => RunResult::Succeeded,
        "failed" => RunResult::Failed,
        "interrupted" => RunResult::Interrupted,
        "crashed" => RunResult::Crashed,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
