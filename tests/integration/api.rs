//! The SoundCloud client against the emulator over real HTTP: login,
//! pagination and its defects, blocked tracks, rate limits, server errors,
//! token refresh, streaming upload and resolve.

use std::sync::Arc;

use reqwest::header::LOCATION;
use sc_emulator::{Emulator, Options, Seed};
use scsync::api::{
    ApiConfig, ApiError, ApiReader, ApiWriter, Incomplete, MemoryTokenStore, PendingLogin,
    TokenStore, install_crypto_provider,
};
use scsync::model::{FieldValue, Fields, Urn};
use scsync::secret::Secret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "scsync-test";
const CLIENT_SECRET: &str = "test-secret";

/// A world with the app registered, alice (1) signed in, bob (2) and
/// carol (3), and whatever `extra` adds or replaces.
fn seed(extra: Value) -> Seed {
    let mut seed = json!({
        "apps": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "redirect_uris": ["http://127.0.0.1/callback"]}],
        "me": 1,
        "users": [{"id": 1, "permalink": "alice", "username": "Alice"},
                  {"id": 2, "permalink": "bob", "username": "Bob"},
                  {"id": 3, "permalink": "carol", "username": "Carol"}],
    });
    if let (Some(base), Value::Object(extra)) = (seed.as_object_mut(), extra) {
        for (k, v) in extra {
            base.insert(k, v);
        }
    }
    Seed::from_text(&seed.to_string()).expect("a valid seed")
}

struct World {
    emulator: Emulator,
    store: Arc<MemoryTokenStore>,
    http: reqwest::Client,
}

impl World {
    /// Starts the emulator and logs in through its `/authorize`.
    async fn start(seed: Seed) -> World {
        install_crypto_provider();
        let emulator = Emulator::start(seed, Options::default())
            .await
            .expect("emulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let store = Arc::new(MemoryTokenStore::default());
        let world = World {
            emulator,
            store,
            http,
        };
        world.login().await;
        world
    }

    fn base(&self) -> String {
        self.emulator.base_url()
    }

    fn config(&self) -> ApiConfig {
        ApiConfig::for_emulator(&self.base(), CLIENT_ID, Some(Secret::new(CLIENT_SECRET))).unwrap()
    }

    fn reader(&self) -> ApiReader {
        ApiReader::new(self.config(), self.store.clone()).unwrap()
    }

    fn writer(&self) -> ApiWriter {
        ApiWriter::new(self.config(), self.store.clone()).unwrap()
    }

    /// The PKCE flow, with this client in the browser's place.
    async fn login(&self) {
        let pending = PendingLogin::start(self.config()).await.unwrap();
        let authorize = pending.authorize_url().to_owned();
        let browser = async {
            let answer = self.http.get(&authorize).send().await.unwrap();
            assert_eq!(answer.status(), 302, "authorize redirects back");
            let back = answer.headers()[LOCATION].to_str().unwrap().to_owned();
            let page = self.http.get(&back).send().await.unwrap();
            assert_eq!(page.status(), 200);
        };
        let (tokens, ()) = tokio::join!(pending.complete(self.store.as_ref(), None), browser);
        let tokens = tokens.expect("login completes");
        assert!(tokens.refresh_token.is_some());
        assert_eq!(self.store.load().unwrap(), Some(tokens));
    }

    async fn control(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_emulator/{path}", self.base());
        let request = match body {
            Some(body) => self.http.post(url).body(body.to_string()),
            None => self.http.get(url),
        };
        let answer = request.send().await.unwrap();
        assert!(
            answer.status().is_success(),
            "/_emulator/{path}: {}",
            answer.status()
        );
        answer.json().await.unwrap()
    }

    async fn faults(&self, rules: Value) {
        self.control("faults", Some(json!({ "rules": rules })))
            .await;
    }

    async fn requests(&self) -> Vec<Value> {
        self.control("requests", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Requests logged after the first `skip`, as `"METHOD /path STATUS"`.
    async fn requests_since(&self, skip: usize) -> Vec<String> {
        self.requests()
            .await
            .iter()
            .skip(skip)
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["method"].as_str().unwrap(),
                    r["path"].as_str().unwrap(),
                    r["status"]
                )
            })
            .collect()
    }

