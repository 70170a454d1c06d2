//! HTTP handlers, one module per area of the API.

pub mod control;
pub mod edit;
pub mod oauth;
pub mod playlists;
pub mod reads;
pub mod resolve;
pub mod social;
pub mod tracks;

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::json;

use crate::error::{ApiError, json_response};
use crate::render::View;
use crate::server::Shared;

/// Largest JSON or form body read into memory (uploads are streamed).
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Reads an id from a path segment: `123`, `soundcloud:tracks:123` or its
/// percent-encoded form (decoded by the router). A URN of another kind is
/// not found.
pub fn parse_id(kind: &str, raw: &str) -> Option<u64> {
    let digits = match raw.strip_prefix("soundcloud:") {
        Some(rest) => rest.strip_prefix(kind)?.strip_prefix(':')?,
        None => raw,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn view(shared: &Shared, viewer: Option<u64>) -> View<'_> {
    View::new(&shared.base_url, viewer)
}

/// `{"status": "..."}`, the body of several action endpoints.
pub fn status_body(status: StatusCode, text: &str) -> Response {
    json_response(status, &json!({ "status": text }))
}

/// The media type of a request, lowercased, without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Reads and discards a request body, so that a client still sending an
/// upload sees the answer's status rather than a reset connection.
pub async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// Passes the request on when `checked` is Ok; otherwise drains its body
/// and returns the error (a refusal decided from the head alone).
pub async fn or_drain<T>(
    checked: Result<T, ApiError>,
    request: Request,
) -> Result<(T, Request), ApiError> {
    match checked {
        Ok(value) => Ok((value, request)),
        Err(e) => {
            drain(request.into_body()).await;
            Err(e)
        }
    }
}

/// Skips whatever parts of a multipart body are left.
pub async fn drain_multipart(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

/// Reads a small request body whole.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn ids_come_in_three_spellings() {
        assert_eq!(parse_id("tracks", "123"), Some(123));
        assert_eq!(parse_id("tracks", "soundcloud:tracks:123"), Some(123));
        assert_eq!(parse_id("tracks", "soundcloud:users:123"), None);
        assert_eq!(parse_id("tracks", "soundcloud:tracks:"), None);
        assert_eq!(parse_id("tracks", "12a"), None);
        assert_eq!(parse_id("users", "99999999999999999999999"), None);
    }
}
