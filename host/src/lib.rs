//! Chronicle's host: the dispatch core behind `chronicle hook`, and everything the CLI reads.
//!
//! Only the binary (`main.rs`, `cli/`) touches stdin, stdout, the process environment's
//! exit code and argument parsing; this library takes bytes and a config and returns answers
//! and records, so a long-lived server could reuse it unchanged.
//!
//! Without the `host` feature (on by default) only what the client (`bin/chronicle.rs`) links
//! is built: `clock`, `config`, `input`, `private`, `resident`'s protocol and client,
//! `shutdown`, and the spool's raw lines.

#![cfg_attr(test, allow(clippy::unwrap_used))]

/// The version and the commit it was built from, as `chronicle --version` prints it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CHRONICLE_COMMIT"), ")");

// What the client links too.
pub mod clock;
pub mod config;
pub mod input;
pub mod private;
pub mod resident;
pub mod shutdown;
pub mod spool;

// The host: everything else.
#[cfg(feature = "host")]
pub mod answer;
#[cfg(feature = "host")]
pub mod cache;
#[cfg(feature = "host")]
pub mod dispatch;
#[cfg(feature = "host")]
pub mod events;
#[cfg(feature = "host")]
pub mod hook;
#[cfg(feature = "host")]
pub mod logging;
#[cfg(feature = "host")]
pub mod output;
#[cfg(feature = "host")]
pub mod payload;
#[cfg(feature = "host")]
pub mod plugin;
#[cfg(feature = "host")]
pub mod project;
#[cfg(feature = "host")]
pub(crate) mod rawjson;
#[cfg(feature = "host")]
pub mod redact;
#[cfg(feature = "host")]
pub mod report;
#[cfg(feature = "host")]
pub mod settings;
#[cfg(feature = "host")]
pub mod store;
#[cfg(feature = "host")]
pub mod team;
