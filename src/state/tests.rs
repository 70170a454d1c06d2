use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::*;
use crate::model::{ManagedItem, ManagedKind, Urn};

fn tmp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state/state.db")).unwrap();
    (dir, store)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn track(key: &str, id: u64, sha: Option<&str>) -> ManagedItem {
    ManagedItem {
        kind: ManagedKind::Track,
        key: key.to_owned(),
        urn: Urn::track(id),
        audio_sha256: sha.map(str::to_owned),
    }
}

fn upload_intent(key: &str) -> NewIntent {
    NewIntent {
        op: Op::Add,
        kind: ActionKind::Track,
        key: key.to_owned(),
        title_hint: Some(format!("Title of {key}")),
        permalink_hint: None,
        action_json: format!(r#"{{"op":"add","kind":"track","key":"{key}"}}"#),
        request_digest: format!("sha256:{key}"),
    }
}

fn raw(store: &Store) -> MutexGuard<'_, Connection> {
    store.conn()
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn a_new_database_is_private_migrated_and_reopens_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new/sub/state.db");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.path(), db);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&dir.path().join("new/sub")), 0o700);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    store.set_meta("next_run", "soon").unwrap();
    // SQLite gives the WAL file the database file's permissions.
    assert_eq!(mode(&dir.path().join("new/sub/state.db-wal")), 0o600);
    {
        let conn = raw(&store);
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }
    drop(store);

    let again = Store::open(&db).unwrap();
    assert_eq!(again.meta("next_run").unwrap().as_deref(), Some("soon"));
    let version: i64 = raw(&again)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, migrations::latest_version());
}

#[test]
fn a_database_from_a_newer_scsync_is_refused_and_left_alone() {
    let (dir, store) = tmp_store();
    let future = migrations::latest_version() + 1;
    raw(&store)
        .pragma_update(None, "user_version", future)
        .unwrap();
    drop(store);

    let db = dir.path().join("state/state.db");
    let err = Store::open(&db).unwrap_err();
    match &err {
        StateError::TooNew {
            found, supported, ..
        } => {
            assert_eq!(*found, future);
            assert_eq!(*supported, migrations::latest_version());
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("newer scsync"), "{message}");
    assert!(message.contains("upgrade scsync"), "{message}");
    assert!(message.contains(&db.display().to_string()), "{message}");
    let version: i64 = Connection::open(&db)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, future);
}

