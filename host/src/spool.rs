//! The last resort when the database cannot be written: the event is appended as one JSON line
//! to `spool.jsonl` in the data directory (0600, in the private data directory), so nothing the
//! host answered for is lost. A host line holds the record as it would have been stored
//! (redacted); a client that could not start `chronicle-host` at all writes the raw input
//! (`raw`), which is classified and redacted when it is ingested.
//!
//! Spooled events are ingested by the next host process that opens the database (and by
//! `chronicle spool ingest`): the file is claimed by renaming it, each line recorded under its
//! invocation id (a line already recorded adds nothing), lines that still cannot be recorded
//! appended back. `chronicle doctor` reports what waits.
//!
//! When the data directory itself cannot take a line (its filesystem is full or read-only), it
//! goes to a fallback file on another filesystem: `$XDG_RUNTIME_DIR/chronicle-<uid>/` (else the
//! temporary directory), private to the user, one file per data directory, ingested the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
#[cfg(feature = "host")]
use std::sync::Arc;

use serde::{Deserialize, Serialize};

#[cfg(feature = "host")]
use crate::store::EventRecord;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("spool.jsonl")
}

/// The spool used when the data directory cannot be written (see the module doc).
pub fn fallback_path(data_dir: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let base =
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_absolute() && d.is_dir()).unwrap_or_else(std::env::temp_dir);
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut h = std::hash::DefaultHasher::new();
    data_dir.hash(&mut h);
    base.join(format!("chronicle-{uid}")).join(format!("spool-{:016x}.jsonl", h.finish()))
}

/// One spooled event: the record as it would have been stored, or (`raw`) the input of an event
/// no host process could handle. The one definition of the spool's line format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Line {
    pub invocation_id: Option<String>,
    pub received_at_ns: i64,
    pub spooled_because: String,
    /// The input as text (invalid UTF-8 replaced), classified and redacted when ingested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    pub kind: String,
    pub hook_event_name: Option<String>,
    pub session_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub redacted: bool,
    pub truncated: bool,
    pub decision: String,
    pub exit_code: i32,
    pub error: Option<String>,
    pub payload: String,
}

#[cfg(feature = "host")]
impl Line {
    /// The record a host line describes (not for `raw` lines, which need classifying).
    pub fn record(&self) -> EventRecord {
        EventRecord {
            invocation_id: self.invocation_id.clone(),
            kind: if self.kind.is_empty() { "event".into() } else { self.kind.clone() },
            hook_event_name: self.hook_event_name.clone(),
            session_id: self.session_id.clone(),
            tool_name: self.tool_name.clone(),
            tool_use_id: self.tool_use_id.clone(),
            received_at_ns: self.received_at_ns,
            payload_bytes: self.payload.len() as u64,
            payload: Arc::from(self.payload.as_str()),
            redacted: self.redacted,
            truncated: self.truncated,
            decision: if self.decision.is_empty() { "none".into() } else { self.decision.clone() },
            exit_code: self.exit_code,
            error: self.error.clone(),
            ..EventRecord::default()
        }
    }
}

/// Appends one line (atomic for lines below PIPE_BUF on local filesystems; larger lines may
/// interleave only with other spool writers, which are themselves a failure path). Says where
/// the line went.
#[cfg(feature = "host")]
pub fn append(data_dir: &Path, record: &EventRecord, why: &str) -> std::io::Result<PathBuf> {
    let line = Line {
        invocation_id: record.invocation_id.clone(),
        received_at_ns: record.received_at_ns,
        spooled_because: why.to_owned(),
        raw: None,
        kind: record.kind.clone(),
        hook_event_name: record.hook_event_name.clone(),
        session_id: record.session_id.clone(),
        tool_name: record.tool_name.clone(),
        tool_use_id: record.tool_use_id.clone(),
        redacted: record.redacted,
        truncated: record.truncated,
        decision: record.decision.clone(),
        exit_code: record.exit_code,
        error: record.error.clone(),
        payload: record.payload.to_string(),
    };
    append_line(data_dir, &line)
}

/// Appends the raw input of an event no host process could handle (the client found no
/// `chronicle-host` to run).
pub fn append_raw(data_dir: &Path, invocation_id: &str, received_at_ns: i64, raw: &[u8], why: &str) -> std::io::Result<PathBuf> {
    let line = Line {
        invocation_id: Some(invocation_id.to_owned()),
        received_at_ns,
        spooled_because: why.to_owned(),
        raw: Some(String::from_utf8_lossy(raw).into_owned()),
        ..Line::default()
    };
    append_line(data_dir, &line)
}

