//! The auth host: `/authorize` (approves at once as the seeded user),
//! `/oauth/token` (authorization_code with PKCE, refresh_token with
//! rotation, client_credentials with HTTP Basic) and `/sign-out`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use url::{Host, Url};

use super::status_body;
use crate::auth::{Issued, is_code_verifier, is_s256_challenge, s256_challenge};
use crate::error::{ApiError, OAuthError, json_response};
use crate::paging::Params;
use crate::server::{Inner, Shared};
use crate::world::{App, format_time};

const CLIENT_CREDENTIALS_WINDOW: Duration = Duration::from_secs(12 * 3600);

/// A loopback redirect URI matches on any port (RFC 8252 §7.3); any other
/// must match exactly.
pub fn redirect_uri_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(r), Ok(g)) = (Url::parse(registered), Url::parse(given)) else {
        return false;
    };
    let loopback = match r.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    loopback
        && r.scheme() == g.scheme()
        && r.host() == g.host()
        && r.path() == g.path()
        && r.query() == g.query()
        && r.username() == g.username()
        && r.password() == g.password()
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn redirect(to: &Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.as_str())], "").into_response()
}

/// `GET /authorize`: checks the request and, there being no browser,
/// approves it at once as the seeded `me`.
pub async fn authorize(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let params = Params::parse(uri.query());
    let mut inner = shared.lock();
    let client_id = params.get("client_id").unwrap_or("");
    let Some(app) = inner.world.app(client_id) else {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("unknown client_id `{client_id}`: register the app in the seed's `apps`"),
        );
    };
    let redirect_uri = params.get("redirect_uri").unwrap_or("");
    let registered = app
        .redirect_uris
        .iter()
        .any(|r| redirect_uri_matches(r, redirect_uri));
    // Never redirect anywhere the app did not register.
    let target = match Url::parse(redirect_uri) {
        Ok(url) if registered => url,
        _ => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("redirect_uri `{redirect_uri}` is not registered for client `{client_id}`"),
            );
        }
    };
    let state = params.get("state");
    let answer = |pairs: &[(&str, &str)]| {
        let mut url = target.clone();
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        redirect(&url)
    };
    let challenge = params.get("code_challenge").unwrap_or("");
    let valid = params.get("response_type") == Some("code")
        && params.get("code_challenge_method") == Some("S256")
        && is_s256_challenge(challenge);
    if !valid {
        return answer(&[("error", "invalid_request")]);
    }
    let Some(me) = inner
        .world
        .me
        .filter(|id| inner.world.users.contains_key(id))
    else {
        return answer(&[("error", "access_denied")]);
    };
    let client_id = client_id.to_string();
    let code = inner
        .auth
        .issue_code(&client_id, redirect_uri, challenge, me);
    answer(&[("code", &code)])
}

fn token_body(issued: &Issued) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "scope": "",
            "token_type": "bearer",
        }),
    )
}

/// Client id and secret from `Authorization: Basic`, if that header is sent.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| OAuthError::invalid_client())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    Ok(Some((id.to_string(), secret.to_string())))
}

/// Authenticates the client of an authorization_code or refresh_token
/// grant: secret in the body or HTTP Basic; a public app may omit it.
fn authenticate_client<'a>(
    apps: &'a [App],
    form: &Params,
    basic: &Option<(String, String)>,
) -> Result<&'a App, OAuthError> {
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id.as_str(), Some(secret.as_str())),
        None => (
            form.get("client_id").unwrap_or(""),
            form.get("client_secret"),
        ),
    };
    let app = apps
        .iter()
        .find(|a| a.client_id == client_id)
        .ok_or_else(OAuthError::invalid_client)?;
    match secret {
        Some(s) if s == app.client_secret => Ok(app),
        None if app.public => Ok(app),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// Why a token request failed.
enum TokenError {
    OAuth(OAuthError),
    /// The client-credentials issuance cap, with the documented 429 body.
    RateLimited(Value),
}

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> TokenError {
        TokenError::OAuth(e)
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        match self {
            TokenError::OAuth(e) => e.into_response(),
            TokenError::RateLimited(body) => json_response(StatusCode::TOO_MANY_REQUESTS, &body),
        }
    }
}

/// `POST /oauth/token`.
pub async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::from_form(&body);
    let basic = match basic_credentials(&headers) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut inner = shared.lock();
    let result = match form.get("grant_type") {
        Some("authorization_code") => authorization_code(&mut inner, &form, &basic),
        Some("refresh_token") => refresh_token(&mut inner, &form, &basic),
        Some("client_credentials") => client_credentials(&mut inner, &form, &basic),
        Some(_) => Err(OAuthError::unsupported_grant_type().into()),
        None => Err(OAuthError::invalid_request().into()),
    };
    match result {
        Ok(issued) => token_body(&issued),
        Err(e) => e.into_response(),
    }
}

