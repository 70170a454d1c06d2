//! What track and playlist writes have in common: field values as sent
//! (JSON or form text) checked against the spec's types and enums, the
//! write-only `release_date`, and streamed binary parts.

use axum::extract::multipart::Field;
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audio::HEAD_LEN;
use crate::auth::hex;
use crate::error::ApiError;
use crate::schema::{EMBEDDABLE_BY, Kind, LICENSES};
use crate::world::Sharing;

/// A field value as the client sent it.
#[derive(Clone, Debug)]
pub enum Input {
    Json(Value),
    Form(String),
}

/// Metadata changes common to tracks and playlists. A `Null` field value
/// clears the field (back to the service's default).
#[derive(Debug, Default)]
pub struct Edit {
    pub title: Option<String>,
    pub permalink: Option<String>,
    pub sharing: Option<Sharing>,
    pub fields: Vec<(&'static str, Value)>,
}

pub fn unprocessable(name: &str, expected: &str) -> ApiError {
    ApiError::unprocessable(format!("{name} must be {expected}"))
}

fn text(name: &str, input: &Input) -> Result<Option<String>, ApiError> {
    match input {
        Input::Form(s) => Ok(Some(s.clone())),
        Input::Json(Value::String(s)) => Ok(Some(s.clone())),
        Input::Json(Value::Null) => Ok(None),
        Input::Json(_) => Err(unprocessable(name, "a string")),
    }
}

/// Checks one value against its kind and, for enumerated fields, the spec's
/// allowed values.
pub fn coerce(name: &str, kind: Kind, input: &Input) -> Result<Value, ApiError> {
    let value = match kind {
        Kind::Bool => match input {
            Input::Json(Value::Bool(b)) => json!(b),
            Input::Json(Value::Null) => Value::Null,
            Input::Form(s) | Input::Json(Value::String(s)) => match s.as_str() {
                "true" | "1" => json!(true),
                "false" | "0" => json!(false),
                _ => return Err(unprocessable(name, "true or false")),
            },
            Input::Json(_) => return Err(unprocessable(name, "true or false")),
        },
        _ => match text(name, input)? {
            None => Value::Null,
            Some(s) => json!(s),
        },
    };
    let allowed: &[&str] = match name {
        "license" => LICENSES,
        "embeddable_by" => EMBEDDABLE_BY,
        _ => &[],
    };
    if let Some(s) = value.as_str()
        && !allowed.is_empty()
        && !allowed.contains(&s)
    {
        return Err(unprocessable(
            name,
            &format!("one of {}", allowed.join(", ")),
        ));
    }
    Ok(value)
}

pub fn title(input: &Input) -> Result<String, ApiError> {
    match text("title", input)? {
        Some(t) if !t.trim().is_empty() => Ok(t),
        _ => Err(ApiError::unprocessable("title can't be blank")),
    }
}

pub fn sharing(input: &Input) -> Result<Sharing, ApiError> {
    text("sharing", input)?
        .as_deref()
        .and_then(Sharing::parse)
        .ok_or_else(|| unprocessable("sharing", "public or private"))
}

/// A permalink: letters, digits, dashes and underscores.
pub fn permalink(input: &Input) -> Result<String, ApiError> {
    match text("permalink", input)? {
        Some(p)
            if !p.is_empty()
                && p.len() <= 255
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(p)
        }
        _ => Err(unprocessable(
            "permalink",
            "letters, digits, dashes and underscores",
        )),
    }
}

/// `release_date` (`yyyy-mm-dd`, or a timestamp starting so) is write-only:
/// it sets `release_year`, `release_month` and `release_day`.
pub fn release_date(
    input: &Input,
    fields: &mut Vec<(&'static str, Value)>,
) -> Result<(), ApiError> {
    let parts = match text("release_date", input)? {
        None => [Value::Null, Value::Null, Value::Null],
        Some(s) if s.is_empty() => [Value::Null, Value::Null, Value::Null],
        Some(s) => {
            let date = s
                .get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| unprocessable("release_date", "a date like 2024-05-31"))?;
            [json!(date.year()), json!(date.month()), json!(date.day())]
        }
    };
    for (name, value) in ["release_year", "release_month", "release_day"]
        .into_iter()
        .zip(parts)
    {
        fields.push((name, value));
    }
    Ok(())
}

/// A binary part read as it streams: its SHA-256, size and first bytes.
#[derive(Debug)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
    pub head: Vec<u8>,
}

/// Streams a part through SHA-256 without keeping it; fails past `max` bytes.
pub async fn stream_blob(field: &mut Field<'_>, name: &str, max: u64) -> Result<Blob, ApiError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head = Vec::with_capacity(HEAD_LEN);
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        size += chunk.len() as u64;
        if size > max {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("{name} is larger than the {max} bytes allowed"),
            ));
        }
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
    }
    Ok(Blob {
        sha256: hex(&hasher.finalize()),
        size,
        head,
    })
}

pub fn malformed(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("the multipart body could not be read: {e}"))
}
