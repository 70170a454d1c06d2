//! scsync: keeps one SoundCloud account in the state a YAML manifest describes.
//!
//! See ARCHITECTURE.md for the map of modules and the invariants they keep.

pub mod api;
pub mod apply;
pub mod audio;
pub mod cli;
pub mod commands;
pub mod daemon;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod remote;
pub mod secret;
pub mod state;
pub mod tag_list;
