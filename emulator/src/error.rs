//! Error bodies: the API's standard envelope and the auth host's small
//! OAuth JSON.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

pub const JSON_UTF8: &str = "application/json; charset=utf-8";
const DOCS_LINK: &str = "https://developers.soundcloud.com/docs/api/explorer/open-api";

/// A JSON response with the service's content type.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let Ok(text) = serde_json::to_vec(body) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the emulator could not serialise a body",
        )
            .into_response();
    };
    let mut response = (status, text).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    response
}

/// `"404 - Not Found"`, as the envelope's `status` spells it.
pub fn status_line(status: StatusCode) -> String {
    format!(
        "{} - {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Unknown")
    )
}

/// The standard error envelope:
/// `{code, message, link, status, errors: [{error_message}], error: null}`.
pub fn envelope(status: StatusCode, message: &str) -> Value {
    let errors = if message.is_empty() {
        json!([])
    } else {
        json!([{ "error_message": message }])
    };
    json!({
        "code": status.as_u16(),
        "message": message,
        "link": DOCS_LINK,
        "status": status_line(status),
        "errors": errors,
        "error": null,
    })
}

/// An API error, answered with the standard envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401; the service often leaves the message empty.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &envelope(self.status, &self.message))
    }
}

/// An error of the auth host (`/oauth/token`): `{"error": "invalid_grant"}`.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
}

impl OAuthError {
    pub fn invalid_request() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
        }
    }

    pub fn invalid_grant() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
        }
    }

    pub fn invalid_client() -> OAuthError {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
        }
    }

    pub fn unsupported_grant_type() -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        json_response(self.status, &json!({ "error": self.error }))
    }
}
