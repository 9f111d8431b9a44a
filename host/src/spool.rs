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

use serde_json::json;

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

/// Appends the raw input of an event no host process could handle (the client found no
/// `chronicle-host` to run). `raw` is the input as text (invalid UTF-8 replaced).
pub fn append_raw(data_dir: &Path, invocation_id: &str, received_at_ns: i64, raw: &[u8], why: &str) -> std::io::Result<PathBuf> {
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
    let mut lines = Vec::new();
    for spool in [path(data_dir), fallback_path(data_dir)] {
        if std::fs::metadata(&spool).map_or(true, |m| m.len() == 0) {
            continue;
        }
        let claimed = spool.with_extension(format!("{}.ingesting", std::process::id()));
        if std::fs::rename(&spool, &claimed).is_err() {
            continue;
        }
        let text = std::fs::read_to_string(&claimed).unwrap_or_default();
        let _ = std::fs::remove_file(&claimed);
        lines.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    (!lines.is_empty()).then_some(lines)
}

/// Lines waiting in the spool and in its fallback.
pub fn waiting(data_dir: &Path) -> usize {
    [path(data_dir), fallback_path(data_dir)].iter().map(|p| std::fs::read_to_string(p).map_or(0, |s| s.lines().count())).sum()
}

/// Puts a line that could not be ingested back.
pub fn put_back(data_dir: &Path, line: &serde_json::Value) -> std::io::Result<PathBuf> {
    append_line(data_dir, line)
}

/// Appends to the spool, else to its fallback; says where the line went.
fn append_line(data_dir: &Path, line: &serde_json::Value) -> std::io::Result<PathBuf> {
    let text = format!("{line}\n");
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
    crate::store::create_private_dir(dir)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(file)?;
    let before = f.metadata()?.len();
    // A line the disk filled up in the middle of is cut off again, so no torn line is left
    // for the next one to be glued to.
    f.write_all(text.as_bytes()).inspect_err(|_| {
        let _ = f.set_len(before);
    })
}

/// Appends one line (atomic for lines below PIPE_BUF on local filesystems; larger lines may
/// interleave only with other spool writers, which are themselves a failure path).
pub fn append(data_dir: &Path, record: &EventRecord, why: &str) -> std::io::Result<PathBuf> {
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
