//! OAuth with SoundCloud: the PKCE login, token refresh, app tokens
//! (client credentials), and the session that hands out access tokens.
//!
//! Refresh tokens are single use. A refreshed pair is saved through the
//! [`TokenStore`] before the new access token is used, so a crash cannot
//! lose the session; refreshes are serialised in-process and, through
//! [`TokenStore::lock_for_refresh`], across the processes sharing the store;
//! a refused refresh (`invalid_grant`) re-reads the store first, since a
//! client that took no lock may have refreshed with the same token.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use url::Url;

use super::models::WireToken;
use super::{ApiConfig, ApiError, Call, CallAuth, CallBody, CallKind, StoreError, Transport};
use crate::secret::Secret;

/// An access token with what is needed to renew it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub expires_at: i64,
    pub scope: String,
}

impl TokenSet {
    /// Whether the access token expires within `margin` of `now` (unix s).
    pub fn expires_within(&self, margin: Duration, now: i64) -> bool {
        let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
        self.expires_at.saturating_sub(margin) <= now
    }
}

/// Where tokens persist (the state database, through an adapter). `save`
/// must be durable (committed) when it returns: the caller uses the new
/// access token only afterwards.
pub trait TokenStore: Send + Sync {
    fn load(&self) -> Result<Option<TokenSet>, StoreError>;
    fn save(&self, tokens: &TokenSet) -> Result<(), StoreError>;

    /// Keeps every other process sharing this store from refreshing until
    /// the guard is dropped, so that two processes never spend the same
    /// single-use refresh token. Held from re-reading the stored tokens until
    /// the new pair is saved. It may block while another process refreshes
    /// (it is called on a blocking thread). A store no other process can
    /// see has nothing to exclude.
    fn lock_for_refresh(&self) -> Result<RefreshGuard, StoreError> {
        Ok(RefreshGuard::none())
    }
}

/// Proof that [`TokenStore::lock_for_refresh`] excluded other processes;
/// dropping it lets them refresh again.
#[must_use = "the lock is released when the guard is dropped"]
pub struct RefreshGuard(Option<Box<dyn Send>>);

impl RefreshGuard {
    /// A guard that releases `held` (a lock) when dropped.
    pub fn new(held: impl Send + 'static) -> RefreshGuard {
        RefreshGuard(Some(Box::new(held)))
    }

    /// Nothing to release.
    pub fn none() -> RefreshGuard {
        RefreshGuard(None)
    }
}

impl std::fmt::Debug for RefreshGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "RefreshGuard(held)"
        } else {
            "RefreshGuard(none)"
        })
    }
}

/// A store in memory, for tests and the demo.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<Option<TokenSet>>,
}

impl MemoryTokenStore {
    pub fn new(tokens: Option<TokenSet>) -> MemoryTokenStore {
        MemoryTokenStore {
            tokens: Mutex::new(tokens),
        }
    }

    pub fn get(&self) -> Option<TokenSet> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> Result<Option<TokenSet>, StoreError> {
        Ok(self.get())
    }

    fn save(&self, tokens: &TokenSet) -> Result<(), StoreError> {
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokens.clone());
        Ok(())
    }
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    /// A user's login, renewed with its refresh token.
    User,
    /// An app token for public reads, renewed by refresh or re-issued.
    ClientCredentials,
}

/// Hands out access tokens, renewing them when due.
pub(crate) struct Session {
    grant: Grant,
    store: Arc<dyn TokenStore>,
    current: Mutex<Option<TokenSet>>,
    renewing: tokio::sync::Mutex<()>,
    margin: Duration,
}

impl Session {
    pub(crate) fn user(store: Arc<dyn TokenStore>, margin: Duration) -> Session {
        Session::new(Grant::User, store, margin)
    }

    pub(crate) fn client_credentials(store: Arc<dyn TokenStore>, margin: Duration) -> Session {
        Session::new(Grant::ClientCredentials, store, margin)
    }

    fn new(grant: Grant, store: Arc<dyn TokenStore>, margin: Duration) -> Session {
        Session {
            grant,
            store,
            current: Mutex::new(None),
            renewing: tokio::sync::Mutex::new(()),
            margin,
        }
    }

