//! Errors from talking to SoundCloud, and the classification of error bodies.
//!
//! Messages name the request (method and path, never a token), the HTTP
//! status, what the service said, and what to do next.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;

/// A boxed error from a [`super::TokenStore`] implementation.
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a request failed before any HTTP status came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made, so nothing was sent.
    Connect,
    /// The request or the response timed out.
    Timeout,
    /// The connection broke while sending or receiving.
    Other,
}

impl TransportKind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TransportKind::Connect => "could not connect",
            TransportKind::Timeout => "timed out",
            TransportKind::Other => "the connection failed",
        }
    }
}

/// Why a collection listing was abandoned (it is never returned partially).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incomplete {
    /// `next_href` named a host other than the configured API base.
    ForeignHost { host: String },
    /// `next_href` pointed at a page already read.
    RepeatedNextHref,
    /// More pages than the configured guard allows.
    TooManyPages { max: usize },
    /// `next_href` was not a URL.
    BadNextHref { href: String },
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incomplete::ForeignHost { host } => write!(
                f,
                "the service pointed the next page at another host ({host}); \
                 scsync only sends its token to the configured API base"
            ),
            Incomplete::RepeatedNextHref => {
                f.write_str("the service handed back a next page already read (a paging loop)")
            }
            Incomplete::TooManyPages { max } => {
                write!(f, "the listing ran past {max} pages without ending")
            }
            Incomplete::BadNextHref { href } => {
                write!(f, "the next page link is not a URL: {href:?}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service answered with a status scsync does not retry (or the
    /// retries ran out).
    #[error("{method} {path} failed with HTTP {status}{}{}", service_says(message), next_step(*status, path))]
    Status {
        method: Method,
        path: String,
        status: u16,
        /// What the service said, extracted from its body (may be empty).
        message: String,
        /// A wait the service asked for (Retry-After or a body reset time).
        retry_after: Option<Duration>,
    },

    /// No HTTP status came back.
    #[error("{method} {path}: {}: {source}", kind.describe())]
    Transport {
        method: Method,
        path: String,
        kind: TransportKind,
        #[source]
        source: reqwest::Error,
    },

    /// A write failed in a way that leaves open whether it took effect (a
    /// 500/502/504, a timeout or a dropped connection). It was not retried:
    /// read the resource back before deciding what to do.
    #[error(
        "{method} {path} may or may not have taken effect ({detail}); \
         the account must be read back before this is retried"
    )]
    AmbiguousWrite {
        method: Method,
        path: String,
        /// The HTTP status, when one came back.
        status: Option<u16>,
        detail: String,
    },

    /// The service asked to wait longer than this run may wait.
    #[error(
        "{method} {path}: SoundCloud's rate limit asks to wait until {resume_at} \
         ({}), longer than this run waits; run again after that time",
        humanize(*wait)
    )]
    Parked {
        method: Method,
        path: String,
        resume_at: DateTime<Utc>,
        wait: Duration,
    },

    /// A collection could not be read completely.
    #[error("the listing of {path} is incomplete, so nothing is planned from it: {reason}")]
    Incomplete { path: String, reason: Incomplete },

    /// A page after the first failed (after its retries): the listing is
    /// abandoned whole rather than returned in part.
    #[error(
        "the listing of {path} is incomplete, so nothing is planned from it: \
         page {page} failed after {read} items were read"
    )]
    ListingFailed {
        path: String,
        page: usize,
        read: usize,
        #[source]
        source: Box<ApiError>,
    },

    /// A 2xx body that does not have the expected shape.
    #[error("{method} {path}: unexpected response from the service: {detail}")]
    Decode {
        method: Method,
        path: String,
        detail: String,
    },

    /// `/resolve` answered 404.
    #[error("{url} was not found on SoundCloud (resolve answered 404); check the URL")]
    ResolveNotFound { url: String },

    /// No login is stored.
    #[error("not logged in to SoundCloud; run `scsync login`")]
    NotLoggedIn,

    /// The stored login no longer works (refresh refused, or a fresh token
    /// still refused).
    #[error("the SoundCloud login is no longer valid ({detail}); run `scsync login`")]
    LoginExpired { detail: String },

    /// Getting a fresh access token failed for a reason other than a
    /// refused login (the token endpoint was down, rate limited, ...).
    #[error("could not renew the SoundCloud access token: {source}")]
    TokenRenewal {
        #[source]
        source: Box<ApiError>,
    },

    /// The token store failed.
    #[error("could not {action} the SoundCloud tokens in the state database: {source}")]
    TokenStore {
        action: &'static str,
        #[source]
        source: StoreError,
    },

    /// A local file to upload could not be read.
    #[error("cannot read {} for upload: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The interactive login did not complete.
    #[error("login failed: {detail}")]
    Login { detail: String },

    /// The API configuration is unusable.
    #[error("invalid SoundCloud API configuration: {detail}")]
    Config { detail: String },
}

