//! A running emulator plus a client that checks every body it gets back
//! against the spec facts.

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, StatusCode};
use sc_emulator::{Emulator, Options, Seed};
pub use serde_json::{Value, json};

use crate::shapes::{Allow, assert_shape};

/// RFC 7636 appendix B: a verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Registered as `http://127.0.0.1/callback`; loopback matches any port.
pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";

/// The world most tests start from.
pub fn seed() -> Value {
    json!({
        "apps": [
            {"client_id": "app", "client_secret": "secret",
             "redirect_uris": ["http://127.0.0.1/callback"]},
            {"client_id": "cli", "redirect_uris": ["http://127.0.0.1/callback"], "public": true}
        ],
        "me": 1,
        "users": [
            {"id": 1, "permalink": "alice", "username": "Alice", "city": "Berlin"},
            {"id": 2, "permalink": "bob", "username": "Bob"},
            {"id": 3, "permalink": "carol", "username": "Carol"}
        ],
        "tracks": [
            {"id": 100, "user_id": 2, "title": "Tide", "permalink": "tide", "genre": "Ambient",
             "duration": 180000, "playback_count": 12},
            {"id": 101, "user_id": 2, "title": "Gone", "permalink": "gone", "access": "blocked"},
            {"id": 102, "user_id": 2, "title": "Hidden", "permalink": "hidden",
             "sharing": "private", "secret_token": "s-abc12"},
            {"id": 110, "user_id": 1, "title": "Mine", "permalink": "mine",
             "tag_list": "ambient \"late night\"", "created_at": "2024/03/01 10:00:00 +0000"},
            {"id": 111, "user_id": 1, "title": "Mine Private", "permalink": "mine-private",
             "sharing": "private", "created_at": "2024/03/02 10:00:00 +0000"}
        ],
        "playlists": [
            {"id": 200, "user_id": 1, "title": "Mix", "permalink": "mix", "set_type": "album",
             "tracks": [100, 101, 110]},
            {"id": 201, "user_id": 2, "title": "Bobs", "permalink": "bobs", "tracks": [100]}
        ],
        "followings": {"1": [2]},
        "likes": {"1": {"tracks": [100, 101], "playlists": [201]}}
    })
}

