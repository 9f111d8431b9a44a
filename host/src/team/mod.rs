//! The team database: every machine's rows in one PostgreSQL database (`chronicle sync`), and
//! the team-wide views of them (`stats`, `events`, `sessions`, `report` with `--source`).
//!
//! **Architecture Invariant:** nothing here runs on the hook path. The resident host pushes
//! from its own thread with its own connections (`background`); a hook process never links a
//! connection to PostgreSQL, so a server that is down costs an event nothing.
//!
//! The client is rust-postgres (`postgres`, the blocking face of `tokio-postgres`): maintained,
//! a synchronous API that fits a host with no async runtime of its own (it runs a
//! current-thread runtime inside the client), arrays as parameters (a batch is one `INSERT ...
//! SELECT FROM unnest(...)` per table), and pluggable TLS, which is rustls here: pure Rust, so
//! the host binary loads no libssl at start-up (the hot path pays for every shared library).

mod connect;
pub mod push;
pub mod read;
pub mod schema;

pub mod background;

pub use connect::{mask_url, Target, TlsMode};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A setting is wrong (URL, sslmode, CA file).
    #[error("{0}")]
    Config(String),
    #[error("cannot reach PostgreSQL at {target}: {reason}")]
    Unreachable { target: String, reason: String },
    #[error("authentication failed at {target}: {reason}")]
    Auth { target: String, reason: String },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("PostgreSQL at {target}: {reason}")]
    Server { target: String, reason: String },
    #[error("the team database's schema is version {found}, newer than this chronicle knows ({supported}): upgrade chronicle")]
    TooNew { found: i32, supported: i32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// One line for a rust-postgres error, classified by what a person can do about it.
    pub fn from_pg(target: &str, e: &postgres::Error) -> SyncError {
        let mut parts: Vec<String> = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = next {
            let text = err.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            next = err.source();
        }
        let reason = parts.join(": ");
        let target = target.to_owned();
        if let Some(db) = e.as_db_error() {
            let text = format!("{} ({})", db.message(), db.code().code());
            return if db.code().code().starts_with("28") {
                SyncError::Auth { target, reason: text }
            } else {
                SyncError::Server { target, reason: text }
            };
        }
        let lower = reason.to_ascii_lowercase();
        if lower.contains("tls") || lower.contains("certificate") || lower.contains("ssl") {
            SyncError::Tls(format!("{target}: {reason}"))
        } else if lower.contains("error connecting") || lower.contains("timed out") || lower.contains("connection") || e.is_closed() {
            SyncError::Unreachable { target, reason }
        } else {
            SyncError::Server { target, reason }
        }
    }
}
