//! Fault rules: every failure shape, skip/times, commit, delays and the
//! pagination defects.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};

use crate::common::*;

async fn get_raw(env: &Env, path: &str, token: &str) -> Reply {
    env.send_raw(
        env.request(Method::GET, path)
            .header("Authorization", format!("OAuth {token}")),
    )
    .await
}

#[tokio::test]
async fn each_known_429_shape_can_be_answered() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let documented = json!({"errors": [{"meta": {
        "rate_limit": {"group": "plays", "max_nr_of_requests": 15000, "time_window": "PT24H"},
        "remaining_requests": 0, "reset_time": "2031/01/01 00:00:00 +0000"}}]});
    env.add_faults(json!([
        {"path": "^/me$", "status": 429, "body": documented, "times": 1},
        {"path": "^/me$", "status": 429, "body": "Please slow down.", "times": 1},
        {"path": "^/me$", "status": 429, "body": {"error": "Rate Limit Exceeded"},
         "headers": {"server": "envoy", "x-generator": "tyk.io"}, "times": 1},
        {"path": "^/me$", "status": 429, "retry_after": 7, "times": 1},
        {"path": "^/me$", "status": 503, "body": "", "content_type": "text/plain", "times": 1},
        {"path": "^/me$", "status": 403, "content_type": "text/html",
         "body": "<html><body>The request could not be satisfied</body></html>", "times": 1}
    ]))
    .await;

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json, documented);
    assert!(r.content_type().starts_with("application/json"));

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.text, "Please slow down.");
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.text, r#"{"error":"Rate Limit Exceeded"}"#);
    assert!(r.content_type().starts_with("application/json"));
    assert_eq!(r.header("x-generator"), Some("tyk.io"));

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json["code"], 429, "no body given: the standard envelope");
    assert_eq!(r.json["status"], "429 - Too Many Requests");

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text, "");
    assert_eq!(r.content_type(), "text/plain");

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.content_type(), "text/html");

    let r = get_raw(&env, "/me", &token).await;
    assert_eq!(r.status, StatusCode::OK, "every rule is used up");
}

#[tokio::test]
async fn skip_times_method_and_path_decide_which_requests_fail() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    env.add_faults(json!([
        {"method": "GET", "path": "^/tracks/", "status": 500, "skip": 2, "times": 2}
    ]))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(get_raw(&env, "/tracks/100", &token).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 500, 500, 200]);
    assert_eq!(
        get_raw(&env, "/users/2", &token).await.status,
        StatusCode::OK,
        "other path"
    );
    let report = env
        .send(env.request(Method::GET, "/_emulator/faults"))
        .await
        .json;
    assert_eq!(report["rules"][0]["fired"], 2);
    assert_eq!(report["rules"][0]["skipped"], 2);

    env.send(env.request(Method::DELETE, "/_emulator/faults"))
        .await;
    env.add_faults(json!([{"method": "delete", "status": 502}]))
        .await;
    assert_eq!(
        get_raw(&env, "/tracks/100", &token).await.status,
        StatusCode::OK
    );
    let deleted = env
        .send_raw(
            env.request(Method::DELETE, "/likes/tracks/100")
                .header("Authorization", format!("OAuth {token}")),
        )
        .await;
    assert_eq!(
        deleted.status,
        StatusCode::BAD_GATEWAY,
        "no times: every match fails"
    );
    let state = env.state().await;
    assert_eq!(
        state["likes"]["1"]["tracks"],
        json!([100, 101]),
        "not committed"
    );
}

#[tokio::test]
async fn commit_true_applies_the_change_and_still_fails() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    env.add_faults(json!([
        {"method": "PUT", "path": "^/playlists/", "status": 500, "times": 1, "commit": true},
        {"method": "POST", "path": "^/likes/", "status": 504, "times": 1, "commit": false}
    ]))
    .await;
    let put = env
        .send_raw(
            env.request(Method::PUT, "/playlists/200")
                .header("Authorization", format!("OAuth {token}"))
                .json(&json!({"playlist": {"title": "Committed", "tracks": [{"urn": "soundcloud:tracks:110"}]}})),
        )
        .await;
    assert_eq!(put.status, StatusCode::INTERNAL_SERVER_ERROR);
    let p = env.get("/playlists/200", &token).await.json;
    assert_eq!(p["title"], "Committed", "the write happened");
    assert_eq!(urns(&p["tracks"]), ["soundcloud:tracks:110"]);

    let like = env
        .send_raw(
            env.request(Method::POST, "/likes/tracks/110")
                .header("Authorization", format!("OAuth {token}")),
        )
        .await;
    assert_eq!(like.status, StatusCode::GATEWAY_TIMEOUT);
    let state = env.state().await;
    assert_eq!(
        state["likes"]["1"]["tracks"],
        json!([100, 101]),
        "fail-then-nothing"
    );
}

