//! Chronicle's host: the dispatch core behind `chronicle hook`, and everything the CLI reads.
//!
//! Only the binary (`main.rs`, `cli/`) touches stdin, stdout, the process environment's
//! exit code and argument parsing; this library takes bytes and a config and returns answers
//! and records, so a long-lived server could reuse it unchanged.
//!
//! Without the `host` feature (on by default) only what the client (`bin/chronicle.rs`) links
//! is built: `clock`, `config`, `events`, `failsafe`, `input`, `newdb`, `private`, `resident`'s
//! protocol and client, `shutdown`, `start`, and the spool's raw lines.

#![cfg_attr(test, allow(clippy::unwrap_used))]
// The library is the binaries' insides, not an API: its docs are read with
// `--document-private-items` (as CI builds them), where links to private items resolve.
#![allow(rustdoc::private_intra_doc_links)]

/// The version and the commit it was built from, as `chronicle --version` prints it.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CHRONICLE_COMMIT"), ")");

// What the client links too.
pub mod clock;
pub mod config;
pub mod events;
pub mod failsafe;
pub mod input;
pub mod newdb;
pub mod private;
pub mod resident;
pub mod shutdown;
pub mod spool;
pub mod start;

// The host: everything else.
macro_rules! host_only {
    ($($vis:vis mod $name:ident;)*) => { $( #[cfg(feature = "host")] $vis mod $name; )* };
}
host_only! {
    pub mod answer;
    pub mod cache;
    pub mod dispatch;
    pub(crate) mod doorbell;
    pub mod hook;
    pub mod logging;
    pub mod output;
    pub mod overlap;
    pub mod payload;
    pub mod plugin;
    pub mod project;
    pub(crate) mod rawjson;
    pub mod redact;
    pub mod report;
    pub mod settings;
    pub mod store;
    pub mod team;
}
