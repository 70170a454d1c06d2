//! Uploads, track updates and deletes, playlist create/replace/delete.

use futures_util::stream;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::common::*;

/// A small canonical PCM WAVE file: 8 kHz, mono, 16-bit, `seconds` long.
pub fn wav(seconds: u32) -> Vec<u8> {
    let data_len = 16_000 * seconds;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16_000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend((0..data_len).map(|i| (i % 251) as u8));
    v
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn upload(env: &Env, token: &str, form: Form) -> Reply {
    env.send(
        env.request(Method::POST, "/tracks")
            .header("Authorization", format!("OAuth {token}"))
            .multipart(form),
    )
    .await
}

fn state_track(state: &Value, id: u64) -> Value {
    state["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn upload_creates_a_track_and_records_what_was_sent() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let audio = wav(2);
    let form = Form::new()
        .text("track[title]", "Night Drive")
        .text("track[tag_list]", "synthwave \"late night\"")
        .text("track[sharing]", "private")
        .text("track[downloadable]", "false")
        .text("track[license]", "cc-by")
        .text("track[release_date]", "2024-05-31")
        .text("track[tags]", "ignored")
        .part(
            "track[asset_data]",
            Part::bytes(audio.clone()).file_name("night.wav"),
        )
        .part(
            "track[artwork_data]",
            Part::bytes(PNG.to_vec()).file_name("a.png"),
        );
    let reply = upload(&env, &token, form).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let t = &reply.json;
    assert_eq!(t["title"], "Night Drive");
    assert_eq!(
        t["tag_list"], "synthwave \"late night\"",
        "tag_list exactly as sent"
    );
    assert_eq!(t["permalink"], "night-drive");
    assert_eq!(
        t["permalink_url"],
        "https://soundcloud.com/alice/night-drive"
    );
    assert_eq!(t["sharing"], "private");
    assert_eq!(t["downloadable"], false);
    assert!(t["download_url"].is_null());
    assert_eq!(t["license"], "cc-by");
    assert_eq!(
        (
            t["release_year"].clone(),
            t["release_month"].clone(),
            t["release_day"].clone()
        ),
        (json!(2024), json!(5), json!(31))
    );
    assert_eq!(t["duration"], 2000);
    assert_eq!(t["access"], "playable");
    let id = t["id"].as_u64().expect("numeric id");
    assert!(id > u64::from(u32::MAX >> 1), "new ids are past 2^31: {id}");
    assert_eq!(t["urn"], format!("soundcloud:tracks:{id}"));
    let created = t["created_at"].as_str().expect("created_at");
    assert!(
        chrono::DateTime::parse_from_str(created, "%Y/%m/%d %H:%M:%S %z").is_ok(),
        "{created}"
    );

    let state = state_track(&env.state().await, id);
    assert_eq!(state["asset_sha256"], sha256_hex(&audio));
    assert_eq!(state["asset_size"], audio.len());
    assert_eq!(state["artwork_sha256"], sha256_hex(PNG));

    // It is the owner's now.
    let mine = env
        .get("/me/tracks?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(
        urns(&mine)[0],
        format!("soundcloud:tracks:{id}"),
        "newest first"
    );
    // A second upload with the same title gets a distinct permalink.
    let again = upload(
        &env,
        &token,
        Form::new()
            .text("track[title]", "Night Drive")
            .part("track[asset_data]", Part::bytes(wav(1)).file_name("n.wav")),
    )
    .await;
    assert_eq!(again.json["permalink"], "night-drive-1");
}

#[tokio::test]
async fn a_large_upload_is_streamed_and_hashed() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let head = wav(0);
    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 253) as u8).collect();
    let chunks = 128; // 8 MiB, more than any in-memory body limit
    let mut hasher = Sha256::new();
    hasher.update(&head);
    for _ in 0..chunks {
        hasher.update(&chunk);
    }
    let expected: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let total = head.len() + chunk.len() * chunks;
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(head))
        .chain((0..chunks).map(|_| Ok(chunk.clone())))
        .collect();
    let body = reqwest::Body::wrap_stream(stream::iter(pieces));
    let form = Form::new().text("track[title]", "Big").part(
        "track[asset_data]",
        Part::stream_with_length(body, total as u64).file_name("big.wav"),
    );
    let reply = upload(&env, &token, form).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.json["id"].as_u64().expect("id");
    let state = state_track(&env.state().await, id);
    assert_eq!(state["asset_sha256"], expected);
    assert_eq!(state["asset_size"], total);
}

