//! The client against a scripted server: what goes on the wire and how each
//! failure is handled.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use serde_json::json;

use super::fake_server::{Answer, FakeServer, Seen};
use super::*;

fn tokens(access: &str, refresh: &str) -> TokenSet {
    TokenSet {
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(refresh)),
        expires_at: chrono::Utc::now().timestamp() + 3600,
        scope: String::new(),
    }
}

fn config(base: &str) -> ApiConfig {
    ApiConfig::for_emulator(base, "app", Some(Secret::new("app-secret"))).unwrap()
}

fn store(access: &str, refresh: &str) -> Arc<MemoryTokenStore> {
    Arc::new(MemoryTokenStore::new(Some(tokens(access, refresh))))
}

fn reader(server: &FakeServer, store: Arc<MemoryTokenStore>) -> ApiReader {
    ApiReader::new(config(&server.base), store).unwrap()
}

fn writer(server: &FakeServer, store: Arc<MemoryTokenStore>) -> ApiWriter {
    ApiWriter::new(config(&server.base), store).unwrap()
}

fn query(seen: &Seen) -> Vec<(String, String)> {
    Url::parse(&format!("http://x{}", seen.target))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn has(seen: &Seen, key: &str, value: &str) -> bool {
    query(seen).contains(&(key.to_owned(), value.to_owned()))
}

fn form(seen: &Seen) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&seen.body)
        .into_owned()
        .collect()
}

fn track(id: u64) -> serde_json::Value {
    json!({"kind": "track", "id": id, "urn": format!("soundcloud:tracks:{id}"), "title": format!("t{id}")})
}

#[tokio::test]
async fn pages_are_followed_through_short_and_empty_pages_with_our_params_restored() {
    let server = FakeServer::start(|seen, _| {
        let base = format!("http://{}", seen.header("host").unwrap());
        match query(seen).iter().find(|(k, _)| k == "cursor").map(|(_, v)| v.as_str()) {
            // The next_href drops our filters (a known service defect).
            None => Answer::json(200, json!({"collection": [track(1), track(2)], "next_href": format!("{base}/me/likes/tracks?cursor=1")})),
            Some("1") => Answer::json(200, json!({"collection": [], "next_href": format!("{base}/me/likes/tracks?cursor=2")})),
            Some(_) => Answer::json(200, json!({"collection": [track(2), null, track(3)], "next_href": null})),
        }
    })
    .await;
    let liked = reader(&server, store("tok", "r"))
        .my_liked_tracks()
        .await
        .unwrap();
    assert_eq!(liked, vec![Urn::track(1), Urn::track(2), Urn::track(3)]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.path(), "/me/likes/tracks");
        assert!(has(r, "linked_partitioning", "true"), "{}", r.target);
        assert!(has(r, "limit", "200"), "{}", r.target);
        assert!(has(r, "access", "playable,preview,blocked"), "{}", r.target);
        assert_eq!(r.header("authorization"), Some("OAuth tok"));
    }
}

#[tokio::test]
async fn a_next_href_on_another_host_is_refused_and_that_host_never_contacted() {
    let foreign = FakeServer::start(|_, _| Answer::json(200, json!({"collection": []}))).await;
    let foreign_base = foreign.base.clone();
    let server = FakeServer::start(move |_, _| {
        Answer::json(200, json!({"collection": [track(1)], "next_href": format!("{foreign_base}/me/tracks?cursor=1")}))
    })
    .await;
    let err = reader(&server, store("tok", "r"))
        .my_tracks()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::Incomplete { reason: Incomplete::ForeignHost { host }, .. } if *host == foreign.base),
        "{err:?}"
    );
    assert!(err.to_string().contains(&foreign.base), "{err}");
    assert!(
        foreign.requests().is_empty(),
        "the token must not go to another host"
    );
}