/// Spooled lines taken for ingestion. The files they came from are removed by
/// [`Claimed::done`], once every line is recorded or put back: a process that dies while
/// ingesting leaves them, and the next claim takes them again (their ids keep that from
/// recording anything twice).
pub struct Claimed {
    files: Vec<PathBuf>,
    pub lines: Vec<Line>,
}

impl Claimed {
    pub fn done(self) {
        for f in self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Takes the spool and its fallback for ingestion (renamed, so that lines appended meanwhile
/// start new files), with whatever an earlier ingestion left behind. None when nothing waits.
/// `thorough`: also look for leftovers when no new line waits (a directory listing; after each
/// event only a `stat` of the two files is paid, and leftovers wait for a new line, a resident
/// host's start or `chronicle spool ingest`).
pub fn claim(data_dir: &Path, thorough: bool) -> Option<Claimed> {
    let mut claimed = Claimed { files: Vec::new(), lines: Vec::new() };
    for spool in [path(data_dir), fallback_path(data_dir)] {
        let (Some(dir), Some(name)) = (spool.parent(), spool.file_name().and_then(|n| n.to_str())) else { continue };
        let new = std::fs::metadata(&spool).is_ok_and(|m| m.len() > 0);
        if !new && !thorough {
            continue;
        }
        if new {
            // Unique per claim: a leftover of this same process must not be renamed over.
            let _ = std::fs::rename(&spool, dir.join(format!("{name}.ingesting.{}.{}", std::process::id(), crate::clock::unix_ns())));
        }
        let prefix = format!("{name}.ingesting.");
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for file in entries.filter_map(Result::ok).map(|e| e.path()) {
            if file.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)) {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                claimed.lines.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
                claimed.files.push(file);
            }
        }
    }
    (!claimed.files.is_empty()).then_some(claimed)
}

/// Lines waiting in the spool and in its fallback (including any being ingested).
pub fn waiting(data_dir: &Path) -> usize {
    let mut n = 0;
    for spool in [path(data_dir), fallback_path(data_dir)] {
        let (Some(dir), Some(name)) = (spool.parent(), spool.file_name().and_then(|n| n.to_str())) else { continue };
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for file in entries.filter_map(Result::ok).filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(name))) {
            n += std::fs::read_to_string(file.path()).map_or(0, |s| s.lines().count());
        }
    }
    n
}

/// Puts a line that could not be ingested back.
pub fn put_back(data_dir: &Path, line: &Line) -> std::io::Result<PathBuf> {
    append_line(data_dir, line)
}

/// Appends to the spool, else to its fallback; says where the line went.
fn append_line(data_dir: &Path, line: &Line) -> std::io::Result<PathBuf> {
    let text = format!("{}\n", serde_json::to_string(line).map_err(std::io::Error::other)?);
    let primary = append_to(data_dir, &path(data_dir), &text);
    let Err(first) = primary else { return Ok(path(data_dir)) };
    let fallback = fallback_path(data_dir);
    let Some(dir) = fallback.parent() else { return Err(first) };
    match append_to(dir, &fallback, &text) {
        Ok(()) => Ok(fallback),
        Err(second) => Err(std::io::Error::new(first.kind(), format!("{first}; fallback {}: {second}", fallback.display()))),
    }
}

fn append_to(dir: &Path, file: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::private::create_private_dir(dir)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(file)?;
    // Appenders take turns (hook processes, and the serving threads of a resident host, each
    // with a descriptor of its own): cutting a torn line off below must not cut off a line
    // another appender wrote after it.
    // SAFETY: flock on a descriptor this function owns; released when `f` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = f.metadata()?.len();
    // A line the disk filled up in the middle of is cut off again, so no torn line is left
    // for the next one to be glued to.
    f.write_all(text.as_bytes()).inspect_err(|_| {
        let _ = f.set_len(before);
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_claim_not_finished_is_taken_again_and_a_finished_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::env::set_var("XDG_RUNTIME_DIR", dir.path());
        let record = EventRecord { invocation_id: Some("a".repeat(32)), payload: Arc::from("{}"), ..EventRecord::default() };
        assert_eq!(append(&data, &record, "test").unwrap(), path(&data));
        let first = claim(&data, false).unwrap();
        assert_eq!(first.lines.len(), 1);
        // The process ingesting it dies here: nothing is lost.
        drop(first);
        append(&data, &record, "again").unwrap();
        let second = claim(&data, false).unwrap();
        assert_eq!(second.lines.len(), 2, "the leftover and the new line");
        assert_eq!(waiting(&data), 2);
        second.done();
        assert!(claim(&data, true).is_none());
        assert_eq!(waiting(&data), 0);
    }
}