    fn current(&self) -> Option<TokenSet> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_current(&self, tokens: TokenSet) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokens);
    }

    fn load(&self) -> Result<Option<TokenSet>, ApiError> {
        self.store.load().map_err(|source| ApiError::TokenStore {
            action: "read",
            source,
        })
    }

    /// Saves a new pair, then makes it current: never the other way round.
    fn commit(&self, tokens: TokenSet) -> Result<Secret, ApiError> {
        self.store
            .save(&tokens)
            .map_err(|source| ApiError::TokenStore {
                action: "save",
                source,
            })?;
        let access = tokens.access_token.clone();
        self.set_current(tokens);
        Ok(access)
    }

    /// The access token as stored, without renewing it (for sign-out).
    pub(crate) fn stored_access_token(&self) -> Result<Option<Secret>, ApiError> {
        Ok(match self.current() {
            Some(tokens) => Some(tokens.access_token),
            None => self.load()?.map(|t| t.access_token),
        })
    }

    /// A usable access token, renewed first when it is about to expire.
    pub(crate) async fn access_token(&self, transport: &Transport) -> Result<Secret, ApiError> {
        let current = match self.current() {
            Some(tokens) => Some(tokens),
            None => {
                let loaded = self.load()?;
                if let Some(tokens) = &loaded {
                    self.set_current(tokens.clone());
                }
                loaded
            }
        };
        if let Some(tokens) = &current {
            let renewable =
                tokens.refresh_token.is_some() || self.grant == Grant::ClientCredentials;
            if !tokens.expires_within(self.margin, now_unix()) || !renewable {
                // A token that cannot be renewed is used until refused.
                return Ok(tokens.access_token.clone());
            }
        }
        self.renew(transport, current.map(|t| t.access_token)).await
    }

    /// Renews after the service refused `used` with a 401.
    pub(crate) async fn refresh_after_401(
        &self,
        transport: &Transport,
        used: &Secret,
    ) -> Result<Secret, ApiError> {
        self.renew(transport, Some(used.clone())).await
    }

    async fn renew(
        &self,
        transport: &Transport,
        stale: Option<Secret>,
    ) -> Result<Secret, ApiError> {
        let _one_at_a_time = self.renewing.lock().await;
        let _no_other_process = self.lock_across_processes().await?;
        let stored = self.load()?;
        // Another task or process may have renewed while we waited.
        if let Some(tokens) = &stored
            && Some(&tokens.access_token) != stale.as_ref()
            && !tokens.expires_within(self.margin, now_unix())
        {
            self.set_current(tokens.clone());
            return Ok(tokens.access_token.clone());
        }
        match self.grant {
            Grant::User => self.refresh_user(transport, stored).await,
            Grant::ClientCredentials => self.renew_app(transport, stored).await,
        }
    }

    /// Takes the store's cross-process refresh lock on a blocking thread.
    async fn lock_across_processes(&self) -> Result<RefreshGuard, ApiError> {
        let store = self.store.clone();
        let failed = |source: StoreError| ApiError::TokenStore {
            action: "lock",
            source,
        };
        tokio::task::spawn_blocking(move || store.lock_for_refresh())
            .await
            .map_err(|join| failed(Box::new(join)))?
            .map_err(failed)
    }

    async fn refresh_user(
        &self,
        transport: &Transport,
        stored: Option<TokenSet>,
    ) -> Result<Secret, ApiError> {
        let Some(mut tokens) = stored else {
            return Err(ApiError::NotLoggedIn);
        };
        // Two rounds: ours, then once more with a pair another process saved.
        for _ in 0..2 {
            let Some(refresh) = tokens.refresh_token.clone() else {
                return Err(ApiError::LoginExpired {
                    detail: "the access token expired and no refresh token is stored".to_owned(),
                });
            };
            match refresh_grant(transport, &refresh).await {
                Ok(mut fresh) => {
                    if fresh.refresh_token.is_none() {
                        fresh.refresh_token = Some(refresh);
                    }
                    tracing::debug!("access token refreshed");
                    return self.commit(fresh);
                }
                Err(e) if is_invalid_grant(&e) => match self.load()? {
                    Some(latest) if latest.refresh_token.as_ref() != Some(&refresh) => {
                        tracing::debug!("refresh refused; another process had already refreshed");
                        if !latest.expires_within(self.margin, now_unix()) {
                            let access = latest.access_token.clone();
                            self.set_current(latest);
                            return Ok(access);
                        }
                        tokens = latest;
                    }
                    _ => {
                        return Err(ApiError::LoginExpired {
                            detail: "SoundCloud refused the stored refresh token (invalid_grant)"
                                .to_owned(),
                        });
                    }
                },
                Err(e) => return Err(renewal_error(e)),
            }
        }
        Err(ApiError::LoginExpired {
            detail: "SoundCloud refused the refresh tokens saved by this and another process"
                .to_owned(),
        })
    }

    async fn renew_app(
        &self,
        transport: &Transport,
        stored: Option<TokenSet>,
    ) -> Result<Secret, ApiError> {
        // Refreshing spares the small per-app budget of new app tokens.
        if let Some(refresh) = stored.and_then(|t| t.refresh_token) {
            match refresh_grant(transport, &refresh).await {
                Ok(mut fresh) => {
                    if fresh.refresh_token.is_none() {
                        fresh.refresh_token = Some(refresh);
                    }
                    return self.commit(fresh);
                }
                Err(e) if is_invalid_grant(&e) => {}
                Err(e) => return Err(renewal_error(e)),
            }
        }
        let fresh = client_credentials_grant(transport)
            .await
            .map_err(renewal_error)?;
        tracing::debug!("new app token issued");
        self.commit(fresh)
    }
}

