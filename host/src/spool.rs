//! The last resort when the database cannot be written: the redacted event is appended as one
//! JSON line to `spool.jsonl` in the data directory, so nothing the host answered for is lost.
//! `chronicle doctor` reports a non-empty spool (replaying it into the database is not implemented yet).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::store::EventRecord;

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("spool.jsonl")
}

/// Appends one line (atomic for lines below PIPE_BUF on local filesystems; larger lines may
/// interleave only with other spool writers, which are themselves a failure path).
pub fn append(data_dir: &Path, record: &EventRecord, why: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::store::create_private_dir(data_dir)?;
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
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path(data_dir))?;
    f.write_all(format!("{line}\n").as_bytes())
}
