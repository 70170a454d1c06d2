//! `/authorize`, `/oauth/token`, `/sign-out` and the `Authorization` header.

use base64::Engine;
use reqwest::{Method, StatusCode};

use crate::common::*;

fn authorize_query<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut q = vec![
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
    ];
    for (k, v) in overrides {
        q.retain(|(key, _)| key != k);
        if !v.is_empty() {
            q.push((k, v));
        }
    }
    q
}

async fn exchange(env: &Env, form: &[(&str, &str)]) -> Reply {
    env.send(env.request(Method::POST, "/oauth/token").form(form))
        .await
}

fn basic(id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn authorize_redirects_with_code_and_state_on_any_loopback_port() {
    let env = Env::start(seed()).await;
    for port_uri in [
        REDIRECT,
        "http://127.0.0.1:9/callback",
        "http://127.0.0.1/callback",
    ] {
        let reply = env
            .send(
                env.request(Method::GET, "/authorize")
                    .query(&authorize_query(&[("redirect_uri", port_uri)])),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FOUND);
        let location = url::Url::parse(reply.header("location").expect("Location")).expect("URL");
        assert_eq!(
            location.as_str().split('?').next(),
            Some(port_uri),
            "redirects to the URI it was given"
        );
        let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        assert!(
            pairs.iter().any(|(k, v)| k == "code" && !v.is_empty()),
            "{location}"
        );
        assert!(
            pairs.contains(&("state".into(), "st4te".into())),
            "{location}"
        );
    }
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unregistered_uri_or_unknown_client() {
    let env = Env::start(seed()).await;
    for bad in [
        authorize_query(&[("redirect_uri", "http://evil.example/callback")]),
        authorize_query(&[("redirect_uri", "http://127.0.0.1:53682/other")]),
        authorize_query(&[("redirect_uri", "http://localhost:53682/callback")]),
        authorize_query(&[("client_id", "nobody")]),
        authorize_query(&[("redirect_uri", "")]),
    ] {
        let reply = env
            .send(env.request(Method::GET, "/authorize").query(&bad))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(reply.header("location").is_none(), "{bad:?}");
    }
}

#[tokio::test]
async fn authorize_answers_bad_requests_with_error_invalid_request() {
    let env = Env::start(seed()).await;
    for bad in [
        authorize_query(&[("response_type", "token")]),
        authorize_query(&[("code_challenge_method", "plain")]),
        authorize_query(&[("code_challenge_method", "")]),
        authorize_query(&[("code_challenge", "")]),
        // A verifier sent where the challenge belongs (observed mistake).
        authorize_query(&[("code_challenge", "too-short-to-be-a-sha256")]),
    ] {
        let reply = env
            .send(env.request(Method::GET, "/authorize").query(&bad))
            .await;
        assert_eq!(reply.status, StatusCode::FOUND, "{bad:?}");
        let location = url::Url::parse(reply.header("location").expect("Location")).expect("URL");
        let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
        assert!(
            pairs.contains(&("error".into(), "invalid_request".into())),
            "{bad:?}: {location}"
        );
        assert!(pairs.contains(&("state".into(), "st4te".into())));
        assert!(!pairs.iter().any(|(k, _)| k == "code"));
    }
}

#[tokio::test]
async fn pkce_exchange_gives_long_tokens_that_read_me() {
    let env = Env::start(seed()).await;
    let tokens = env.login_tokens().await;
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "");
    let access = tokens["access_token"].as_str().expect("string");
    assert!(
        access.len() > 200,
        "JWT-like tokens are long: {}",
        access.len()
    );
    assert_ne!(tokens["refresh_token"], tokens["access_token"]);
    let me = env.get("/me", access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["urn"], "soundcloud:users:1");
    // Bearer is accepted as well as OAuth.
    let me = env
        .send(env.request(Method::GET, "/me").bearer_auth(access))
        .await;
    assert_eq!(me.status, StatusCode::OK);
}

#[tokio::test]
async fn a_public_client_may_exchange_without_a_secret_a_confidential_one_may_not() {
    let env = Env::start(seed()).await;
    let code = env.authorize_code("cli").await;
    let reply = exchange(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let code = env.authorize_code("app").await;
    let reply = exchange(
        &env,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json, json!({"error": "invalid_client"}));
}

#[tokio::test]
async fn pkce_failures_each_give_the_oauth_error() {
    let env = Env::start(seed()).await;
    let wrong_verifier = "x".repeat(43);
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("code_verifier", wrong_verifier.as_str())],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("code_verifier", "short")],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("redirect_uri", "http://127.0.0.1:1/callback")],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("code_verifier", "")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("client_secret", "wrong")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("client_id", "nobody")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", "")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (overrides, status, error) in cases {
        let code = env.authorize_code("app").await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("code", code.as_str()),
        ];
        for (k, v) in &overrides {
            form.retain(|(key, _)| key != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        let reply = exchange(&env, &form).await;
        assert_eq!(reply.status, status, "{overrides:?}: {}", reply.text);
        assert_eq!(reply.json, json!({ "error": error }), "{overrides:?}");
    }
}

