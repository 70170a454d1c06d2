//! The manifest: the account as the user wants it, read from one YAML file or
//! a directory of them, validated with every problem located.
//!
//! Loading goes in three steps, each in its own file:
//! - `yaml`: text to a tree of located nodes (the only code that knows the
//!   YAML parser; duplicate keys are caught here);
//! - `schema`: ONE table describing the format. It checks a tree (unknown
//!   keys, types, enum values, reference syntax), hands back the checked
//!   values, and emits the JSON Schema, so validator and schema cannot drift;
//! - `build`: across files: merging, duplicate keys per kind, dangling
//!   references, limits, audio/artwork files on disk, and the typed result.
//!
//! What the result promises to its users:
//! - `Fields` hold only the keys written, by their manifest names;
//! - references are already checked: a `Reference::Key` in a playlist names
//!   a manifest track, URNs are of the right kind, URLs are canonical
//!   (`https://soundcloud.com/PATH`, no query);
//! - an adopted track written without `file` has an empty `file` and
//!   `file_display` (its audio is not managed); every other `file` and
//!   `artwork` is an absolute path to a readable, non-empty regular file.
//!
//! This module does no network IO and no SQL. Environment variables and
//! secret files are read only by [`Account::credentials`], so `validate`
//! works in CI without credentials.

mod build;
mod formats;
mod schema;
mod yaml;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::model::{Desired, Policy};
use crate::secret::Secret;

pub use formats::{DEFAULT_API_URL, DEFAULT_AUTH_URL};

/// A loaded, validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file(s) loaded, in the order they were merged (sorted by name).
    pub files: Vec<PathBuf>,
    /// The manifest's folder (the directory itself when a directory was
    /// loaded). Relative paths resolve against the folder of the file that
    /// names them, which is this folder for every file loaded.
    pub base_dir: PathBuf,
    /// `sha256:HEX` over the loaded files (name and contents, in merge order).
    pub digest: String,
    pub account: Account,
    pub policy: Policy,
    pub daemon: DaemonSettings,
    pub desired: Desired,
}

/// The `account` section as written: `${VAR}` references are expanded and
/// secret files read only by [`Account::credentials`].
#[derive(Clone, Debug)]
pub struct Account {
    client_id: formats::Template,
    /// `client_secret: ${VAR}` (a literal secret is rejected at load).
    client_secret: Option<formats::Template>,
    client_secret_file: Option<formats::Template>,
    api_url: formats::Template,
    auth_url: formats::Template,
}

/// The account's settings with every `${VAR}` expanded and secret read.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Without a trailing slash.
    pub api_url: String,
    /// Without a trailing slash.
    pub auth_url: String,
}

/// The `daemon` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    /// A cron expression as written: 5 fields (minute first), 6 fields
    /// (seconds first) or an `@alias` such as `@hourly`. Only its shape is
    /// checked here; `daemon` parses it.
    pub schedule: Option<String>,
    /// An IANA zone name such as `Europe/Berlin`, or `UTC`; shape checked only.
    pub timezone: Option<String>,
    /// Re-plan when the manifest changes (default true).
    pub watch: bool,
    /// Address for the daemon's local HTTP endpoint, if any.
    pub listen: Option<SocketAddr>,
}

impl Default for DaemonSettings {
    fn default() -> DaemonSettings {
        DaemonSettings {
            schedule: None,
            timezone: None,
            watch: true,
            listen: None,
        }
    }
}

/// One located problem in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file (it cannot be read).
    pub line: usize,
    /// 1-based, in characters; 0 with `line` 0.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Every problem found, sorted by file, line and column. `Display` prints one
/// per line: `FILE:LINE:COL: error: MESSAGE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ManifestErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl ManifestErrors {
    fn new(mut diagnostics: Vec<Diagnostic>) -> ManifestErrors {
        diagnostics.sort();
        diagnostics.dedup();
        ManifestErrors { diagnostics }
    }
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// Loads a manifest file, or every `*.yaml`/`*.yml` file of a directory
/// (not recursive; names starting with `.` skipped) merged in name order.
/// Checks everything that can be checked without the network, including
/// that audio and artwork files exist and can be read.
pub fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
    build::load(path)
}

/// The JSON Schema (draft 2020-12) of one manifest file, for editors and
/// `scsync schema`.
pub fn json_schema() -> serde_json::Value {
    schema::json_schema()
}

impl Account {
    /// Expands `${VAR}` from the environment and reads `*_file` secrets.
    /// Done only when the network is needed, so `validate` works in CI
    /// without credentials. Reports every problem at once, located at the
    /// manifest line that asked for the variable or file.
    pub fn credentials(&self) -> Result<Credentials, ManifestErrors> {
        self.credentials_from(|name| std::env::var(name).ok())
    }

    /// [`Account::credentials`] with the environment given as a function
    /// (for tests, and for callers that keep their own environment).
    pub fn credentials_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, ManifestErrors> {
        build::credentials(self, &env)
    }

    /// The API base URL without a trailing slash, or as written when it
    /// holds `${VAR}` (the expanded form is [`Credentials::api_url`]).
    /// Default `https://api.soundcloud.com`.
    pub fn api_url(&self) -> &str {
        &self.api_url.raw
    }

    /// The auth base URL without a trailing slash, or as written when it
    /// holds `${VAR}` (the expanded form is [`Credentials::auth_url`]).
    /// Default `https://secure.soundcloud.com`.
    pub fn auth_url(&self) -> &str {
        &self.auth_url.raw
    }
}
