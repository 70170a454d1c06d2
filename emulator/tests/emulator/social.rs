//! Follows and likes.

use reqwest::{Method, StatusCode};

use crate::common::*;

#[tokio::test]
async fn follow_and_unfollow() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let new = env
        .call(Method::PUT, "/me/followings/soundcloud:users:3", &token)
        .await;
    assert_eq!(new.status, StatusCode::CREATED);
    assert_eq!(new.json["urn"], "soundcloud:users:3");
    let again = env.call(Method::PUT, "/me/followings/3", &token).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json, json!({"status": "200 - Successful"}));
    let list = env
        .get("/me/followings?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(
        urns(&list),
        ["soundcloud:users:3", "soundcloud:users:2"],
        "newest first"
    );

    assert_eq!(
        env.call(Method::PUT, "/me/followings/999", &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let yourself = env.call(Method::PUT, "/me/followings/1", &token).await;
    assert_eq!(yourself.status, StatusCode::UNPROCESSABLE_ENTITY);

    let gone = env
        .call(
            Method::DELETE,
            "/me/followings/soundcloud%3Ausers%3A2",
            &token,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(gone.json, json!({"status": "Status(200) - OK"}));
    let not_followed = env.call(Method::DELETE, "/me/followings/2", &token).await;
    assert_eq!(not_followed.status, StatusCode::NOT_FOUND);
    let unknown = env.call(Method::DELETE, "/me/followings/999", &token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(env.state().await["followings"]["1"], json!([3]));
}

#[tokio::test]
async fn follows_past_the_limit_are_422_with_a_reason() {
    let mut s = seed();
    s["limits"] = json!({"max_followings": 1});
    let env = Env::start(s).await;
    let token = env.login().await;
    let reply = env.call(Method::PUT, "/me/followings/3", &token).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.error_message().contains("maximum"), "{}", reply.text);
    assert_eq!(
        env.state().await["followings"]["1"],
        json!([2]),
        "nothing changed"
    );
}

#[tokio::test]
async fn like_and_unlike_tracks_and_playlists() {
    let env = Env::start(seed()).await;
    let token = env.login().await;
    let like = env
        .call(Method::POST, "/likes/tracks/soundcloud:tracks:110", &token)
        .await;
    assert_eq!(like.status, StatusCode::OK);
    assert_eq!(like.json, json!({"status": "200 - OK"}));
    assert_eq!(
        env.call(Method::POST, "/likes/tracks/110", &token)
            .await
            .status,
        StatusCode::OK,
        "liking twice is fine"
    );
    let liked = env
        .get("/me/likes/tracks?linked_partitioning=true", &token)
        .await
        .json;
    assert_eq!(
        urns(&liked),
        [
            "soundcloud:tracks:110",
            "soundcloud:tracks:100",
            "soundcloud:tracks:101"
        ]
    );
    assert_eq!(
        env.call(Method::POST, "/likes/tracks/999", &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.call(Method::POST, "/likes/tracks/102", &token)
            .await
            .status,
        StatusCode::NOT_FOUND,
        "someone else's private track"
    );
    assert_eq!(
        env.call(Method::DELETE, "/likes/tracks/100", &token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        env.call(Method::DELETE, "/likes/tracks/100", &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        env.call(Method::POST, "/likes/playlists/200", &token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        env.call(Method::POST, "/likes/playlists/999", &token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        env.call(
            Method::DELETE,
            "/likes/playlists/soundcloud:playlists:201",
            &token
        )
        .await
        .status,
        StatusCode::OK
    );
    let state = env.state().await;
    assert_eq!(
        state["likes"]["1"],
        json!({"tracks": [110, 101], "playlists": [200]})
    );
}
