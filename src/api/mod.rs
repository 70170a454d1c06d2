//! The only code that speaks HTTP: SoundCloud's API and its OAuth host.
//!
//! [`ApiReader`] can only read; [`ApiWriter`] adds the writes and derefs to
//! a reader. `plan` is handed a reader, so it cannot change the account.
//! Every request goes through one path (`Transport::execute`): the shared
//! rate-limit pause, the write pacer, the `Authorization: OAuth` header
//! (API host only), one token refresh on a 401, the retry policy in
//! [`retry`], error classification, and a debug log line per request.

mod auth;
mod error;
mod models;
mod page;
pub mod retry;
mod upload;

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use crate::model::{Fields, RemotePlaylist, RemoteTrack, RemoteUser, Urn, UrnKind};
use crate::secret::Secret;

pub use auth::{
    LoginOptions, MemoryTokenStore, PendingLogin, RefreshGuard, TokenSet, TokenStore, login,
};
pub use error::{ApiError, Incomplete, StoreError, TransportKind, service_message};
pub use retry::RetryPolicy;

use auth::Session;
use retry::{Pacer, WriteLimiter};

/// Path of the token endpoint on the auth host.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";
/// Page size asked of every collection (the service's maximum).
pub const PAGE_SIZE: u32 = 200;
/// The `access` filter sent on every read that lists tracks, so blocked
/// tracks are seen (and kept in playlist PUTs).
pub const ALL_ACCESS: &str = "playable,preview,blocked";
/// Largest response body read into memory.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Installs rustls' `ring` crypto provider for the process. reqwest is built
/// without a default provider, so this must run before a client is built;
/// calling it again is harmless.
/// HTTP 429 answers this process has seen, for the daemon's metrics.
static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);

/// How many HTTP 429 answers this process has seen (retried or not).
pub fn rate_limited_responses() -> u64 {
    RATE_LIMITED.load(Ordering::Relaxed)
}

pub fn install_crypto_provider() {
    // An error only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where and how to talk to SoundCloud.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// API base, `https://api.soundcloud.com` (the emulator in tests).
    pub api_url: Url,
    /// OAuth host, `https://secure.soundcloud.com`.
    pub auth_url: Url,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub user_agent: String,
    pub connect_timeout: Duration,
    /// No data received for this long fails the request.
    pub read_timeout: Duration,
    /// Total time allowed for one non-upload request.
    pub request_timeout: Duration,
    /// A listing with more pages than this is abandoned as incomplete.
    pub max_pages: usize,
    /// Minimum spacing between the starts of two writes (client-side limiter).
    pub write_interval: Duration,
    /// Refresh the access token when it expires within this margin.
    pub refresh_margin: Duration,
    /// Playlists whose track lists are fetched at once during a pull.
    pub playlist_concurrency: usize,
    pub retry: RetryPolicy,
}

impl ApiConfig {
    pub const DEFAULT_API_URL: &'static str = "https://api.soundcloud.com";
    pub const DEFAULT_AUTH_URL: &'static str = "https://secure.soundcloud.com";

    /// The production hosts and conservative defaults.
    pub fn new(client_id: impl Into<String>, client_secret: Option<Secret>) -> ApiConfig {
        ApiConfig {
            api_url: Url::parse(Self::DEFAULT_API_URL).expect("constant URL"),
            auth_url: Url::parse(Self::DEFAULT_AUTH_URL).expect("constant URL"),
            client_id: client_id.into(),
            client_secret,
            user_agent: concat!("scsync/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(120),
            max_pages: 1000,
            write_interval: Duration::from_millis(1000),
            refresh_margin: Duration::from_secs(300),
            playlist_concurrency: 4,
            retry: RetryPolicy::default(),
        }
    }

    /// The production defaults with the given hosts (the manifest's
    /// `account.api_url` / `auth_url`).
    pub fn with_hosts(
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
        api_url: &str,
        auth_url: &str,
    ) -> Result<ApiConfig, ApiError> {
        let mut config = ApiConfig::new(client_id, client_secret);
        config.api_url = parse_base_url(api_url)?;
        config.auth_url = parse_base_url(auth_url)?;
        Ok(config)
    }

    /// Points both hosts at one base (the emulator serves both), with fast
    /// retries and no write spacing: the settings integration tests want.
    pub fn for_emulator(
        base: &str,
        client_id: impl Into<String>,
        client_secret: Option<Secret>,
    ) -> Result<ApiConfig, ApiError> {
        let mut config = ApiConfig::new(client_id, client_secret);
        config.api_url = parse_base_url(base)?;
        config.auth_url = parse_base_url(base)?;
        config.retry = RetryPolicy::fast();
        config.write_interval = Duration::ZERO;
        Ok(config)
    }
}

/// Parses an API or auth base URL. Plain `http` is accepted only for
/// loopback hosts (the emulator), so a token never crosses a network in
/// clear text.
pub fn parse_base_url(text: &str) -> Result<Url, ApiError> {
    let url = Url::parse(text.trim()).map_err(|e| ApiError::Config {
        detail: format!("{text:?} is not a URL ({e})"),
    })?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => {
            return Err(ApiError::Config {
                detail: format!(
                    "{text:?} uses {other}; use https (plain http is only for 127.0.0.1)"
                ),
            });
        }
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(ApiError::Config {
            detail: format!("{text:?} has no host"),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::Config {
            detail: format!("{text:?} must not carry a query or fragment"),
        });
    }
    Ok(url)
}

/// What a request may do, which decides how its failures are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// A GET: every transient failure is retried.
    Read,
    /// An idempotent write (PUT, DELETE, like): 429/503 back off; a
    /// 500/502/504, timeout or broken connection is ambiguous.
    Write,
    /// A write that creates something (upload, playlist create): like
    /// `Write`, and a 503 is ambiguous too, since a repeat would duplicate.
    Create,
    /// A token grant: retried like a read (a repeated grant at worst fails
    /// with `invalid_grant`, which is handled).
    Token,
}