#[test]
fn files_that_are_not_scsync_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE songs (id INTEGER);")
        .unwrap();
    let err = Store::open(&other).unwrap_err();
    assert!(matches!(err, StateError::NotScsync { .. }), "{err:?}");
    assert!(
        err.to_string().contains("not an scsync state database"),
        "{err}"
    );
    let journal: String = Connection::open(&other)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete", "a foreign file is not switched to WAL");

    let text = dir.path().join("scsync.yaml");
    std::fs::write(&text, "version: 1\nplaylists: []\n".repeat(20)).unwrap();
    let err = Store::open(&text).unwrap_err();
    assert!(matches!(err, StateError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("scsync.yaml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "version: 1\nplaylists: []\n".repeat(20)
    );
}

#[test]
fn tokens_round_trip_per_kind_including_long_ones() {
    let (_dir, store) = tmp_store();
    assert_eq!(store.load_tokens(TokenKind::User).unwrap(), None);

    let long_access = "a".repeat(4096);
    let user = StoredTokens {
        kind: TokenKind::User,
        access_token: Secret::new(long_access.clone()),
        refresh_token: Some(Secret::new("r".repeat(4100))),
        expires_at: 1_787_000_000,
        scope: "non-expiring".to_owned(),
    };
    let app = StoredTokens {
        kind: TokenKind::ClientCredentials,
        access_token: Secret::new("app-token"),
        refresh_token: None,
        expires_at: 1_787_000_100,
        scope: String::new(),
    };
    store.save_tokens(&user).unwrap();
    store.save_tokens(&app).unwrap();
    assert_eq!(
        store.load_tokens(TokenKind::User).unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.load_tokens(TokenKind::ClientCredentials).unwrap(),
        Some(app.clone())
    );

    // A rotation replaces both tokens at once.
    let rotated = StoredTokens {
        access_token: Secret::new("access-2"),
        refresh_token: Some(Secret::new("refresh-2")),
        expires_at: 1_787_003_600,
        ..user.clone()
    };
    store.save_tokens(&rotated).unwrap();
    assert_eq!(store.load_tokens(TokenKind::User).unwrap(), Some(rotated));

    store.clear_tokens(TokenKind::User).unwrap();
    assert_eq!(store.load_tokens(TokenKind::User).unwrap(), None);
    assert_eq!(
        store.load_tokens(TokenKind::ClientCredentials).unwrap(),
        Some(app)
    );
}

#[test]
fn token_debug_output_shows_no_secret() {
    let tokens = StoredTokens {
        kind: TokenKind::User,
        access_token: Secret::new("access-SECRET-1"),
        refresh_token: Some(Secret::new("refresh-SECRET-2")),
        expires_at: 0,
        scope: String::new(),
    };
    let shown = format!("{tokens:?} {tokens:#?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

#[test]
fn out_of_range_expiry_is_clamped_not_an_error() {
    let (_dir, store) = tmp_store();
    let mut tokens = StoredTokens {
        kind: TokenKind::User,
        access_token: Secret::new("a"),
        refresh_token: None,
        expires_at: i64::MAX,
        scope: String::new(),
    };
    store.save_tokens(&tokens).unwrap();
    let loaded = store.load_tokens(TokenKind::User).unwrap().unwrap();
    assert_eq!(loaded.expires_at, MAX_UNIX);
    tokens.expires_at = -5;
    store.save_tokens(&tokens).unwrap();
    assert_eq!(
        store
            .load_tokens(TokenKind::User)
            .unwrap()
            .unwrap()
            .expires_at,
        0
    );
}

#[test]
fn managed_items_are_upserted_by_kind_and_key_and_forgotten() {
    let (_dir, store) = tmp_store();
    let playlist = ManagedItem {
        kind: ManagedKind::Playlist,
        key: "mix".to_owned(),
        urn: Urn::playlist(200),
        audio_sha256: None,
    };
    store
        .upsert_managed(&track("tide", 100, Some("aa")), "sha256:d1")
        .unwrap();
    store.upsert_managed(&playlist, "sha256:p1").unwrap();
    store
        .upsert_managed(&track("gone", 101, Some("bb")), "sha256:d2")
        .unwrap();

    let state = store.local_state().unwrap();
    assert_eq!(
        state.managed,
        vec![
            playlist.clone(),
            track("gone", 101, Some("bb")),
            track("tide", 100, Some("aa")),
        ]
    );

    // A replaced upload: same key, new URN, new audio, new digest.
    store
        .upsert_managed(&track("tide", 102, Some("cc")), "sha256:d3")
        .unwrap();
    let records = store.managed_records().unwrap();
    let tide = records.iter().find(|r| r.item.key == "tide").unwrap();
    assert_eq!(tide.item, track("tide", 102, Some("cc")));
    assert_eq!(tide.applied_digest, "sha256:d3");
    assert_eq!(records.len(), 3);

    // A playlist and a track may share a key.
    store
        .upsert_managed(&track("mix", 103, None), "sha256:d4")
        .unwrap();
    store.forget_managed(ManagedKind::Track, "mix").unwrap();
    store.forget_managed(ManagedKind::Track, "gone").unwrap();
    store
        .forget_managed(ManagedKind::Track, "never-there")
        .unwrap();
    let keys: Vec<_> = store
        .local_state()
        .unwrap()
        .managed
        .into_iter()
        .map(|m| (m.kind, m.key))
        .collect();
    assert_eq!(
        keys,
        vec![
            (ManagedKind::Playlist, "mix".to_owned()),
            (ManagedKind::Track, "tide".to_owned()),
        ]
    );
}

#[test]
fn resolve_cache_stores_replaces_and_forgets() {
    let (_dir, store) = tmp_store();
    let url = "https://soundcloud.com/bob/tide";
    assert_eq!(store.cached_resolution(url).unwrap(), None);
    store.cache_resolution(url, Urn::track(100)).unwrap();
    store
        .cache_resolution("https://soundcloud.com/bob", Urn::user(2))
        .unwrap();
    assert_eq!(store.cached_resolution(url).unwrap(), Some(Urn::track(100)));
    store
        .cache_resolution(url, Urn::track(2_162_380_995))
        .unwrap();
    assert_eq!(
        store.cached_resolution(url).unwrap(),
        Some(Urn::track(2_162_380_995))
    );
    let resolved = store.local_state().unwrap().resolved;
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[url], Urn::track(2_162_380_995));
    store.forget_resolution(url).unwrap();
    assert_eq!(store.cached_resolution(url).unwrap(), None);
}

#[test]
fn a_run_records_intents_and_outcomes_and_finishes() {
    let (_dir, store) = tmp_store();
    let before = Utc::now();
    let run = store.begin_run("apply", "sha256:manifest").unwrap();

    let upload = store.record_intent(run, &upload_intent("tide")).unwrap();
    let follow = store
        .record_intent(
            run,
            &NewIntent {
                op: Op::Add,
                kind: ActionKind::Follow,
                key: "soundcloud:users:2".to_owned(),
                title_hint: None,
                permalink_hint: None,
                action_json: "{}".to_owned(),
                request_digest: "sha256:f".to_owned(),
            },
        )
        .unwrap();
    let like = store.record_intent(run, &upload_intent("x")).unwrap();
    let skipped = store.record_intent(run, &upload_intent("y")).unwrap();

    // This process's live run: nothing to recover.
    assert_eq!(store.open_intents().unwrap(), vec![]);
    assert_eq!(store.dead_runs().unwrap(), vec![]);

    store
        .record_outcome_with(
            upload,
            &IntentOutcome::Succeeded {
                urn: Some(Urn::track(500)),
            },
            &[ManagedChange::Upsert {
                item: track("tide", 500, Some("aa")),
                applied_digest: "sha256:applied".to_owned(),
            }],
        )
        .unwrap();
    store
        .record_outcome(follow, &IntentOutcome::Succeeded { urn: None })
        .unwrap();
    store
        .record_outcome(
            like,
            &IntentOutcome::Failed {
                error: "HTTP 422 from POST /likes/tracks/1".to_owned(),
            },
        )
        .unwrap();
    store
        .record_outcome(
            skipped,
            &IntentOutcome::Skipped {
                reason: "depends on a failed upload".to_owned(),
            },
        )
        .unwrap();

    // An outcome is recorded once; unknown ids are reported.
    assert!(matches!(
        store.record_outcome(like, &IntentOutcome::Succeeded { urn: None }),
        Err(StateError::OutcomeAlreadyRecorded(id)) if id == like
    ));
    assert!(matches!(
        store.record_outcome(IntentId(9999), &IntentOutcome::Succeeded { urn: None }),
        Err(StateError::IntentNotFound(_))
    ));

    let intents = store.run_intents(run).unwrap();
    assert_eq!(intents.len(), 4);
    let first = &intents[0];
    assert_eq!(first.id, upload);
    assert_eq!(first.run, run);
    assert_eq!((first.op, first.kind), (Op::Add, ActionKind::Track));
    assert_eq!(first.key, "tide");
    assert_eq!(first.title_hint.as_deref(), Some("Title of tide"));
    assert_eq!(first.request_digest, "sha256:tide");
    assert!(first.created_at >= before - chrono::Duration::milliseconds(1));
    assert!(first.decided_at.unwrap() >= first.created_at);
    assert_eq!(
        first.outcome,
        Some(IntentOutcome::Succeeded {
            urn: Some(Urn::track(500))
        })
    );
    assert_eq!(intents[1].kind, ActionKind::Follow);
    assert_eq!(
        intents[2].outcome,
        Some(IntentOutcome::Failed {
            error: "HTTP 422 from POST /likes/tracks/1".to_owned()
        })
    );
    assert_eq!(
        store.local_state().unwrap().managed,
        vec![track("tide", 500, Some("aa"))]
    );

    let record = store.run(run).unwrap().unwrap();
    assert_eq!(record.command, "apply");
    assert_eq!(record.manifest_digest, "sha256:manifest");
    assert_eq!(record.pid, std::process::id());
    assert!(record.this_process);
    assert_eq!(record.outcome, None);
    assert_eq!(
        record.intents,
        IntentCounts {
            open: 0,
            succeeded: 2,
            failed: 1,
            skipped: 1,
            recovered: 0
        }
    );

    let outcome = RunOutcome {
        result: RunResult::Failed,
        detail: Some("1 action failed".to_owned()),
    };
    store.finish_run(run, &outcome).unwrap();
    let record = store.run(run).unwrap().unwrap();
    assert_eq!(record.outcome, Some(outcome.clone()));
    assert!(record.finished_at.unwrap() >= record.started_at);

    assert!(matches!(
        store.finish_run(run, &outcome),
        Err(StateError::RunAlreadyFinished(r)) if r == run
    ));
    assert!(matches!(
        store.record_intent(run, &upload_intent("late")),
        Err(StateError::RunAlreadyFinished(_))
    ));
    assert!(matches!(
        store.record_intent(RunId(777), &upload_intent("nowhere")),
        Err(StateError::RunNotFound(_))
    ));
    assert!(matches!(
        store.close_dead_run(run),
        Err(StateError::RunAlreadyFinished(_))
    ));
}

#[test]
fn an_intent_left_open_in_a_finished_run_is_offered_for_recovery() {
    let (_dir, store) = tmp_store();
    let run = store.begin_run("apply", "sha256:m").unwrap();
    let intent = store.record_intent(run, &upload_intent("tide")).unwrap();
    assert_eq!(store.open_intents().unwrap(), vec![]);
    store
        .finish_run(
            run,
            &RunOutcome {
                result: RunResult::Interrupted,
                detail: None,
            },
        )
        .unwrap();
    let open = store.open_intents().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, intent);
    assert_eq!(store.run(run).unwrap().unwrap().intents.open, 1);
}

#[test]
fn a_live_run_of_this_process_cannot_be_closed_as_crashed() {
    let (_dir, store) = tmp_store();
    let run = store.begin_run("daemon", "sha256:m").unwrap();
    assert!(matches!(
        store.close_dead_run(run),
        Err(StateError::RunIsLive(r)) if r == run
    ));
    assert!(matches!(
        store.close_dead_run(RunId(4242)),
        Err(StateError::RunNotFound(_))
    ));
}

const CRASH_CHILD_ENV: &str = "SCSYNC_TEST_CRASH_CHILD";
const CRASH_MARK: &str = "SCSYNC-CHILD-WROTE";

/// Not a test on its own: started by the crash test with `CRASH_CHILD_ENV`
/// set, it plays an `apply` that dies after committing intents: one write
/// finished, one in flight. `exit` runs no destructors, so the run is never
/// finished and the connection never closed, as after a SIGKILL.
#[test]
fn child_process_that_dies_mid_run() {
    let Some(db) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    let store = Store::open(Path::new(&db)).unwrap();
    let run = store.begin_run("apply", "sha256:m").unwrap();
    let done = store.record_intent(run, &upload_intent("done")).unwrap();
    store
        .record_outcome_with(
            done,
            &IntentOutcome::Succeeded {
                urn: Some(Urn::track(1)),
            },
            &[ManagedChange::Upsert {
                item: track("done", 1, Some("11")),
                applied_digest: "sha256:d".to_owned(),
            }],
        )
        .unwrap();
    let mut in_flight = upload_intent("in-flight");
    in_flight.permalink_hint = Some("in-flight".to_owned());
    store.record_intent(run, &in_flight).unwrap();
    println!("{CRASH_MARK} run={}", run.get());
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

#[test]
fn a_run_whose_process_died_leaves_its_open_intent_for_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    // Create the file first so the child and this process share one schema.
    let store = Store::open(&db).unwrap();

    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "state::tests::child_process_that_dies_mid_run",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, &db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "child failed: {stdout}");
    assert!(stdout.contains(CRASH_MARK), "child did not run: {stdout}");
    let child_pid = child_pid_of_dead_run(&store);

    // What the next apply sees: the in-flight intent, and the dead run.
    let open = store.open_intents().unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    let in_flight = &open[0];
    assert_eq!(in_flight.key, "in-flight");
    assert_eq!(in_flight.permalink_hint.as_deref(), Some("in-flight"));
    assert_eq!(in_flight.title_hint.as_deref(), Some("Title of in-flight"));
    assert_eq!(in_flight.outcome, None);
    let dead = store.dead_runs().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, in_flight.run);
    assert!(!dead[0].this_process);
    assert_ne!(child_pid, std::process::id());
    assert_eq!(dead[0].intents.open, 1);
    assert_eq!(dead[0].intents.succeeded, 1);
    // The finished write's managed row survived the crash with its outcome.
    assert_eq!(
        store.local_state().unwrap().managed,
        vec![track("done", 1, Some("11"))]
    );

    // The run cannot be closed while its intent is unresolved.
    assert!(matches!(
        store.close_dead_run(in_flight.run),
        Err(StateError::RunHasOpenIntents { open: 1, .. })
    ));

    // Recovery finds the upload did happen and adopts it.
    store
        .record_outcome_with(
            in_flight.id,
            &IntentOutcome::Recovered {
                urn: Some(Urn::track(2)),
                applied: true,
                note: "found among the account's tracks by permalink".to_owned(),
            },
            &[ManagedChange::Upsert {
                item: track("in-flight", 2, Some("22")),
                applied_digest: "sha256:r".to_owned(),
            }],
        )
        .unwrap();
    assert_eq!(store.open_intents().unwrap(), vec![]);
    store.close_dead_run(in_flight.run).unwrap();
    assert_eq!(store.dead_runs().unwrap(), vec![]);

    let run = store.run(in_flight.run).unwrap().unwrap();
    let outcome = run.outcome.unwrap();
    assert_eq!(outcome.result, RunResult::Crashed);
    assert!(
        outcome.detail.unwrap().contains(&child_pid.to_string()),
        "the detail names the dead process"
    );
    assert_eq!(run.intents.recovered, 1);
    assert_eq!(
        store.run_intents(run.id).unwrap()[1].outcome,
        Some(IntentOutcome::Recovered {
            urn: Some(Urn::track(2)),
            applied: true,
            note: "found among the account's tracks by permalink".to_owned(),
        })
    );
    assert_eq!(store.local_state().unwrap().managed.len(), 2);
}