fn service_says(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn next_step(status: u16, path: &str) -> &'static str {
    if path.ends_with(super::TOKEN_PATH) {
        return match status {
            400 | 401 => " (check the app's client_id and client_secret, or run `scsync login`)",
            _ => " (the SoundCloud login service failed; try again later)",
        };
    }
    match status {
        401 => " (the login was refreshed and still refused; run `scsync login`)",
        403 => " (the account or app is not allowed to do this)",
        404 => " (it does not exist or is not visible to this account)",
        429 => " (rate limited; retries ran out, try again later)",
        500..=599 => " (a service-side failure; retries ran out, try again later)",
        _ => "",
    }
}

pub(crate) fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, (secs % 3600) / 60),
    }
}

impl ApiError {
    /// The HTTP status the service answered with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::AmbiguousWrite { status, .. } => *status,
            ApiError::ResolveNotFound { .. } => Some(404),
            ApiError::ListingFailed { source, .. } => source.status(),
            _ => None,
        }
    }

    /// A write that may have happened: read back before retrying.
    pub fn is_ambiguous_write(&self) -> bool {
        matches!(self, ApiError::AmbiguousWrite { .. })
    }

    /// The object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) && !self.is_ambiguous_write()
    }

    /// The run stopped on a rate limit; it can resume at this time.
    pub fn resume_at(&self) -> Option<DateTime<Utc>> {
        match self {
            ApiError::Parked { resume_at, .. } => Some(*resume_at),
            ApiError::ListingFailed { source, .. } => source.resume_at(),
            _ => None,
        }
    }

    /// The user must log in again.
    pub fn needs_login(&self) -> bool {
        match self {
            ApiError::ListingFailed { source, .. } => source.needs_login(),
            other => matches!(
                other,
                ApiError::NotLoggedIn
                    | ApiError::LoginExpired { .. }
                    | ApiError::Status { status: 401, .. }
            ),
        }
    }

    /// Whether the one retry policy may try this again after a wait. Writes
    /// that may have happened were already turned into
    /// [`ApiError::AmbiguousWrite`], so what is left here is safe to resend.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            ApiError::Transport { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn is_rate_limit(&self) -> bool {
        matches!(self, ApiError::Status { status: 429, .. })
    }
}

/// Longest service message kept in an error.
const MAX_MESSAGE: usize = 300;

