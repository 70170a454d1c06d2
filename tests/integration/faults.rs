//! The service failing the way it does in the wild: writes that happened
//! although the answer was an error, rate limits, and secrets kept out of
//! every log line.

use serde_json::{Value, json};

use crate::support::{CLIENT_SECRET, World, base_seed};

const MANIFEST: &str = r#"
tracks:
  - key: one
    file: one.wav
    title: One
playlists:
  - key: list
    title: List
    tracks: [one, soundcloud:tracks:100]
"#;

fn world() -> World {
    let world = World::new(base_seed());
    world.wav("one.wav", 440.0).manifest(MANIFEST).login();
    world
}

fn count_mine(state: &Value, kind: &str) -> usize {
    state[kind]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["user_id"] == 1)
        .count()
}

#[test]
fn an_upload_answered_504_after_it_happened_is_adopted_not_repeated() {
    let world = world();
    world.faults(
        json!([{"method": "POST", "path": "^/tracks$", "status": 504,
                         "times": 1, "commit": true, "body": ""}]),
    );
    world.scsync(["apply", "--yes"]).expect(0);
    let state = world.emulator_state();
    assert_eq!(
        count_mine(&state, "tracks"),
        1,
        "exactly one upload: {state:#}"
    );
    let uploads = world
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/tracks")
        .count();
    assert_eq!(uploads, 1);
    // The adopted track is managed: nothing left to do.
    world.clear_requests();
    world.scsync(["apply", "--yes"]).expect(0);
    assert_eq!(world.writes(), Vec::<Value>::new());
}

#[test]
fn a_playlist_put_answered_500_after_it_happened_converges() {
    let world = world();
    world.scsync(["apply", "--yes"]).expect(0);
    world.manifest(&MANIFEST.replace("title: List", "title: List 2"));
    world.faults(
        json!([{"method": "PUT", "path": "^/playlists/", "status": 500,
                         "times": 1, "commit": true,
                         "content_type": "text/plain", "body": ""}]),
    );
    world.scsync(["apply", "--yes"]).expect(0);
    let state = world.emulator_state();
    let mine: Vec<&Value> = state["playlists"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["user_id"] == 1)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["title"], "List 2");
    // Read back, found applied: the PUT was not sent twice.
    let puts = world
        .requests()
        .iter()
        .filter(|r| r["method"] == "PUT")
        .count();
    assert_eq!(puts, 1);
}

#[test]
fn a_write_that_did_not_happen_is_sent_again_once() {
    let world = world();
    world.faults(
        json!([{"method": "POST", "path": "^/playlists$", "status": 502,
                         "times": 1, "commit": false,
                         "content_type": "text/html", "body": "<html>bad gateway</html>"}]),
    );
    world.scsync(["apply", "--yes"]).expect(0);
    assert_eq!(count_mine(&world.emulator_state(), "playlists"), 1);
}

#[test]
fn each_429_shape_is_waited_out() {
    let world = world();
    world.faults(json!([
        {"method": "POST", "path": "^/tracks$", "status": 429, "times": 1,
         "content_type": "text/plain", "body": "Please slow down."},
        {"method": "POST", "path": "^/playlists$", "status": 429, "times": 1,
         "content_type": "application/json", "body": "{\"error\": \"Rate Limit Exceeded\"}"},
        {"method": "GET", "path": "^/me$", "status": 429, "times": 1, "retry_after": 1,
         "content_type": "application/json",
         "body": "{\"code\": 429, \"message\": \"rate_limit_exceeded\"}"}
    ]));
    world.scsync(["apply", "--yes"]).expect(0);
    let state = world.emulator_state();
    assert_eq!(count_mine(&state, "tracks"), 1);
    assert_eq!(count_mine(&state, "playlists"), 1);
    let limited = world
        .requests()
        .iter()
        .filter(|r| r["status"] == 429)
        .count();
    assert_eq!(limited, 3);
}

