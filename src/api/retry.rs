//! The one retry policy for every request scsync sends (built on `backon`).
//!
//! - 429, 503, 408, 500/502/504 and transport failures are transient. Writes
//!   whose outcome is unknown never reach here as transient: the request
//!   layer turns them into `ApiError::AmbiguousWrite` first.
//! - When the service says when to come back (`Retry-After` in seconds or as
//!   an HTTP-date, or a body `reset_time`), wait exactly that plus a little
//!   jitter; otherwise exponential backoff with full jitter, capped.
//! - A wait longer than `max_wait` parks the run (`ApiError::Parked`) instead
//!   of sleeping for hours.
//! - A 429 pauses every request sharing the client: the [`Pacer`] holds a
//!   shared "not before" instant that each attempt waits for.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::Method;
use tokio::time::Instant;

use super::error::ApiError;

/// Knobs of the retry policy. Tests set the delays tiny.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// First backoff step for 5xx and transport failures.
    pub min_delay: Duration,
    /// First backoff step for a 429 that says nothing about when to return
    /// (bursts of two calls in ten seconds have tripped the service's edge
    /// limiter, so start well above `min_delay`).
    pub rate_limit_min_delay: Duration,
    /// Cap of a computed backoff step (before jitter).
    pub max_delay: Duration,
    /// The longest wait this run accepts; longer server-given waits park.
    pub max_wait: Duration,
    /// Upper bound of the jitter added to a server-given wait.
    pub hint_jitter: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_secs(1),
            rate_limit_min_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(120),
            max_wait: Duration::from_secs(15 * 60),
            hint_jitter: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Millisecond delays, for tests against the emulator.
    pub fn fast() -> RetryPolicy {
        RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(1),
            rate_limit_min_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_wait: Duration::from_secs(5),
            hint_jitter: Duration::from_millis(1),
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        // Jitter is applied in `next_delay` (full jitter), not by backon,
        // whose jitter only ever lengthens the step.
        ExponentialBuilder::new()
            .with_factor(2.0)
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
    }

    /// The wait before the next attempt, or `None` to give up. `step` is the
    /// plain exponential step backon computed (`None` once the budget is
    /// spent).
    fn next_delay(&self, error: &ApiError, step: Option<Duration>) -> Option<Duration> {
        let step = step?;
        if let Some(hint) = error.retry_after() {
            return Some(hint.saturating_add(jitter_up_to(self.hint_jitter)));
        }
        let base = if error.is_rate_limit() {
            // The same exponential schedule, started at the rate-limit floor.
            let cap = self.max_delay.max(self.rate_limit_min_delay);
            let scale =
                self.rate_limit_min_delay.as_secs_f64() / self.min_delay.as_secs_f64().max(1e-3);
            Duration::try_from_secs_f64(step.as_secs_f64() * scale.max(1.0))
                .unwrap_or(cap)
                .min(cap)
        } else {
            step
        };
        Some(jitter_up_to(base))
    }
}

/// Uniform in `[0, max]` (full jitter).
fn jitter_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    max.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// The shared "not before" instant: a 429 seen by one request holds back
/// every request sharing the client until the wait is over.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    not_before: Mutex<Option<Instant>>,
}

impl Pacer {
    fn hold_until(&self, until: Instant) {
        let mut slot = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }

    fn not_before(&self) -> Option<Instant> {
        *self.not_before.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until requests may be sent; parks instead when that is further
    /// away than `max_wait`.
    pub(crate) async fn wait_turn(
        &self,
        policy: &RetryPolicy,
        method: &Method,
        path: &str,
    ) -> Result<(), ApiError> {
        while let Some(until) = self.not_before() {
            let now = Instant::now();
            if until <= now {
                break;
            }
            let wait = until - now;
            if wait > policy.max_wait {
                return Err(parked(method, path, wait));
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(())
    }

    /// Records a server-given wait longer than the run accepts, so that the
    /// other requests park at once too.
    pub(crate) fn park(&self, wait: Duration) {
        self.hold_until(instant_after(wait));
    }
}

/// `now + wait`, saturating: a server can ask for any wait at all.
fn instant_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// Stands in for waits too long to represent (a year).
const FAR_FUTURE: Duration = Duration::from_secs(366 * 24 * 3600);

pub(crate) fn parked(method: &Method, path: &str, wait: Duration) -> ApiError {
    let now = Utc::now();
    let resume_at = chrono::Duration::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        // Whole seconds, rounded up: what users read and schedules use.
        .and_then(|at| DateTime::from_timestamp(at.timestamp() + 1, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    ApiError::Parked {
        method: method.clone(),
        path: path.to_owned(),
        resume_at,
        wait,
    }
}

/// Spaces out writes: each write starts at least `interval` after the
/// previous one, across every task sharing the client.
#[derive(Debug)]
pub(crate) struct WriteLimiter {
    interval: Duration,
    next_slot: tokio::sync::Mutex<Option<Instant>>,
}

impl WriteLimiter {
    pub(crate) fn new(interval: Duration) -> WriteLimiter {
        WriteLimiter {
            interval,
            next_slot: tokio::sync::Mutex::new(None),
        }
    }

    pub(crate) async fn wait_turn(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = self.reserve(Instant::now()).await;
        tokio::time::sleep_until(slot).await;
    }

    /// Takes the next free start slot at or after `now`.
    async fn reserve(&self, now: Instant) -> Instant {
        let mut next = self.next_slot.lock().await;
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.interval);
        slot
    }
}

/// Runs `attempt` under the policy: retries transient errors, honours waits
/// the service asks for, shares a 429's pause through `pacer`.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    pacer: &Pacer,
    method: &Method,
    path: &str,
    attempt: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    attempt
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(ApiError::is_transient)
        .adjust(|error, step| {
            let delay = policy.next_delay(error, step)?;
            if error.is_rate_limit() {
                pacer.hold_until(instant_after(delay));
            }
            Some(delay)
        })
        .notify(|error, delay| {
            // The status alone: the error's full text ends with advice for
            // when retries have run out, which is not the case yet.
            let failure = error
                .status()
                .map_or_else(|| error.to_string(), |s| format!("HTTP {s}"));
            tracing::warn!(%method, path, failure = %failure, delay_ms = delay.as_millis() as u64, "retrying");
        })
        .await
}

/// What a failed response says about when to come back: `Retry-After`
/// (seconds or an HTTP-date) first, then a body `reset_time`.
pub(crate) fn server_wait(
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Option<Duration> {
    retry_after
        .and_then(|v| parse_retry_after(v, now))
        .or_else(|| body_reset_time(body).map(|reset| until(reset, now)))
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Finds a `reset_time` anywhere in a JSON error body (the documented 429
/// body nests it in `errors[].meta`).
pub fn body_reset_time(body: &[u8]) -> Option<DateTime<Utc>> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    find_reset_time(&json, 0)
}

fn find_reset_time(value: &serde_json::Value, depth: usize) -> Option<DateTime<Utc>> {
    if depth > 6 {
        return None;
    }
    match value {
        serde_json::Value::Object(map) => {
            if let Some(at) = map
                .get("reset_time")
                .and_then(|v| v.as_str())
                .and_then(parse_reset_time)
            {
                return Some(at);
            }
            map.values().find_map(|v| find_reset_time(v, depth + 1))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_reset_time(v, depth + 1)),
        _ => None,
    }
}

/// Parses the service's timestamp form `yyyy/MM/dd HH:mm:ss +0000` (RFC 3339
/// is accepted too).
pub fn parse_reset_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_str(text, "%Y/%m/%d %H:%M:%S %z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn until(at: DateTime<Utc>, now: SystemTime) -> Duration {
    SystemTime::from(at)
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn at(text: &str) -> SystemTime {
        SystemTime::from(DateTime::parse_from_rfc3339(text).unwrap())
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_as_http_date() {
        let now = at("2026-03-01T12:00:00Z");
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
        assert_eq!(parse_retry_after("-5", SystemTime::now()), None);
    }

    #[test]
    fn reset_time_in_the_service_format() {
        let t = parse_reset_time("2026/03/01 12:30:00 +0000").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T12:30:00+00:00");
        let offset = parse_reset_time("2026/03/01 14:30:00 +0200").unwrap();
        assert_eq!(offset, t);
        assert_eq!(parse_reset_time("tomorrow"), None);
    }

    #[test]
    fn reset_time_is_found_in_the_documented_429_body() {
        let body = br#"{"errors":[{"meta":{"rate_limit":{"bucket":"by-ip","max_nr_of_requests":30,"time_window":"PT1H","name":"client-credentials-exchange"},"remaining_requests":0,"reset_time":"2026/03/01 12:30:00 +0000"}}]}"#;
        let now = at("2026-03-01T12:00:00Z");
        assert_eq!(
            server_wait(None, body, now),
            Some(Duration::from_secs(1800))
        );
    }

    #[test]
    fn retry_after_header_wins_over_the_body() {
        let body = br#"{"reset_time":"2026/03/01 12:30:00 +0000"}"#;
        let now = at("2026-03-01T12:00:00Z");
        assert_eq!(
            server_wait(Some("7"), body, now),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn bodies_without_reset_information_give_no_wait() {
        let now = SystemTime::now();
        for body in [
            &b"Please slow down."[..],
            br#"{"error": "Rate Limit Exceeded"}"#,
            br#"{"code":429,"message":"rate_limit_exceeded","errors":[{"error_message":"rate_limit_exceeded"}],"error":null}"#,
            b"",
        ] {
            assert_eq!(server_wait(None, body, now), None);
        }
    }

    fn status(status: u16, retry_after: Option<Duration>) -> ApiError {
        ApiError::Status {
            method: Method::GET,
            path: "/me".into(),
            status,
            message: String::new(),
            retry_after,
        }
    }

    #[test]
    fn a_server_wait_is_honoured_with_small_jitter() {
        let policy = RetryPolicy::default();
        let d = policy
            .next_delay(
                &status(429, Some(Duration::from_secs(30))),
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert!(
            d >= Duration::from_secs(30) && d <= Duration::from_secs(31),
            "{d:?}"
        );
    }

    #[test]
    fn backoff_is_capped_and_stops_when_the_budget_is_spent() {
        let policy = RetryPolicy::default();
        let d = policy
            .next_delay(&status(502, None), Some(Duration::from_secs(1000)))
            .unwrap();
        assert!(d <= Duration::from_secs(1000));
        let d = policy
            .next_delay(&status(429, None), Some(Duration::from_secs(64)))
            .unwrap();
        assert!(d <= policy.max_delay, "{d:?}");
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::from_secs(1))), None),
            None
        );
    }

    fn test_policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(1),
            rate_limit_min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_wait: Duration::from_secs(1),
            hint_jitter: Duration::ZERO,
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_the_budget_is_spent() {
        let calls = AtomicUsize::new(0);
        let result: Result<(), ApiError> = with_retry(
            &test_policy(),
            &Pacer::default(),
            &Method::GET,
            "/me",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(status(503, None))
            },
        )
        .await;
        assert_eq!(result.unwrap_err().status(), Some(503));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let result: Result<(), ApiError> = with_retry(
            &test_policy(),
            &Pacer::default(),
            &Method::GET,
            "/me",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(status(404, None))
            },
        )
        .await;
        assert!(result.unwrap_err().is_not_found());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rate_limit_holds_back_other_requests() {
        let pacer = Pacer::default();
        let calls = AtomicUsize::new(0);
        let policy = RetryPolicy {
            hint_jitter: Duration::ZERO,
            ..test_policy()
        };
        let start = Instant::now();
        let result = with_retry(&policy, &pacer, &Method::GET, "/me", || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(status(429, Some(Duration::from_millis(50))))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok());
        let held = pacer.not_before().expect("a 429 sets the shared pause");
        // The pause covers the 50 ms the service asked for.
        assert!(held >= start + Duration::from_millis(50));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_pause_longer_than_max_wait_parks() {
        let pacer = Pacer::default();
        let policy = test_policy();
        pacer.park(Duration::from_secs(3600));
        let err = pacer
            .wait_turn(&policy, &Method::GET, "/me")
            .await
            .unwrap_err();
        let resume = err.resume_at().expect("parked");
        assert!(resume > Utc::now() + chrono::Duration::minutes(59));
        assert!(err.to_string().contains("run again after"), "{err}");
    }

    #[tokio::test]
    async fn absurd_server_waits_park_instead_of_overflowing() {
        let pacer = Pacer::default();
        pacer.park(Duration::from_secs(u64::MAX));
        let err = pacer
            .wait_turn(&test_policy(), &Method::GET, "/me")
            .await
            .unwrap_err();
        assert!(err.resume_at().is_some());
        let wait = server_wait(Some("18446744073709551615"), b"", SystemTime::now()).unwrap();
        assert_eq!(
            parked(&Method::GET, "/me", wait).resume_at(),
            Some(DateTime::<Utc>::MAX_UTC)
        );
        let policy = RetryPolicy::default();
        let huge = status(429, Some(Duration::from_secs(u64::MAX)));
        assert!(
            policy
                .next_delay(&huge, Some(Duration::from_secs(1)))
                .unwrap()
                >= Duration::from_secs(u64::MAX)
        );
        assert!(
            policy
                .next_delay(&status(429, None), Some(Duration::from_secs(u64::MAX / 4)))
                .unwrap()
                <= policy.max_delay
        );
    }

    #[tokio::test]
    async fn writes_are_spaced_out() {
        let limiter = WriteLimiter::new(Duration::from_secs(2));
        let start = Instant::now();
        assert_eq!(limiter.reserve(start).await, start);
        assert_eq!(limiter.reserve(start).await, start + Duration::from_secs(2));
        assert_eq!(
            limiter.reserve(start + Duration::from_secs(1)).await,
            start + Duration::from_secs(4)
        );
        // After a quiet spell the next write goes at once.
        let later = start + Duration::from_secs(60);
        assert_eq!(limiter.reserve(later).await, later);
    }
}