fn is_invalid_grant(error: &ApiError) -> bool {
    matches!(error, ApiError::Status { status: 400 | 401, message, .. } if message.contains("invalid_grant"))
}

/// Keeps errors that already say what to do; wraps the rest, so that a
/// failed renewal is not retried again by the request that needed it.
fn renewal_error(error: ApiError) -> ApiError {
    match error {
        e @ (ApiError::Parked { .. }
        | ApiError::TokenStore { .. }
        | ApiError::NotLoggedIn
        | ApiError::LoginExpired { .. }
        | ApiError::Config { .. }) => e,
        other => ApiError::TokenRenewal {
            source: Box::new(other),
        },
    }
}

async fn token_call(
    transport: &Transport,
    form: Vec<(&'static str, Secret)>,
    basic: bool,
) -> Result<TokenSet, ApiError> {
    let call = Call {
        method: reqwest::Method::POST,
        url: transport.auth_url(&["oauth", "token"]),
        kind: CallKind::Token,
        auth: if basic {
            CallAuth::Basic
        } else {
            CallAuth::None
        },
        body: CallBody::TokenForm(form),
        accept_redirect: false,
        timeout: Some(transport.config.request_timeout),
    };
    let reply = transport.execute(&call, None).await?;
    // serde's message names the problem, never the token's text.
    let wire: WireToken = serde_json::from_slice(&reply.body).map_err(|e| ApiError::Decode {
        method: call.method.clone(),
        path: call.path().to_owned(),
        detail: format!("the token answer is not a token ({e})"),
    })?;
    Ok(wire.into_token_set(now_unix()))
}

fn client_fields(config: &ApiConfig) -> Vec<(&'static str, Secret)> {
    let mut form = vec![("client_id", Secret::new(config.client_id.clone()))];
    if let Some(secret) = &config.client_secret {
        form.push(("client_secret", secret.clone()));
    }
    form
}

async fn refresh_grant(transport: &Transport, refresh: &Secret) -> Result<TokenSet, ApiError> {
    let mut form = vec![("grant_type", Secret::new("refresh_token"))];
    form.extend(client_fields(&transport.config));
    form.push(("refresh_token", refresh.clone()));
    token_call(transport, form, false).await
}

async fn client_credentials_grant(transport: &Transport) -> Result<TokenSet, ApiError> {
    if transport.config.client_secret.is_none() {
        return Err(ApiError::Config {
            detail: "an app token (client credentials) needs the client_secret".to_owned(),
        });
    }
    // Client id and secret travel in the Basic header only.
    token_call(
        transport,
        vec![("grant_type", Secret::new("client_credentials"))],
        true,
    )
    .await
}

/// How `login` interacts with the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginOptions {
    /// Try to open the authorization URL with `xdg-open` / `open`.
    pub open_browser: bool,
    /// Also accept the final redirected URL pasted on stdin (headless hosts).
    pub read_pasted_url: bool,
}