#[tokio::test]
async fn a_failing_upload_is_answered_after_its_body_is_read() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    env.add_faults(
        json!([{"method": "POST", "path": "^/tracks$", "status": 503,
        "body": "<html>We were unable to process your request in time</html>",
        "content_type": "text/html", "times": 1}]),
    )
    .await;
    let mut audio = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
    audio.resize(4 << 20, 7);
    let reply = env
        .send_raw(
            env.request(Method::POST, "/tracks")
                .header("Authorization", format!("OAuth {token}"))
                .multipart(
                    Form::new()
                        .text("track[title]", "x")
                        .part("track[asset_data]", Part::bytes(audio).file_name("x.wav")),
                ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        env.state().await["tracks"].as_array().map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn delay_rules_hold_the_answer_back_and_may_fail_nothing() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    env.add_faults(json!([{"path": "^/me$", "delay_ms": 20, "times": 1}]))
        .await;
    let started = std::time::Instant::now();
    let reply = env.get("/me", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(20));
}

#[tokio::test]
async fn invalid_rules_are_refused_with_a_reason() {
    let env = Env::start(seed()).await;
    for (rules, needle) in [
        (json!([{"path": "(", "status": 500}]), "regex"),
        (json!([{"status": 1000}]), "status"),
        (json!([{"path": "^/me$"}]), "does nothing"),
        (json!([{"status": 500, "next_href": "repeat"}]), "not both"),
        (json!([{"status": 500, "colour": "red"}]), "colour"),
        (json!([{"next_href": "sideways"}]), "sideways"),
    ] {
        let reply = env
            .send(
                env.request(Method::POST, "/_emulator/faults")
                    .json(&json!({"rules": rules})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{rules}");
        let error = reply.json["error"].as_str().expect("error text");
        assert!(error.contains(needle), "{error} should mention {needle}");
    }
}

fn likes_seed() -> Value {
    let mut s = seed();
    let tracks = s["tracks"].as_array_mut().expect("tracks");
    for i in 0..30u64 {
        let access = if i % 2 == 0 { "playable" } else { "blocked" };
        tracks.push(
            json!({"id": 1000 + i, "user_id": 2, "title": format!("T{i}"), "access": access}),
        );
    }
    s["likes"]["1"]["tracks"] = json!((0..30u64).map(|i| 1000 + i).collect::<Vec<_>>());
    s
}

#[tokio::test]
async fn next_href_can_point_at_a_foreign_host() {
    let env = Env::start(likes_seed()).await;
    let token = env.login().await;
    env.add_faults(
        json!([{"path": "^/me/likes/tracks$", "next_href": "foreign_host", "times": 1}]),
    )
    .await;
    let page = env
        .get("/me/likes/tracks?linked_partitioning=true&limit=10", &token)
        .await
        .json;
    assert_eq!(urns(&page).len(), 10, "the page itself is fine");
    let next = page["next_href"].as_str().expect("next_href");
    assert!(
        next.starts_with("http://api-internal.s-cloud.invalid/me/likes/tracks?"),
        "{next}"
    );
    env.add_faults(
        json!([{"path": "^/me/likes/tracks$", "next_href": "foreign_host",
        "foreign_host": "http://127.0.0.1:9", "times": 1}]),
    )
    .await;
    let page = env
        .get("/me/likes/tracks?linked_partitioning=true&limit=10", &token)
        .await
        .json;
    let next = page["next_href"].as_str().expect("next_href");
    assert!(
        next.starts_with("http://127.0.0.1:9/me/likes/tracks?"),
        "{next}"
    );
}

#[tokio::test]
async fn next_href_can_repeat_the_page_just_served() {
    let env = Env::start(likes_seed()).await;
    let token = env.login().await;
    let first = env
        .get("/me/likes/tracks?linked_partitioning=true&limit=10", &token)
        .await
        .json;
    let second_url = first["next_href"].as_str().expect("next_href").to_string();
    env.add_faults(json!([{"path": "^/me/likes/tracks$", "next_href": "repeat"}]))
        .await;
    let second = env.get(&second_url[env.base.len()..], &token).await.json;
    assert_eq!(second["next_href"], second_url, "the same URL again");
    let third = env.get(&second_url[env.base.len()..], &token).await.json;
    assert_eq!(
        urns(&third),
        urns(&second),
        "following it serves the same page"
    );
}

#[tokio::test]
async fn next_href_can_drop_the_callers_filters() {
    let env = Env::start(likes_seed()).await;
    let token = env.login().await;
    env.add_faults(json!([{"path": "^/me/likes/tracks$", "next_href": "drop_params", "times": 1}]))
        .await;
    let first = env
        .get(
            "/me/likes/tracks?linked_partitioning=true&limit=10&access=playable",
            &token,
        )
        .await
        .json;
    assert_eq!(
        urns(&first).len(),
        5,
        "blocked ones filtered on the first page"
    );
    let next = first["next_href"].as_str().expect("next_href");
    assert!(!next.contains("access="), "{next}");
    let second = env.get(&next[env.base.len()..], &token).await.json;
    assert_eq!(urns(&second).len(), 10, "the next page forgot the filter");
}