#[tokio::test]
async fn uploads_without_audio_are_refused() {
    let mut s = seed();
    s["limits"] = json!({"max_upload_bytes": 1000});
    let env = Env::start(s).await;
    let token = env.login().await;
    let asset = |bytes: Vec<u8>| {
        Form::new()
            .text("track[title]", "X")
            .part("track[asset_data]", Part::bytes(bytes).file_name("x"))
    };
    for bytes in [
        Vec::new(),
        b"just some text, not audio".to_vec(),
        PNG.to_vec(),
    ] {
        let reply = upload(&env, &token, asset(bytes)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            reply.error_message(),
            "unable to process provided asset_data"
        );
        assert_eq!(
            reply.json["errors"],
            json!([{"error_message": "unable to process provided asset_data"}])
        );
    }
    let too_big = upload(&env, &token, asset(wav(1))).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let no_title = upload(
        &env,
        &token,
        Form::new().part(
            "track[asset_data]",
            Part::bytes(b"ID3\x04".to_vec()).file_name("x.mp3"),
        ),
    )
    .await;
    assert_eq!(no_title.status, StatusCode::BAD_REQUEST);
    let no_asset = upload(&env, &token, Form::new().text("track[title]", "X")).await;
    assert_eq!(no_asset.status, StatusCode::BAD_REQUEST);
    let bad_art = upload(
        &env,
        &token,
        asset(b"ID3\x04".to_vec()).part("track[artwork_data]", Part::bytes(b"text".to_vec())),
    )
    .await;
    assert_eq!(bad_art.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_licence = upload(
        &env,
        &token,
        asset(b"ID3\x04".to_vec()).text("track[license]", "public-domain"),
    )
    .await;
    assert_eq!(bad_licence.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        env.state().await["tracks"]
            .as_array()
            .expect("tracks")
            .len()
            == 5,
        "nothing was created"
    );
    let unauthenticated = env
        .send(
            env.request(Method::POST, "/tracks")
                .multipart(asset(wav(1))),
        )
        .await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_refused_large_upload_still_gets_its_status() {
    let mut s = seed();
    s["limits"] = json!({"max_upload_bytes": 1 << 20});
    let env = Env::start(s).await;
    let token = env.login().await;
    let mut audio = wav(0);
    audio.resize(8 << 20, 1);
    let form = || {
        Form::new().text("track[title]", "Big").part(
            "track[asset_data]",
            Part::bytes(audio.clone()).file_name("big.wav"),
        )
    };
    // Refused from the head (a stale token), and refused part-way (too large).
    let stale = env
        .send(
            env.request(Method::POST, "/tracks")
                .header("Authorization", "OAuth expired-or-unknown")
                .multipart(form()),
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let too_big = upload(&env, &token, form()).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(too_big.error_message().contains("asset_data"));
}

#[tokio::test]
async fn put_track_is_a_partial_update_and_never_touches_the_audio() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let audio = wav(1);
    let created = upload(
        &env,
        &token,
        Form::new()
            .text("track[title]", "Sunrise")
            .text("track[genre]", "Ambient")
            .text("track[description]", "early")
            .part(
                "track[asset_data]",
                Part::bytes(audio.clone()).file_name("s.wav"),
            ),
    )
    .await;
    let urn = created.json["urn"].as_str().expect("urn").to_string();
    let id = id_of(&urn);

    let reply = env
        .send(
            env.request(Method::PUT, &format!("/tracks/{urn}"))
                .header("Authorization", format!("OAuth {token}"))
                .json(
                    &json!({"track": {"title": "Sunrise (Remaster)", "description": null,
                                        "tag_list": "a \"b c\"", "streamable": false}}),
                ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["title"], "Sunrise (Remaster)");
    assert_eq!(
        reply.json["genre"], "Ambient",
        "fields left out keep their values"
    );
    assert!(reply.json["description"].is_null(), "null clears");
    assert_eq!(reply.json["tag_list"], "a \"b c\"");
    assert_eq!(reply.json["streamable"], false);
    assert_eq!(reply.json["permalink"], "sunrise", "the permalink stays");

    // Multipart and form-encoded updates work too.
    let reply = env
        .send(
            env.request(Method::PUT, &format!("/tracks/{id}"))
                .header("Authorization", format!("OAuth {token}"))
                .multipart(Form::new().text("track[genre]", "Techno").part(
                    "track[artwork_data]",
                    Part::bytes(PNG.to_vec()).file_name("a.png"),
                )),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["genre"], "Techno");
    let reply = env
        .send(
            env.request(Method::PUT, &format!("/tracks/{id}"))
                .header("Authorization", format!("OAuth {token}"))
                .form(&[
                    ("track[sharing]", "private"),
                    ("track[permalink]", "sunrise-2"),
                ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["sharing"], "private");
    assert_eq!(
        reply.json["permalink_url"],
        "https://soundcloud.com/alice/sunrise-2"
    );

    let state = state_track(&env.state().await, id);
    assert_eq!(state["asset_sha256"], sha256_hex(&audio), "no re-upload");
    assert_eq!(state["artwork_sha256"], sha256_hex(PNG));
    assert_eq!(state["title"], "Sunrise (Remaster)");
}

#[tokio::test]
async fn put_track_errors() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let put = |path: &str, body: &str| {
        env.request(Method::PUT, path)
            .header("Authorization", format!("OAuth {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
    };
    let cases = [
        (
            "/tracks/100",
            r#"{"track":{"title":"x"}}"#,
            StatusCode::FORBIDDEN,
        ),
        (
            "/tracks/999",
            r#"{"track":{"title":"x"}}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/tracks/102",
            r#"{"track":{"title":"x"}}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            "/tracks/110",
            r#"{"track":{"title":"x""#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"track":{"sharing":"friends"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"track":{"title":""}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"track":{"downloadable":"maybe"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"track":{"embeddable_by":"everyone"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"track":{"release_date":"31/05/2024"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"track":{"permalink":"mine-private"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/tracks/110",
            r#"{"title":"no wrapper"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, body, status) in cases {
        let reply = env.send(put(path, body)).await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.text);
    }
    let parse = env.send(put("/tracks/110", "{nope")).await;
    assert_eq!(parse.error_message(), "Could not parse JSON request body.");
    assert_eq!(
        env.get("/tracks/110", &token).await.json["title"],
        "Mine",
        "unchanged"
    );
}

#[tokio::test]
async fn delete_track_removes_it_from_playlists_and_likes() {
    let mut s = seed();
    s["likes"]["2"] = json!({"tracks": [110]});
    let env = Env::start(s).await;
    let token = env.login().await;
    assert_eq!(
        env.call(Method::DELETE, "/tracks/100", &token).await.status,
        StatusCode::FORBIDDEN
    );
    let reply = env
        .call(Method::DELETE, "/tracks/soundcloud:tracks:110", &token)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        env.get("/tracks/110", &token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.call(Method::DELETE, "/tracks/110", &token).await.status,
        StatusCode::NOT_FOUND
    );
    let p = env
        .get("/playlists/200?access=playable,preview,blocked", &token)
        .await
        .json;
    assert_eq!(
        urns(&p["tracks"]),
        ["soundcloud:tracks:100", "soundcloud:tracks:101"]
    );
    let state = env.state().await;
    assert!(
        state["likes"]["2"]["tracks"]
            .as_array()
            .is_none_or(|t| t.is_empty())
    );
}

async fn post_playlist(env: &Env, token: &str, body: Value) -> Reply {
    env.send(
        env.request(Method::POST, "/playlists")
            .header("Authorization", format!("OAuth {token}"))
            .json(&body),
    )
    .await
}

async fn put_playlist(env: &Env, token: &str, urn: &str, body: Value) -> Reply {
    env.send(
        env.request(Method::PUT, &format!("/playlists/{urn}"))
            .header("Authorization", format!("OAuth {token}"))
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn playlists_are_created_and_put_replaces_the_whole_list() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let created = post_playlist(
        &env,
        &token,
        json!({"playlist": {"title": "Best of 2026", "sharing": "public", "set_type": "album",
                            "tag_list": "best \"of all\"", "description": "d",
                            "tracks": [{"urn": "soundcloud:tracks:110"}, {"urn": "soundcloud:tracks:100"}]}}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let p = &created.json;
    assert_eq!(p["set_type"], "album");
    assert_eq!(p["playlist_type"], "album");
    assert_eq!(p["permalink"], "best-of-2026");
    assert_eq!(
        p["permalink_url"],
        "https://soundcloud.com/alice/sets/best-of-2026"
    );
    assert_eq!(p["tag_list"], "best \"of all\"");
    assert_eq!(p["track_count"], 2);
    assert_eq!(
        urns(&p["tracks"]),
        ["soundcloud:tracks:110", "soundcloud:tracks:100"]
    );
    let urn = p["urn"].as_str().expect("urn").to_string();

    let replaced = put_playlist(
        &env,
        &token,
        &urn,
        json!({"playlist": {"tracks": [{"urn": "soundcloud:tracks:101"}, {"urn": "soundcloud:tracks:110"}, {"id": 100}]}}),
    )
    .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.json["title"], "Best of 2026");
    assert_eq!(replaced.json["track_count"], 3);
    let full = env
        .get(
            &format!("/playlists/{urn}?access=playable,preview,blocked"),
            &token,
        )
        .await
        .json;
    assert_eq!(
        urns(&full["tracks"]),
        [
            "soundcloud:tracks:101",
            "soundcloud:tracks:110",
            "soundcloud:tracks:100"
        ]
    );

    let retitled = put_playlist(
        &env,
        &token,
        &urn,
        json!({"playlist": {"title": "Best", "set_type": "playlist"}}),
    )
    .await;
    assert_eq!(
        retitled.json["track_count"], 3,
        "tracks left out: list unchanged"
    );
    assert_eq!(retitled.json["playlist_type"], "playlist");

    let emptied = put_playlist(&env, &token, &urn, json!({"playlist": {"tracks": []}})).await;
    assert_eq!(emptied.json["track_count"], 0);

    let deleted = env
        .call(Method::DELETE, &format!("/playlists/{urn}"), &token)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        env.get(&format!("/playlists/{urn}"), &token).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn playlist_writes_check_limits_references_and_ownership() {
    let mut s = seed();
    s["limits"] = json!({"max_playlist_tracks": 2});
    let env = Env::start(s).await;
    let token = env.login().await;
    let three = json!([{"urn": "soundcloud:tracks:100"}, {"urn": "soundcloud:tracks:101"}, {"urn": "soundcloud:tracks:110"}]);
    let over = put_playlist(
        &env,
        &token,
        "soundcloud:playlists:200",
        json!({"playlist": {"tracks": three}}),
    )
    .await;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(over.error_message().contains("at most 2"), "{}", over.text);
    let cases = [
        (
            json!({"playlist": {"tracks": [{"urn": "soundcloud:tracks:999"}]}}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"playlist": {"tracks": [{"urn": "soundcloud:tracks:102"}]}}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"playlist": {"tracks": [{"id": 3_000_000_000u64}]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"playlist": {"tracks": [{"urn": "soundcloud:users:1"}]}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"playlist": {"tracks": "100"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"playlist": {"set_type": "ep"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"playlist": {"sharing": "secret"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let reply = put_playlist(&env, &token, "200", body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text);
    }
    let others = put_playlist(
        &env,
        &token,
        "201",
        json!({"playlist": {"title": "mine now"}}),
    )
    .await;
    assert_eq!(others.status, StatusCode::FORBIDDEN);
    assert_eq!(
        env.call(Method::DELETE, "/playlists/201", &token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let no_title = post_playlist(&env, &token, json!({"playlist": {"sharing": "public"}})).await;
    assert_eq!(no_title.status, StatusCode::UNPROCESSABLE_ENTITY);
    let form = env
        .send(
            env.request(Method::PUT, "/playlists/200")
                .header("Authorization", format!("OAuth {token}"))
                .form(&[("playlist[title]", "x")]),
        )
        .await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST, "PUT takes JSON only");
    let p = env
        .get("/playlists/200?access=playable,preview,blocked", &token)
        .await
        .json;
    assert_eq!(p["title"], "Mix");
    assert_eq!(p["track_count"], 3, "failed writes change nothing");
}

#[tokio::test]
async fn playlists_can_be_created_from_a_multipart_form() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let form = Form::new()
        .text("playlist[title]", "Form Set")
        .text("playlist[sharing]", "private")
        .text(
            "playlist[tracks][][urn]",
            "soundcloud:tracks:100,soundcloud:tracks:110",
        )
        .part(
            "playlist[artwork_data]",
            Part::bytes(PNG.to_vec()).file_name("a.png"),
        );
    let reply = env
        .send(
            env.request(Method::POST, "/playlists")
                .header("Authorization", format!("OAuth {token}"))
                .multipart(form),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.json["sharing"], "private");
    assert_eq!(
        urns(&reply.json["tracks"]),
        ["soundcloud:tracks:100", "soundcloud:tracks:110"]
    );
    let url = reply.json["permalink_url"].as_str().expect("permalink_url");
    assert!(
        url.starts_with("https://soundcloud.com/alice/sets/form-set/s-"),
        "{url}"
    );
}
