//! The `scsync` binary: parse arguments, set up logging, run one command, and
//! map its outcome to an exit status (0 ok, 1 error, 2 changes pending,
//! 3 refused by a safety policy).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use scsync::cli::Cli;
use scsync::{commands, logging};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // Help and version are answers, not errors; a usage error is 1,
            // never 2 (which means "changes pending").
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    logging::init(&cli.global);
    scsync::api::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(status) => ExitCode::from(status.code()),
        Err(error) => {
            eprintln!("{}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}
