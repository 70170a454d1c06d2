//! The schema, as an append-only list of SQL scripts keyed by `PRAGMA user_version`.
//!
//! Script N (1-based) takes a database from version N-1 to N. Never edit a
//! script that has shipped: databases in the field have already run it. Add a
//! new one at the end instead.

use rusqlite::{Connection, TransactionBehavior};

/// Each entry moves the schema one version forward. Timestamps are TEXT in
/// RFC 3339, UTC, millisecond precision (`2026-08-22T10:00:00.000Z`), so they
/// sort as text and read well in the `sqlite3` shell.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: tokens, managed objects, resolve cache, runs and the intent journal, meta.
    r#"
CREATE TABLE tokens (
    kind          TEXT PRIMARY KEY CHECK (kind IN ('user', 'client_credentials')),
    access_token  TEXT NOT NULL,
    refresh_token TEXT,
    expires_at    TEXT NOT NULL,
    scope         TEXT NOT NULL,
    saved_at      TEXT NOT NULL
) STRICT;

CREATE TABLE managed (
    kind           TEXT NOT NULL CHECK (kind IN ('track', 'playlist')),
    key            TEXT NOT NULL,
    urn            TEXT NOT NULL,
    applied_digest TEXT NOT NULL,
    audio_sha256   TEXT,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT;
CREATE INDEX managed_by_urn ON managed (urn);

CREATE TABLE resolve_cache (
    url         TEXT PRIMARY KEY,
    urn         TEXT NOT NULL,
    resolved_at TEXT NOT NULL
) STRICT;

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    command         TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    -- Which process began the run (pid plus a random number, so a reused pid
    -- after a reboot is not mistaken for the live process).
    process         TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    result          TEXT,
    detail          TEXT,
    CHECK ((finished_at IS NULL) = (result IS NULL))
) STRICT;
CREATE INDEX runs_unfinished ON runs (id) WHERE finished_at IS NULL;

CREATE TABLE intents (
    id              INTEGER PRIMARY KEY,
    run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    created_at      TEXT NOT NULL,
    op              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL,
    title_hint      TEXT,
    permalink_hint  TEXT,
    action_json     TEXT NOT NULL,
    request_digest  TEXT NOT NULL,
    -- NULL until the outcome is known; an intent with no outcome whose run
    -- is dead is what crash recovery looks at.
    outcome         TEXT,
    outcome_urn     TEXT,
    outcome_applied INTEGER,
    outcome_detail  TEXT,
    decided_at      TEXT,
    CHECK ((outcome IS NULL) = (decided_at IS NULL))
) STRICT;
CREATE INDEX intents_by_run ON intents (run_id);
CREATE INDEX intents_open ON intents (run_id) WHERE outcome IS NULL;

CREATE TABLE meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
"#,
];

/// Marks the file as scsync's (`PRAGMA application_id`), so another
/// program's SQLite file given by mistake is refused rather than altered.
pub(crate) const APPLICATION_ID: i64 = 0x5343_5359; // "SCSY"

/// The schema version this build writes.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// How a migration attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Migrated {
    /// Now at the latest version; `from` is where the file was.
    UpTo { from: i64 },
    /// The file was written by a newer scsync; nothing was touched.
    TooNew { found: i64 },
    /// Another program's SQLite database; nothing was touched.
    NotScsync,
}

/// Why this file must not be touched, if it must not: it is another
/// program's database, or a newer scsync's. Reads only.
pub(crate) fn refusal(conn: &Connection) -> rusqlite::Result<Option<Migrated>> {
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    let has_tables: bool = conn.query_row("SELECT count(*) > 0 FROM sqlite_schema", [], |row| {
        row.get(0)
    })?;
    // A brand-new file has neither; one of ours has our id.
    if app_id != APPLICATION_ID && (app_id != 0 || has_tables) {
        return Ok(Some(Migrated::NotScsync));
    }
    let found = user_version(conn)?;
    if found > latest_version() {
        return Ok(Some(Migrated::TooNew { found }));
    }
    Ok(None)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the schema to the latest version in one IMMEDIATE transaction, so
/// two processes opening a new file at once cannot both run a script, and a
/// failure part-way leaves the file at its old version.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migrated> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(refused) = refusal(&tx)? {
        return Ok(refused);
    }
    let found = user_version(&tx)?;
    if found == latest_version() {
        return Ok(Migrated::UpTo { from: found });
    }
    for script in &MIGRATIONS[found.max(0) as usize..] {
        tx.execute_batch(script)?;
    }
    // Both live in the file header and commit with the scripts.
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", latest_version())?;
    tx.commit()?;
    Ok(Migrated::UpTo { from: found })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_migrations_apply_to_an_empty_database_and_leave_it_consistent() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migrated::UpTo { from: 0 });
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(app_id, APPLICATION_ID);
        let integrity: String = conn
            .pragma_query_value(None, "integrity_check", |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let fk_problems: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_problems, 0);
        // Running again is a no-op.
        assert_eq!(
            migrate(&mut conn).unwrap(),
            Migrated::UpTo {
                from: latest_version()
            }
        );
    }

    #[test]
    fn a_failing_script_leaves_the_version_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table the first script creates last already exists (our id set
        // by hand, as if an earlier scsync had created it).
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        conn.execute_batch("CREATE TABLE meta (x INTEGER);")
            .unwrap();
        assert!(migrate(&mut conn).is_err());
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
        let tokens_exists: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'tokens'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tokens_exists, 0, "the partial script must be rolled back");
    }

    #[test]
    fn a_newer_schema_is_reported_and_not_touched() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let future = latest_version() + 3;
        conn.pragma_update(None, "user_version", future).unwrap();
        assert_eq!(
            migrate(&mut conn).unwrap(),
            Migrated::TooNew { found: future }
        );
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, future);
    }

    #[test]
    fn another_programs_database_is_left_alone() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE songs (id INTEGER);")
            .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), Migrated::NotScsync);
        let tokens_exists: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'tokens'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tokens_exists, 0);
    }
}