#[tokio::test]
async fn a_repeated_next_href_is_an_error_not_a_loop() {
    let server = FakeServer::start(|seen, _| {
        let base = format!("http://{}", seen.header("host").unwrap());
        Answer::json(200, json!({"collection": [track(1)], "next_href": format!("{base}/me/tracks?cursor=same&limit=200&linked_partitioning=true&access=playable%2Cpreview%2Cblocked")}))
    })
    .await;
    let err = reader(&server, store("tok", "r"))
        .my_tracks()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Incomplete {
                reason: Incomplete::RepeatedNextHref,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn the_page_guard_stops_an_endless_listing() {
    let server = FakeServer::start(|seen, i| {
        let base = format!("http://{}", seen.header("host").unwrap());
        Answer::json(
            200,
            json!({"collection": [], "next_href": format!("{base}/me/tracks?cursor={i}")}),
        )
    })
    .await;
    let mut config = config(&server.base);
    config.max_pages = 5;
    let api = ApiReader::new(config, store("tok", "r")).unwrap();
    let err = api.my_tracks().await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Incomplete {
                reason: Incomplete::TooManyPages { max: 5 },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn a_503_on_a_later_page_is_retried_and_a_persistent_one_fails_the_listing() {
    let server = FakeServer::start(|seen, i| {
        let base = format!("http://{}", seen.header("host").unwrap());
        if seen.target.contains("cursor") {
            if i < 3 {
                return Answer::text(
                    503,
                    "upstream connect error or disconnect/reset before headers.",
                );
            }
            return Answer::json(200, json!({"collection": [track(2)]}));
        }
        Answer::json(
            200,
            json!({"collection": [track(1)], "next_href": format!("{base}/me/tracks?cursor=1")}),
        )
    })
    .await;
    let tracks = reader(&server, store("tok", "r"))
        .my_tracks()
        .await
        .unwrap();
    assert_eq!(
        tracks.iter().map(|t| t.urn).collect::<Vec<_>>(),
        vec![Urn::track(1), Urn::track(2)]
    );
    assert_eq!(server.requests().len(), 4);

    let failing = FakeServer::start(|seen, _| {
        let base = format!("http://{}", seen.header("host").unwrap());
        if seen.target.contains("cursor") {
            return Answer::text(503, "");
        }
        Answer::json(
            200,
            json!({"collection": [track(1)], "next_href": format!("{base}/me/tracks?cursor=1")}),
        )
    })
    .await;
    let err = reader(&failing, store("tok", "r"))
        .my_tracks()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(
        matches!(
            err,
            ApiError::ListingFailed {
                page: 2,
                read: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("incomplete"), "{err}");
    // One first page, then the first attempt and six retries of page two.
    assert_eq!(failing.requests().len(), 1 + 7);
}

#[tokio::test]
async fn a_401_refreshes_once_saves_the_new_pair_and_retries() {
    let server = FakeServer::start(|seen, _| match (seen.method.as_str(), seen.path()) {
        ("POST", "/oauth/token") => {
            let f = form(seen);
            assert!(f.contains(&("grant_type".into(), "refresh_token".into())));
            assert!(f.contains(&("refresh_token".into(), "r1".into())));
            assert!(f.contains(&("client_id".into(), "app".into())));
            assert!(f.contains(&("client_secret".into(), "app-secret".into())));
            assert_eq!(seen.header("authorization"), None);
            Answer::json(200, json!({"access_token": "new", "refresh_token": "r2", "expires_in": 3599, "scope": ""}))
        }
        (_, "/me") if seen.header("authorization") == Some("OAuth new") => {
            Answer::json(200, json!({"urn": "soundcloud:users:1", "username": "alice"}))
        }
        _ => Answer::json(401, json!({"code": 401, "message": "", "status": "401 - Unauthorized", "errors": [], "error": null})),
    })
    .await;
    let tokens = store("old", "r1");
    let me = reader(&server, tokens.clone()).me().await.unwrap();
    assert_eq!(me.urn, Urn::user(1));
    let saved = tokens.get().unwrap();
    assert_eq!(saved.access_token.expose(), "new");
    assert_eq!(saved.refresh_token.unwrap().expose(), "r2");
    let methods: Vec<String> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert_eq!(methods, ["GET /me", "POST /oauth/token", "GET /me"]);
}

#[tokio::test]
async fn a_401_that_survives_a_fresh_token_is_not_refreshed_again() {
    let server = FakeServer::start(|seen, _| match seen.path() {
        "/oauth/token" => Answer::json(
            200,
            json!({"access_token": "new", "refresh_token": "r2", "expires_in": 3599}),
        ),
        _ => Answer::text(401, "\n"),
    })
    .await;
    let err = writer(&server, store("old", "r1"))
        .like_track(Urn::track(5))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.needs_login());
    assert!(err.to_string().contains("scsync login"), "{err}");
    let refreshes = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/oauth/token")
        .count();
    assert_eq!(refreshes, 1);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn invalid_grant_rereads_the_store_for_a_pair_another_process_saved() {
    let shared = store("old", "r1");
    let other_process = shared.clone();
    let server = FakeServer::start(move |seen, _| match seen.path() {
        "/oauth/token" => {
            // Another process refreshed with r1 a moment earlier.
            other_process.save(&tokens("theirs", "r2")).unwrap();
            Answer::json(400, json!({"error": "invalid_grant"}))
        }
        _ if seen.header("authorization") == Some("OAuth theirs") => {
            Answer::json(200, json!({"id": 1}))
        }
        _ => Answer::text(401, ""),
    })
    .await;
    let me = reader(&server, shared.clone()).me().await.unwrap();
    assert_eq!(me.urn, Urn::user(1));
    assert_eq!(shared.get().unwrap().access_token.expose(), "theirs");
}

#[tokio::test]
async fn invalid_grant_with_nothing_newer_asks_for_login() {
    let server = FakeServer::start(|seen, _| match seen.path() {
        "/oauth/token" => Answer::json(400, json!({"error": "invalid_grant"})),
        _ => Answer::text(401, ""),
    })
    .await;
    let err = reader(&server, store("old", "r1")).me().await.unwrap_err();
    assert!(matches!(err, ApiError::LoginExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("run `scsync login`"), "{err}");
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_before_use() {
    let server = FakeServer::start(|seen, _| match seen.path() {
        "/oauth/token" => Answer::json(
            200,
            json!({"access_token": "new", "refresh_token": "r2", "expires_in": 3599}),
        ),
        _ => {
            assert_eq!(seen.header("authorization"), Some("OAuth new"));
            Answer::json(200, json!({"id": 1}))
        }
    })
    .await;
    let mut expiring = tokens("old", "r1");
    expiring.expires_at = chrono::Utc::now().timestamp() + 10;
    let store = Arc::new(MemoryTokenStore::new(Some(expiring)));
    let api = reader(&server, store.clone());
    // Concurrent requests share one refresh.
    let (a, b) = tokio::join!(api.me(), api.me());
    a.unwrap();
    b.unwrap();
    let refreshes = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/oauth/token")
        .count();
    assert_eq!(refreshes, 1);
    assert_eq!(store.get().unwrap().refresh_token.unwrap().expose(), "r2");
}

#[tokio::test]
async fn no_stored_login_says_to_log_in() {
    let server = FakeServer::start(|_, _| Answer::json(200, json!({}))).await;
    let api = ApiReader::new(config(&server.base), Arc::new(MemoryTokenStore::default())).unwrap();
    let err = api.me().await.unwrap_err();
    assert!(matches!(err, ApiError::NotLoggedIn));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn client_credentials_use_basic_auth_only_and_are_cached() {
    let server = FakeServer::start(|seen, _| match seen.path() {
        "/oauth/token" => {
            assert_eq!(
                form(seen),
                vec![("grant_type".to_owned(), "client_credentials".to_owned())]
            );
            let basic = base64::engine::general_purpose::STANDARD.encode("app:app-secret");
            assert_eq!(
                seen.header("authorization"),
                Some(format!("Basic {basic}").as_str())
            );
            Answer::json(
                200,
                json!({"access_token": "app-token", "refresh_token": "app-r", "expires_in": 3599}),
            )
        }
        _ => Answer::json(200, json!({"kind": "track", "id": 7})),
    })
    .await;
    use base64::Engine;
    let cache = Arc::new(MemoryTokenStore::default());
    let api = ApiReader::with_client_credentials(config(&server.base), cache.clone()).unwrap();
    api.track(Urn::track(7)).await.unwrap();
    api.track(Urn::track(7)).await.unwrap();
    // A second reader on the same cache (the next run) reuses the token.
    let next_run = ApiReader::with_client_credentials(config(&server.base), cache.clone()).unwrap();
    next_run.track(Urn::track(7)).await.unwrap();
    let issued = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/oauth/token")
        .count();
    assert_eq!(issued, 1);
    assert_eq!(cache.get().unwrap().access_token.expose(), "app-token");
}

#[tokio::test]
async fn the_token_goes_to_the_api_host_only() {
    let auth = FakeServer::start(|_, _| {
        Answer::json(
            200,
            json!({"access_token": "new", "refresh_token": "r2", "expires_in": 3599}),
        )
    })
    .await;
    let api_host = FakeServer::start(|_, _| Answer::json(200, json!({"id": 1}))).await;
    let mut config = config(&api_host.base);
    config.auth_url = parse_base_url(&auth.base).unwrap();
    let mut expired = tokens("old", "r1");
    expired.expires_at = 0;
    let api = ApiReader::new(config, Arc::new(MemoryTokenStore::new(Some(expired)))).unwrap();
    api.me().await.unwrap();
    assert_eq!(auth.requests().len(), 1);
    assert_eq!(auth.requests()[0].header("authorization"), None);
    assert_eq!(
        api_host.requests()[0].header("authorization"),
        Some("OAuth new")
    );
}

#[tokio::test]
async fn server_errors_on_writes_are_ambiguous_and_not_resent() {
    let server = FakeServer::start(|seen, _| match seen.method.as_str() {
        "PUT" => Answer::json(
            500,
            json!({"code": 500, "message": "", "errors": [], "error": null}),
        ),
        _ => Answer::text(504, "upstream request timeout"),
    })
    .await;
    let api = writer(&server, store("tok", "r"));
    let err = api
        .update_playlist(Urn::playlist(1), &Fields::new(), &[Urn::track(2)])
        .await
        .unwrap_err();
    assert!(err.is_ambiguous_write(), "{err:?}");
    assert_eq!(err.status(), Some(500));
    assert!(err.to_string().contains("read back"), "{err}");
    let err = api.create_playlist(&Fields::new(), &[]).await.unwrap_err();
    assert!(err.is_ambiguous_write(), "{err:?}");
    assert!(
        err.to_string().contains("upstream request timeout"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 2, "no write is repeated");
}

#[tokio::test]
async fn a_503_is_ambiguous_for_a_create_but_retried_for_an_idempotent_write() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = FakeServer::start(move |seen, _| {
        if seen.path().starts_with("/likes/") && counter.fetch_add(1, Ordering::SeqCst) == 0 {
            return Answer::text(503, "");
        }
        if seen.path() == "/playlists" {
            return Answer::text(
                503,
                "<html><title>We were unable to process your request in time</title></html>",
            );
        }
        Answer::json(200, json!({"status": "200 - OK"}))
    })
    .await;
    let api = writer(&server, store("tok", "r"));
    api.like_track(Urn::track(3)).await.unwrap();
    let err = api.create_playlist(&Fields::new(), &[]).await.unwrap_err();
    assert!(err.is_ambiguous_write());
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.path() == "/playlists")
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let server = FakeServer::start(|_, _| {
        Answer::json(422, json!({"code": 422, "message": "too many followings"}))
    })
    .await;
    let err = writer(&server, store("tok", "r"))
        .follow(Urn::user(9))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    assert!(!err.is_ambiguous_write());
    assert_eq!(
        err.to_string(),
        "PUT /me/followings/soundcloud:users:9 failed with HTTP 422: too many followings"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_longer_than_max_wait_parks_every_request() {
    let server =
        FakeServer::start(|_, _| Answer::text(429, "").with_header("Retry-After", "7200")).await;
    let api = reader(&server, store("tok", "r"));
    let err = api.me().await.unwrap_err();
    let resume = err.resume_at().expect("parked");
    assert!(resume > chrono::Utc::now() + chrono::Duration::minutes(119));
    // Other requests sharing the client park without sending anything.
    let err = api.my_followings().await.unwrap_err();
    assert!(err.resume_at().is_some());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_body_reset_time_is_waited_for() {
    // The reset lies one second ahead (the format has whole seconds).
    let reset = chrono::Utc::now() + chrono::Duration::seconds(1);
    let reset_text = reset.format("%Y/%m/%d %H:%M:%S +0000").to_string();
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = arrivals.clone();
    let server = FakeServer::start(move |_, i| {
        log.lock().unwrap().push(SystemTime::now());
        if i == 0 {
            Answer::json(429, json!({"errors": [{"meta": {"rate_limit": {"group": "plays"}, "remaining_requests": 0, "reset_time": reset_text}}]}))
        } else {
            Answer::json(200, json!({"id": 1}))
        }
    })
    .await;
    reader(&server, store("tok", "r")).me().await.unwrap();
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 2);
    let reset_whole_second = SystemTime::from(reset.with_nanosecond_zero());
    assert!(
        arrivals[1] >= reset_whole_second,
        "the retry came before the reset time"
    );
}

trait WholeSecond {
    fn with_nanosecond_zero(self) -> Self;
}

impl WholeSecond for chrono::DateTime<chrono::Utc> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap()
    }
}

#[tokio::test]
async fn rate_limit_shapes_without_reset_information_back_off_and_succeed() {
    let bodies = [
        Answer::text(429, "Please slow down."),
        Answer::json(429, json!({"error": "Rate Limit Exceeded"})),
        Answer::json(
            429,
            json!({"code": 429, "message": "rate_limit_exceeded", "errors": [{"error_message": "rate_limit_exceeded"}], "error": null, "error_code": "rate_limit_exceeded"}),
        ),
        Answer::json(
            429,
            json!({"code": 429, "message": "", "spam_warning_urn": "soundcloud:spam-warnings:1"}),
        ),
    ];
    let bodies = Arc::new(std::sync::Mutex::new(
        bodies.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let server = FakeServer::start(move |_, i| {
        let mut bodies = bodies.lock().unwrap();
        match bodies.get_mut(i).and_then(Option::take) {
            Some(answer) => answer,
            None => Answer::json(200, json!({"id": 1})),
        }
    })
    .await;
    reader(&server, store("tok", "r")).me().await.unwrap();
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn upload_streams_the_file_with_its_length_and_reopens_it_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Night Drive.wav");
    let audio: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &audio).unwrap();
    let server = FakeServer::start(|_, i| {
        if i == 0 {
            return Answer::text(429, "Please slow down.");
        }
        Answer::json(201, json!({"kind": "track", "urn": "soundcloud:tracks:4294967299", "title": "Night Drive", "tag_list": "a \"b c\""}))
    })
    .await;
    let mut fields = Fields::new();
    fields.insert(
        "title".into(),
        crate::model::FieldValue::Text("Night Drive".into()),
    );
    fields.insert(
        "tags".into(),
        crate::model::FieldValue::Tags(vec!["a".into(), "b c".into()]),
    );
    let track = writer(&server, store("tok", "r"))
        .upload_track(&file, None, &fields)
        .await
        .unwrap();
    assert_eq!(track.urn, Urn::track(4_294_967_299));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!((r.method.as_str(), r.path()), ("POST", "/tracks"));
        let length: usize = r
            .header("content-length")
            .expect("a Content-Length")
            .parse()
            .unwrap();
        assert_eq!(length, r.body.len());
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("multipart/form-data")
        );
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("name=\"track[title]\"\r\n\r\nNight Drive\r\n"));
        assert!(body.contains("name=\"track[tag_list]\"\r\n\r\na \"b c\"\r\n"));
        assert!(body.contains(
            "name=\"track[asset_data]\"; filename=\"Night_Drive.wav\"\r\nContent-Type: audio/wav"
        ));
        assert!(
            r.body.windows(audio.len()).any(|w| w == audio.as_slice()),
            "the whole file is sent"
        );
    }
}

#[tokio::test]
async fn resolve_reads_the_redirect_without_following_it() {
    let server = FakeServer::start(|seen, _| {
        if query(seen).iter().any(|(_, v)| v.ends_with("/missing")) {
            return Answer::json(404, json!({"code": 404, "message": "", "errors": [{"error_message": "404 - Not Found"}]}));
        }
        let base = format!("http://{}", seen.header("host").unwrap());
        Answer::json(302, json!({"status": "302 - Found", "location": format!("{base}/tracks/2088703866")}))
            .with_header("Location", &format!("{base}/tracks/2088703866"))
    })
    .await;
    let api = reader(&server, store("tok", "r"));
    let urn = api
        .resolve("https://soundcloud.com/someone/a-track")
        .await
        .unwrap();
    assert_eq!(urn, Urn::track(2_088_703_866));
    let err = api
        .resolve("https://soundcloud.com/someone/missing")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::ResolveNotFound { url } if url == "https://soundcloud.com/someone/missing")
    );
    assert!(err.is_not_found());
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "the redirect is not followed");
    assert!(has(
        &requests[0],
        "url",
        "https://soundcloud.com/someone/a-track"
    ));
}

#[tokio::test]
async fn playlists_are_read_with_their_complete_track_lists() {
    let server = FakeServer::start(|seen, _| match seen.path() {
        "/me/playlists" => {
            assert!(has(seen, "show_tracks", "false"));
            Answer::json(200, json!({"collection": [
                {"urn": "soundcloud:playlists:10", "title": "A", "playlist_type": "album", "tracks": []},
                {"urn": "soundcloud:playlists:11", "title": "B"}
            ]}))
        }
        "/playlists/soundcloud:playlists:10/tracks" => {
            assert!(has(seen, "access", "playable,preview,blocked"));
            Answer::json(200, json!({"collection": [track(5), {"urn": "soundcloud:tracks:6", "access": "blocked"}]}))
        }
        "/playlists/soundcloud:playlists:11/tracks" => Answer::json(200, json!({"collection": []})),
        other => Answer::text(404, &format!("unexpected {other}")),
    })
    .await;
    let playlists = reader(&server, store("tok", "r"))
        .my_playlists()
        .await
        .unwrap();
    assert_eq!(playlists.len(), 2);
    assert_eq!(playlists[0].tracks, vec![Urn::track(5), Urn::track(6)]);
    assert_eq!(
        playlists[0].fields["set_type"],
        crate::model::FieldValue::Text("album".into())
    );
    assert!(playlists[1].tracks.is_empty());
}

#[tokio::test]
async fn updates_send_only_the_given_fields_with_tags_as_tag_list() {
    let server = FakeServer::start(|seen, _| {
        Answer::json(200, json!({"urn": "soundcloud:tracks:3", "title": "New", "echo": String::from_utf8_lossy(&seen.body)}))
    })
    .await;
    let mut fields = Fields::new();
    fields.insert("title".into(), crate::model::FieldValue::Text("New".into()));
    fields.insert(
        "tags".into(),
        crate::model::FieldValue::Tags(vec!["late night".into()]),
    );
    let track = writer(&server, store("tok", "r"))
        .update_track(Urn::track(3), &fields)
        .await
        .unwrap();
    assert_eq!(
        track.fields["title"],
        crate::model::FieldValue::Text("New".into())
    );
    let sent: serde_json::Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"track": {"title": "New", "tag_list": "\"late night\""}})
    );
    assert_eq!(server.requests()[0].method, "PUT");
    assert_eq!(server.requests()[0].path(), "/tracks/soundcloud:tracks:3");
}

