//! One integration-test binary (links once): scsync against the SoundCloud
//! emulator over HTTP on 127.0.0.1 — the API client directly, and the real
//! `scsync` binary.

mod support;

mod api;
mod bench;
mod cli;
mod daemon;
mod faults;
mod reliability;
mod sync;