/// Longest wait for the user to finish logging in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest request head read from the loopback callback.
const MAX_CALLBACK_HEAD: usize = 16 * 1024;

/// A login in progress: the loopback listener is bound and the
/// authorization URL (PKCE S256, random `state`) is ready to open.
pub struct PendingLogin {
    transport: Transport,
    listener: TcpListener,
    redirect_uri: String,
    authorize_url: Url,
    state: Secret,
    verifier: Secret,
}

impl PendingLogin {
    /// Binds `127.0.0.1:0` and prepares the authorization URL.
    pub async fn start(config: ApiConfig) -> Result<PendingLogin, ApiError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ApiError::Login {
                detail: format!("cannot listen on 127.0.0.1 for the redirect: {e}"),
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| ApiError::Login {
                detail: format!("cannot read the loopback port: {e}"),
            })?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let verifier = Secret::new(random_token(32));
        let state = Secret::new(random_token(16));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));
        let transport = Transport::new(config)?;
        let mut authorize_url = transport.auth_url(&["authorize"]);
        authorize_url
            .query_pairs_mut()
            .append_pair("client_id", &transport.config.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state.expose());
        Ok(PendingLogin {
            transport,
            listener,
            redirect_uri,
            authorize_url,
            state,
            verifier,
        })
    }

    /// The URL the user opens to approve access.
    pub fn authorize_url(&self) -> &str {
        self.authorize_url.as_str()
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// For an authorization server that approves at once (the emulator in
    /// `scsync demo`): fetches the authorization URL without following its
    /// redirect and hands the redirect target to [`PendingLogin::complete`]
    /// as if the user had pasted it. A real server answers with a login page
    /// instead, and this fails.
    pub async fn approve_without_browser(&self) -> Result<mpsc::Receiver<String>, ApiError> {
        let failed = |detail: String| ApiError::Login { detail };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed(format!("cannot build the HTTP client: {e}")))?;
        let reply = http
            .get(self.authorize_url.clone())
            .send()
            .await
            .map_err(|e| failed(format!("the authorization server did not answer: {e}")))?;
        let location = reply
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                failed(format!(
                    "the authorization server answered {} without approving; log in with a browser",
                    reply.status()
                ))
            })?;
        let (tx, rx) = mpsc::channel(1);
        // The channel has room for this one line.
        let _ = tx.try_send(location.to_owned());
        Ok(rx)
    }

    /// Waits for the redirect (on the loopback listener, or as a URL pasted
    /// into `pasted`), checks `state`, exchanges the code, and saves the
    /// tokens in `store` before returning them.
    pub async fn complete(
        self,
        store: &dyn TokenStore,
        pasted: Option<mpsc::Receiver<String>>,
    ) -> Result<TokenSet, ApiError> {
        let callback = tokio::select! {
            result = wait_for_callback(&self.listener, &self.state) => result?,
            result = wait_for_paste(pasted) => result,
            () = tokio::time::sleep(LOGIN_TIMEOUT) => {
                return Err(ApiError::Login {
                    detail: format!("no answer within {} minutes; run `scsync login` again", LOGIN_TIMEOUT.as_secs() / 60),
                });
            }
        };
        let code = callback.into_code(&self.state)?;
        let mut form = vec![("grant_type", Secret::new("authorization_code"))];
        form.extend(client_fields(&self.transport.config));
        form.push(("redirect_uri", Secret::new(self.redirect_uri.clone())));
        form.push(("code_verifier", self.verifier.clone()));
        form.push(("code", code));
        let tokens = token_call(&self.transport, form, false).await?;
        store.save(&tokens).map_err(|source| ApiError::TokenStore {
            action: "save",
            source,
        })?;
        Ok(tokens)
    }
}

