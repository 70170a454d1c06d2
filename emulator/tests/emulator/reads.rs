//! Reads: `/me`, its collections, single items, `/resolve`, and the three
//! spellings of an id in a path.

use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn me_has_identity_counts_and_quota() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let me = env.get("/me", &token).await.json;
    assert_eq!(me["id"], 1);
    assert_eq!(me["urn"], "soundcloud:users:1");
    assert_eq!(me["username"], "Alice");
    assert_eq!(me["permalink_url"], "https://soundcloud.com/alice");
    assert_eq!(me["city"], "Berlin");
    assert_eq!(me["followings_count"], 1);
    assert_eq!(me["track_count"], 1, "public tracks only");
    assert_eq!(me["private_tracks_count"], 1);
    assert_eq!(me["playlist_count"], 1);
    assert_eq!(me["likes_count"], 3, "two tracks and one playlist");
    assert!(me["quota"]["upload_seconds_left"].is_u64());
}

#[tokio::test]
async fn paths_take_numeric_ids_urns_and_percent_encoded_urns() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    for path in [
        "/users/2",
        "/users/soundcloud:users:2",
        "/users/soundcloud%3Ausers%3A2",
    ] {
        let reply = env.get(path, &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.json["urn"], "soundcloud:users:2");
        assert_eq!(reply.json["id"], 2);
    }
    for path in [
        "/tracks/100",
        "/tracks/soundcloud:tracks:100",
        "/tracks/soundcloud%3Atracks%3A100",
    ] {
        let reply = env.get(path, &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.json["urn"], "soundcloud:tracks:100");
    }
    for path in [
        "/users/999",
        "/users/soundcloud:tracks:2",
        "/tracks/soundcloud:users:100",
        "/tracks/abc",
        "/playlists/soundcloud:playlists:999",
    ] {
        let reply = env.get(path, &token).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.json["status"], "404 - Not Found");
    }
}

#[tokio::test]
async fn a_track_body_carries_what_scsync_compares() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let t = env.get("/tracks/soundcloud:tracks:110", &token).await.json;
    assert_eq!(t["kind"], "track");
    assert_eq!(t["title"], "Mine");
    assert_eq!(t["permalink"], "mine");
    assert_eq!(t["permalink_url"], "https://soundcloud.com/alice/mine");
    assert_eq!(t["tag_list"], "ambient \"late night\"");
    assert_eq!(t["created_at"], "2024/03/01 10:00:00 +0000");
    assert_eq!(t["sharing"], "public");
    assert_eq!(t["access"], "playable");
    assert_eq!(t["user"]["urn"], "soundcloud:users:1");
    assert_eq!(
        t["uri"],
        format!("{}/tracks/soundcloud:tracks:110", env.base)
    );
    for field in [
        "downloadable",
        "streamable",
        "commentable",
        "reveal_stats",
        "reveal_comments",
    ] {
        assert_eq!(t[field], true, "{field} defaults to true");
    }
    assert_eq!(t["license"], "all-rights-reserved");
    let seeded = env.get("/tracks/100", &token).await.json;
    assert_eq!(seeded["playback_count"], 12, "seeded spec fields are kept");
    assert_eq!(seeded["favoritings_count"], 1);
    assert_eq!(seeded["user_favorite"], true);
}

#[tokio::test]
async fn blocked_tracks_show_alone_and_private_ones_only_to_owner_or_with_secret() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let blocked = env.get("/tracks/101", &token).await;
    assert_eq!(blocked.status, StatusCode::OK);
    assert_eq!(blocked.json["access"], "blocked");
    assert_eq!(
        env.get("/tracks/102", &token).await.status,
        StatusCode::NOT_FOUND
    );
    let with_secret = env.get("/tracks/102?secret_token=s-abc12", &token).await;
    assert_eq!(with_secret.status, StatusCode::OK);
    let own_private = env.get("/tracks/111", &token).await;
    assert_eq!(own_private.status, StatusCode::OK);
    assert_eq!(own_private.json["sharing"], "private");
    assert!(
        own_private.json["secret_uri"]
            .as_str()
            .is_some_and(|s| s.contains("secret_token="))
    );
}