    async fn state(&self) -> Value {
        self.control("state", None).await
    }
}

fn query_has(entry: &Value, key: &str, value: &str) -> bool {
    url::form_urlencoded::parse(entry["query"].as_str().unwrap_or("").as_bytes())
        .any(|(k, v)| k == key && v == value)
}

/// Tracks 1000.. by bob; every seventh one blocked.
fn bobs_tracks(n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let access = if i % 7 == 3 { "blocked" } else { "playable" };
            json!({"id": 1000 + i, "user_id": 2, "title": format!("Track {i}"), "permalink": format!("t{i}"), "access": access})
        })
        .collect()
}

#[tokio::test]
async fn a_450_item_listing_is_read_whole_in_pages_of_200_blocked_tracks_included() {
    let liked: Vec<u64> = (1000..1450).collect();
    let world = World::start(seed(
        json!({"tracks": bobs_tracks(450), "likes": {"1": {"tracks": liked}}}),
    ))
    .await;
    let before = world.requests().await.len();
    let got = world.reader().my_liked_tracks().await.unwrap();
    assert_eq!(got.len(), 450);
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 450);
    assert!(got.contains(&Urn::track(1003)), "a blocked track is listed");
    let log = world.requests().await;
    let pages: Vec<&Value> = log[before..]
        .iter()
        .filter(|r| r["path"] == "/me/likes/tracks")
        .collect();
    assert_eq!(pages.len(), 3, "200 + 200 + 50");
    for page in pages {
        assert!(query_has(page, "linked_partitioning", "true"));
        assert!(query_has(page, "limit", "200") || query_has(page, "page_size", "200"));
        assert!(query_has(page, "access", "playable,preview,blocked"));
        assert_eq!(page["authorized"], true);
    }
}

#[tokio::test]
async fn a_next_href_that_drops_our_filters_still_yields_blocked_tracks() {
    // A playlist's track listing hides blocked tracks unless asked, so a
    // second page fetched without `access` would lose them.
    let ids: Vec<u64> = (1000..1300).collect();
    let world = World::start(seed(json!({
        "tracks": bobs_tracks(300),
        "playlists": [{"id": 200, "user_id": 1, "title": "Big", "permalink": "big", "tracks": ids}]
    })))
    .await;
    world
        .faults(json!([{"method": "GET", "path": "^/playlists/[^/]+/tracks$", "next_href": "drop_params"}]))
        .await;
    let playlists = world.reader().my_playlists().await.unwrap();
    let expected: Vec<Urn> = (1000..1300).map(Urn::track).collect();
    let missing: Vec<&Urn> = expected
        .iter()
        .filter(|u| !playlists[0].tracks.contains(u))
        .collect();
    assert!(missing.is_empty(), "tracks lost from page two: {missing:?}");
    assert!(
        playlists[0].tracks == expected,
        "the playlist order is kept"
    );
}