fn child_pid_of_dead_run(store: &Store) -> u32 {
    store.dead_runs().unwrap().first().map(|r| r.pid).unwrap()
}

#[test]
fn recent_runs_are_newest_first_and_old_history_can_be_pruned() {
    let (_dir, store) = tmp_store();
    let done = RunOutcome {
        result: RunResult::Succeeded,
        detail: None,
    };
    let mut runs = Vec::new();
    for i in 0..5 {
        let run = store.begin_run("apply", &format!("sha256:{i}")).unwrap();
        store
            .record_intent(run, &upload_intent(&format!("t{i}")))
            .unwrap();
        runs.push(run);
    }
    // Runs 0..3 finish with their intents settled; run 3 finishes with its
    // intent open; run 4 is still going.
    for &run in &runs[..3] {
        let intent = store.run_intents(run).unwrap()[0].id;
        store
            .record_outcome(intent, &IntentOutcome::Succeeded { urn: None })
            .unwrap();
        store.finish_run(run, &done).unwrap();
    }
    store.finish_run(runs[3], &done).unwrap();

    let recent: Vec<_> = store.recent_runs(3).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(recent, vec![runs[4], runs[3], runs[2]]);
    assert_eq!(store.recent_runs(0).unwrap(), vec![]);

    // Keep the newest one: runs 0..3 are old, but run 3 has an open intent.
    assert_eq!(store.prune_history(1).unwrap(), 3);
    let left: Vec<_> = store
        .recent_runs(10)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, vec![runs[4], runs[3]]);
    assert_eq!(store.run_intents(runs[0]).unwrap(), vec![]);
    assert_eq!(store.open_intents().unwrap().len(), 1);
}

