//! One function per command, and the pipeline they share: load the manifest,
//! open the state database, connect, resolve references, pull, plan.
//!
//! This is glue: the work itself lives in manifest/, api/, remote, plan/,
//! apply and state/.

#[macro_use]
mod output;

mod apply_cmd;
mod daemon_cmd;
mod demo;
mod import;
mod login;
mod plan_cmd;
mod session;
mod status;

use std::error::Error as _;
use std::fmt::Write as _;

use crate::api::ApiError;
use crate::cli::{Cli, Command};
use crate::manifest::{self, ManifestErrors};
use crate::plan::diff::{PlanError, PolicyRefusal};
use crate::state::{LockError, StateError};

pub use session::Session;

/// How a command that did not fail ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Success,
    /// `plan --detailed-exitcode` found changes.
    ChangesPending,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::ChangesPending => 2,
        }
    }
}

/// Everything a command can fail with, as the user sees it.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("the manifest has errors:\n{0}")]
    Manifest(#[from] ManifestErrors),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Refused(#[from] PolicyRefusal),
    #[error(transparent)]
    Recover(#[from] crate::apply::RecoverError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> CommandError {
        CommandError::Io {
            what: what.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Refused(_) => 3,
            _ => 1,
        }
    }

    /// The message for stderr: the error and its chain of causes.
    pub fn report(&self) -> String {
        let mut out = format!("error: {self}");
        let mut cause = self.source();
        // `transparent` variants repeat their inner message as the first source.
        let mut last = self.to_string();
        while let Some(err) = cause {
            let text = err.to_string();
            if text != last && !last.contains(&text) {
                let _ = write!(out, "\n  caused by: {text}");
            }
            last = text;
            cause = err.source();
        }
        out
    }
}

pub type Result<T, E = CommandError> = std::result::Result<T, E>;

/// Runs one command to completion.
pub async fn run(cli: Cli) -> Result<Status> {
    let global = &cli.global;
    match cli.command {
        Command::Validate => validate(global),
        Command::Schema => {
            let schema = manifest::json_schema();
            outln!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            Ok(Status::Success)
        }
        Command::Plan(args) => plan_cmd::run(global, &args).await,
        Command::Apply(args) => apply_cmd::run(global, &args).await,
        Command::Daemon => daemon_cmd::run(global).await,
        Command::Import(args) => import::run(global, &args).await,
        Command::Login(args) => login::login(global, &args).await,
        Command::Logout => login::logout(global).await,
        Command::Status => status::run(global),
        Command::Demo => demo::run().await,
    }
}

fn validate(global: &crate::cli::GlobalArgs) -> Result<Status> {
    let manifest = manifest::load(&global.config)?;
    let d = &manifest.desired;
    outln!(
        "{}: valid ({}, {}, {}, {}, {})",
        global.config.display(),
        count(d.tracks.len(), "track"),
        count(d.playlists.len(), "playlist"),
        count(d.follows.len(), "follow"),
        count(d.liked_tracks.len(), "liked track"),
        count(d.liked_playlists.len(), "liked playlist")
    );
    Ok(Status::Success)
}

/// `1 track`, `2 tracks`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