#[tokio::test]
async fn a_next_href_to_another_host_fails_the_listing_and_the_token_stays_home() {
    let elsewhere = Emulator::start(seed(json!({})), Options::default())
        .await
        .unwrap();
    let followings: Vec<u64> = (10..260).collect();
    let users: Vec<Value> = std::iter::once(json!({"id": 1, "permalink": "alice"}))
        .chain((10..260).map(|id| json!({"id": id, "permalink": format!("u{id}")})))
        .collect();
    let world = World::start(seed(
        json!({"users": users, "followings": {"1": followings}}),
    ))
    .await;
    world
        .faults(
            json!([{"method": "GET", "path": "^/me/followings$", "next_href": "foreign_host",
                         "foreign_host": elsewhere.base_url()}]),
        )
        .await;
    let err = world.reader().my_followings().await.unwrap_err();
    match &err {
        ApiError::Incomplete {
            reason: Incomplete::ForeignHost { host },
            ..
        } => assert_eq!(host, &elsewhere.base_url()),
        other => panic!("expected a foreign-host error, got {other:?}"),
    }
    assert!(err.to_string().contains(&elsewhere.base_url()), "{err}");
    let elsewhere_log: Value = world
        .http
        .get(format!("{}/_emulator/requests", elsewhere.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        elsewhere_log,
        json!([]),
        "nothing was sent to the other host"
    );
}

#[tokio::test]
async fn a_repeated_next_href_fails_the_listing() {
    let ids: Vec<u64> = (1000..1250).collect();
    let world = World::start(seed(
        json!({"tracks": bobs_tracks(250), "likes": {"1": {"tracks": ids}}}),
    ))
    .await;
    world
        .faults(json!([{"method": "GET", "path": "^/me/likes/tracks$", "next_href": "repeat"}]))
        .await;
    let err = world.reader().my_liked_tracks().await.unwrap_err();
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
}

#[tokio::test]
async fn a_503_burst_on_a_later_page_is_retried_and_the_listing_completes() {
    let ids: Vec<u64> = (1000..1450).collect();
    let world = World::start(seed(
        json!({"tracks": bobs_tracks(450), "likes": {"1": {"tracks": ids}}}),
    ))
    .await;
    world
        .faults(json!([{"method": "GET", "path": "^/me/likes/tracks$", "skip": 1, "times": 3, "status": 503,
                         "content_type": "text/plain",
                         "body": "upstream connect error or disconnect/reset before headers. reset reason: overflow"}]))
        .await;
    let before = world.requests().await.len();
    let got = world.reader().my_liked_tracks().await.unwrap();
    assert_eq!(got.len(), 450);
    let log = world.requests_since(before).await;
    assert_eq!(
        log.len(),
        3 + 3,
        "three pages plus three failed attempts: {log:?}"
    );
}

#[tokio::test]
async fn a_persistent_503_fails_the_listing_instead_of_returning_part_of_it() {
    let ids: Vec<u64> = (1000..1450).collect();
    let world = World::start(seed(
        json!({"tracks": bobs_tracks(450), "likes": {"1": {"tracks": ids}}}),
    ))
    .await;
    world
        .faults(json!([{"method": "GET", "path": "^/me/likes/tracks$", "skip": 1, "status": 503, "body": ""}]))
        .await;
    let err = world.reader().my_liked_tracks().await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err:?}");
}

#[tokio::test]
async fn each_429_shape_without_reset_information_backs_off_and_succeeds() {
    let world = World::start(seed(json!({}))).await;
    let shapes = [
        json!({"status": 429, "content_type": "text/plain", "body": "Please slow down."}),
        json!({"status": 429, "content_type": "application/json", "body": {"error": "Rate Limit Exceeded"}}),
        json!({"status": 429, "content_type": "application/json", "body": {"code": 429, "message": "rate_limit_exceeded",
               "link": "https://developers.soundcloud.com/docs/api/rate-limits#errors", "status": "429 - Too Many Requests",
               "errors": [{"error_message": "rate_limit_exceeded"}], "error": null, "error_code": "rate_limit_exceeded"}}),
        json!({"status": 429, "content_type": "application/json", "body": {"code": 429, "message": "Too many likes",
               "spam_warning_urn": "soundcloud:spam-warnings:1"}}),
        json!({"status": 429, "content_type": "text/html",
               "body": "<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD></HTML>"}),
        json!({"status": 429, "body": ""}),
    ];
    let api = world.reader();
    for shape in shapes {
        let mut rule = shape.clone();
        rule["method"] = json!("GET");
        rule["path"] = json!("^/me$");
        rule["times"] = json!(2);
        world.faults(json!([rule])).await;
        let before = world.requests().await.len();
        let me = api.me().await.unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_eq!(me.urn, Urn::user(1));
        let log = world.requests_since(before).await;
        assert_eq!(
            log,
            ["GET /me 429", "GET /me 429", "GET /me 200"],
            "{shape}"
        );
    }
}

