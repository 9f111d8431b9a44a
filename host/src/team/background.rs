//! The resident host's background push: every `[sync] interval_s`, on its own thread, with its
//! own SQLite and PostgreSQL connections, at the lowest CPU priority. It never runs inside an
//! event and never holds the local write lock; a server that is down costs a failed connect on
//! this thread (refused at once, or `connect_timeout` at most) and a line in the log.
//!
//! Each outcome is written to `sync-status.json` in the data directory, which `chronicle
//! doctor` shows: a push that keeps failing is visible, not silent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::push::{push, Pushed};
use super::{SyncError, Target};
use crate::config::Config;

/// The last push's outcome (`<data dir>/sync-status.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// RFC 3339.
    pub at: String,
    pub ok: bool,
    /// The one-line reason when it failed.
    pub error: Option<String>,
    pub target: String,
    pub machine: String,
    /// `resident` or `sync` (the command).
    pub by: String,
    pub events: u64,
    /// The highest local event id known to be in the team database (kept from the last
    /// successful push when this one failed): `doctor` counts what waits after it.
    pub pushed_through: Option<i64>,
}

pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join("sync-status.json")
}

pub fn read_status(data_dir: &Path) -> Option<Status> {
    serde_json::from_str(&std::fs::read_to_string(status_path(data_dir)).ok()?).ok()
}

/// Records an outcome (write, then rename: a reader never sees half a file).
pub fn write_status(data_dir: &Path, status: &Status) {
    let path = status_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(status).unwrap_or_default();
    if std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

pub fn status(target: &Target, machine: &str, by: &str, result: &Result<Pushed, SyncError>, data_dir: &Path) -> Status {
    let pushed_through = match result {
        Ok(p) => Some(p.through),
        Err(_) => read_status(data_dir).and_then(|s| s.pushed_through),
    };
    Status {
        at: crate::store::read::rfc3339(crate::clock::unix_ns()),
        ok: result.is_ok(),
        error: result.as_ref().err().map(ToString::to_string),
        target: target.shown.clone(),
        machine: machine.to_owned(),
        by: by.to_owned(),
        events: result.as_ref().map_or(0, |p| p.events),
        pushed_through,
    }
}

/// Starts the pusher if `[sync]` names a database; returns whether it did.
pub fn start(config: &Config) -> bool {
    let Some(url) = config.sync_url() else { return false };
    let s = &config.file.sync;
    let target = match Target::new(&url, s.sslmode.as_deref(), s.ca_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("[sync] is set but unusable, nothing will be pushed: {e}");
            return false;
        }
    };
    let machine = config.machine();
    let db = config.db_path.clone();
    let data_dir = config.data_dir.clone();
    let interval = Duration::from_secs(s.interval_s.max(1));
    std::thread::Builder::new()
        .name("chronicle-sync".into())
        .spawn(move || {
            crate::store::lower_this_threads_priority();
            run(&target, &machine, &db, &data_dir, interval)
        })
        .is_ok()
}

fn run(target: &Target, machine: &str, db: &Path, data_dir: &Path, interval: Duration) {
    let mut last_error: Option<String> = None;
    // The first push soon after start (what piled up while no host ran), then every interval.
    // Each push connects afresh: a few milliseconds every interval, and nothing to go stale.
    let mut wait = Duration::from_secs(1).min(interval);
    loop {
        std::thread::sleep(wait);
        wait = interval;
        let result = push(db, target, machine, |_, _| {});
        match &result {
            Ok(p) => {
                if p.events > 0 {
                    tracing::info!(events = p.events, "pushed to the team database");
                }
                last_error = None;
            }
            Err(e) => {
                // The same error is logged once, not every interval.
                let text = e.to_string();
                if last_error.as_deref() != Some(&text) {
                    tracing::warn!("team sync: {text}");
                }
                last_error = Some(text);
            }
        }
        write_status(data_dir, &status(target, machine, "resident", &result, data_dir));
    }
}
