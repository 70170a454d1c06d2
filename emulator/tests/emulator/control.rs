//! The `/_emulator/` surface: seed, state, request log; and the library's
//! ways of running the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use sc_emulator::{BackgroundEmulator, Options, Seed};

use crate::common::*;

#[tokio::test]
async fn state_round_trips_through_seed() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    // Change something so that the dump holds derived values too.
    env.call(Method::PUT, "/me/followings/3", &token).await;
    let before = env.state().await;
    assert_eq!(before["me"], 1);
    assert_eq!(before["followings"]["1"], json!([3, 2]));
    let track = &before["tracks"][0];
    assert_eq!(track["id"], 100);
    assert_eq!(track["permalink"], "tide");
    assert_eq!(track["genre"], "Ambient");
    assert!(track["created_at"].is_string());

    env.reseed(&before).await;
    assert_eq!(env.state().await, before, "a dump seeds the same world");
    // And it also parses as the library's Seed type.
    let seed: Seed = serde_json::from_value(before.clone()).expect("state is a seed");
    assert_eq!(serde_json::to_value(&seed).expect("serialises"), before);
}

#[tokio::test]
async fn seeds_come_as_yaml_too_and_bad_ones_are_refused() {
    let env = Env::start(seed()).await;
    let yaml = "
apps: [{client_id: app, client_secret: secret, redirect_uris: ['http://127.0.0.1/callback']}]
me: 7
users: [{id: 7, permalink: zoe}]
tracks: [{id: 70, user_id: 7, title: Only}]
";
    let reply = env
        .send(env.request(Method::POST, "/_emulator/seed").body(yaml))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["tracks"], 1);
    let token = env.login().await;
    assert_eq!(env.get("/me", &token).await.json["username"], "zoe");
    assert_eq!(
        env.get("/tracks/70", &token).await.json["permalink"],
        "only"
    );

    for (bad, needle) in [
        ("{\"users\": [{\"id\": 1}], \"me\": 2}", "`me` is 2"),
        ("{\"tracks\": [{\"id\": 1, \"user_id\": 5}]}", "track 1"),
        ("{\"userz\": []}", "userz"),
        (
            "users: [{id: 1, permalink: a, track_count: 3, favourite: x}]",
            "favourite",
        ),
        ("{not json", "JSON"),
    ] {
        let reply = env
            .send(env.request(Method::POST, "/_emulator/seed").body(bad))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        let error = reply.json["error"].as_str().expect("error text");
        assert!(error.contains(needle), "{error} should mention {needle}");
    }
    assert_eq!(env.state().await["me"], 7, "a refused seed changes nothing");
}

#[tokio::test]
async fn the_request_log_lists_api_requests_oldest_first() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    env.send(env.request(Method::DELETE, "/_emulator/requests"))
        .await;
    env.get("/me/likes/tracks?linked_partitioning=true&limit=5", &token)
        .await;
    env.send(env.request(Method::GET, "/me")).await;
    env.state().await;
    env.call(Method::POST, "/likes/tracks/999", &token).await;
    let log = env.log().await;
    assert_eq!(
        log,
        vec![
            json!({"method": "GET", "path": "/me/likes/tracks",
                   "query": "linked_partitioning=true&limit=5", "status": 200, "authorized": true}),
            json!({"method": "GET", "path": "/me", "query": "", "status": 401, "authorized": false}),
            json!({"method": "POST", "path": "/likes/tracks/999", "query": "", "status": 404,
                   "authorized": true}),
        ]
    );
    env.send(env.request(Method::POST, "/_emulator/requests/clear"))
        .await;
    assert!(env.log().await.is_empty());
}

#[tokio::test]
async fn the_log_records_the_status_a_fault_answered() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    env.add_faults(json!([{"path": "^/me$", "status": 429, "times": 1, "commit": true}]))
        .await;
    env.send(env.request(Method::DELETE, "/_emulator/requests"))
        .await;
    env.send_raw(
        env.request(Method::GET, "/me")
            .header("Authorization", format!("OAuth {token}")),
    )
    .await;
    let log = env.log().await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], 429);
}