#[tokio::test]
async fn a_429_reset_time_is_waited_for() {
    let world = World::start(seed(json!({}))).await;
    let reset = chrono::Utc::now() + chrono::Duration::seconds(1);
    let reset_text = reset.format("%Y/%m/%d %H:%M:%S +0000").to_string();
    world
        .faults(json!([{"method": "GET", "path": "^/me$", "times": 1, "status": 429,
            "body": {"errors": [{"meta": {"rate_limit": {"bucket": "by-ip", "max_nr_of_requests": 30,
                      "time_window": "PT1H", "name": "client-credentials-exchange"},
                      "remaining_requests": 0, "reset_time": reset_text}}]}}]))
        .await;
    let before = world.requests().await.len();
    world.reader().me().await.unwrap();
    let done = chrono::Utc::now();
    // The reset time has whole seconds; the retry may not come before it.
    let reset_floor = reset.timestamp();
    assert!(
        done.timestamp() >= reset_floor,
        "returned before the reset time"
    );
    assert_eq!(
        world.requests_since(before).await,
        ["GET /me 429", "GET /me 200"]
    );
}

#[tokio::test]
async fn a_429_asking_for_hours_parks_the_run_with_a_resume_time() {
    let world = World::start(seed(json!({}))).await;
    world
        .faults(json!([{"method": "GET", "path": "^/me$", "status": 429, "retry_after": 7200}]))
        .await;
    let before = world.requests().await.len();
    let api = world.reader();
    let err = api.me().await.unwrap_err();
    let resume = err.resume_at().expect("a parked error");
    assert!(
        resume > chrono::Utc::now() + chrono::Duration::minutes(115),
        "{resume}"
    );
    assert!(err.to_string().contains("run again after"), "{err}");
    // Every request sharing the client is held back, without sending.
    let err = api.my_tracks().await.unwrap_err();
    assert!(err.resume_at().is_some());
    assert_eq!(world.requests_since(before).await, ["GET /me 429"]);
}

#[tokio::test]
async fn an_expired_token_gets_a_401_then_one_refresh_then_succeeds() {
    let world = World::start(seed(json!({}))).await;
    let old = world.store.load().unwrap().unwrap();
    world.control("tokens/expire", Some(json!({}))).await;
    let before = world.requests().await.len();
    let me = world.reader().me().await.unwrap();
    assert_eq!(me.urn, Urn::user(1));
    assert_eq!(
        world.requests_since(before).await,
        ["GET /me 401", "POST /oauth/token 200", "GET /me 200"]
    );
    let new = world.store.load().unwrap().unwrap();
    assert_ne!(new.access_token, old.access_token);
    assert_ne!(
        new.refresh_token, old.refresh_token,
        "the refresh token rotated and was saved"
    );
}

#[tokio::test]
async fn a_process_holding_a_stale_token_adopts_the_pair_another_one_saved() {
    let world = World::start(seed(json!({}))).await;
    // Two processes share one state database (here: one store); both have
    // read the current pair.
    let first = world.reader();
    let second = world.reader();
    first.me().await.unwrap();
    second.me().await.unwrap();
    world.control("tokens/expire", Some(json!({}))).await;
    let before = world.requests().await.len();
    first.me().await.unwrap();
    // The second is refused with its stale token and finds the saved pair
    // instead of spending the (already used) refresh token again.
    second.me().await.unwrap();
    assert_eq!(
        world.requests_since(before).await,
        [
            "GET /me 401",
            "POST /oauth/token 200",
            "GET /me 200",
            "GET /me 401",
            "GET /me 200"
        ]
    );
}