#[test]
fn meta_values_are_set_replaced_and_deleted() {
    let (_dir, store) = tmp_store();
    assert_eq!(store.meta("last_error").unwrap(), None);
    store.set_meta("last_error", "HTTP 503").unwrap();
    store.set_meta("last_error", "none").unwrap();
    assert_eq!(store.meta("last_error").unwrap().as_deref(), Some("none"));
    store.delete_meta("last_error").unwrap();
    assert_eq!(store.meta("last_error").unwrap(), None);
}

#[test]
fn a_value_edited_into_nonsense_is_reported_as_corrupt() {
    let (_dir, store) = tmp_store();
    store
        .upsert_managed(&track("tide", 1, None), "sha256:x")
        .unwrap();
    raw(&store)
        .execute("UPDATE managed SET urn = 'soundcloud:tracks:abc'", [])
        .unwrap();
    let err = store.local_state().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("soundcloud:tracks:abc"), "{err}");
}

#[test]
fn two_stores_on_one_file_see_each_others_writes() {
    let (dir, writer) = tmp_store();
    let reader = Store::open(&dir.path().join("state/state.db")).unwrap();
    writer
        .cache_resolution("https://soundcloud.com/a", Urn::user(1))
        .unwrap();
    assert_eq!(
        reader
            .cached_resolution("https://soundcloud.com/a")
            .unwrap(),
        Some(Urn::user(1))
    );
}
