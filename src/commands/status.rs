//! `scsync status`: what the state database knows — sign-in, managed
//! objects, recent runs and their results. No network.

use chrono::{DateTime, Utc};

use crate::cli::GlobalArgs;
use crate::model::ManagedKind;
use crate::state::{RunRecord, RunResult, TokenKind};

use super::{Result, Status, session};

pub fn run(global: &GlobalArgs) -> Result<Status> {
    let store = session::open_store(global)?;
    let now = Utc::now();
    println!("State:    {}", store.path().display());
    match store.load_tokens(TokenKind::User)? {
        None => println!("Sign-in:  none (run `scsync login`)"),
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
            println!("Sign-in:  access token {when}{refresh}");
        }
    }
    let local = store.local_state()?;
    let count = |kind| local.managed.iter().filter(|m| m.kind == kind).count();
    println!(
        "Managed:  {} tracks, {} playlists; {} resolved URLs cached",
        count(ManagedKind::Track),
        count(ManagedKind::Playlist),
        local.resolved.len()
    );
    for key in ["daemon.next_run", "daemon.last_error"] {
        if let Some(value) = store.meta(key)? {
            println!("{key}: {value}");
        }
    }
    let runs = store.recent_runs(10)?;
    if runs.is_empty() {
        println!("Runs:     none yet");
    } else {
        println!("Runs (newest first):");
        for run in &runs {
            println!("  {}", run_line(run));
        }
    }
    Ok(Status::Success)
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
    if minutes >= 120 {
        format!("{} h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}