#[test]
fn a_failed_upload_skips_the_playlist_that_needs_it_and_exits_1() {
    let world = world();
    world.faults(json!([{"method": "POST", "path": "^/tracks$", "status": 422,
                         "times": 10, "content_type": "application/json",
                         "body": "{\"code\":422,\"message\":\"unable to process provided asset_data\"}"}]));
    let out = world.scsync(["apply", "--yes"]).expect(1);
    let stderr = out.stderr();
    assert!(stderr.contains("422"), "{stderr}");
    assert!(
        stderr.contains("unable to process provided asset_data"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped: playlist list"), "{stderr}");
    assert_eq!(count_mine(&world.emulator_state(), "playlists"), 0);
}

#[test]
fn no_secret_reaches_the_logs_at_maximum_verbosity() {
    let world = world();
    let out = world
        .scsync(["apply", "--yes", "-vv"])
        .env("SCSYNC_LOG", "trace")
        .expect(0);
    let store = scsync::state::Store::open(&world.state_path()).unwrap();
    let tokens = store
        .load_tokens(scsync::state::TokenKind::User)
        .unwrap()
        .expect("tokens stored");
    let logs = format!("{}{}", out.stdout(), out.stderr());
    assert!(logs.len() > 1000, "trace logging produced output");
    assert!(
        !logs.contains(tokens.access_token.expose()),
        "access token leaked"
    );
    let refresh = tokens.refresh_token.expect("a refresh token");
    assert!(!logs.contains(refresh.expose()), "refresh token leaked");
    assert!(!logs.contains(CLIENT_SECRET), "client secret leaked");
}

#[test]
fn import_writes_a_manifest_that_adopts_what_exists() {
    let world = world();
    world.scsync(["apply", "--yes"]).expect(0);
    let out = world.path("imported.yaml");
    world
        .scsync(["import", "--output", out.to_str().unwrap()])
        .expect(0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("adopt: soundcloud:tracks:"), "{text}");
    assert!(text.contains("title: \"One\""), "{text}");
    assert!(text.contains("- soundcloud:tracks:100"), "{text}");
    // It is a valid manifest.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_scsync"))
        .args(["validate", "-c"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn an_ambiguous_upload_holds_its_key_back_until_the_manifest_adopts_one() {
    // The account already has an unmanaged track titled "One", uploaded
    // just now (from the web app, say): read back, it matches as well.
    let now = chrono::Utc::now()
        .format("%Y/%m/%d %H:%M:%S +0000")
        .to_string();
    let mut seed = base_seed();
    seed["tracks"].as_array_mut().unwrap().push(json!({
        "id": 900, "user_id": 1, "title": "One", "permalink": "one-old",
        "access": "playable", "sharing": "public", "created_at": now}));
    let world = World::new(seed);
    world.wav("one.wav", 440.0).manifest(MANIFEST).login();
    world.faults(
        json!([{"method": "POST", "path": "^/tracks$", "status": 504,
                         "times": 1, "commit": true, "body": ""}]),
    );
    let out = world.scsync(["apply", "--yes"]).expect(1);
    assert!(out.stderr().contains("several objects"), "{}", out.stderr());
    assert_eq!(count_mine(&world.emulator_state(), "tracks"), 2);

    // Not a third copy: the key is held back, nothing is sent.
    world.clear_requests();
    let out = world.scsync(["apply", "--yes"]).expect(1);
    assert!(out.stderr().contains("adopt: URN"), "{}", out.stderr());
    assert_eq!(world.writes(), Vec::<Value>::new());

    // The user picks one; the run goes on.
    world.manifest(&MANIFEST.replace(
        "    title: One\n",
        "    title: One\n    adopt: soundcloud:tracks:900\n",
    ));
    world.scsync(["apply", "--yes"]).expect(0);
    assert_eq!(count_mine(&world.emulator_state(), "tracks"), 2);
    world.clear_requests();
    world.scsync(["apply", "--yes"]).expect(0);
    assert_eq!(world.writes(), Vec::<Value>::new());
}