/// The interactive login: prints the authorization URL to `out`, opens a
/// browser unless told not to, and accepts either the loopback redirect or
/// the redirected URL pasted on stdin. The tokens are saved in `store`.
pub async fn login(
    config: ApiConfig,
    store: &dyn TokenStore,
    options: LoginOptions,
    out: &mut (dyn Write + Send),
) -> Result<TokenSet, ApiError> {
    let pending = PendingLogin::start(config).await?;
    let print_error = |e: std::io::Error| ApiError::Login {
        detail: format!("cannot print the login URL: {e}"),
    };
    writeln!(
        out,
        "Open this URL in a browser and approve access for scsync:\n\n  {}\n",
        pending.authorize_url()
    )
    .map_err(print_error)?;
    if options.read_pasted_url {
        writeln!(
            out,
            "Waiting for the redirect to {}.\nIf the browser runs on another machine, paste the address it ends up on here and press Enter.",
            pending.redirect_uri()
        )
        .map_err(print_error)?;
    }
    out.flush().map_err(print_error)?;
    if options.open_browser {
        open_browser(pending.authorize_url());
    }
    let pasted = options.read_pasted_url.then(stdin_lines);
    pending.complete(store, pasted).await
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Tries the desktop's URL opener; failing is fine (the URL is printed).
fn open_browser(url: &str) {
    let openers: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else {
        &["xdg-open"]
    };
    for opener in openers {
        let spawned = std::process::Command::new(opener)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = spawned {
            // Reap it so it does not linger as a zombie.
            std::thread::spawn(move || child.wait());
            return;
        }
    }
}

/// Lines from stdin, read on a plain thread: a blocked stdin read on
/// tokio's blocking pool would hold up runtime shutdown.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What the redirect carried.
struct Callback {
    code: Option<Secret>,
    state: Option<String>,
    error: Option<String>,
}

impl Callback {
    fn from_url(url: &Url) -> Callback {
        let mut callback = Callback {
            code: None,
            state: None,
            error: None,
        };
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "code" => callback.code = Some(Secret::new(value.into_owned())),
                "state" => callback.state = Some(value.into_owned()),
                "error" => callback.error = Some(value.into_owned()),
                "error_description" => {
                    let detail = value.into_owned();
                    callback.error = Some(match callback.error.take() {
                        Some(e) => format!("{e}: {detail}"),
                        None => detail,
                    });
                }
                _ => {}
            }
        }
        callback
    }

    fn is_answer(&self) -> bool {
        self.code.is_some() || self.error.is_some()
    }

    fn state_matches(&self, expected: &Secret) -> bool {
        self.state.as_deref() == Some(expected.expose())
    }

    fn into_code(self, expected: &Secret) -> Result<Secret, ApiError> {
        if let Some(error) = self.error {
            return Err(ApiError::Login {
                detail: format!("SoundCloud answered with an error: {error}"),
            });
        }
        if !self.state_matches(expected) {
            return Err(ApiError::Login {
                detail: "the redirect's state does not match this login (a stale or forged redirect); run `scsync login` again"
                    .to_owned(),
            });
        }
        self.code.ok_or_else(|| ApiError::Login {
            detail: "the redirect carries no authorization code".to_owned(),
        })
    }
}

async fn wait_for_paste(pasted: Option<mpsc::Receiver<String>>) -> Callback {
    if let Some(mut lines) = pasted {
        while let Some(line) = lines.recv().await {
            if let Ok(url) = Url::parse(line.trim()) {
                let callback = Callback::from_url(&url);
                if callback.is_answer() {
                    return callback;
                }
            }
        }
    }
    // No (more) input: the loopback redirect may still come.
    std::future::pending().await
}