impl CallKind {
    fn is_write(self) -> bool {
        matches!(self, CallKind::Write | CallKind::Create)
    }
}

/// How a request authenticates.
pub(crate) enum CallAuth {
    /// The session's access token (refreshed when due and once on a 401).
    Session,
    /// A given access token, no refresh (sign-out).
    Token(Secret),
    /// HTTP Basic with the client id and secret (client credentials).
    Basic,
    None,
}

pub(crate) enum CallBody {
    Empty,
    Json(Value),
    /// A form to the token endpoint; values may be secrets.
    TokenForm(Vec<(&'static str, Secret)>),
    /// A track upload, rebuilt (and its files re-opened) for each attempt.
    Upload(upload::TrackUpload),
}

pub(crate) struct Call {
    method: Method,
    url: Url,
    kind: CallKind,
    auth: CallAuth,
    body: CallBody,
    /// Accept a 3xx as the answer (resolve).
    accept_redirect: bool,
    /// Total time limit; `None` for uploads, which take as long as they take.
    timeout: Option<Duration>,
}

impl Call {
    fn path(&self) -> &str {
        self.url.path()
    }
}

/// A response read in full.
pub(crate) struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self, call: &Call) -> Result<Value, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| ApiError::Decode {
            method: call.method.clone(),
            path: call.path().to_owned(),
            detail: format!("the body is not JSON ({e})"),
        })
    }
}

/// The HTTP client plus everything shared by the requests it sends.
pub(crate) struct Transport {
    http: reqwest::Client,
    config: ApiConfig,
    pacer: Pacer,
    writes: WriteLimiter,
}

impl Transport {
    pub(crate) fn new(config: ApiConfig) -> Result<Transport, ApiError> {
        install_crypto_provider();
        let api_origin = config.api_url.origin();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            // Follow only within the API origin (so the token stays there),
            // and never for /resolve, whose 302 is the answer.
            let resolving = attempt
                .previous()
                .first()
                .is_some_and(|u| u.path().ends_with("/resolve"));
            if resolving || attempt.previous().len() >= 5 || attempt.url().origin() != api_origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .redirect(redirects)
            .build()
            .map_err(|e| ApiError::Config {
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Transport {
            writes: WriteLimiter::new(config.write_interval),
            http,
            config,
            pacer: Pacer::default(),
        })
    }

    /// A URL on the API host: base path + `segments` (each encoded as one
    /// path segment; URN colons stay as they are) + `query`.
    pub(crate) fn api_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        build_url(&self.config.api_url, segments, query)
    }

    pub(crate) fn auth_url(&self, segments: &[&str]) -> Url {
        build_url(&self.config.auth_url, segments, &[])
    }

    /// Whether `url` is on the configured API base (scheme, host and port),
    /// the only place the access token may be sent.
    pub(crate) fn is_api_origin(&self, url: &Url) -> bool {
        url.scheme() == self.config.api_url.scheme()
            && url.host_str() == self.config.api_url.host_str()
            && url.port_or_known_default() == self.config.api_url.port_or_known_default()
    }