pub fn parse_seed(seed: &Value) -> Seed {
    serde_json::from_value(seed.clone()).expect("test seed matches the seed format")
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or Null when it is not JSON.
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// The error envelope's message, asserting the envelope's status line.
    pub fn error_message(&self) -> &str {
        assert_eq!(
            self.json["code"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "envelope code matches status: {}",
            self.text
        );
        self.json["message"].as_str().unwrap_or("")
    }
}

pub struct Env {
    pub emulator: Option<Emulator>,
    pub base: String,
    pub client: reqwest::Client,
}

/// The shape a response body must have, by endpoint.
enum Expect {
    None,
    One(&'static str, Allow),
    /// `{collection, next_href}`, or a bare array without linked partitioning.
    Many(&'static str, &'static str, Allow),
}

fn expected(method: &Method, path: &str, query: &str, status: StatusCode) -> Expect {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let no_tracks = Allow {
        playlist_without_tracks: query.contains("show_tracks=false"),
    };
    let plain = Allow::default();
    if segments.first() == Some(&"_emulator") || segments.first() == Some(&"authorize") {
        return Expect::None;
    }
    if path == "/oauth/token" {
        return if status == StatusCode::OK {
            Expect::One("Token", plain)
        } else {
            Expect::None
        };
    }
    if status.is_client_error() || status.is_server_error() {
        return Expect::One("Error", plain);
    }
    let m = method.as_str();
    match (m, segments.as_slice()) {
        ("GET", ["me"]) => Expect::One("Me", plain),
        (
            "GET",
            ["me", "tracks"] | ["me", "likes", "tracks"] | ["tracks"] | ["playlists", _, "tracks"],
        ) => Expect::Many("Tracks", "Track", plain),
        ("GET", ["me", "playlists"] | ["me", "likes", "playlists"]) => {
            Expect::Many("Playlists", "Playlist", no_tracks)
        }
        ("GET", ["me", "followings"]) => Expect::Many("Users", "User", plain),
        ("GET", ["me", "followings", _] | ["users", _]) => Expect::One("User", plain),
        ("PUT", ["me", "followings", _]) if status == StatusCode::CREATED => {
            Expect::One("User", plain)
        }
        ("PUT" | "DELETE", ["me", "followings", _])
        | ("POST" | "DELETE", ["likes", _, _])
        | ("DELETE", ["tracks", _] | ["playlists", _])
        | ("POST", ["sign-out"]) => Expect::One("Status", plain),
        ("GET" | "PUT", ["tracks", _]) | ("POST", ["tracks"]) => Expect::One("Track", plain),
        ("GET" | "PUT", ["playlists", _]) | ("POST", ["playlists"]) => {
            Expect::One("Playlist", no_tracks)
        }
        ("GET", ["resolve"]) => Expect::One("Found", plain),
        _ => panic!("the tests know no spec shape for {m} {path} ({status})"),
    }
}

impl Env {
    pub async fn start(seed: Value) -> Env {
        Env::start_with(seed, Options::default()).await
    }

    pub async fn start_with(seed: Value, options: Options) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emulator = Emulator::start(parse_seed(&seed), options)
            .await
            .expect("emulator starts");
        let base = emulator.base_url();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client builds");
        Env {
            emulator: Some(emulator),
            base,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends and returns the reply without looking at its shape (for fault
    /// bodies, which are whatever the rule says).
    pub async fn send_raw(&self, builder: RequestBuilder) -> Reply {
        let response = builder.send().await.expect("request reaches the emulator");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body reads");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// Sends and checks the body against the spec facts for that endpoint.
    pub async fn send(&self, builder: RequestBuilder) -> Reply {
        let request = builder.build().expect("request builds");
        let method = request.method().clone();
        let path = request.url().path().to_string();
        let query = request.url().query().unwrap_or("").to_string();
        let response = self
            .client
            .execute(request)
            .await
            .expect("request reaches the emulator");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body reads");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        let linked = query.contains("linked_partitioning=true");
        match expected(&method, &path, &query, status) {
            Expect::None => {}
            Expect::One(name, allow) => assert_shape(name, &json, allow),
            Expect::Many(wrapped, item, allow) => {
                if linked {
                    assert_shape(wrapped, &json, allow);
                } else {
                    let items = json.as_array().unwrap_or_else(|| {
                        panic!("{method} {path}: expected a bare array: {text}")
                    });
                    for i in items {
                        assert_shape(item, i, allow);
                    }
                }
            }
        }
        if !(path.starts_with("/_emulator") || path == "/authorize" || text.is_empty()) {
            assert!(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/json")),
                "{method} {path}: JSON content type expected, got {headers:?}"
            );
        }
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(
            self.request(Method::GET, path)
                .header("Authorization", format!("OAuth {token}")),
        )
        .await
    }

    pub async fn call(&self, method: Method, path: &str, token: &str) -> Reply {
        self.send(
            self.request(method, path)
                .header("Authorization", format!("OAuth {token}")),
        )
        .await
    }

    /// Runs `/authorize` and returns the `code` it redirected with.
    pub async fn authorize_code(&self, client_id: &str) -> String {
        let reply = self
            .send(self.request(Method::GET, "/authorize").query(&[
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("state", "st4te"),
            ]))
            .await;
        assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.text);
        let location = reply.header("location").expect("redirect has a Location");
        let url = url::Url::parse(location).expect("Location is a URL");
        url.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {location}"))
    }

    /// The whole PKCE flow for app `app`; returns the token response.
    pub async fn login_tokens(&self) -> Value {
        let code = self.authorize_code("app").await;
        let reply = self
            .send(self.request(Method::POST, "/oauth/token").form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "app"),
                ("client_secret", "secret"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("code", &code),
            ]))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json
    }

    /// A user access token for the seeded `me`.
    pub async fn login(&self) -> String {
        self.login_tokens().await["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_string()
    }

    pub async fn state(&self) -> Value {
        self.send(self.request(Method::GET, "/_emulator/state"))
            .await
            .json
    }

    pub async fn log(&self) -> Vec<Value> {
        self.send(self.request(Method::GET, "/_emulator/requests"))
            .await
            .json
            .as_array()
            .expect("the request log is an array")
            .clone()
    }

    pub async fn add_faults(&self, rules: Value) {
        let reply = self
            .send(
                self.request(Method::POST, "/_emulator/faults")
                    .json(&json!({ "rules": rules })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    pub async fn reseed(&self, seed: &Value) {
        let reply = self
            .send(self.request(Method::POST, "/_emulator/seed").json(seed))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.emulator.take() {
            e.shutdown().await;
        }
    }
}

/// The URNs of a collection page, in order.
pub fn urns(page: &Value) -> Vec<String> {
    let items = page
        .get("collection")
        .unwrap_or(page)
        .as_array()
        .unwrap_or_else(|| panic!("not a collection: {page}"));
    items
        .iter()
        .map(|i| i["urn"].as_str().expect("items have a urn").to_string())
        .collect()
}

/// The id part of a URN.
pub fn id_of(urn: &str) -> u64 {
    urn.rsplit(':')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a URN: {urn}"))
}