async fn wait_for_callback(listener: &TcpListener, state: &Secret) -> Result<Callback, ApiError> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| ApiError::Login {
            detail: format!("the loopback listener failed: {e}"),
        })?;
        let Ok(Ok(head)) =
            tokio::time::timeout(Duration::from_secs(10), read_head(&mut stream)).await
        else {
            continue;
        };
        let target = head
            .lines()
            .next()
            .and_then(|line| {
                let mut parts = line.split_whitespace();
                let method = parts.next()?;
                (method == "GET").then(|| parts.next()).flatten()
            })
            .and_then(|target| Url::parse(&format!("http://127.0.0.1{target}")).ok());
        let Some(url) = target.filter(|u| u.path() == "/callback") else {
            respond(&mut stream, "404 Not Found", "Not found.").await;
            continue;
        };
        let callback = Callback::from_url(&url);
        if !callback.is_answer() {
            respond(
                &mut stream,
                "400 Bad Request",
                "This address expects SoundCloud's login redirect.",
            )
            .await;
            continue;
        }
        let (status, page) = if callback.error.is_some() {
            (
                "200 OK",
                "SoundCloud did not grant access. You can close this window.",
            )
        } else if !callback.state_matches(state) {
            (
                "400 Bad Request",
                "This redirect does not belong to the running login.",
            )
        } else {
            ("200 OK", "scsync is logged in. You can close this window.")
        };
        respond(&mut stream, status, page).await;
        return Ok(callback);
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_CALLBACK_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!DOCTYPE html><html><head><title>scsync</title></head><body><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser going away early changes nothing for the login.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_margin() {
        let t = TokenSet {
            access_token: Secret::new("a"),
            refresh_token: None,
            expires_at: 1000,
            scope: String::new(),
        };
        assert!(!t.expires_within(Duration::from_secs(300), 600));
        assert!(t.expires_within(Duration::from_secs(300), 700));
        assert!(t.expires_within(Duration::ZERO, 1000));
    }

    #[test]
    fn token_sets_never_print_their_tokens() {
        let t = TokenSet {
            access_token: Secret::new("acc-123"),
            refresh_token: Some(Secret::new("ref-456")),
            expires_at: 1,
            scope: String::new(),
        };
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("acc-123") && !shown.contains("ref-456"),
            "{shown}"
        );
    }

    #[test]
    fn callbacks_are_checked_for_state_and_errors() {
        let state = Secret::new("s1");
        let ok = Callback::from_url(
            &Url::parse("http://127.0.0.1:5/callback?code=c1&state=s1").unwrap(),
        );
        assert_eq!(ok.into_code(&state).unwrap().expose(), "c1");

        let forged = Callback::from_url(
            &Url::parse("http://127.0.0.1:5/callback?code=c1&state=zz").unwrap(),
        );
        let err = forged.into_code(&state).unwrap_err();
        assert!(err.to_string().contains("state"), "{err}");
        assert!(!err.to_string().contains("c1"));

        let denied = Callback::from_url(
            &Url::parse("http://127.0.0.1:5/callback?error=access_denied&error_description=User+said+no&state=s1").unwrap(),
        );
        let err = denied.into_code(&state).unwrap_err();
        assert!(
            err.to_string().contains("access_denied: User said no"),
            "{err}"
        );

        let nothing = Callback::from_url(&Url::parse("http://127.0.0.1:5/callback?x=1").unwrap());
        assert!(!nothing.is_answer());
    }

    #[test]
    fn pkce_values_are_url_safe_and_long_enough() {
        let v = random_token(32);
        assert_eq!(v.len(), 43);
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(random_token(32), v);
    }

    #[tokio::test]
    async fn the_loopback_listener_accepts_the_redirect_and_checks_state() {
        let config = ApiConfig::for_emulator("http://127.0.0.1:9", "app", None).unwrap();
        let pending = PendingLogin::start(config).await.unwrap();
        let authorize = Url::parse(pending.authorize_url()).unwrap();
        let query: std::collections::HashMap<String, String> =
            authorize.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["redirect_uri"], pending.redirect_uri());
        assert_eq!(
            query["code_challenge"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.expose().as_bytes()))
        );
        let redirect = format!(
            "{}?code=abc&state={}",
            pending.redirect_uri(),
            query["state"]
        );

        let client = async {
            let mut stream = TcpStream::connect(pending.listener.local_addr().unwrap())
                .await
                .unwrap();
            // A stray request first: answered 404, the login keeps waiting.
            stream
                .write_all(b"GET /favicon.ico HTTP/1.1\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
            let url = Url::parse(&redirect).unwrap();
            let target = format!("{}?{}", url.path(), url.query().unwrap());
            let mut stream = TcpStream::connect(pending.listener.local_addr().unwrap())
                .await
                .unwrap();
            stream
                .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let (callback, answer) =
            tokio::join!(wait_for_callback(&pending.listener, &pending.state), client);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(
            callback
                .unwrap()
                .into_code(&pending.state)
                .unwrap()
                .expose(),
            "abc"
        );
    }

    #[tokio::test]
    async fn a_pasted_redirect_url_is_accepted() {
        let (tx, rx) = mpsc::channel(4);
        tx.send("not a url".to_owned()).await.unwrap();
        tx.send("  http://127.0.0.1:1/callback?code=k&state=s  ".to_owned())
            .await
            .unwrap();
        let callback = wait_for_paste(Some(rx)).await;
        assert_eq!(callback.into_code(&Secret::new("s")).unwrap().expose(), "k");
    }
}
