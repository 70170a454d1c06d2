//! The shared state, the router, and the layer every API request passes
//! through: latency, fault rules and the request log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::auth::AuthStore;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::routes::{
    MAX_BODY_BYTES, control, drain, oauth, playlists, reads, resolve, social, tracks,
};
use crate::world::World;

/// The request log keeps at most this many entries (oldest dropped), so a
/// long benchmark cannot grow it without bound.
const LOG_CAPACITY: usize = 100_000;

/// Cap for form bodies of the auth host.
const SMALL_BODY: usize = 64 << 10;

/// Everything the handlers share. One lock guards all mutable state; no
/// handler holds it across an `.await`.
pub struct Shared {
    pub base_url: String,
    pub latency: Duration,
    inner: Mutex<Inner>,
}

pub struct Inner {
    pub world: World,
    pub auth: AuthStore,
    pub faults: Faults,
    pub log: RequestLog,
}

impl Shared {
    pub fn new(base_url: String, latency: Duration, world: World) -> Shared {
        Shared {
            base_url,
            latency,
            inner: Mutex::new(Inner {
                world,
                auth: AuthStore::default(),
                faults: Faults::default(),
                log: RequestLog::default(),
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked cannot have left the world half-changed
        // in a way worth refusing every later request for.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One served request, as `GET /_emulator/requests` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub authorized: bool,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    entries: VecDeque<LogEntry>,
}

impl RequestLog {
    fn push(&mut self, entry: LogEntry) {
        if self.entries.len() >= LOG_CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/authorize", get(oauth::authorize))
        .route(
            "/oauth/token",
            post(oauth::token).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route(
            "/sign-out",
            post(oauth::sign_out).layer(DefaultBodyLimit::max(SMALL_BODY)),
        )
        .route("/me", get(reads::me))
        .route("/me/tracks", get(reads::me_tracks))
        .route("/me/playlists", get(reads::me_playlists))
        .route("/me/followings", get(reads::me_followings))
        .route(
            "/me/followings/{urn}",
            get(reads::me_following)
                .put(social::follow)
                .delete(social::unfollow),
        )
        .route("/me/likes/tracks", get(reads::me_liked_tracks))
        .route("/me/likes/playlists", get(reads::me_liked_playlists))
        .route("/users/{urn}", get(reads::user))
        .route("/tracks", get(reads::tracks).post(tracks::upload))
        .route(
            "/tracks/{urn}",
            get(reads::track).put(tracks::update).delete(tracks::delete),
        )
        .route("/playlists", post(playlists::create))
        .route(
            "/playlists/{urn}",
            get(reads::playlist)
                .put(playlists::update)
                .delete(playlists::delete),
        )
        .route("/playlists/{urn}/tracks", get(reads::playlist_tracks))
        .route(
            "/likes/tracks/{urn}",
            post(social::like_track).delete(social::unlike_track),
        )
        .route(
            "/likes/playlists/{urn}",
            post(social::like_playlist).delete(social::unlike_playlist),
        )
        .route("/resolve", get(resolve::resolve))
        .route("/_emulator/seed", post(control::seed))
        .route("/_emulator/state", get(control::state))
        .route(
            "/_emulator/requests",
            get(control::requests).delete(control::clear_requests),
        )
        .route("/_emulator/requests/clear", post(control::clear_requests))
        .route(
            "/_emulator/faults",
            get(control::faults)
                .post(control::add_faults)
                .delete(control::clear_faults)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/_emulator/tokens/expire", post(control::expire_tokens))
        .fallback(unknown_path)
        .method_not_allowed_fallback(unknown_route)
        .layer(middleware::from_fn_with_state(shared.clone(), emulate))
        // Uploads are streamed and capped by `limits.max_upload_bytes`,
        // seeds are as large as the world a test wants; other bodies are
        // capped per route or where they are read.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

async fn unknown_path() -> ApiError {
    ApiError::not_found("")
}

/// The service answers a known path with the wrong method like this.
async fn unknown_route() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "unknown route",
    )
        .into_response()
}

fn is_control(path: &str) -> bool {
    path == "/_emulator" || path.starts_with("/_emulator/")
}

async fn emulate(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if is_control(&path) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or("").to_string();
    let authorized = request.headers().contains_key(header::AUTHORIZATION);
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let firing = shared.lock().faults.check(&method, &path);
    let response = match firing {
        None => next.run(request).await,
        Some(firing) => {
            if firing.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(firing.delay_ms)).await;
            }
            match &firing.failure {
                Some(failure) => {
                    if firing.commit {
                        // The change happens; the client still sees the failure.
                        drop(next.run(request).await);
                    } else {
                        drain(request.into_body()).await;
                    }
                    failure.response()
                }
                None => {
                    if let Some(fault) = firing.page_fault {
                        request.extensions_mut().insert(fault);
                    }
                    next.run(request).await
                }
            }
        }
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "served");
    shared.lock().log.push(LogEntry {
        method: method.to_string(),
        path,
        query,
        status: response.status().as_u16(),
        authorized,
    });
    response
}
