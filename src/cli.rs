//! Command-line definitions (clap) and nothing else: parsing only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps one SoundCloud account in the state a YAML manifest describes.
#[derive(Debug, Parser)]
#[command(name = "scsync", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the command name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The manifest: a YAML file, or a directory of them.
    #[arg(
        short,
        long,
        global = true,
        default_value = "scsync.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// The state database [default: $STATE_DIRECTORY/state.db under systemd,
    /// else $XDG_STATE_HOME/scsync/state.db].
    #[arg(long, global = true, value_name = "PATH", env = "SCSYNC_STATE")]
    pub state: Option<PathBuf>,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// How long to wait for another scsync process (the daemon, say) to
    /// release the state database before giving up; 0: do not wait.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value_t = 10,
        env = "SCSYNC_LOCK_TIMEOUT"
    )]
    pub lock_timeout: u64,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the manifest; no network.
    Validate,
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Change the account to match the manifest.
    Apply(ApplyArgs),
    /// Run for ever: apply on the schedule and whenever the manifest changes.
    Daemon,
    /// Write a manifest describing what the account has now.
    Import(ImportArgs),
    /// Sign in to SoundCloud (OAuth authorization code with PKCE).
    Login(LoginArgs),
    /// Sign out and forget the stored tokens.
    Logout,
    /// Show recent runs, drift and token expiry from the state database.
    Status,
    /// Print the JSON Schema of the manifest.
    Schema,
    /// Run plan and apply of the example manifest against a built-in emulator.
    Demo,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan as JSON, for `apply --plan`.
    #[arg(long, value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes (0 when none, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Print the plan and change nothing.
    #[arg(long, conflicts_with = "plan")]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Apply exactly this saved plan (refused if the account or manifest changed since).
    #[arg(long, value_name = "PLAN.json")]
    pub plan: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Where to write the manifest [default: standard output].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Print the authorization URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_work_after_the_command() {
        let cli = Cli::try_parse_from(["scsync", "plan", "-c", "m.yaml", "--state", "s.db", "-v"])
            .unwrap();
        assert_eq!(cli.global.config, PathBuf::from("m.yaml"));
        assert_eq!(cli.global.state, Some(PathBuf::from("s.db")));
        assert_eq!(cli.global.verbose, 1);
        assert_eq!(cli.global.lock_timeout, 10);
    }

    #[test]
    fn the_lock_timeout_is_whole_seconds() {
        let cli = Cli::try_parse_from(["scsync", "apply", "--lock-timeout", "0"]).unwrap();
        assert_eq!(cli.global.lock_timeout, 0);
        assert!(Cli::try_parse_from(["scsync", "apply", "--lock-timeout", "-1"]).is_err());
    }
}
