//! Issued authorization codes, access and refresh tokens, and who a
//! request's `Authorization` header says the caller is.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::render::user_urn;

/// How long an authorization code can be exchanged.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct AccessToken {
    /// None for client-credentials tokens, which carry no user.
    pub user: Option<u64>,
    pub expires_at: Instant,
    pub refresh_token: String,
}

#[derive(Debug)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user: Option<u64>,
}

#[derive(Debug)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub user: u64,
    pub expires_at: Instant,
}

/// Everything the auth host has handed out.
#[derive(Debug, Default)]
pub struct AuthStore {
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub codes: HashMap<String, AuthCode>,
    /// When each app got its client-credentials tokens (for the 50 / 12 h cap).
    pub client_credentials_issued: HashMap<String, VecDeque<SystemTime>>,
}

/// A freshly issued token pair.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill(&mut bytes[..]);
    bytes
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A long JWT-shaped token, as the service has issued since 2025: clients
/// must not assume a short or fixed length.
fn jwt_like(client_id: &str, user: Option<u64>, ttl: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"sc-emulator"}"#);
    let now = unix_now();
    let payload = json!({
        "iss": "sc-emulator",
        "sub": user.map(user_urn),
        "client_id": client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": hex(&random_bytes::<16>()),
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = URL_SAFE_NO_PAD.encode(random_bytes::<128>());
    format!("{header}.{payload}.{signature}")
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// BASE64URL(SHA-256(verifier)), the S256 code challenge.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A code challenge is the 43-character base64url form of a SHA-256.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636: 43 to 128 unreserved characters.
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl AuthStore {
    pub fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        code_challenge: &str,
        user: u64,
    ) -> String {
        let code = format!("1-{}", hex(&random_bytes::<18>()));
        self.codes.insert(
            code.clone(),
            AuthCode {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                code_challenge: code_challenge.to_string(),
                user,
                expires_at: Instant::now() + CODE_LIFETIME,
            },
        );
        code
    }

    /// Takes a code out: a code is good for one exchange, whatever its outcome.
    pub fn take_code(&mut self, code: &str) -> Option<AuthCode> {
        let code = self.codes.remove(code)?;
        (Instant::now() < code.expires_at).then_some(code)
    }

    pub fn issue_tokens(&mut self, client_id: &str, user: Option<u64>, ttl: u64) -> Issued {
        let access_token = jwt_like(client_id, user, ttl);
        let refresh_token = hex(&random_bytes::<16>());
        self.access.insert(
            access_token.clone(),
            AccessToken {
                user,
                expires_at: Instant::now() + Duration::from_secs(ttl),
                refresh_token: refresh_token.clone(),
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                user,
            },
        );
        Issued {
            access_token,
            refresh_token,
            expires_in: ttl,
        }
    }

    /// Revokes an access token and the refresh token issued with it.
    pub fn revoke(&mut self, access_token: &str) -> bool {
        match self.access.remove(access_token) {
            Some(token) => {
                self.refresh.remove(&token.refresh_token);
                true
            }
            None => false,
        }
    }

    /// Makes every access token expired at once (refresh tokens stay good).
    pub fn expire_all(&mut self) -> usize {
        let now = Instant::now();
        for token in self.access.values_mut() {
            token.expires_at = now;
        }
        self.access.len()
    }

    /// Identifies the caller from `Authorization: OAuth TOKEN` (or `Bearer`).
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "A request must contain the Authorization header.",
            ));
        };
        let value = value.to_str().unwrap_or("");
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        let token = token.trim();
        if !(scheme.eq_ignore_ascii_case("oauth") || scheme.eq_ignore_ascii_case("bearer"))
            || token.is_empty()
        {
            return Err(ApiError::unauthorized(""));
        }
        match self.access.get(token) {
            Some(t) if Instant::now() < t.expires_at => Ok(Caller {
                user: t.user,
                token: token.to_string(),
            }),
            _ => Err(ApiError::unauthorized("")),
        }
    }
}

/// Who made an authenticated request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: Option<u64>,
    pub token: String,
}

impl Caller {
    /// The user behind the token; client-credentials tokens have none and
    /// get 401, as on the service.
    pub fn user(&self) -> Result<u64, ApiError> {
        self.user.ok_or_else(|| {
            ApiError::unauthorized("this endpoint needs a user's token (authorization_code grant)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c="
        ));
    }

    #[test]
    fn tokens_are_long_and_expire() {
        let mut store = AuthStore::default();
        let issued = store.issue_tokens("app", Some(1), 0);
        assert!(issued.access_token.len() > 200);
        assert_eq!(issued.access_token.matches('.').count(), 2);
        let mut headers = HeaderMap::new();
        let value = format!("OAuth {}", issued.access_token);
        headers.insert(header::AUTHORIZATION, value.parse().expect("ascii header"));
        assert!(
            store.caller(&headers).is_err(),
            "a 0 s token is already expired"
        );
    }
}