#[tokio::test]
async fn latency_applies_to_api_requests() {
    let env = Env::start_with(seed(), Options { latency_ms: 5 }).await;
    let started = std::time::Instant::now();
    let reply = env.send(env.request(Method::GET, "/me")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() >= std::time::Duration::from_millis(5));
    env.stop().await;
}

/// A plain HTTP/1.1 GET without an async runtime.
fn http_get(base: &str, path: &str) -> std::io::Result<(u16, String)> {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

#[test]
fn background_emulator_serves_synchronous_callers_and_stops_on_drop() {
    let emulator = BackgroundEmulator::start(Seed::demo()).expect("starts");
    let base = emulator.base_url();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(!base.ends_with('/'));
    let (status, body) = http_get(&base, "/_emulator/state").expect("answers");
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&body).expect("JSON state");
    assert_eq!(state["me"], 1);
    drop(emulator);
    assert!(
        http_get(&base, "/_emulator/state").is_err(),
        "nothing listens after drop"
    );
}

#[test]
fn the_binary_prints_its_url_serves_the_seed_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("sc-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let seed_path = dir.join("seed.yaml");
    std::fs::write(
        &seed_path,
        "users: [{id: 1, permalink: alice}]\nme: 1\ntracks: [{id: 5, user_id: 1, title: Five}]\n",
    )
    .expect("seed written");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sc-emulator"))
        .args(["--listen", "127.0.0.1:0", "--latency-ms", "1", "--seed"])
        .arg(&seed_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let base = first.trim().to_string();
    assert!(
        base.starts_with("http://127.0.0.1:"),
        "first line is the base URL: {base:?}"
    );
    let (status, body) = http_get(&base, "/_emulator/state").expect("answers");
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(state["tracks"][0]["title"], "Five");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let exit = child.wait().expect("binary exits");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);

    let bad = Command::new(env!("CARGO_BIN_EXE_sc-emulator"))
        .args(["--seed", "/nonexistent/seed.yaml"])
        .output()
        .expect("binary runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent/seed.yaml"));
}

#[tokio::test]
async fn extreme_seed_values_are_served_not_panicked_on() {
    let max = u64::MAX;
    let env = Env::start(json!({
        "apps": [{"client_id": "app", "client_secret": "secret",
                  "redirect_uris": ["http://127.0.0.1/callback"]}],
        "me": 1,
        "users": [{"id": 1, "permalink": "a"}],
        "tracks": [
            {"id": max, "user_id": 1, "title": "Édith", "duration": max,
             "artwork_sha256": "ééééééééééééééé"},
            {"id": 5, "user_id": 1, "title": "", "duration": max}
        ],
        "playlists": [{"id": 9, "user_id": 1, "title": "", "tracks": [max, 5, max]}]
    }))
    .await;
    let token = env.login().await;
    assert_eq!(env.get("/me", &token).await.status, StatusCode::OK);
    let track = env.get(&format!("/tracks/{max}"), &token).await;
    assert_eq!(track.status, StatusCode::OK);
    assert_eq!(track.json["permalink"], "dith");
    assert_eq!(
        env.get("/tracks/5", &token).await.json["permalink"],
        "track"
    );
    let set = env.get("/playlists/9", &token).await.json;
    assert_eq!(set["permalink"], "set");
    assert_eq!(set["track_count"], 3);
    // New ids keep coming even past the largest seeded one.
    let created = env
        .send(
            env.request(Method::POST, "/playlists")
                .header("Authorization", format!("OAuth {token}"))
                .json(&json!({"playlist": {"title": "next"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json["id"].as_u64().expect("id");
    assert!(id != max && id != 5 && id != 9 && id != 1, "{id} is fresh");
}
