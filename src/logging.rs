//! Log set-up (tracing-subscriber): the one place that decides log format,
//! level and colour. Logs go to stderr so stdout stays for plans and data.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// Installs the global subscriber. `SCSYNC_LOG` (an EnvFilter directive)
/// overrides the level given by `-v`/`-q`.
pub fn init(args: &GlobalArgs) {
    let level = match (args.verbose, args.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    // Dependencies log at warn unless asked: their debug output is noise here.
    let default = format!("warn,scsync={level},sc_emulator={level}");
    let filter = EnvFilter::try_from_env("SCSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text if std::env::var_os("JOURNAL_STREAM").is_some() => {
            // journald stamps each line itself and shows no colours.
            builder.without_time().with_ansi(false).try_init()
        }
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
    };
    // A second init (tests calling in-process) is harmless.
    drop(result);
}