    /// Sends `call` under the retry policy.
    pub(crate) async fn execute(
        &self,
        call: &Call,
        session: Option<&Session>,
    ) -> Result<Reply, ApiError> {
        let refreshed = AtomicBool::new(false);
        retry::with_retry(
            &self.config.retry,
            &self.pacer,
            &call.method,
            call.path(),
            || self.attempt(call, session, &refreshed),
        )
        .await
    }

    /// One attempt (plus, on a first 401, one refresh and resend).
    async fn attempt(
        &self,
        call: &Call,
        session: Option<&Session>,
        refreshed: &AtomicBool,
    ) -> Result<Reply, ApiError> {
        self.pacer
            .wait_turn(&self.config.retry, &call.method, call.path())
            .await?;
        if call.kind.is_write() {
            self.writes.wait_turn().await;
        }
        loop {
            let token = match (&call.auth, session) {
                // Boxed: renewing a token sends a request itself.
                (CallAuth::Session, Some(session)) => {
                    Some(Box::pin(session.access_token(self)).await?)
                }
                (CallAuth::Token(token), _) => Some(token.clone()),
                _ => None,
            };
            let reply = self.send_once(call, token.as_ref()).await?;
            let status = reply.status;
            if status.is_success() || (call.accept_redirect && status.is_redirection()) {
                return Ok(reply);
            }
            if status == StatusCode::UNAUTHORIZED
                && let (CallAuth::Session, Some(session), Some(used)) =
                    (&call.auth, session, &token)
                && !refreshed.swap(true, Ordering::SeqCst)
            {
                tracing::debug!(method = %call.method, path = call.path(), "401: refreshing the access token once");
                Box::pin(session.refresh_after_401(self, used)).await?;
                continue;
            }
            return Err(self.status_error(call, &reply));
        }
    }

    async fn send_once(&self, call: &Call, token: Option<&Secret>) -> Result<Reply, ApiError> {
        let mut request = self.http.request(call.method.clone(), call.url.clone());
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        match &call.auth {
            CallAuth::Basic => {
                let secret = self.config.client_secret.as_ref().map(Secret::expose);
                request = request.basic_auth(&self.config.client_id, secret);
            }
            CallAuth::Session | CallAuth::Token(_) => {
                // The token goes to the API host only, whatever the URL.
                if let Some(token) = token
                    && self.is_api_origin(&call.url)
                {
                    request = request.header(AUTHORIZATION, oauth_header(token)?);
                }
            }
            CallAuth::None => {}
        }
        request = match &call.body {
            CallBody::Empty => request,
            CallBody::Json(value) => request.json(value),
            CallBody::TokenForm(pairs) => {
                let exposed: Vec<(&str, &str)> =
                    pairs.iter().map(|(k, v)| (*k, v.expose())).collect();
                request
                    .header("Accept", "application/json; charset=utf-8")
                    .form(&exposed)
            }
            CallBody::Upload(upload) => request.multipart(upload.form().await?),
        };
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(call, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_body(response).await.map_err(|e| match e {
            BodyError::Transport(e) => self.transport_error(call, e),
            BodyError::TooLarge => ApiError::Decode {
                method: call.method.clone(),
                path: call.path().to_owned(),
                detail: format!(
                    "the response is larger than {} MiB",
                    MAX_BODY / (1024 * 1024)
                ),
            },
        })?;
        tracing::debug!(
            method = %call.method,
            path = call.path(),
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, call: &Call, error: reqwest::Error) -> ApiError {
        let kind = if error.is_connect() {
            TransportKind::Connect
        } else if error.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        let error = error.without_url();
        tracing::debug!(method = %call.method, path = call.path(), error = %error, "request failed");
        // A write that never connected was not sent; any other transport
        // failure of a write leaves its outcome open.
        if call.kind.is_write() && kind != TransportKind::Connect {
            return ApiError::AmbiguousWrite {
                method: call.method.clone(),
                path: call.path().to_owned(),
                status: None,
                detail: format!("{}: {error}", kind.describe()),
            };
        }
        ApiError::Transport {
            method: call.method.clone(),
            path: call.path().to_owned(),
            kind,
            source: error,
        }
    }

    /// Classifies a failed response: by status first, then what the body
    /// says (JSON envelope, text or HTML; never fatal because unreadable).
    fn status_error(&self, call: &Call, reply: &Reply) -> ApiError {
        let status = reply.status.as_u16();
        if status == 429 {
            RATE_LIMITED.fetch_add(1, Ordering::Relaxed);
        }
        let content_type = reply
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let mut message = service_message(content_type, &reply.body);
        if reply.status.is_redirection() {
            let target = reply
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| call.url.join(l).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "an unknown place".to_owned());
            message = format!("an unexpected redirect to {target}, not followed");
        }
        let wait = matches!(status, 429 | 503)
            .then(|| {
                let retry_after = reply.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
                retry::server_wait(retry_after, &reply.body, SystemTime::now())
            })
            .flatten();
        let ambiguous = match call.kind {
            CallKind::Write => matches!(status, 500 | 502 | 504),
            CallKind::Create => matches!(status, 500 | 502 | 503 | 504),
            CallKind::Read | CallKind::Token => false,
        };
        // Before parking: a create answered 503 may have happened, however
        // long the service asks to wait, and must be read back first.
        if let Some(wait) = wait
            && wait > self.config.retry.max_wait
            && !ambiguous
        {
            if status == 429 {
                self.pacer.park(wait);
            }
            return retry::parked(&call.method, call.path(), wait);
        }
        if ambiguous {
            let detail = if message.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {message}")
            };
            return ApiError::AmbiguousWrite {
                method: call.method.clone(),
                path: call.path().to_owned(),
                status: Some(status),
                detail,
            };
        }
        ApiError::Status {
            method: call.method.clone(),
            path: call.path().to_owned(),
            status,
            message,
            retry_after: wait,
        }
    }
}

