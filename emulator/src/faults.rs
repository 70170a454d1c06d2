//! Fault rules: make matching requests fail (any status, body, content
//! type, `Retry-After`, delay), optionally after committing the change, or
//! answer with a defective `next_href`.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{JSON_UTF8, envelope};
use crate::paging::PageFault;

/// Where a foreign `next_href` points by default: a name that can never
/// resolve (RFC 6761), standing in for the service's internal hostnames.
pub const DEFAULT_FOREIGN_HOST: &str = "http://api-internal.s-cloud.invalid";

/// One rule, as posted to `/_emulator/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// HTTP method to match; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Regular expression over the path alone (no query); any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Status to answer with instead of the real response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Body: a string is sent as is, a JSON value serialised. Absent: the
    /// standard error envelope for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<FaultBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Retry-After`: seconds, or any text (an HTTP date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<RetryAfter>,
    /// Extra response headers (e.g. `x-ratelimit-remaining`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Let this many matching requests through before the rule bites.
    #[serde(default)]
    pub skip: u64,
    /// How many requests the rule answers; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Perform the request's change, then answer with the failure anyway.
    #[serde(default)]
    pub commit: bool,
    /// A pagination defect instead of a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_href: Option<NextHrefFault>,
    /// Base URL a `foreign_host` `next_href` points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_host: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FaultBody {
    Text(String),
    Json(Value),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RetryAfter {
    Seconds(u64),
    Text(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHrefFault {
    ForeignHost,
    Repeat,
    DropParams,
}

/// What the server does with a request a rule caught.
#[derive(Clone, Debug)]
pub struct Firing {
    pub delay_ms: u64,
    pub commit: bool,
    /// The failure to answer with, if the rule has a status.
    pub failure: Option<Failure>,
    pub page_fault: Option<PageFault>,
}

#[derive(Clone, Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub content_type: HeaderValue,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Failure {
    pub fn response(&self) -> Response {
        let mut response = (self.status, self.body.clone()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.content_type.clone());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}

#[derive(Debug)]
struct ActiveRule {
    rule: FaultRule,
    method: Option<Method>,
    path: Option<Regex>,
    firing: Firing,
    skipped: u64,
    fired: u64,
}

/// The installed rules, checked in order; the first that bites wins.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<ActiveRule>,
}

/// A rule that cannot be installed, and why.
#[derive(Debug, thiserror::Error)]
#[error("fault rule {index}: {message}")]
pub struct RuleError {
    pub index: usize,
    pub message: String,
}

fn compile(index: usize, rule: FaultRule) -> Result<ActiveRule, RuleError> {
    let err = |message: String| RuleError { index, message };
    let method = match &rule.method {
        None => None,
        Some(m) => Some(
            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| err(format!("`{m}` is not an HTTP method")))?,
        ),
    };
    let path = match &rule.path {
        None => None,
        Some(p) => Some(Regex::new(p).map_err(|e| err(format!("path is not a valid regex: {e}")))?),
    };
    if rule.status.is_some() && rule.next_href.is_some() {
        return Err(err(
            "give either `status` (a failure) or `next_href` (a pagination defect), not both"
                .into(),
        ));
    }
    let failure = match rule.status {
        None => None,
        Some(code) => {
            let status = StatusCode::from_u16(code)
                .ok()
                .filter(|s| (100..600).contains(&s.as_u16()))
                .ok_or_else(|| err(format!("status {code} is not an HTTP status")))?;
            let (body, default_type) = match &rule.body {
                None => (envelope(status, "").to_string().into_bytes(), JSON_UTF8),
                Some(FaultBody::Json(v)) => (v.to_string().into_bytes(), JSON_UTF8),
                Some(FaultBody::Text(t)) => {
                    let looks_json = serde_json::from_str::<Value>(t)
                        .is_ok_and(|v| v.is_object() || v.is_array());
                    let kind = if looks_json {
                        JSON_UTF8
                    } else {
                        "text/plain; charset=utf-8"
                    };
                    (t.clone().into_bytes(), kind)
                }
            };
            let content_type = rule.content_type.as_deref().unwrap_or(default_type);
            let content_type = HeaderValue::from_str(content_type).map_err(|_| {
                err(format!(
                    "content_type `{content_type}` is not a header value"
                ))
            })?;
            let mut headers = Vec::new();
            if let Some(retry) = &rule.retry_after {
                let text = match retry {
                    RetryAfter::Seconds(s) => s.to_string(),
                    RetryAfter::Text(t) => t.clone(),
                };
                let value = HeaderValue::from_str(&text)
                    .map_err(|_| err(format!("retry_after `{text}` is not a header value")))?;
                headers.push((header::RETRY_AFTER, value));
            }
            for (name, value) in &rule.headers {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| err(format!("`{name}` is not a header name")))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| err(format!("`{value}` is not a header value")))?;
                headers.push((name, value));
            }
            Some(Failure {
                status,
                body,
                content_type,
                headers,
            })
        }
    };
    let page_fault = rule.next_href.map(|kind| match kind {
        NextHrefFault::ForeignHost => PageFault::ForeignHost(
            rule.foreign_host
                .clone()
                .unwrap_or_else(|| DEFAULT_FOREIGN_HOST.to_string())
                .trim_end_matches('/')
                .to_string(),
        ),
        NextHrefFault::Repeat => PageFault::Repeat,
        NextHrefFault::DropParams => PageFault::DropParams,
    });
    if failure.is_none() && page_fault.is_none() && rule.delay_ms == 0 {
        return Err(err(
            "the rule does nothing: give `status`, `next_href` or `delay_ms`".into(),
        ));
    }
    Ok(ActiveRule {
        firing: Firing {
            delay_ms: rule.delay_ms,
            commit: rule.commit,
            failure,
            page_fault,
        },
        method,
        path,
        rule,
        skipped: 0,
        fired: 0,
    })
}