#[tokio::test]
async fn a_code_is_good_for_one_exchange_only() {
    let env = Env::start(seed()).await;
    let code = env.authorize_code("app").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "app"),
        ("client_secret", "secret"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("code", code.as_str()),
    ];
    assert_eq!(exchange(&env, &form).await.status, StatusCode::OK);
    let again = exchange(&env, &form).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json, json!({"error": "invalid_grant"}));
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_is_invalid_grant() {
    let env = Env::start(seed()).await;
    let first = env.login_tokens().await;
    let old_refresh = first["refresh_token"].as_str().expect("string");
    let refresh = |token: &str| {
        [
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            ("refresh_token", token),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    };
    let second = env
        .send(
            env.request(Method::POST, "/oauth/token")
                .form(&refresh(old_refresh)),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_ne!(second.json["refresh_token"], first["refresh_token"]);
    assert_ne!(second.json["access_token"], first["access_token"]);
    let fresh = second.json["access_token"].as_str().expect("string");
    assert_eq!(env.get("/me", fresh).await.status, StatusCode::OK);

    let reused = env
        .send(
            env.request(Method::POST, "/oauth/token")
                .form(&refresh(old_refresh)),
        )
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(reused.json, json!({"error": "invalid_grant"}));

    // The new refresh token works once, with HTTP Basic client auth too.
    let newer = second.json["refresh_token"].as_str().expect("string");
    let third = env
        .send(
            env.request(Method::POST, "/oauth/token")
                .header("Authorization", basic("app", "secret"))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", newer)]),
        )
        .await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.text);
}

#[tokio::test]
async fn expired_access_tokens_get_401_and_refresh_still_works() {
    let mut s = seed();
    s["token_ttl_s"] = json!(0);
    let env = Env::start(s).await;
    let tokens = env.login_tokens().await;
    assert_eq!(tokens["expires_in"], 0);
    let expired = env
        .get("/me", tokens["access_token"].as_str().expect("string"))
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.error_message(), "");

    // Tokens also expire on demand, without waiting.
    let env = Env::start(seed()).await;
    let tokens = env.login_tokens().await;
    let access = tokens["access_token"].as_str().expect("string");
    assert_eq!(env.get("/me", access).await.status, StatusCode::OK);
    let expire = env
        .send(env.request(Method::POST, "/_emulator/tokens/expire"))
        .await;
    assert_eq!(expire.json["expired"], 1);
    assert_eq!(
        env.get("/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = env
        .send(env.request(Method::POST, "/oauth/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("string"),
            ),
        ]))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let fresh = refreshed.json["access_token"].as_str().expect("string");
    assert_eq!(env.get("/me", fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn client_credentials_take_basic_only_and_carry_no_user() {
    let mut s = seed();
    s["limits"] = json!({"client_credentials_per_12h": 2});
    let env = Env::start(s).await;
    let grant = [("grant_type", "client_credentials")];
    let in_body = exchange(
        &env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "secret"),
        ],
    )
    .await;
    assert_eq!(in_body.status, StatusCode::UNAUTHORIZED);
    assert_eq!(in_body.json, json!({"error": "invalid_client"}));
    let wrong = env
        .send(
            env.request(Method::POST, "/oauth/token")
                .header("Authorization", basic("app", "nope"))
                .form(&grant),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let ok = env
        .send(
            env.request(Method::POST, "/oauth/token")
                .header("Authorization", basic("app", "secret"))
                .form(&grant),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let token = ok.json["access_token"].as_str().expect("string");
    // Public reads work; /me and writes need a user.
    assert_eq!(env.get("/tracks/100", token).await.status, StatusCode::OK);
    let me = env.get("/me", token).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let like = env.call(Method::POST, "/likes/tracks/100", token).await;
    assert_eq!(like.status, StatusCode::UNAUTHORIZED);
    let playlist = env
        .send(
            env.request(Method::POST, "/playlists")
                .header("Authorization", format!("OAuth {token}"))
                .json(&json!({"playlist": {"title": "x"}})),
        )
        .await;
    assert_eq!(playlist.status, StatusCode::UNAUTHORIZED);

    // Issuance is capped per app (here at 2 per 12 h) with the documented body.
    let second = env
        .send(
            env.request(Method::POST, "/oauth/token")
                .header("Authorization", basic("app", "secret"))
                .form(&grant),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    let third = env
        .send_raw(
            env.request(Method::POST, "/oauth/token")
                .header("Authorization", basic("app", "secret"))
                .form(&grant),
        )
        .await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    let meta = &third.json["errors"][0]["meta"];
    assert_eq!(meta["rate_limit"]["max_nr_of_requests"], 2);
    assert_eq!(meta["rate_limit"]["time_window"], "PT12H");
    assert_eq!(meta["remaining_requests"], 0);
    let reset = meta["reset_time"].as_str().expect("reset_time is a string");
    assert!(
        chrono::DateTime::parse_from_str(reset, "%Y/%m/%d %H:%M:%S %z").is_ok(),
        "{reset}"
    );
}

#[tokio::test]
async fn missing_or_bad_authorization_is_401_with_the_envelope() {
    let env = Env::start(seed()).await;
    let none = env.send(env.request(Method::GET, "/me")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.error_message().contains("Authorization"));
    assert_eq!(none.json["status"], "401 - Unauthorized");
    assert_eq!(
        none.json["link"],
        "https://developers.soundcloud.com/docs/api/explorer/open-api"
    );
    assert_eq!(none.json["error"], Value::Null);
    for value in [
        "OAuth not-a-token",
        "Basic YXBwOnNlY3JldA==",
        "OAuth",
        "garbage",
    ] {
        let reply = env
            .send(
                env.request(Method::GET, "/tracks/100")
                    .header("Authorization", value),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{value}");
    }
}

#[tokio::test]
async fn sign_out_revokes_the_token_and_its_refresh_token() {
    let env = Env::start(seed()).await;
    let tokens = env.login_tokens().await;
    let access = tokens["access_token"].as_str().expect("string");
    let out = env.call(Method::POST, "/sign-out", access).await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(
        env.get("/me", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = exchange(
        &env,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", "secret"),
            (
                "refresh_token",
                tokens["refresh_token"].as_str().expect("string"),
            ),
        ],
    )
    .await;
    assert_eq!(refresh.json, json!({"error": "invalid_grant"}));
    let again = env.call(Method::POST, "/sign-out", access).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);

    // The older secure-host form: the token in a JSON body.
    let other = env.login().await;
    let out = env
        .send(
            env.request(Method::POST, "/sign-out")
                .json(&json!({ "access_token": other })),
        )
        .await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(
        env.get("/me", &other).await.status,
        StatusCode::UNAUTHORIZED
    );
}