fn authorization_code(
    inner: &mut Inner,
    form: &Params,
    basic: &Option<(String, String)>,
) -> Result<Issued, TokenError> {
    let app = authenticate_client(&inner.world.apps, form, basic)?;
    let (Some(code), Some(redirect_uri), Some(verifier)) = (
        form.get("code"),
        form.get("redirect_uri"),
        form.get("code_verifier"),
    ) else {
        return Err(OAuthError::invalid_request().into());
    };
    let grant = inner
        .auth
        .take_code(code)
        .ok_or_else(OAuthError::invalid_grant)?;
    if grant.client_id != app.client_id
        || grant.redirect_uri != redirect_uri
        || !is_code_verifier(verifier)
        || s256_challenge(verifier) != grant.code_challenge
    {
        return Err(OAuthError::invalid_grant().into());
    }
    let client_id = app.client_id.clone();
    let ttl = inner.world.token_ttl_s;
    Ok(inner.auth.issue_tokens(&client_id, Some(grant.user), ttl))
}

fn refresh_token(
    inner: &mut Inner,
    form: &Params,
    basic: &Option<(String, String)>,
) -> Result<Issued, TokenError> {
    let app = authenticate_client(&inner.world.apps, form, basic)?;
    let refresh = form
        .get("refresh_token")
        .ok_or_else(OAuthError::invalid_request)?;
    // Rotation: a refresh token dies on first use, whatever follows.
    let grant = inner
        .auth
        .refresh
        .remove(refresh)
        .ok_or_else(OAuthError::invalid_grant)?;
    if grant.client_id != app.client_id {
        return Err(OAuthError::invalid_grant().into());
    }
    let client_id = app.client_id.clone();
    let ttl = inner.world.token_ttl_s;
    Ok(inner.auth.issue_tokens(&client_id, grant.user, ttl))
}

fn client_credentials(
    inner: &mut Inner,
    form: &Params,
    basic: &Option<(String, String)>,
) -> Result<Issued, TokenError> {
    // This grant takes HTTP Basic only; a secret in the body is refused.
    let Some((id, secret)) = basic else {
        return Err(OAuthError::invalid_client().into());
    };
    if form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_client().into());
    }
    let app = inner
        .world
        .app(id)
        .filter(|a| &a.client_secret == secret)
        .ok_or_else(OAuthError::invalid_client)?;
    let cap = inner.world.limits.client_credentials_per_12h;
    let now = SystemTime::now();
    let issued = inner
        .auth
        .client_credentials_issued
        .entry(app.client_id.clone())
        .or_default();
    while issued
        .front()
        .is_some_and(|t| now.duration_since(*t).unwrap_or_default() >= CLIENT_CREDENTIALS_WINDOW)
    {
        issued.pop_front();
    }
    if issued.len() >= cap {
        let reset = issued.front().copied().unwrap_or(now) + CLIENT_CREDENTIALS_WINDOW;
        let reset: chrono::DateTime<chrono::Utc> = reset.into();
        return Err(TokenError::RateLimited(json!({
            "errors": [{
                "meta": {
                    "rate_limit": {
                        "bucket": "by-client",
                        "max_nr_of_requests": cap,
                        "time_window": "PT12H",
                        "name": "client-credentials-exchange",
                    },
                    "remaining_requests": 0,
                    "reset_time": format_time(&reset),
                }
            }]
        })));
    }
    issued.push_back(now);
    let client_id = app.client_id.clone();
    let ttl = inner.world.token_ttl_s;
    Ok(inner.auth.issue_tokens(&client_id, None, ttl))
}

/// `POST /sign-out`: revokes the token in the `Authorization` header (or,
/// as the older secure-host form has it, `{"access_token": ...}` in the body).
pub async fn sign_out(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut inner = shared.lock();
    let token = match inner.auth.caller(&headers) {
        Ok(caller) => caller.token,
        Err(e) => serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("access_token")?.as_str().map(str::to_string))
            .ok_or(e)?,
    };
    if !inner.auth.revoke(&token) {
        return Err(ApiError::unauthorized(""));
    }
    Ok(status_body(StatusCode::OK, "200 - OK"))
}

#[cfg(test)]
mod tests {
    use super::redirect_uri_matches;

    #[test]
    fn loopback_redirects_match_any_port() {
        let reg = "http://127.0.0.1/callback";
        assert!(redirect_uri_matches(reg, "http://127.0.0.1:53682/callback"));
        assert!(redirect_uri_matches(reg, "http://127.0.0.1/callback"));
        assert!(!redirect_uri_matches(reg, "http://127.0.0.1:53682/other"));
        assert!(!redirect_uri_matches(
            reg,
            "http://localhost:53682/callback"
        ));
        assert!(!redirect_uri_matches(
            reg,
            "https://127.0.0.1:53682/callback"
        ));
        assert!(redirect_uri_matches("http://[::1]/cb", "http://[::1]:9/cb"));
        let web = "https://example.com/cb";
        assert!(!redirect_uri_matches(web, "https://example.com:8443/cb"));
        assert!(redirect_uri_matches(web, web));
    }
}