/// Extracts what the service said from an error body: the JSON envelope's
/// `message`, else `errors[].error_message` (or plain strings), else `error`
/// / `error_code`; an HTML page is summarised by its title; plain text is
/// kept (truncated). Never fails: a body it cannot read gives a short note.
pub fn service_message(content_type: Option<&str>, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return String::new();
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(trimmed) {
        if let Some(message) = json_message(&json) {
            return truncate(&message);
        }
        return truncate(trimmed);
    }
    let is_html = content_type.is_some_and(|c| c.contains("html"))
        || trimmed.starts_with("<!DOCTYPE")
        || trimmed.starts_with("<html")
        || trimmed.starts_with("<HTML");
    if is_html {
        return match html_title(trimmed) {
            Some(title) => truncate(&format!("an HTML error page: {title}")),
            None => "an HTML error page".to_owned(),
        };
    }
    truncate(&trimmed.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn json_message(json: &serde_json::Value) -> Option<String> {
    let non_empty = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(m) = non_empty(json.get("message")) {
        return Some(m);
    }
    if let Some(errors) = json.get("errors").and_then(|e| e.as_array()) {
        let parts: Vec<String> = errors
            .iter()
            .filter_map(|e| match e {
                serde_json::Value::String(s) => Some(s.trim().to_owned()),
                other => non_empty(other.get("error_message")),
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    non_empty(json.get("error"))
        .or_else(|| non_empty(json.get("error_code")))
        .or_else(|| non_empty(json.get("error_description")))
        .or_else(|| non_empty(json.get("status")))
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = html
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!title.is_empty()).then_some(title)
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_MESSAGE).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ct: &str, body: &str) -> String {
        service_message(Some(ct), body.as_bytes())
    }

    #[test]
    fn standard_envelope_gives_its_message() {
        let body = r#"{"code":422,"message":"Could not parse JSON request body.","link":"https://developers.soundcloud.com/docs/api/explorer/open-api","status":"422 - Unprocessable Entity","errors":[],"error":null}"#;
        assert_eq!(
            msg("application/json", body),
            "Could not parse JSON request body."
        );
    }

    #[test]
    fn empty_message_envelope_falls_back_to_its_status_text() {
        let body = r#"{"code":401,"message":"","link":"x","status":"401 - Unauthorized","errors":[],"error":null}"#;
        assert_eq!(msg("application/json", body), "401 - Unauthorized");
    }

    #[test]
    fn old_style_errors_array_is_read() {
        let body = r#"{"errors":[{"error_message":"404 - Not Found"}]}"#;
        assert_eq!(msg("application/json", body), "404 - Not Found");
        let strings = r#"{"errors":["first","second"]}"#;
        assert_eq!(msg("application/json", strings), "first; second");
    }

    #[test]
    fn oauth_and_edge_limiter_json_give_the_error_field() {
        assert_eq!(
            msg("application/json", r#"{"error":"invalid_grant"}"#),
            "invalid_grant"
        );
        assert_eq!(
            msg("application/json", r#"{"error": "Rate Limit Exceeded"}"#),
            "Rate Limit Exceeded"
        );
    }

    #[test]
    fn long_legacy_envelope_gives_its_message() {
        let body = r#"{"code":429,"message":"rate_limit_exceeded","link":"https://developers.soundcloud.com/docs/api/rate-limits#errors","status":"429 - Too Many Requests","errors":[{"error_message":"rate_limit_exceeded"}],"error":null,"error_code":"rate_limit_exceeded"}"#;
        assert_eq!(msg("application/json", body), "rate_limit_exceeded");
    }

    #[test]
    fn documented_rate_limit_body_without_message_is_kept_as_json() {
        let body = r#"{"errors":[{"meta":{"rate_limit":{"group":"plays","max_nr_of_requests":15000,"time_window":"PT24H"},"remaining_requests":0,"reset_time":"2026/01/02 03:04:05 +0000"}}]}"#;
        let m = msg("application/json", body);
        assert!(m.contains("reset_time"), "{m}");
    }

    #[test]
    fn plain_text_and_envoy_bodies_are_kept() {
        assert_eq!(
            msg("text/plain", "Please slow down.\n"),
            "Please slow down."
        );
        assert_eq!(
            msg(
                "text/plain",
                "upstream connect error or disconnect/reset before headers. reset reason: overflow"
            ),
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        );
        assert_eq!(msg("text/plain", "unknown route"), "unknown route");
    }

    #[test]
    fn empty_bodies_give_an_empty_message() {
        assert_eq!(msg("text/plain", ""), "");
        assert_eq!(msg("text/plain", "\n"), "");
        assert_eq!(service_message(None, b""), "");
    }

    #[test]
    fn html_pages_are_summarised_by_title() {
        let body = "<!DOCTYPE HTML PUBLIC><HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY>403 ERROR ... Request blocked.</BODY></HTML>";
        assert_eq!(
            msg("text/html", body),
            "an HTML error page: ERROR: The request could not be satisfied"
        );
        assert_eq!(
            msg(
                "text/html",
                "<p>We were unable to process your request in time</p>"
            ),
            "an HTML error page"
        );
    }

    #[test]
    fn long_text_is_truncated() {
        let long = "x".repeat(1000);
        let m = msg("text/plain", &long);
        assert_eq!(m.chars().count(), MAX_MESSAGE + 1);
        assert!(m.ends_with('…'));
    }

    #[test]
    fn invalid_utf8_does_not_fail() {
        let m = service_message(Some("text/plain"), &[0xff, 0xfe, b'o', b'k']);
        assert!(m.ends_with("ok"));
    }

    #[test]
    fn status_errors_name_the_request_and_what_the_service_said() {
        let e = ApiError::Status {
            method: Method::PUT,
            path: "/playlists/soundcloud:playlists:7".into(),
            status: 422,
            message: "too many tracks".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "PUT /playlists/soundcloud:playlists:7 failed with HTTP 422: too many tracks"
        );
        assert!(!e.is_transient());
    }
}