#[tokio::test]
async fn playlist_reads_hide_blocked_tracks_unless_asked() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let p = env
        .get("/playlists/soundcloud:playlists:200", &token)
        .await
        .json;
    assert_eq!(p["set_type"], "album");
    assert_eq!(p["playlist_type"], "album");
    assert_eq!(p["track_count"], 3, "the count includes hidden tracks");
    assert_eq!(
        urns(&p["tracks"]),
        ["soundcloud:tracks:100", "soundcloud:tracks:110"]
    );
    let all = env
        .get("/playlists/200?access=playable,preview,blocked", &token)
        .await
        .json;
    assert_eq!(
        urns(&all["tracks"]),
        [
            "soundcloud:tracks:100",
            "soundcloud:tracks:101",
            "soundcloud:tracks:110"
        ],
        "playlist order"
    );
    let bare = env
        .get("/playlists/200?show_tracks=false", &token)
        .await
        .json;
    assert!(
        bare.get("tracks").is_none(),
        "show_tracks=false leaves tracks out"
    );
    assert_eq!(bare["track_count"], 3);

    let listed = env
        .get("/playlists/200/tracks?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(
        urns(&listed),
        ["soundcloud:tracks:100", "soundcloud:tracks:110"]
    );
    let listed = env
        .get(
            "/playlists/200/tracks?linked_partitioning=true&access=playable,preview,blocked",
            &token,
        )
        .await
        .json;
    assert_eq!(urns(&listed).len(), 3);
    let bad = env
        .get("/playlists/200/tracks?access=everything", &token)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn me_collections_list_the_accounts_things() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let tracks = env
        .get("/me/tracks?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(
        urns(&tracks),
        ["soundcloud:tracks:111", "soundcloud:tracks:110"],
        "own tracks, private included, newest first"
    );
    let asc = env
        .get("/me/tracks?linked_partitioning=true&sort=asc", &token)
        .await
        .json;
    assert_eq!(
        urns(&asc),
        ["soundcloud:tracks:110", "soundcloud:tracks:111"]
    );

    let playlists = env
        .get("/me/playlists?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(urns(&playlists), ["soundcloud:playlists:200"]);
    let without = env
        .get(
            "/me/playlists?linked_partitioning=true&show_tracks=false",
            &token,
        )
        .await
        .json;
    assert!(without["collection"][0].get("tracks").is_none());

    let followings = env
        .get("/me/followings?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(urns(&followings), ["soundcloud:users:2"]);
    assert_eq!(
        env.get("/me/followings/2", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        env.get("/me/followings/3", &token).await.status,
        StatusCode::NOT_FOUND
    );

    let liked = env
        .get("/me/likes/tracks?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(
        urns(&liked),
        ["soundcloud:tracks:100", "soundcloud:tracks:101"],
        "liked tracks include blocked ones by default"
    );
    let liked = env
        .get(
            "/me/likes/tracks?linked_partitioning=true&access=playable",
            &token,
        )
        .await
        .json;
    assert_eq!(urns(&liked), ["soundcloud:tracks:100"]);

    let liked_sets = env
        .get("/me/likes/playlists?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(urns(&liked_sets), ["soundcloud:playlists:201"]);

    // Without linked_partitioning: the deprecated bare array.
    let bare = env.get("/me/likes/tracks", &token).await.json;
    assert_eq!(bare.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn tracks_by_urns() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let page = env
        .get(
            "/tracks?linked_partitioning=true&urns=soundcloud:tracks:110,soundcloud:tracks:100,soundcloud:tracks:101",
            &token,
        )
        .await
        .json;
    assert_eq!(
        urns(&page),
        ["soundcloud:tracks:110", "soundcloud:tracks:100"]
    );
}

#[tokio::test]
async fn resolve_answers_302_with_location_and_found_body() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let cases = [
        ("https://soundcloud.com/bob", "/users/soundcloud:users:2"),
        (
            "https://soundcloud.com/bob/tide",
            "/tracks/soundcloud:tracks:100",
        ),
        (
            "https://www.soundcloud.com/bob/tide/",
            "/tracks/soundcloud:tracks:100",
        ),
        (
            "http://m.soundcloud.com/Bob/Tide?si=abc",
            "/tracks/soundcloud:tracks:100",
        ),
        (
            "https://soundcloud.com/alice/sets/mix",
            "/playlists/soundcloud:playlists:200",
        ),
        (
            "https://soundcloud.com/bob/hidden/s-abc12",
            "/tracks/soundcloud:tracks:102?secret_token=s-abc12",
        ),
    ];
    for (url, path) in cases {
        let reply = env
            .send(
                env.request(Method::GET, "/resolve")
                    .query(&[("url", url)])
                    .header("Authorization", format!("OAuth {token}")),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FOUND, "{url}");
        let location = env.url(path);
        assert_eq!(reply.header("location"), Some(location.as_str()), "{url}");
        assert_eq!(
            reply.json,
            json!({"status": "302 - Found", "location": location})
        );
        // The target answers with the same token.
        let target = env
            .send(
                env.client
                    .get(&location)
                    .header("Authorization", format!("OAuth {token}")),
            )
            .await;
        assert_eq!(target.status, StatusCode::OK, "{location}");
    }
    for url in [
        "https://soundcloud.com/nobody",
        "https://soundcloud.com/bob/nothing",
        "https://soundcloud.com/bob/hidden",
        "https://example.com/bob/tide",
        "https://soundcloud.com/bob/sets/nothing",
        "not a url",
    ] {
        let reply = env
            .send(
                env.request(Method::GET, "/resolve")
                    .query(&[("url", url)])
                    .header("Authorization", format!("OAuth {token}")),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{url}");
    }
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_405_unknown_route() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let reply = env
        .send_raw(
            env.request(Method::PATCH, "/me")
                .header("Authorization", format!("OAuth {token}")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.text, "unknown route");
    let reply = env.get("/no/such/path", &token).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}
