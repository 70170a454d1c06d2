//! `sc-emulator --listen 127.0.0.1:0 [--seed FILE] [--latency-ms N]`
//!
//! Prints its base URL as the first line on stdout, then serves until
//! SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sc_emulator::{Emulator, Options, Seed};

/// In-memory SoundCloud API emulator (API and auth host on one address).
#[derive(Parser, Debug)]
#[command(name = "sc-emulator", version)]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed file (JSON or YAML) with the initial world.
    #[arg(long, conflicts_with = "demo")]
    seed: Option<PathBuf>,
    /// Start with the built-in demo world instead of an empty one.
    #[arg(long)]
    demo: bool,
    /// Delay added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SC_EMULATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let seed = match (&cli.seed, cli.demo) {
        (Some(path), _) => match std::fs::read_to_string(path) {
            Err(e) => {
                eprintln!("sc-emulator: cannot read seed file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            Ok(text) => match Seed::from_text(&text) {
                Ok(seed) => seed,
                Err(e) => {
                    eprintln!("sc-emulator: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            },
        },
        (None, true) => Seed::demo(),
        (None, false) => Seed::default(),
    };
    // Before the URL is printed: a caller may signal as soon as it reads it.
    let stop = Stop::install();
    let options = Options {
        latency_ms: cli.latency_ms,
    };
    let emulator = match Emulator::bind(cli.listen, seed, options).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sc-emulator: cannot start on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", emulator.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("sc-emulator: cannot write the base URL to stdout");
    }
    tracing::info!(base_url = %emulator.base_url(), "serving");
    stop.wait().await;
    tracing::info!("signal received; stopping");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT, listened for from creation on, so that a signal sent
/// as soon as the base URL is printed is not missed.
struct Stop {
    #[cfg(unix)]
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Stop {
    fn install() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = [SignalKind::terminate(), SignalKind::interrupt()]
                .into_iter()
                .filter_map(|kind| signal(kind).ok())
                .collect();
            Stop { signals }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    #[cfg(unix)]
    async fn wait(mut self) {
        if self.signals.is_empty() {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
        let waits = self
            .signals
            .iter_mut()
            .map(|s| Box::pin(async move { s.recv().await }));
        futures_util::future::select_all(waits).await;
    }

    #[cfg(not(unix))]
    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