#[tokio::test]
async fn sign_out_posts_with_the_stored_token_and_accepts_a_dead_one() {
    let server = FakeServer::start(|_, i| {
        if i == 0 {
            Answer::json(200, json!({}))
        } else {
            Answer::text(401, "")
        }
    })
    .await;
    let api = writer(&server, store("tok", "r"));
    api.sign_out().await.unwrap();
    api.sign_out().await.unwrap();
    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path()),
        ("POST", "/sign-out")
    );
    assert_eq!(requests[0].header("authorization"), Some("OAuth tok"));
    assert_eq!(requests.len(), 2, "no refresh just to sign out");
}

#[tokio::test]
async fn a_connection_refused_read_is_retried_then_reported() {
    // Bind and drop to get a port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let api = ApiReader::new(
        config(&format!("http://127.0.0.1:{port}")),
        store("tok", "r"),
    )
    .unwrap();
    let err = api.me().await.unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("GET /me: could not connect"),
        "{err}"
    );
    assert!(!err.to_string().contains("tok"));
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A process-wide TRACE subscriber writing into a buffer. Global rather than
/// scoped to the test's thread: tracing caches per call site whether anyone
/// listens, and tests running in parallel without a subscriber can make a
/// thread-scoped one miss lines.
fn global_logs() -> LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let writer_logs = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer_logs.clone())
            .finish();
        // Only this test installs one; if something else did, the
        // assertion that lines were captured says so.
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

