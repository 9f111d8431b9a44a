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

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::store::EventRecord;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("spool.jsonl")
}

/// Appends the raw input of an event no host process could handle (the client found no
/// `chronicle-host` to run). `raw` is the input as text (invalid UTF-8 replaced).
pub fn append_raw(data_dir: &Path, invocation_id: &str, received_at_ns: i64, raw: &[u8], why: &str) -> std::io::Result<()> {
    let line = json!({
        "invocation_id": invocation_id,
        "received_at_ns": received_at_ns,
        "raw": String::from_utf8_lossy(raw),
        "spooled_because": why,
    });
    append_line(data_dir, &line)
}

/// Takes the spool for ingestion: renames it so that lines appended meanwhile start a new one.
/// None when there is nothing to ingest.
pub fn claim(data_dir: &Path) -> Option<Vec<serde_json::Value>> {
    let spool = path(data_dir);
    if std::fs::metadata(&spool).map_or(true, |m| m.len() == 0) {
        return None;
    }
    let claimed = data_dir.join(format!(".spool.{}.ingesting", std::process::id()));
    std::fs::rename(&spool, &claimed).ok()?;
    let text = std::fs::read_to_string(&claimed).unwrap_or_default();
    let _ = std::fs::remove_file(&claimed);
    Some(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Puts a line that could not be ingested back.
pub fn put_back(data_dir: &Path, line: &serde_json::Value) -> std::io::Result<()> {
    append_line(data_dir, line)
}

fn append_line(data_dir: &Path, line: &serde_json::Value) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::store::create_private_dir(data_dir)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path(data_dir))?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// Appends one line (atomic for lines below PIPE_BUF on local filesystems; larger lines may
/// interleave only with other spool writers, which are themselves a failure path).
pub fn append(data_dir: &Path, record: &EventRecord, why: &str) -> std::io::Result<()> {
    let line = json!({
        "invocation_id": record.invocation_id,
        "kind": record.kind,
        "hook_event_name": record.hook_event_name,
        "session_id": record.session_id,
        "tool_name": record.tool_name,
        "tool_use_id": record.tool_use_id,
        "received_at_ns": record.received_at_ns,
        "redacted": record.redacted,
        "truncated": record.truncated,
        "decision": record.decision,
        "exit_code": record.exit_code,
        "error": record.error,
        "payload": &*record.payload,
        "spooled_because": why,
    });
    append_line(data_dir, &line)
}