#[tokio::test]
async fn a_playlist_with_a_blocked_track_keeps_it_across_an_update() {
    let world = World::start(seed(json!({
        "tracks": [{"id": 100, "user_id": 2, "title": "Tide", "permalink": "tide"},
                   {"id": 101, "user_id": 2, "title": "Gone", "permalink": "gone", "access": "blocked"},
                   {"id": 102, "user_id": 3, "title": "Lanterns", "permalink": "lanterns"}],
        "playlists": [{"id": 200, "user_id": 1, "title": "Mine", "permalink": "mine", "sharing": "public",
                       "set_type": "album", "tracks": [100, 101]}]
    })))
    .await;
    let playlists = world.reader().my_playlists().await.unwrap();
    assert_eq!(playlists.len(), 1);
    assert_eq!(playlists[0].tracks, vec![Urn::track(100), Urn::track(101)]);
    assert_eq!(
        playlists[0].fields["set_type"],
        FieldValue::Text("album".into())
    );

    let mut tracks = playlists[0].tracks.clone();
    tracks.push(Urn::track(102));
    let mut fields = Fields::new();
    fields.insert("title".into(), FieldValue::Text("Mine, edited".into()));
    let api = world.writer();
    api.update_playlist(Urn::playlist(200), &fields, &tracks)
        .await
        .unwrap();
    let updated = api.playlist(Urn::playlist(200)).await.unwrap();
    assert_eq!(
        updated.tracks,
        vec![Urn::track(100), Urn::track(101), Urn::track(102)]
    );
    assert_eq!(
        updated.fields["title"],
        FieldValue::Text("Mine, edited".into())
    );
    let state = world.state().await;
    assert_eq!(state["playlists"][0]["tracks"], json!([100, 101, 102]));
}

#[tokio::test]
async fn a_500_after_commit_on_a_playlist_put_is_ambiguous_and_not_resent() {
    let world = World::start(seed(json!({
        "tracks": [{"id": 100, "user_id": 2, "title": "Tide", "permalink": "tide"}],
        "playlists": [{"id": 200, "user_id": 1, "title": "Mine", "permalink": "mine", "tracks": []}]
    })))
    .await;
    world
        .faults(json!([{"method": "PUT", "path": "^/playlists/", "status": 500, "times": 1, "commit": true}]))
        .await;
    let before = world.requests().await.len();
    let err = world
        .writer()
        .update_playlist(Urn::playlist(200), &Fields::new(), &[Urn::track(100)])
        .await
        .unwrap_err();
    assert!(err.is_ambiguous_write(), "{err:?}");
    assert_eq!(
        world.requests_since(before).await.len(),
        1,
        "the PUT was not repeated"
    );
    // It did happen; reading back shows it.
    let back = world.reader().playlist(Urn::playlist(200)).await.unwrap();
    assert_eq!(back.tracks, vec![Urn::track(100)]);
}

/// A mono 16-bit PCM WAV of `seconds` of a quiet sawtooth.
fn write_wav(path: &std::path::Path, seconds: u32) -> Vec<u8> {
    let rate = 44_100u32;
    let samples = rate * seconds;
    let data_len = samples * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let sample = ((i % 100) as i16 - 50) * 40;
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, &wav).unwrap();
    wav
}