#[tokio::test]
async fn no_token_or_secret_reaches_a_log_line_or_an_error_at_trace_level() {
    let logs = global_logs();
    let server = FakeServer::start(|seen, _| match seen.path() {
        "/oauth/token" if form(seen).iter().any(|(_, v)| v == "REFRESH-ONE-x9") => Answer::json(
            200,
            json!({"access_token": "ACCESS-TWO-x9", "refresh_token": "REFRESH-TWO-x9", "expires_in": 3599}),
        ),
        "/oauth/token" => Answer::json(400, json!({"error": "invalid_grant"})),
        "/me" if seen.header("authorization") == Some("OAuth ACCESS-TWO-x9") => Answer::json(200, json!({"id": 1})),
        "/me/tracks" => Answer::text(503, "busy"),
        _ => Answer::text(401, ""),
    })
    .await;
    let api = ApiReader::new(
        config_with_secret(&server.base),
        store("ACCESS-ONE-x9", "REFRESH-ONE-x9"),
    )
    .unwrap();
    // 401, refresh, retry; then a 503 retried until the budget is spent.
    api.me().await.unwrap();
    let mut errors = vec![api.my_tracks().await.unwrap_err().to_string()];
    // Refused even with a fresh token; then a refresh refused outright.
    let refused = ApiReader::new(
        config_with_secret(&server.base),
        store("ACCESS-ONE-x9", "REFRESH-ONE-x9"),
    )
    .unwrap();
    let err = refused.user(Urn::user(2)).await.unwrap_err();
    errors.push(err.to_string());
    errors.push(format!("{err:?}"));
    let dead = ApiReader::new(
        config_with_secret(&server.base),
        store("ACCESS-ONE-x9", "REFRESH-DEAD-x9"),
    )
    .unwrap();
    let err = dead.me().await.unwrap_err();
    assert!(matches!(err, ApiError::LoginExpired { .. }), "{err:?}");
    errors.push(err.to_string());

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request"), "the requests were logged: {text}");
    assert!(text.contains("retrying"), "the retries were logged: {text}");
    for secret in [
        "ACCESS-ONE-x9",
        "ACCESS-TWO-x9",
        "REFRESH-ONE-x9",
        "REFRESH-TWO-x9",
        "REFRESH-DEAD-x9",
        "CLIENT-SECRET-x9",
    ] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
        for e in &errors {
            assert!(!e.contains(secret), "{secret} in an error: {e}");
        }
    }
}

fn config_with_secret(base: &str) -> ApiConfig {
    let mut config = config(base);
    config.client_secret = Some(Secret::new("CLIENT-SECRET-x9"));
    config
}