impl Faults {
    /// Checks every rule first, then installs them all (or none).
    pub fn add(&mut self, rules: Vec<FaultRule>) -> Result<usize, RuleError> {
        let compiled = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        let n = compiled.len();
        self.rules.extend(compiled);
        Ok(n)
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The rule that bites this request, if any (and counts it).
    pub fn check(&mut self, method: &Method, path: &str) -> Option<Firing> {
        for active in &mut self.rules {
            if active.method.as_ref().is_some_and(|m| m != method) {
                continue;
            }
            if active.path.as_ref().is_some_and(|re| !re.is_match(path)) {
                continue;
            }
            if active.skipped < active.rule.skip {
                active.skipped += 1;
                continue;
            }
            if active.rule.times.is_some_and(|t| active.fired >= t) {
                continue;
            }
            active.fired += 1;
            return Some(active.firing.clone());
        }
        None
    }

    /// The rules with how often each let a request through and bit.
    pub fn report(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|a| {
                let mut v = serde_json::to_value(&a.rule).unwrap_or(Value::Null);
                if let Value::Object(m) = &mut v {
                    m.insert("skipped".into(), a.skipped.into());
                    m.insert("fired".into(), a.fired.into());
                }
                v
            })
            .collect();
        serde_json::json!({ "rules": rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> FaultRule {
        serde_json::from_str(json).expect("rule parses")
    }

    #[test]
    fn skip_then_times() {
        let mut faults = Faults::default();
        faults
            .add(vec![rule(
                r#"{"method":"put","path":"^/playlists/","status":500,"skip":1,"times":2}"#,
            )])
            .expect("valid");
        let put = Method::PUT;
        assert!(faults.check(&put, "/playlists/1").is_none(), "skipped");
        assert!(
            faults.check(&Method::GET, "/playlists/1").is_none(),
            "method"
        );
        assert!(faults.check(&put, "/tracks/1").is_none(), "path");
        assert!(faults.check(&put, "/playlists/1").is_some());
        assert!(faults.check(&put, "/playlists/1").is_some());
        assert!(faults.check(&put, "/playlists/1").is_none(), "used up");
    }

    #[test]
    fn bodies_pick_a_content_type() {
        let mut faults = Faults::default();
        faults
            .add(vec![
                rule(r#"{"path":"^/a$","status":429,"body":"Please slow down."}"#),
                rule(r#"{"path":"^/b$","status":429,"body":{"error":"Rate Limit Exceeded"}}"#),
            ])
            .expect("valid");
        let a = faults
            .check(&Method::GET, "/a")
            .and_then(|f| f.failure)
            .expect("bites");
        assert_eq!(a.content_type, "text/plain; charset=utf-8");
        assert_eq!(a.body, b"Please slow down.");
        let b = faults
            .check(&Method::GET, "/b")
            .and_then(|f| f.failure)
            .expect("bites");
        assert_eq!(b.content_type, JSON_UTF8);
        assert_eq!(b.body, br#"{"error":"Rate Limit Exceeded"}"#);
    }

    #[test]
    fn bad_rules_are_refused_whole() {
        let mut faults = Faults::default();
        let err = faults
            .add(vec![
                rule(r#"{"status":500}"#),
                rule(r#"{"path":"(","status":500}"#),
            ])
            .expect_err("bad regex");
        assert_eq!(err.index, 1);
        assert!(
            faults.check(&Method::GET, "/x").is_none(),
            "nothing installed"
        );
        assert!(
            faults.add(vec![rule(r#"{"path":"/x"}"#)]).is_err(),
            "no-op rule"
        );
    }
}
