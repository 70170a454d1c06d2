//! Pagination as the service does it: limits, opaque cursors in absolute
//! `next_href`s, and filters applied after the window is cut.

use reqwest::StatusCode;

use crate::common::*;

/// User 1 likes 450 tracks of user 2 (newest first: 1000, 1001, ...);
/// every tenth is blocked. Playlist 300 holds 30 tracks (3000...) whose
/// middle ten are blocked.
fn big_seed() -> Value {
    let mut s = seed();
    let tracks = s["tracks"].as_array_mut().expect("tracks");
    for i in 0..450u64 {
        let access = if i % 10 == 9 { "blocked" } else { "playable" };
        tracks.push(json!({
            "id": 1000 + i, "user_id": 2, "title": format!("T{i}"), "access": access
        }));
    }
    for i in 0..30u64 {
        let access = if (10..20).contains(&i) {
            "blocked"
        } else {
            "preview"
        };
        tracks.push(json!({
            "id": 3000 + i, "user_id": 3, "title": format!("P{i}"), "access": access
        }));
    }
    s["likes"]["1"]["tracks"] = json!((0..450u64).map(|i| 1000 + i).collect::<Vec<_>>());
    s["playlists"]
        .as_array_mut()
        .expect("playlists")
        .push(json!({
            "id": 300, "user_id": 1, "title": "Long",
            "tracks": (0..30u64).map(|i| 3000 + i).collect::<Vec<_>>()
        }));
    s
}

/// Follows `next_href` from `first` to the end; returns every page.
async fn walk(env: &Env, token: &str, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(env.url(first));
    while let Some(url) = next {
        assert!(pages.len() < 50, "paging does not end");
        assert!(
            url.starts_with(&env.base),
            "next_href is absolute on the emulator: {url}"
        );
        let path = &url[env.base.len()..];
        let page = env.get(path, token).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.text);
        next = page.json["next_href"].as_str().map(str::to_string);
        pages.push(page.json);
    }
    pages
}

#[tokio::test]
async fn four_hundred_fifty_likes_come_in_pages_of_200_200_50() {
    let env = Env::start(big_seed()).await;
    let token = env.login().await;
    let pages = walk(
        &env,
        &token,
        "/me/likes/tracks?linked_partitioning=true&limit=200",
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|p| urns(p).len()).collect();
    assert_eq!(sizes, [200, 200, 50]);
    let all: Vec<u64> = pages.iter().flat_map(urns).map(|u| id_of(&u)).collect();
    assert_eq!(
        all,
        (0..450u64).map(|i| 1000 + i).collect::<Vec<_>>(),
        "order, no gaps, no repeats"
    );
    assert!(
        pages[2]["next_href"].is_null(),
        "the last page has no next_href"
    );
    let next = pages[0]["next_href"].as_str().expect("a next_href");
    assert!(next.contains("cursor="), "{next}");
    assert!(!next.contains("offset="), "cursors, not offsets: {next}");
}

#[tokio::test]
async fn limits_default_to_50_cap_at_200_and_accept_page_size() {
    let env = Env::start(big_seed()).await;
    let token = env.login().await;
    let get = |q: &'static str| {
        let env = &env;
        let token = &token;
        async move {
            env.get(
                &format!("/me/likes/tracks?linked_partitioning=true{q}"),
                token,
            )
            .await
        }
    };
    assert_eq!(urns(&get("").await.json).len(), 50);
    assert_eq!(urns(&get("&limit=1000").await.json).len(), 200);
    assert_eq!(urns(&get("&page_size=7").await.json).len(), 7);
    assert_eq!(get("&limit=many").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        get("&cursor=not-a-cursor").await.status,
        StatusCode::BAD_REQUEST
    );
    let page = get("&page_size=7").await.json;
    let next = page["next_href"].as_str().expect("next_href");
    assert!(next.contains("page_size=7"), "{next}");
}

#[tokio::test]
async fn filtered_pages_come_back_short_or_empty_while_next_href_remains() {
    let env = Env::start(big_seed()).await;
    let token = env.login().await;
    let pages = walk(
        &env,
        &token,
        "/me/likes/tracks?linked_partitioning=true&limit=200&access=playable,preview",
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|p| urns(p).len()).collect();
    assert_eq!(
        sizes,
        [180, 180, 45],
        "blocked tracks are cut after the window"
    );
    for page in &pages[..2] {
        let next = page["next_href"].as_str().expect("next_href");
        assert!(
            next.contains("access=playable%2Cpreview"),
            "filters carried on: {next}"
        );
    }

    // Playlist 300: tracks 10..20 are blocked, so page two is empty.
    let pages = walk(
        &env,
        &token,
        "/playlists/300/tracks?linked_partitioning=true&limit=10",
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|p| urns(p).len()).collect();
    assert_eq!(sizes, [10, 0, 10]);
    assert!(
        pages[1]["next_href"].is_string(),
        "an empty page still points on"
    );
    let pages = walk(
        &env,
        &token,
        "/playlists/300/tracks?linked_partitioning=true&limit=10&access=playable,preview,blocked",
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|p| urns(p).len()).collect();
    assert_eq!(sizes, [10, 10, 10]);
}

#[tokio::test]
async fn other_collections_page_the_same_way() {
    let mut s = seed();
    let users = s["users"].as_array_mut().expect("users");
    for i in 0..250u64 {
        users.push(json!({"id": 5000 + i, "permalink": format!("u{i}")}));
    }
    s["followings"]["1"] = json!((0..250u64).map(|i| 5000 + i).collect::<Vec<_>>());
    s["limits"] = json!({"max_followings": 300});
    let env = Env::start(s).await;
    let token = env.login().await;
    let pages = walk(
        &env,
        &token,
        "/me/followings?linked_partitioning=true&limit=200",
    )
    .await;
    let sizes: Vec<usize> = pages.iter().map(|p| urns(p).len()).collect();
    assert_eq!(sizes, [200, 50]);
    let all: Vec<u64> = pages.iter().flat_map(urns).map(|u| id_of(&u)).collect();
    assert_eq!(all, (0..250u64).map(|i| 5000 + i).collect::<Vec<_>>());
}
