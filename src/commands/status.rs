//! `scsync status`: what the state database knows — sign-in, managed
//! objects, recent runs and their results. No network.

use chrono::{DateTime, Utc};

use crate::cli::GlobalArgs;
use crate::model::ManagedKind;
use crate::state::{RunRecord, RunResult, Store, TokenKind};

use super::daemon_cmd::meta;
use super::{Result, Status, session};

pub fn run(global: &GlobalArgs) -> Result<Status> {
    let store = session::open_store(global)?;
    let now = Utc::now();
    outln!("State:    {}", store.path().display());
    match store.load_tokens(TokenKind::User)? {
        None => outln!("Sign-in:  none (run `scsync login`)"),
        Some(tokens) => {
            let expires = DateTime::from_timestamp(tokens.expires_at, 0).unwrap_or(now);
            let when = if expires > now {
                format!("expires {} (in {})", stamp(expires), span(expires - now))
            } else {
                format!("expired {}", stamp(expires))
            };
            let refresh = if tokens.refresh_token.is_some() {
                "; refreshed automatically"
            } else {
                "; no refresh token"
            };
            outln!("Sign-in:  access token {when}{refresh}");
        }
    }
    let local = store.local_state()?;
    let count = |kind| local.managed.iter().filter(|m| m.kind == kind).count();
    outln!(
        "Managed:  {} tracks, {} playlists; {} resolved URLs cached",
        count(ManagedKind::Track),
        count(ManagedKind::Playlist),
        local.resolved.len()
    );
    for line in daemon_lines(&store, now)? {
        outln!("{line}");
    }
    let runs = store.recent_runs(10)?;
    if runs.is_empty() {
        outln!("Runs:     none yet");
    } else {
        outln!("Runs (newest first):");
        for run in &runs {
            outln!("  {}", run_line(run));
        }
    }
    Ok(Status::Success)
}

/// What the daemon recorded: whether it runs, its next and last run, what
/// the last plan found, and the last problem.
fn daemon_lines(store: &Store, now: DateTime<Utc>) -> Result<Vec<String>> {
    let get = |key| store.meta(key);
    let mut lines = Vec::new();
    let pid = get(meta::PID)?.and_then(|p| p.parse::<u32>().ok());
    // The pid is cleared on a clean stop; one left behind whose process is
    // gone means the daemon was killed or crashed.
    let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    let state = match (&pid, get(meta::STOPPED_AT)?) {
        (Some(pid), _) if alive => {
            let since =
                get(meta::STARTED_AT)?.map_or_else(String::new, |t| format!(" since {}", when(&t)));
            format!("running (pid {pid}){since}")
        }
        (Some(pid), _) => format!("not running (pid {pid} ended without stopping cleanly)"),
        (None, Some(stopped)) => format!("stopped at {}", when(&stopped)),
        (None, None) => {
            lines.push("Daemon:   has not run on this state database".to_owned());
            return Ok(lines);
        }
    };
    lines.push(format!("Daemon:   {state}"));
    if alive {
        let next = match get(meta::NEXT_RUN)?.and_then(|t| parse(&t)) {
            Some(at) if at > now => format!("{} (in {})", stamp(at), span(at - now)),
            Some(at) => format!("{} (due)", stamp(at)),
            None => "none scheduled (runs on manifest changes and reload only)".to_owned(),
        };
        lines.push(format!("Next run: {next}"));
    }
    if let Some(finished) = get(meta::LAST_RUN)? {
        let result = get(meta::LAST_RESULT)?.unwrap_or_else(|| "?".into());
        let trigger = get(meta::LAST_TRIGGER)?.unwrap_or_else(|| "?".into());
        let summary = get(meta::LAST_SUMMARY)?.unwrap_or_default();
        lines.push(format!(
            "Last run: {result} at {} ({trigger}): {summary}",
            when(&finished)
        ));
    }
    if let Some(drift) = get(meta::DRIFT)? {
        let at = get(meta::DRIFT_AT)?.map_or_else(String::new, |t| format!(" ({})", when(&t)));
        if drift == meta::NO_DRIFT {
            lines.push(format!("Drift:    none at the last check{at}"));
        } else {
            lines.push(format!("Drift:    at the last check{at}: {drift}"));
        }
    }
    if let Some(error) = get(meta::LAST_ERROR)? {
        lines.push(format!("Last error: {error}"));
    }
    Ok(lines)
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A recorded RFC 3339 time in the form the rest of `status` uses.
fn when(text: &str) -> String {
    parse(text).map_or_else(|| text.to_owned(), stamp)
}

fn run_line(run: &RunRecord) -> String {
    let result = match run.outcome.as_ref().map(|o| o.result) {
        None if run.this_process => "running",
        None => "unfinished",
        Some(RunResult::Succeeded) => "ok",
        Some(RunResult::Failed) => "failed",
        Some(RunResult::Interrupted) => "interrupted",
        Some(RunResult::Crashed) => "crashed",
    };
    let detail = run
        .outcome
        .as_ref()
        .and_then(|o| o.detail.as_deref())
        .unwrap_or("");
    format!(
        "{:<5} {} {:<6} {:<11} {detail}",
        run.id.to_string(),
        stamp(run.started_at),
        run.command,
        result
    )
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn span(d: chrono::Duration) -> String {
    let minutes = d.num_minutes();
    if minutes < 1 {
        format!("{} s", d.num_seconds())
    } else if minutes >= 48 * 60 {
        format!("{} days", minutes / (24 * 60))
    } else if minutes >= 120 {
        format!("{} h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}
