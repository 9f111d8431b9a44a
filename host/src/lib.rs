//! Chronicle's host: the dispatch core behind `chronicle hook`, and everything the CLI reads.
//!
//! Only the binary (`main.rs`, `cli/`) touches stdin, stdout, the process environment's
//! exit code and argument parsing; this library takes bytes and a config and returns answers
//! and records, so a long-lived server could reuse it unchanged.

#![cfg_attr(test, allow(clippy::unwrap_used))]

/// The version and the commit it was built from, as `chronicle --version` prints it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CHRONICLE_COMMIT"), ")");

pub mod answer;
pub mod cache;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod hook;
pub mod input;
pub mod logging;
pub mod output;
pub mod payload;
pub mod plugin;
pub mod project;
pub(crate) mod rawjson;
pub mod redact;
pub mod report;
pub mod resident;
pub mod settings;
pub mod shutdown;
pub mod spool;
pub mod store;
pub mod team;
