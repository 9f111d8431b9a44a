//! Reading rows out for `chronicle sync`: each table in the order it was written, after a
//! watermark, in bounded batches.
//!
//! SQLite has one writer at a time, so row ids grow in commit order: every row with an id at
//! or below a committed row's id is itself committed. A watermark per table (the highest local
//! id already pushed) is therefore a complete record of what was pushed, and a row that joins
//! the database later (a `store.commit` measurement written with the next event) still has a
//! higher id than the watermark.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// One event as stored (already redacted).
#[derive(Debug, Clone)]
pub struct ExportEvent {
    pub local_id: i64,
    pub invocation_id: Option<String>,
    pub kind: String,
    pub hook_event_name: Option<String>,
    pub session_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub agent_id: Option<String>,
    pub received_at_ns: i64,
    pub payload: String,
    pub payload_bytes: i64,
    pub redacted: bool,
    pub truncated: bool,
    pub error: Option<String>,
    pub decision: String,
    pub exit_code: i32,
    pub answer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExportCall {
    pub local_id: i64,
    pub event_id: i64,
    pub plugin: String,
    pub version: String,
    pub path: String,
    pub status: String,
    pub decision: String,
    pub fault: Option<String>,
    pub wall_ns: i64,
    pub cpu_ns: i64,
    pub allocations: i64,
    pub bytes_allocated: i64,
    pub peak_live_bytes: i64,
    pub memory_source: String,
    pub stdout_bytes: i64,
    pub cache: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExportFault {
    pub local_id: i64,
    pub event_id: i64,
    pub source: String,
    pub plugin: Option<String>,
    pub path: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ExportViolation {
    pub local_id: i64,
    pub event_id: i64,
    pub metric: String,
    pub subject: String,
    pub value: f64,
    pub threshold: f64,
}

/// A measurement; `local_id` is its SQLite rowid.
#[derive(Debug, Clone)]
pub struct ExportMetric {
    pub local_id: i64,
    pub event_id: i64,
    pub name: String,
    pub value: f64,
}

/// A session as it stands now (sessions are updated by every event of theirs).
#[derive(Debug, Clone)]
pub struct ExportSession {
    pub session_id: String,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub ended_at_ns: Option<i64>,
    pub end_reason: Option<String>,
    pub cwd: Option<String>,
    pub project_dir: Option<String>,
    pub git_branch: Option<String>,
    pub event_count: i64,
}

/// A tool call's duration as it stands now (the PostToolUse event completes it).
#[derive(Debug, Clone)]
pub struct ExportToolDuration {
    pub tool_use_id: String,
    pub session_id: Option<String>,
    pub tool_name: Option<String>,
    pub pre_event_id: Option<i64>,
    pub post_event_id: Option<i64>,
    pub started_at_ns: Option<i64>,
    pub ended_at_ns: Option<i64>,
    pub reported_ms: Option<f64>,
    pub duration_ms: Option<f64>,
    pub status: Option<String>,
}

impl Store {
    /// This database's identity: random, made when the database was created (or upgraded to
    /// schema 4). Two databases of one machine (one deleted and made anew) never share rows.
    pub fn store_id(&self) -> Result<String, StoreError> {
        self.conn().query_row("SELECT store_id FROM identity WHERE id = 1", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    /// Events after `after`, oldest first: at most `max_rows`, and no more payload than
    /// `max_bytes` (but always at least one event, however large).
    pub fn export_events(&self, after: i64, max_rows: usize, max_bytes: usize) -> Result<Vec<ExportEvent>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT id, invocation_id, kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, received_at_ns,
                        payload, payload_bytes, redacted, truncated, error, decision, exit_code, answer
                 FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![after, max_rows as i64]).map_err(|e| self.err(e))?;
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let payload: String = r.get(9).map_err(|e| self.err(e))?;
            if !out.is_empty() && bytes + payload.len() > max_bytes {
                break;
            }
            bytes += payload.len();
            let e = (|| {
                Ok::<_, rusqlite::Error>(ExportEvent {
                    local_id: r.get(0)?,
                    invocation_id: r.get(1)?,
                    kind: r.get(2)?,
                    hook_event_name: r.get(3)?,
                    session_id: r.get(4)?,
                    tool_name: r.get(5)?,
                    tool_use_id: r.get(6)?,
                    agent_id: r.get(7)?,
                    received_at_ns: r.get(8)?,
                    payload,
                    payload_bytes: r.get(10)?,
                    redacted: r.get(11)?,
                    truncated: r.get(12)?,
                    error: r.get(13)?,
                    decision: r.get(14)?,
                    exit_code: r.get(15)?,
                    answer: r.get(16)?,
                })
            })()
            .map_err(|e| self.err(e))?;
            out.push(e);
        }
        Ok(out)
    }

    pub fn export_calls(&self, after: i64, max_rows: usize) -> Result<Vec<ExportCall>, StoreError> {
        self.export(
            "SELECT id, event_id, plugin, version, path, status, decision, fault, wall_ns, cpu_ns, allocations, bytes_allocated,
                    peak_live_bytes, memory_source, stdout_bytes, cache
             FROM plugin_calls WHERE id > ?1 ORDER BY id LIMIT ?2",
            after,
            max_rows,
            |r| {
                Ok(ExportCall {
                    local_id: r.get(0)?,
                    event_id: r.get(1)?,
                    plugin: r.get(2)?,
                    version: r.get(3)?,
                    path: r.get(4)?,
                    status: r.get(5)?,
                    decision: r.get(6)?,
                    fault: r.get(7)?,
                    wall_ns: r.get(8)?,
                    cpu_ns: r.get(9)?,
                    allocations: r.get(10)?,
                    bytes_allocated: r.get(11)?,
                    peak_live_bytes: r.get(12)?,
                    memory_source: r.get(13)?,
                    stdout_bytes: r.get(14)?,
                    cache: r.get(15)?,
                })
            },
        )
    }

    pub fn export_faults(&self, after: i64, max_rows: usize) -> Result<Vec<ExportFault>, StoreError> {
        self.export(
            "SELECT id, event_id, source, plugin, path, message FROM faults WHERE id > ?1 ORDER BY id LIMIT ?2",
            after,
            max_rows,
            |r| {
                Ok(ExportFault {
                    local_id: r.get(0)?,
                    event_id: r.get(1)?,
                    source: r.get(2)?,
                    plugin: r.get(3)?,
                    path: r.get(4)?,
                    message: r.get(5)?,
                })
            },
        )
    }

    pub fn export_violations(&self, after: i64, max_rows: usize) -> Result<Vec<ExportViolation>, StoreError> {
        self.export(
            "SELECT id, event_id, metric, subject, value, threshold FROM violations WHERE id > ?1 ORDER BY id LIMIT ?2",
            after,
            max_rows,
            |r| {
                Ok(ExportViolation {
                    local_id: r.get(0)?,
                    event_id: r.get(1)?,
                    metric: r.get(2)?,
                    subject: r.get(3)?,
                    value: r.get(4)?,
                    threshold: r.get(5)?,
                })
            },
        )
    }

    pub fn export_metrics(&self, after: i64, max_rows: usize) -> Result<Vec<ExportMetric>, StoreError> {
        self.export("SELECT rowid, event_id, name, value FROM metrics WHERE rowid > ?1 ORDER BY rowid LIMIT ?2", after, max_rows, |r| {
            Ok(ExportMetric { local_id: r.get(0)?, event_id: r.get(1)?, name: r.get(2)?, value: r.get(3)? })
        })
    }

    /// The current state of these sessions.
    pub fn export_sessions(&self, ids: &[&str]) -> Result<Vec<ExportSession>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT session_id, first_seen_ns, last_seen_ns, ended_at_ns, end_reason, cwd, project_dir, git_branch, event_count
                 FROM sessions WHERE session_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = stmt
                .query_row(params![id], |r| {
                    Ok(ExportSession {
                        session_id: r.get(0)?,
                        first_seen_ns: r.get(1)?,
                        last_seen_ns: r.get(2)?,
                        ended_at_ns: r.get(3)?,
                        end_reason: r.get(4)?,
                        cwd: r.get(5)?,
                        project_dir: r.get(6)?,
                        git_branch: r.get(7)?,
                        event_count: r.get(8)?,
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            out.extend(row);
        }
        Ok(out)
    }

    /// The current state of these tool calls' durations.
    pub fn export_tool_durations(&self, ids: &[&str]) -> Result<Vec<ExportToolDuration>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT tool_use_id, session_id, tool_name, pre_event_id, post_event_id, started_at_ns, ended_at_ns, reported_ms,
                        duration_ms, status
                 FROM tool_durations WHERE tool_use_id = ?1",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = stmt
                .query_row(params![id], |r| {
                    Ok(ExportToolDuration {
                        tool_use_id: r.get(0)?,
                        session_id: r.get(1)?,
                        tool_name: r.get(2)?,
                        pre_event_id: r.get(3)?,
                        post_event_id: r.get(4)?,
                        started_at_ns: r.get(5)?,
                        ended_at_ns: r.get(6)?,
                        reported_ms: r.get(7)?,
                        duration_ms: r.get(8)?,
                        status: r.get(9)?,
                    })
                })
                .optional()
                .map_err(|e| self.err(e))?;
            out.extend(row);
        }
        Ok(out)
    }

    /// Rows not yet pushed, per table: (events, plugin calls, faults, violations, metrics).
    pub fn export_backlog(&self, after: [i64; 5]) -> Result<[i64; 5], StoreError> {
        let count = |sql: &str, after: i64| self.conn().query_row(sql, params![after], |r| r.get::<_, i64>(0)).map_err(|e| self.err(e));
        Ok([
            count("SELECT count(*) FROM events WHERE id > ?1", after[0])?,
            count("SELECT count(*) FROM plugin_calls WHERE id > ?1", after[1])?,
            count("SELECT count(*) FROM faults WHERE id > ?1", after[2])?,
            count("SELECT count(*) FROM violations WHERE id > ?1", after[3])?,
            count("SELECT count(*) FROM metrics WHERE rowid > ?1", after[4])?,
        ])
    }

    fn export<T>(
        &self,
        sql: &str,
        after: i64,
        max_rows: usize,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map(params![after, max_rows as i64], row).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}