#[tokio::test]
async fn an_upload_streams_the_file_and_the_track_can_then_be_edited_and_deleted() {
    let world = World::start(seed(json!({}))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("night-drive.wav");
    let wav = write_wav(&file, 30);
    let mut fields = Fields::new();
    fields.insert("title".into(), FieldValue::Text("Night Drive".into()));
    fields.insert("sharing".into(), FieldValue::Text("private".into()));
    fields.insert(
        "tags".into(),
        FieldValue::Tags(vec!["synthwave".into(), "late night".into()]),
    );
    fields.insert("downloadable".into(), FieldValue::Bool(false));
    let api = world.writer();
    let track = api.upload_track(&file, None, &fields).await.unwrap();
    assert_eq!(
        track.fields["title"],
        FieldValue::Text("Night Drive".into())
    );
    assert_eq!(
        track.fields["tags"],
        FieldValue::Tags(vec!["synthwave".into(), "late night".into()])
    );

    let state = world.state().await;
    let stored = state["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| Some(t["id"].as_u64().unwrap()) == Some(track.urn.id))
        .expect("the track exists")
        .clone();
    assert_eq!(stored["asset_size"], json!(wav.len()));
    assert_eq!(
        stored["asset_sha256"],
        json!(format!("{:x}", Sha256::digest(&wav)))
    );

    let mut edit = Fields::new();
    edit.insert(
        "title".into(),
        FieldValue::Text("Night Drive (Remaster)".into()),
    );
    let edited = api.update_track(track.urn, &edit).await.unwrap();
    assert_eq!(
        edited.fields["title"],
        FieldValue::Text("Night Drive (Remaster)".into())
    );
    assert_eq!(
        edited.fields["downloadable"],
        FieldValue::Bool(false),
        "other fields are left alone"
    );
    let mine = api.my_tracks().await.unwrap();
    assert_eq!(
        mine.iter().map(|t| t.urn).collect::<Vec<_>>(),
        vec![track.urn]
    );

    api.delete_track(track.urn).await.unwrap();
    let err = api.track(track.urn).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn a_504_after_commit_on_an_upload_is_ambiguous_and_exactly_one_track_exists() {
    let world = World::start(seed(json!({}))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.wav");
    write_wav(&file, 1);
    world
        .faults(json!([{"method": "POST", "path": "^/tracks$", "status": 504, "times": 1, "commit": true,
                         "content_type": "text/plain", "body": "upstream request timeout"}]))
        .await;
    let mut fields = Fields::new();
    fields.insert("title".into(), FieldValue::Text("Once".into()));
    let err = world
        .writer()
        .upload_track(&file, None, &fields)
        .await
        .unwrap_err();
    assert!(err.is_ambiguous_write(), "{err:?}");
    let mine = world.reader().my_tracks().await.unwrap();
    assert_eq!(
        mine.len(),
        1,
        "one upload reached the service; none was repeated"
    );
}

#[tokio::test]
async fn resolve_turns_urls_into_urns_and_names_a_missing_one() {
    let world = World::start(seed(json!({
        "tracks": [{"id": 100, "user_id": 2, "title": "Tide", "permalink": "tide"}],
        "playlists": [{"id": 200, "user_id": 3, "title": "Picks", "permalink": "picks", "tracks": [100]}]
    })))
    .await;
    let api = world.reader();
    assert_eq!(
        api.resolve("https://soundcloud.com/bob/tide")
            .await
            .unwrap(),
        Urn::track(100)
    );
    assert_eq!(
        api.resolve("https://soundcloud.com/bob").await.unwrap(),
        Urn::user(2)
    );
    assert_eq!(
        api.resolve("https://soundcloud.com/carol/sets/picks")
            .await
            .unwrap(),
        Urn::playlist(200)
    );
    let err = api
        .resolve("https://soundcloud.com/bob/nothing-here")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApiError::ResolveNotFound { url } if url == "https://soundcloud.com/bob/nothing-here")
    );
    assert!(
        err.to_string()
            .contains("https://soundcloud.com/bob/nothing-here")
    );
}

#[tokio::test]
async fn follows_and_likes_round_trip_and_pull_sees_the_whole_account() {
    let world = World::start(seed(json!({
        "tracks": [{"id": 100, "user_id": 2, "title": "Tide", "permalink": "tide"},
                   {"id": 101, "user_id": 2, "title": "Gone", "permalink": "gone", "access": "blocked"},
                   {"id": 110, "user_id": 1, "title": "Mine", "permalink": "mine", "sharing": "private"}],
        "playlists": [{"id": 200, "user_id": 3, "title": "Picks", "permalink": "picks", "tracks": [100]},
                      {"id": 210, "user_id": 1, "title": "Own", "permalink": "own", "tracks": [110, 101]}],
        "followings": {"1": [2]},
        "likes": {"1": {"tracks": [101], "playlists": []}}
    })))
    .await;
    let api = world.writer();
    api.follow(Urn::user(3)).await.unwrap();
    api.unfollow(Urn::user(2)).await.unwrap();
    api.like_track(Urn::track(100)).await.unwrap();
    api.like_playlist(Urn::playlist(200)).await.unwrap();

    let state = scsync::remote::pull(&api.reader()).await.unwrap();
    assert_eq!(state.me.urn, Urn::user(1));
    assert_eq!(
        state.tracks.iter().map(|t| t.urn).collect::<Vec<_>>(),
        vec![Urn::track(110)]
    );
    assert_eq!(state.playlists.len(), 1);
    assert_eq!(
        state.playlists[0].tracks,
        vec![Urn::track(110), Urn::track(101)]
    );
    assert_eq!(
        state.followings.iter().map(|u| u.urn).collect::<Vec<_>>(),
        vec![Urn::user(3)]
    );
    let mut liked = state.liked_tracks.clone();
    liked.sort();
    assert_eq!(
        liked,
        vec![Urn::track(100), Urn::track(101)],
        "the blocked like is seen"
    );
    assert_eq!(state.liked_playlists, vec![Urn::playlist(200)]);

    api.unlike_track(Urn::track(100)).await.unwrap();
    api.unlike_playlist(Urn::playlist(200)).await.unwrap();
    assert_eq!(api.my_liked_tracks().await.unwrap(), vec![Urn::track(101)]);
    assert!(api.my_liked_playlists().await.unwrap().is_empty());
}

#[tokio::test]
async fn pull_fails_whole_when_one_collection_fails() {
    let world = World::start(seed(json!({"followings": {"1": [2]}}))).await;
    world
        .faults(json!([{"method": "GET", "path": "^/me/followings$", "status": 403, "content_type": "text/html",
                         "body": "<html><title>Request blocked</title></html>"}]))
        .await;
    let err = scsync::remote::pull(&world.reader()).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("GET /me/followings"), "{err}");
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let world = World::start(seed(json!({}))).await;
    let api = world.writer();
    api.sign_out().await.unwrap();
    let log = world.requests_since(0).await;
    assert_eq!(log.last().map(String::as_str), Some("POST /sign-out 200"));
}

#[tokio::test]
async fn pulling_a_large_account_costs_one_call_per_page_plus_one_per_playlist() {
    // 10,000 liked tracks, 2,000 follows, 100 playlists of 5 tracks, 50 own tracks.
    let mut users = vec![
        json!({"id": 1, "permalink": "alice"}),
        json!({"id": 2, "permalink": "bob"}),
    ];
    users.extend((10..2010).map(|id| json!({"id": id, "permalink": format!("u{id}")})));
    let mut tracks: Vec<Value> = (0..10_000u64)
        .map(|i| json!({"id": 100_000 + i, "user_id": 2, "title": format!("Liked {i}"), "permalink": format!("l{i}")}))
        .collect();
    tracks.extend((0..50u64).map(|i| json!({"id": 500 + i, "user_id": 1, "title": format!("Own {i}"), "permalink": format!("o{i}")})));
    let playlists: Vec<Value> = (0..100u64)
        .map(|i| {
            let members: Vec<u64> = (0..5).map(|k| 100_000 + i * 5 + k).collect();
            json!({"id": 9000 + i, "user_id": 1, "title": format!("P{i}"), "permalink": format!("p{i}"), "tracks": members})
        })
        .collect();
    let liked: Vec<u64> = (100_000..110_000).collect();
    let following: Vec<u64> = (10..2010).collect();
    let world = World::start(seed(json!({
        "users": users, "tracks": tracks, "playlists": playlists,
        "followings": {"1": following}, "likes": {"1": {"tracks": liked, "playlists": []}}
    })))
    .await;
    let before = world.requests().await.len();
    let started = std::time::Instant::now();
    let state = scsync::remote::pull(&world.reader()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(state.liked_tracks.len(), 10_000);
    assert_eq!(state.followings.len(), 2_000);
    assert_eq!(state.playlists.len(), 100);
    assert!(state.playlists.iter().all(|p| p.tracks.len() == 5));
    assert_eq!(state.tracks.len(), 50);
    let calls = world.requests_since(before).await.len();
    // /me 1, own tracks 1, playlists 1 + 100 track lists, follows 10,
    // liked tracks 50, liked playlists 1.
    assert_eq!(calls, 164);
    eprintln!("pull of a large account: {calls} calls in {elapsed:?}");
}