/// `OAuth TOKEN`, marked sensitive so that no debug output shows it.
fn oauth_header(token: &Secret) -> Result<HeaderValue, ApiError> {
    let mut value = HeaderValue::from_str(&format!("OAuth {}", token.expose())).map_err(|_| {
        ApiError::LoginExpired {
            detail: "the stored access token is not valid header text".to_owned(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn build_url(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty();
        path.extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// The client for reading the account. Cheap to clone; clones share the
/// connection pool, the session and the rate-limit pause.
#[derive(Clone)]
pub struct ApiReader {
    transport: Arc<Transport>,
    session: Arc<Session>,
}

/// The client for changing the account; derefs to an [`ApiReader`].
#[derive(Clone)]
pub struct ApiWriter {
    reader: ApiReader,
}

impl Deref for ApiWriter {
    type Target = ApiReader;
    fn deref(&self) -> &ApiReader {
        &self.reader
    }
}

impl ApiReader {
    /// A reader acting as the logged-in user whose tokens `store` holds.
    pub fn new(config: ApiConfig, store: Arc<dyn TokenStore>) -> Result<ApiReader, ApiError> {
        let session = Session::user(store, config.refresh_margin);
        Ok(ApiReader {
            transport: Arc::new(Transport::new(config)?),
            session: Arc::new(session),
        })
    }

    /// A reader for public data with an app token (client credentials),
    /// cached in `store` and renewed by refresh rather than re-issued (the
    /// service issues only about 50 per 12 hours per app).
    pub fn with_client_credentials(
        config: ApiConfig,
        store: Arc<dyn TokenStore>,
    ) -> Result<ApiReader, ApiError> {
        let session = Session::client_credentials(store, config.refresh_margin);
        Ok(ApiReader {
            transport: Arc::new(Transport::new(config)?),
            session: Arc::new(session),
        })
    }

    pub fn config(&self) -> &ApiConfig {
        &self.transport.config
    }

    /// An access token for the session, refreshed first when due (and the
    /// new pair saved before it is returned).
    pub async fn access_token(&self) -> Result<Secret, ApiError> {
        self.session.access_token(&self.transport).await
    }

    async fn get(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<(Call, Reply), ApiError> {
        let call = Call {
            method: Method::GET,
            url: self.transport.api_url(segments, query),
            kind: CallKind::Read,
            auth: CallAuth::Session,
            body: CallBody::Empty,
            accept_redirect: false,
            timeout: Some(self.transport.config.request_timeout),
        };
        let reply = self.transport.execute(&call, Some(&self.session)).await?;
        Ok((call, reply))
    }

    async fn get_object<T>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        parse: fn(&Value) -> Result<T, String>,
    ) -> Result<T, ApiError> {
        let (call, reply) = self.get(segments, query).await?;
        let json = reply.json(&call)?;
        parse(&json).map_err(|detail| decode(&call, detail))
    }

    /// The signed-in user (`GET /me`).
    pub async fn me(&self) -> Result<RemoteUser, ApiError> {
        self.get_object(&["me"], &[], models::user_from_json).await
    }

    /// A user (`GET /users/{urn}`).
    pub async fn user(&self, urn: Urn) -> Result<RemoteUser, ApiError> {
        self.get_object(&["users", &urn.to_string()], &[], models::user_from_json)
            .await
    }

    /// The account's own tracks, private ones included.
    pub async fn my_tracks(&self) -> Result<Vec<RemoteTrack>, ApiError> {
        page::read_all(
            self,
            &["me", "tracks"],
            &[("access", ALL_ACCESS)],
            models::track_from_json,
            |t| t.urn,
        )
        .await
    }

    /// The account's playlists, each with its complete track list in order,
    /// blocked tracks included.
    ///
    /// `/me/playlists` takes no `access` filter, so its embedded track lists
    /// may hide blocked tracks, and `track_count` cannot reveal that (it has
    /// read 0 for every playlist for long periods). A PUT built from such a
    /// list would silently drop the blocked tracks. So playlists are listed
    /// without their tracks, and each list is read from
    /// `/playlists/{urn}/tracks?access=playable,preview,blocked`: one more
    /// call per playlist (per 200 tracks), bounded concurrency.
    pub async fn my_playlists(&self) -> Result<Vec<RemotePlaylist>, ApiError> {
        use futures_util::{StreamExt, TryStreamExt};
        let playlists = page::read_all(
            self,
            &["me", "playlists"],
            &[("show_tracks", "false")],
            models::playlist_from_json,
            |p| p.urn,
        )
        .await?;
        let concurrency = self.transport.config.playlist_concurrency.max(1);
        futures_util::stream::iter(playlists)
            .map(|mut playlist| async move {
                playlist.tracks = self.playlist_tracks(playlist.urn).await?;
                Ok::<_, ApiError>(playlist)
            })
            .buffered(concurrency)
            .try_collect()
            .await
    }

    /// The users the account follows.
    pub async fn my_followings(&self) -> Result<Vec<RemoteUser>, ApiError> {
        page::read_all(
            self,
            &["me", "followings"],
            &[],
            models::user_from_json,
            |u| u.urn,
        )
        .await
    }

    /// The tracks the account likes, blocked ones included.
    pub async fn my_liked_tracks(&self) -> Result<Vec<Urn>, ApiError> {
        page::read_all(
            self,
            &["me", "likes", "tracks"],
            &[("access", ALL_ACCESS)],
            |v| models::urn_from_json(v, UrnKind::Track),
            |u| *u,
        )
        .await
    }

    /// The playlists the account likes.
    pub async fn my_liked_playlists(&self) -> Result<Vec<Urn>, ApiError> {
        page::read_all(
            self,
            &["me", "likes", "playlists"],
            &[],
            |v| models::urn_from_json(v, UrnKind::Playlist),
            |u| *u,
        )
        .await
    }

    /// One track (`GET /tracks/{urn}`).
    pub async fn track(&self, urn: Urn) -> Result<RemoteTrack, ApiError> {
        self.get_object(&["tracks", &urn.to_string()], &[], models::track_from_json)
            .await
    }

    /// One playlist with its complete track list, blocked tracks included.
    pub async fn playlist(&self, urn: Urn) -> Result<RemotePlaylist, ApiError> {
        let mut playlist = self
            .get_object(
                &["playlists", &urn.to_string()],
                &[("show_tracks", "false")],
                models::playlist_from_json,
            )
            .await?;
        playlist.tracks = self.playlist_tracks(urn).await?;
        Ok(playlist)
    }

    /// A playlist's tracks in order, blocked ones included.
    pub async fn playlist_tracks(&self, urn: Urn) -> Result<Vec<Urn>, ApiError> {
        page::read_all(
            self,
            &["playlists", &urn.to_string(), "tracks"],
            &[("access", ALL_ACCESS)],
            |v| models::urn_from_json(v, UrnKind::Track),
            |u| *u,
        )
        .await
    }

    /// Resolves a soundcloud.com URL to the URN of what it names.
    pub async fn resolve(&self, url: &str) -> Result<Urn, ApiError> {
        let call = Call {
            method: Method::GET,
            url: self.transport.api_url(&["resolve"], &[("url", url)]),
            kind: CallKind::Read,
            auth: CallAuth::Session,
            body: CallBody::Empty,
            accept_redirect: true,
            timeout: Some(self.transport.config.request_timeout),
        };
        let reply = match self.transport.execute(&call, Some(&self.session)).await {
            Ok(reply) => reply,
            Err(e) if e.is_not_found() => {
                return Err(ApiError::ResolveNotFound {
                    url: url.to_owned(),
                });
            }
            Err(e) => return Err(e),
        };
        if reply.status.is_redirection() {
            let location = reply
                .headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    // The body repeats it: {"status": "302 - Found", "location": ...}.
                    serde_json::from_slice::<Value>(&reply.body)
                        .ok()?
                        .get("location")?
                        .as_str()
                        .map(str::to_owned)
                })
                .ok_or_else(|| decode(&call, "a redirect without a Location".to_owned()))?;
            return urn_from_location(&location).ok_or_else(|| {
                decode(
                    &call,
                    format!("cannot find a URN in the resolved location {location:?}"),
                )
            });
        }
        // A server that answers with the object itself.
        let json = reply.json(&call)?;
        let object = json
            .as_object()
            .ok_or_else(|| decode(&call, "not an object".to_owned()))?;
        let kind = match object.get("kind").and_then(Value::as_str) {
            Some("track") => UrnKind::Track,
            Some("playlist") => UrnKind::Playlist,
            Some("user") => UrnKind::User,
            _ => {
                return object
                    .get("urn")
                    .and_then(Value::as_str)
                    .and_then(Urn::parse)
                    .ok_or_else(|| decode(&call, "the resolved object has no urn".to_owned()));
            }
        };
        models::urn_of(object, kind)
            .ok_or_else(|| decode(&call, "the resolved object has no urn".to_owned()))
    }
}

fn decode(call: &Call, detail: String) -> ApiError {
    ApiError::Decode {
        method: call.method.clone(),
        path: call.path().to_owned(),
        detail,
    }
}

/// The URN named by a resolve `Location`: `/tracks/123`,
/// `/tracks/soundcloud:tracks:123` or its percent-encoded form, absolute or
/// relative, with or without a query.
pub fn urn_from_location(location: &str) -> Option<Urn> {
    let base = Url::parse("https://api.soundcloud.com/").ok()?;
    let url = base.join(location.trim()).ok()?;
    let segments: Vec<String> = url
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (kind_segment, id_segment) = match segments.as_slice() {
        [.., kind, id] => (kind.as_str(), id.as_str()),
        _ => return None,
    };
    let kind = match kind_segment {
        "tracks" => UrnKind::Track,
        "playlists" => UrnKind::Playlist,
        "users" => UrnKind::User,
        _ => return None,
    };
    if let Some(urn) = Urn::parse(id_segment) {
        return (urn.kind == kind).then_some(urn);
    }
    if id_segment.is_empty() || !id_segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Urn {
        kind,
        id: id_segment.parse().ok()?,
    })
}

impl ApiWriter {
    /// A writer acting as the logged-in user whose tokens `store` holds.
    pub fn new(config: ApiConfig, store: Arc<dyn TokenStore>) -> Result<ApiWriter, ApiError> {
        Ok(ApiWriter {
            reader: ApiReader::new(config, store)?,
        })
    }

    /// A read-only handle sharing this writer's client and session.
    pub fn reader(&self) -> ApiReader {
        self.reader.clone()
    }

    async fn write(
        &self,
        method: Method,
        kind: CallKind,
        segments: &[&str],
        body: CallBody,
        timeout: Option<Duration>,
    ) -> Result<(Call, Reply), ApiError> {
        let call = Call {
            method,
            url: self.transport.api_url(segments, &[]),
            kind,
            auth: CallAuth::Session,
            body,
            accept_redirect: false,
            timeout,
        };
        let reply = self.transport.execute(&call, Some(&self.session)).await?;
        Ok((call, reply))
    }

    fn request_timeout(&self) -> Option<Duration> {
        Some(self.transport.config.request_timeout)
    }

    /// Uploads a track: `POST /tracks` as multipart, the audio streamed from
    /// disk with its length (memory does not grow with the file), the
    /// artwork too when given. The files are re-opened for each attempt.
    ///
    /// A failure after the request may have reached the service (a 5xx, a
    /// timeout, a broken connection) is [`ApiError::AmbiguousWrite`]: look
    /// for the track among the account's tracks before uploading again.
    pub async fn upload_track(
        &self,
        file: &Path,
        artwork: Option<&Path>,
        fields: &Fields,
    ) -> Result<RemoteTrack, ApiError> {
        let upload = upload::TrackUpload::new(file, artwork, fields).await?;
        let (call, reply) = self
            .write(
                Method::POST,
                CallKind::Create,
                &["tracks"],
                CallBody::Upload(upload),
                None,
            )
            .await?;
        created(&call, &reply, models::track_from_json)
    }

    /// Changes the given fields of a track (`PUT /tracks/{urn}` with only
    /// those fields). With no fields nothing is sent and the track is read.
    pub async fn update_track(&self, urn: Urn, fields: &Fields) -> Result<RemoteTrack, ApiError> {
        if fields.is_empty() {
            return self.track(urn).await;
        }
        let body = json!({ "track": models::fields_to_json(fields) });
        let urn_text = urn.to_string();
        let (call, reply) = self
            .write(
                Method::PUT,
                CallKind::Write,
                &["tracks", &urn_text],
                CallBody::Json(body),
                self.request_timeout(),
            )
            .await?;
        match reply.json(&call).ok().map(|v| models::track_from_json(&v)) {
            Some(Ok(track)) => Ok(track),
            // The change was accepted; read the result back.
            _ => self.track(urn).await,
        }
    }

    pub async fn delete_track(&self, urn: Urn) -> Result<(), ApiError> {
        self.bodiless_write(Method::DELETE, &["tracks", &urn.to_string()])
            .await
    }

    /// Creates a playlist (`POST /playlists`). The returned track list is
    /// what the service echoed; read the playlist back for the full list.
    pub async fn create_playlist(
        &self,
        fields: &Fields,
        tracks: &[Urn],
    ) -> Result<RemotePlaylist, ApiError> {
        let body = playlist_body(fields, tracks);
        let (call, reply) = self
            .write(
                Method::POST,
                CallKind::Create,
                &["playlists"],
                CallBody::Json(body),
                self.request_timeout(),
            )
            .await?;
        created(&call, &reply, models::playlist_from_json)
    }

    /// Updates a playlist (`PUT /playlists/{urn}`): the given fields and the
    /// complete track list, since a PUT replaces the list. `Ok` means the
    /// service accepted it; to verify, read it back with
    /// [`ApiReader::playlist`] (the PUT's own answer may hide blocked
    /// tracks, so it is not used).
    pub async fn update_playlist(
        &self,
        urn: Urn,
        fields: &Fields,
        tracks: &[Urn],
    ) -> Result<(), ApiError> {
        let body = playlist_body(fields, tracks);
        let urn_text = urn.to_string();
        self.write(
            Method::PUT,
            CallKind::Write,
            &["playlists", &urn_text],
            CallBody::Json(body),
            self.request_timeout(),
        )
        .await
        .map(drop)
    }

    pub async fn delete_playlist(&self, urn: Urn) -> Result<(), ApiError> {
        self.bodiless_write(Method::DELETE, &["playlists", &urn.to_string()])
            .await
    }

    /// `PUT /me/followings/{urn}`.
    pub async fn follow(&self, user: Urn) -> Result<(), ApiError> {
        self.bodiless_write(Method::PUT, &["me", "followings", &user.to_string()])
            .await
    }

    /// `DELETE /me/followings/{urn}`.
    pub async fn unfollow(&self, user: Urn) -> Result<(), ApiError> {
        self.bodiless_write(Method::DELETE, &["me", "followings", &user.to_string()])
            .await
    }

    /// `POST /likes/tracks/{urn}`.
    pub async fn like_track(&self, track: Urn) -> Result<(), ApiError> {
        self.like(Method::POST, "tracks", track).await
    }

    /// `DELETE /likes/tracks/{urn}`.
    pub async fn unlike_track(&self, track: Urn) -> Result<(), ApiError> {
        self.like(Method::DELETE, "tracks", track).await
    }

    /// `POST /likes/playlists/{urn}`.
    pub async fn like_playlist(&self, playlist: Urn) -> Result<(), ApiError> {
        self.like(Method::POST, "playlists", playlist).await
    }

    /// `DELETE /likes/playlists/{urn}`.
    pub async fn unlike_playlist(&self, playlist: Urn) -> Result<(), ApiError> {
        self.like(Method::DELETE, "playlists", playlist).await
    }

    async fn like(&self, method: Method, kind: &str, urn: Urn) -> Result<(), ApiError> {
        // Liking is idempotent, so a like is a plain write, not a create.
        self.bodiless_write(method, &["likes", kind, &urn.to_string()])
            .await
    }

    /// A write with no body whose answer is not needed: deletes, follows,
    /// likes (all idempotent, so `CallKind::Write`, not a create).
    async fn bodiless_write(&self, method: Method, segments: &[&str]) -> Result<(), ApiError> {
        self.write(
            method,
            CallKind::Write,
            segments,
            CallBody::Empty,
            self.request_timeout(),
        )
        .await
        .map(drop)
    }

    /// Ends the session on the service (`POST /sign-out` on the API host).
    /// The stored token is used as is, without refreshing; a token the
    /// service no longer knows (401) counts as signed out. The caller then
    /// forgets the stored tokens.
    pub async fn sign_out(&self) -> Result<(), ApiError> {
        let Some(token) = self.session.stored_access_token()? else {
            return Ok(());
        };
        let call = Call {
            method: Method::POST,
            url: self.transport.api_url(&["sign-out"], &[]),
            kind: CallKind::Write,
            auth: CallAuth::Token(token),
            body: CallBody::Empty,
            accept_redirect: false,
            timeout: self.request_timeout(),
        };
        match self.transport.execute(&call, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(401) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn playlist_body(fields: &Fields, tracks: &[Urn]) -> Value {
    let mut playlist = models::fields_to_json(fields);
    let tracks: Vec<Value> = tracks
        .iter()
        .map(|u| json!({ "urn": u.to_string() }))
        .collect();
    playlist.insert("tracks".to_owned(), Value::Array(tracks));
    json!({ "playlist": playlist })
}

/// Reads what a create answered. A 2xx whose body cannot be read still
/// created something we cannot name, so it is an ambiguous write.
fn created<T>(
    call: &Call,
    reply: &Reply,
    parse: fn(&Value) -> Result<T, String>,
) -> Result<T, ApiError> {
    let parsed = reply
        .json(call)
        .map_err(|e| e.to_string())
        .and_then(|v| parse(&v));
    parsed.map_err(|detail| ApiError::AmbiguousWrite {
        method: call.method.clone(),
        path: call.path().to_owned(),
        status: Some(reply.status.as_u16()),
        detail: format!("the service accepted it, but its answer could not be read: {detail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_locations_in_every_form_give_the_urn() {
        let cases = [
            (
                "https://api.soundcloud.com/tracks/2088703866",
                Urn::track(2_088_703_866),
            ),
            (
                "https://api.soundcloud.com/tracks/soundcloud:tracks:2088703866",
                Urn::track(2_088_703_866),
            ),
            (
                "https://api.soundcloud.com/tracks/soundcloud%3Atracks%3A5?secret_token=s-1",
                Urn::track(5),
            ),
            ("/users/soundcloud:users:42", Urn::user(42)),
            ("http://127.0.0.1:9999/playlists/77", Urn::playlist(77)),
            ("https://api.soundcloud.com/v1/users/8/", Urn::user(8)),
        ];
        for (location, urn) in cases {
            assert_eq!(urn_from_location(location), Some(urn), "{location}");
        }
    }

    #[test]
    fn resolve_locations_that_name_nothing_we_sync_are_rejected() {
        for location in [
            "https://api.soundcloud.com/comments/5",
            "https://api.soundcloud.com/tracks/soundcloud:users:5",
            "https://api.soundcloud.com/tracks/abc",
            "https://api.soundcloud.com/tracks/",
            "",
        ] {
            assert_eq!(urn_from_location(location), None, "{location}");
        }
    }

    #[test]
    fn base_urls_must_be_https_unless_loopback() {
        assert!(parse_base_url("https://api.soundcloud.com").is_ok());
        assert!(parse_base_url("http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("http://[::1]:8080").is_ok());
        assert!(parse_base_url("http://localhost:1").is_ok());
        assert!(parse_base_url("http://api.soundcloud.com").is_err());
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://x/?a=1").is_err());
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn api_urls_keep_urn_paths_and_the_base_path() {
        let base = Url::parse("http://127.0.0.1:8080/api/").unwrap();
        let url = build_url(
            &base,
            &["tracks", "soundcloud:tracks:5"],
            &[("access", ALL_ACCESS)],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/api/tracks/soundcloud:tracks:5?access=playable%2Cpreview%2Cblocked"
        );
        let url = build_url(
            &Url::parse("https://api.soundcloud.com").unwrap(),
            &["me"],
            &[],
        );
        assert_eq!(url.as_str(), "https://api.soundcloud.com/me");
    }

    #[test]
    fn playlist_bodies_carry_the_whole_track_list_as_urns() {
        let mut fields = Fields::new();
        fields.insert(
            "title".into(),
            crate::model::FieldValue::Text("Best".into()),
        );
        let body = playlist_body(&fields, &[Urn::track(4_294_967_296), Urn::track(1)]);
        assert_eq!(
            body,
            json!({"playlist": {"title": "Best", "tracks": [
                {"urn": "soundcloud:tracks:4294967296"}, {"urn": "soundcloud:tracks:1"}
            ]}})
        );
    }
}

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod fake_server;
