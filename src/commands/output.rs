//! Standard output that survives a closed pipe (`scsync status | head -1`):
//! `print!` would panic; here a closed stdout just ends the output while the
//! command itself runs to completion.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

pub fn write(args: fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(error) = result {
        CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != ErrorKind::BrokenPipe {
            tracing::warn!("cannot write to standard output: {error}");
        }
    }
}

/// `print!` to stdout, quiet once stdout is closed.
macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::output::write(format_args!($($arg)*)) };
}

/// `println!` to stdout, quiet once stdout is closed.
macro_rules! outln {
    () => { $crate::commands::output::write(format_args!("\n")) };
    ($($arg:tt)*) => {{
        $crate::commands::output::write(format_args!($($arg)*));
        $crate::commands::output::write(format_args!("\n"));
    }};
}
