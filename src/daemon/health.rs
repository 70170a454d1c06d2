//! `daemon.listen`: a loopback-only HTTP endpoint for monitoring,
//! `GET /healthz` and Prometheus `GET /metrics`.
//!
//! Hand-written HTTP/1.1, because two fixed GET routes do not justify a web
//! framework in the daemon: read one request head (bounded in size and
//! time), answer, close. There is no authentication, which is why only a
//! loopback address is accepted.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::RunReport;

/// Longest request head we read; ours are one line and a few headers.
const MAX_HEAD: usize = 8 * 1024;
/// A client that does not send its request head within this is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait their turn.
const MAX_CONNECTIONS: usize = 16;

/// The daemon's counters, shared by the loop (runs), the reconciler
/// (actions, drift) and the endpoint (which renders them).
pub struct Metrics {
    counters: Mutex<Counters>,
    /// HTTP 429 answers so far, read when rendered.
    rate_limited: fn() -> u64,
}

#[derive(Default)]
struct Counters {
    /// Finished runs by result ("ok", "failed", "interrupted").
    runs: BTreeMap<&'static str, u64>,
    rejected_manifests: u64,
    /// Applied actions by (kind, outcome).
    actions: BTreeMap<(String, String), u64>,
    in_progress: bool,
    last_run: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    /// What the last plan found: (add, change, remove).
    drift: Option<(usize, usize, usize)>,
}

impl Metrics {
    /// `rate_limited` reports how many HTTP 429 answers the process saw.
    pub fn new(rate_limited: fn() -> u64) -> Metrics {
        Metrics {
            counters: Mutex::new(Counters::default()),
            rate_limited,
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic elsewhere while counting leaves counters that are still
        // worth showing.
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn run_started(&self) {
        self.counters().in_progress = true;
    }

    pub(crate) fn run_finished(&self, report: &RunReport, finished: DateTime<Utc>) {
        let mut c = self.counters();
        c.in_progress = false;
        *c.runs.entry(report.result()).or_default() += 1;
        c.last_run = Some(finished);
        if report.ok {
            c.last_success = Some(finished);
        }
    }

    pub(crate) fn manifest_rejected(&self) {
        self.counters().rejected_manifests += 1;
    }

    /// `count` actions of `kind` ended with `outcome` ("succeeded",
    /// "failed", "skipped").
    pub fn actions(&self, kind: &str, outcome: &str, count: u64) {
        if count > 0 {
            *self
                .counters()
                .actions
                .entry((kind.to_owned(), outcome.to_owned()))
                .or_default() += count;
        }
    }

    /// What the last plan found.
    pub fn drift(&self, add: usize, change: usize, remove: usize) {
        self.counters().drift = Some((add, change, remove));
    }

    /// The Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let c = self.counters();
        let mut out = String::new();
        header(
            &mut out,
            "scsync_runs_total",
            "counter",
            "Runs finished, by result.",
        );
        for result in ["ok", "failed", "interrupted"] {
            let n = c.runs.get(result).copied().unwrap_or(0);
            let _ = writeln!(out, "scsync_runs_total{{result=\"{result}\"}} {n}");
        }
        let mut single = |name: &str, kind: &str, help: &str, value: String| {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        };
        single(
            "scsync_run_in_progress",
            "gauge",
            "1 while a run is in flight.",
            u8::from(c.in_progress).to_string(),
        );
        single(
            "scsync_manifest_rejections_total",
            "counter",
            "Manifest loads that failed validation (nothing was applied).",
            c.rejected_manifests.to_string(),
        );
        single(
            "scsync_rate_limited_total",
            "counter",
            "HTTP 429 answers from the API.",
            (self.rate_limited)().to_string(),
        );
        if let Some(at) = c.last_run {
            single(
                "scsync_last_run_timestamp_seconds",
                "gauge",
                "When the last run finished (Unix time).",
                at.timestamp().to_string(),
            );
        }
        if let Some(at) = c.last_success {
            single(
                "scsync_last_success_timestamp_seconds",
                "gauge",
                "When the last successful run finished (Unix time).",
                at.timestamp().to_string(),
            );
        }
        header(
            &mut out,
            "scsync_actions_total",
            "counter",
            "Actions applied, by kind and outcome.",
        );
        for ((kind, outcome), n) in &c.actions {
            let _ = writeln!(
                out,
                "scsync_actions_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some((add, change, remove)) = c.drift {
            header(
                &mut out,
                "scsync_drift_actions",
                "gauge",
                "What the last plan found to do, by operation.",
            );
            for (op, n) in [("add", add), ("change", change), ("remove", remove)] {
                let _ = writeln!(out, "scsync_drift_actions{{op=\"{op}\"}} {n}");
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Why `daemon.listen` was refused.
pub(crate) fn check_address(addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "daemon.listen {addr} is not a loopback address; the endpoint has no authentication, \
             so it listens on 127.0.0.1 or [::1] only (put a proxy in front to expose it)"
        ))
    }
}

/// Listen on `addr` (loopback, checked by the caller) and serve until the
/// returned task is aborted.
pub(crate) fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<JoinHandle<()>> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    Ok(tokio::spawn(accept_loop(listener, metrics)))
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::warn!("health endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = answer(stream, &metrics).await {
                tracing::debug!("health endpoint: {e}");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let reply = match head {
        Some(head) => route(&head, metrics),
        None => Reply::text(400, "Bad Request", "bad request\n"),
    };
    stream.write_all(&reply.bytes()).await?;
    stream.shutdown().await
}

/// The request head up to the blank line; `None` when it is too long or
/// the client stopped early.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(String::from_utf8(head).ok());
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

struct Reply {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
    /// HEAD: headers only.
    head_only: bool,
}

impl Reply {
    fn text(status: u16, reason: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            head_only: false,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !self.head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

fn route(head: &str, metrics: &Metrics) -> Reply {
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Reply::text(400, "Bad Request", "bad request\n");
    };
    if !version.starts_with("HTTP/1.") {
        return Reply::text(505, "HTTP Version Not Supported", "HTTP/1.x only\n");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Reply::text(405, "Method Not Allowed", "GET or HEAD only\n"),
    };
    let path = target.split('?').next().unwrap_or("");
    let mut reply = match path {
        "/healthz" => Reply::text(200, "OK", "ok\n"),
        "/metrics" => Reply {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Reply::text(200, "OK", metrics.render())
        },
        _ => Reply::text(404, "Not Found", "not found: try /healthz or /metrics\n"),
    };
    reply.head_only = head_only;
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_429s() -> u64 {
        7
    }

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    fn local() -> SocketAddr {
        // Port 0: the kernel picks; the test asks the listener which.
        "127.0.0.1:0".parse().unwrap()
    }

    async fn start(metrics: Arc<Metrics>) -> (SocketAddr, JoinHandle<()>) {
        let listener = std::net::TcpListener::bind(local()).unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        (addr, tokio::spawn(accept_loop(listener, metrics)))
    }

    #[tokio::test]
    async fn healthz_metrics_and_everything_else() {
        let metrics = Arc::new(Metrics::new(no_429s));
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        metrics.run_started();
        metrics.run_finished(&RunReport::ok("fine"), at);
        metrics.run_finished(&RunReport::failed("bad"), at);
        metrics.manifest_rejected();
        metrics.actions("track", "succeeded", 2);
        metrics.actions("follow", "failed", 1);
        metrics.actions("follow", "skipped", 0);
        metrics.drift(2, 0, 1);
        let (addr, task) = start(metrics).await;

        let health = get(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");

        let text = get(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            text.contains("Content-Type: text/plain; version=0.0.4"),
            "{text}"
        );
        for line in [
            "scsync_runs_total{result=\"ok\"} 1",
            "scsync_runs_total{result=\"failed\"} 1",
            "scsync_runs_total{result=\"interrupted\"} 0",
            "scsync_run_in_progress 0",
            "scsync_manifest_rejections_total 1",
            "scsync_rate_limited_total 7",
            "scsync_last_run_timestamp_seconds 1800000000",
            "scsync_last_success_timestamp_seconds 1800000000",
            "scsync_actions_total{kind=\"track\",outcome=\"succeeded\"} 2",
            "scsync_actions_total{kind=\"follow\",outcome=\"failed\"} 1",
            "scsync_drift_actions{op=\"remove\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in {text}");
        }
        assert!(
            !text.contains("skipped"),
            "zero counts add no series: {text}"
        );

        let head = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let missing = get(addr, "GET /admin HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        let post = get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(
            post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"),
            "{post}"
        );
        let junk = get(addr, "hello\r\n\r\n").await;
        assert!(junk.starts_with("HTTP/1.1 400 "), "{junk}");

        // An endless head is cut off (a 400, or a reset if the kernel drops
        // the unread rest with it), and the endpoint carries on.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let huge = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(4 * MAX_HEAD));
        let _ = stream.write_all(huge.as_bytes()).await;
        let mut answer = String::new();
        if stream.read_to_string(&mut answer).await.is_ok() {
            assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 400 "),
                "{answer}"
            );
        }
        let health = get(addr, "GET /healthz HTTP/1.0\r\n\r\n").await;
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        task.abort();
    }

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(check_address("127.0.0.1:9090".parse().unwrap()).is_ok());
        assert!(check_address("[::1]:9090".parse().unwrap()).is_ok());
        let err = check_address("0.0.0.0:9090".parse().unwrap()).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(check_address("192.168.1.2:9090".parse().unwrap()).is_err());
    }
}
