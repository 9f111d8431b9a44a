//! Writing events: the rows one invocation leaves (event, session, tool duration, plugin calls,
//! faults, measurements, violations, cache entries), one transaction per event or per group of
//! events that arrived together, and the statements that do it, compiled ahead.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{Store, StoreError};

/// One plugin call, as stored.
#[derive(Debug, Clone, Default)]
pub struct CallRow {
    pub plugin: String,
    pub version: String,
    pub path: String,
    /// `ok`, `cached`, or a fault kind (`timeout`, `panic`, `error`, `garbage`, `init_error`, `too_large`,
    /// `quarantined`, `suspended`, `load_error`).
    pub status: String,
    pub decision: String,
    pub fault: Option<String>,
    pub wall_ns: u64,
    pub cpu_ns: u64,
    pub allocations: u64,
    pub bytes_allocated: u64,
    pub peak_live_bytes: u64,
    pub memory_source: String,
    pub stdout_bytes: u64,
    /// `hit` or `miss` for cacheable plugins, None otherwise.
    pub cache: Option<&'static str>,
}

/// Something that went wrong around the event (a refused plugin, a merge conflict, ...).
#[derive(Debug, Clone)]
pub struct FaultRow {
    /// `plugin_load`, `plugin_call`, `input`, `answer`.
    pub source: &'static str,
    pub plugin: Option<String>,
    pub path: Option<String>,
    pub message: String,
}

/// A timing or size measurement of this invocation (`hook.total`, `hook.read`, ...).
#[derive(Debug, Clone)]
pub struct MetricRow {
    pub name: String,
    pub value: f64,
}

/// A measurement above its threshold.
#[derive(Debug, Clone)]
pub struct ViolationRow {
    pub metric: String,
    pub subject: String,
    pub value: f64,
    pub threshold: f64,
}

/// Everything one invocation writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct EventRecord {
    /// The invocation's identity (see [`crate::resident::InvocationId`]); a second record with
    /// the same one is not written.
    pub invocation_id: Option<String>,
    pub kind: String,
    pub hook_event_name: Option<String>,
    pub session_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub agent_id: Option<String>,
    pub cwd: Option<String>,
    pub project_dir: Option<String>,
    pub git_branch: Option<String>,
    pub received_at_ns: i64,
    /// Shared with the text plugins were given when nothing was redacted (no copy of a large
    /// payload).
    pub payload: std::sync::Arc<str>,
    pub payload_bytes: u64,
    pub redacted: bool,
    pub truncated: bool,
    pub error: Option<String>,
    pub decision: String,
    pub exit_code: i32,
    pub answer: Option<String>,
    /// Tool duration Claude Code reported (`duration_ms`, PostToolUse since 2026).
    pub reported_duration_ms: Option<f64>,
    /// `SessionEnd`'s `reason`.
    pub end_reason: Option<String>,
    pub calls: Vec<CallRow>,
    pub faults: Vec<FaultRow>,
    pub metrics: Vec<MetricRow>,
    pub violations: Vec<ViolationRow>,
    pub cache_puts: Vec<CachePut>,
    /// `store.insert` above this many milliseconds is recorded as a violation.
    pub insert_threshold_ms: Option<f64>,
}

/// An outcome to remember in the persistent cache tier.
#[derive(Debug, Clone)]
pub struct CachePut {
    pub key: String,
    pub plugin: String,
    pub value: String,
    pub expires_at_ns: i64,
}

impl Store {
    /// Compiles the statements nearly every event runs into this connection's statement cache.
    /// A process that records one event (in process, a handover) compiled each on first use,
    /// ~0.1 ms of its `store.insert` and `cache.lookup`; the thread that opens the store has
    /// time to spare while the plugins load. Failures are left for the real use to report.
    pub fn prepare_hot_statements(&self) {
        for sql in HOT_STATEMENTS {
            let _ = self.conn.prepare_cached(sql);
        }
    }

    /// A cached outcome from the persistent tier, if present and not expired, with the time
    /// it expires (for the in-process tier to keep it as long).
    pub fn cache_get(&self, key: &str, now_ns: i64) -> Result<Option<(String, i64)>, StoreError> {
        self.conn
            .prepare_cached(CACHE_GET)
            .and_then(|mut s| s.query_row(params![key, now_ns], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(|e| self.err(e))
    }

    /// Writes one invocation: the event, its session, tool duration, plugin calls, faults,
    /// measurements, index and cache updates. All or nothing. Returns the event id.
    pub fn record(&mut self, rec: &EventRecord) -> Result<i64, StoreError> {
        self.record_all(&[rec]).map(|ids| ids[0])
    }

    /// Writes several invocations in one transaction (group commit: events that arrived
    /// together share one lock, one commit and the log pages they both touch). All or nothing.
    /// Returns their event ids, in order. Each event's `store.insert` times its own rows;
    /// `store.group` says how many events shared the commit.
    pub fn record_all(&mut self, recs: &[&EventRecord]) -> Result<Vec<i64>, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let mut ids = Vec::with_capacity(recs.len());
        let mut last_new = None;
        for rec in recs {
            let started = std::time::Instant::now();
            let event_id = match write_event(&tx, rec).map_err(sql)? {
                Written::New(id) => id,
                Written::Already(id) => {
                    // This invocation is recorded already (by a host that died before it could
                    // answer, or one that kept working after its client gave up): nothing to add.
                    ids.push(id);
                    continue;
                }
            };
            // The store's own stages: this event's rows (all but the measurements themselves),
            // the previous commit, and the size of this one.
            let insert_ms = started.elapsed().as_secs_f64() * 1e3;
            let mut late = vec![(event_id, "store.insert", insert_ms)];
            late.extend(self.unrecorded_commit.take().map(|(id, ms)| (id, "store.commit", ms)));
            if recs.len() > 1 {
                late.push((event_id, "store.group", recs.len() as f64));
            }
            let over = rec.insert_threshold_ms.filter(|&t| insert_ms > t).map(|t| (insert_ms, t));
            write_measurements(&tx, event_id, rec, &late, over).map_err(sql)?;
            ids.push(event_id);
            last_new = Some(event_id);
        }
        let committing = std::time::Instant::now();
        tx.commit().map_err(sql)?;
        if let Some(id) = last_new {
            self.unrecorded_commit = Some((id, committing.elapsed().as_secs_f64() * 1e3));
        }
        if !self.defer_upkeep {
            self.bound_wal();
        }
        Ok(ids)
    }

}

/// Whether [`write_event`] wrote a row, or found the invocation's row there already.
enum Written {
    New(i64),
    Already(i64),
}

/// The statements nearly every event runs, compiled ahead by [`Store::prepare_hot_statements`]
/// (each is looked up by its text in the connection's statement cache).
const INSERT_EVENT: &str = "INSERT INTO events (kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, received_at_ns,
                             payload, payload_bytes, redacted, truncated, error, decision, exit_code, answer, invocation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (invocation_id) DO NOTHING";
const UPSERT_SESSION: &str = "INSERT INTO sessions (session_id, first_seen_ns, last_seen_ns, cwd, project_dir, git_branch, event_count)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, 1)
             ON CONFLICT(session_id) DO UPDATE SET
                 first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),
                 last_seen_ns = max(last_seen_ns, excluded.last_seen_ns),
                 cwd = coalesce(sessions.cwd, excluded.cwd),
                 project_dir = coalesce(sessions.project_dir, excluded.project_dir),
                 git_branch = coalesce(excluded.git_branch, sessions.git_branch),
                 event_count = event_count + 1";
const TOOL_STARTED: &str = "INSERT INTO tool_durations (tool_use_id, session_id, tool_name, pre_event_id, started_at_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(tool_use_id) DO UPDATE SET
                         pre_event_id = excluded.pre_event_id,
                         started_at_ns = excluded.started_at_ns,
                         duration_ms = coalesce(tool_durations.reported_ms,
                                                (tool_durations.ended_at_ns - excluded.started_at_ns) / 1e6)";
const TOOL_ENDED: &str = "INSERT INTO tool_durations (tool_use_id, session_id, tool_name, post_event_id, ended_at_ns, reported_ms, status, duration_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)
                     ON CONFLICT(tool_use_id) DO UPDATE SET
                         post_event_id = excluded.post_event_id,
                         ended_at_ns = excluded.ended_at_ns,
                         reported_ms = excluded.reported_ms,
                         status = excluded.status,
                         duration_ms = coalesce(excluded.reported_ms,
                                                (excluded.ended_at_ns - tool_durations.started_at_ns) / 1e6)";
const INSERT_CALL: &str = "INSERT INTO plugin_calls (event_id, plugin, version, path, status, decision, fault, wall_ns, cpu_ns,
                                       allocations, bytes_allocated, peak_live_bytes, memory_source, stdout_bytes, cache)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const INSERT_METRIC: &str = "INSERT INTO metrics (event_id, name, value) VALUES (?1, ?2, ?3)";
const CACHE_GET: &str = "SELECT value, expires_at_ns FROM cache WHERE key = ?1 AND expires_at_ns > ?2";
const CACHE_PUT: &str = "INSERT OR REPLACE INTO cache (key, plugin, value, expires_at_ns, hits) VALUES (?1, ?2, ?3, ?4, 0)";
const HOT_STATEMENTS: [&str; 8] = [INSERT_EVENT, UPSERT_SESSION, TOOL_STARTED, TOOL_ENDED, INSERT_CALL, INSERT_METRIC, CACHE_GET, CACHE_PUT];

fn write_event(tx: &rusqlite::Transaction<'_>, rec: &EventRecord) -> rusqlite::Result<Written> {
    let inserted = tx
        .prepare_cached(
            INSERT_EVENT,
        )?
        .execute(params![
            rec.kind,
            rec.hook_event_name,
            rec.session_id,
            rec.tool_name,
            rec.tool_use_id,
            rec.agent_id,
            rec.received_at_ns,
            &*rec.payload,
            rec.payload_bytes as i64,
            rec.redacted,
            rec.truncated,
            rec.error,
            rec.decision,
            rec.exit_code,
            rec.answer,
            rec.invocation_id,
        ])?;
    // One statement in the usual case; only a second record of an invocation looks it up.
    if inserted == 0 {
        let existing =
            tx.prepare_cached("SELECT id FROM events WHERE invocation_id = ?1")?.query_row([&rec.invocation_id], |r| r.get(0))?;
        return Ok(Written::Already(existing));
    }
    let event_id = tx.last_insert_rowid();

    if let Some(session) = &rec.session_id {
        tx.prepare_cached(
            UPSERT_SESSION,
        )?
        .execute(params![session, rec.received_at_ns, rec.cwd, rec.project_dir, rec.git_branch])?;
        if rec.hook_event_name.as_deref() == Some("SessionEnd") && rec.kind == "event" {
            tx.prepare_cached("UPDATE sessions SET ended_at_ns = ?2, end_reason = ?3 WHERE session_id = ?1")?.execute(params![
                session,
                rec.received_at_ns,
                rec.end_reason
            ])?;
        }
    }

    if let (Some(tool_use_id), Some(name), "event") = (&rec.tool_use_id, rec.hook_event_name.as_deref(), rec.kind.as_str()) {
        match name {
            "PreToolUse" => {
                tx.prepare_cached(
                    TOOL_STARTED,
                )?
                .execute(params![tool_use_id, rec.session_id, rec.tool_name, event_id, rec.received_at_ns])?;
            }
            "PostToolUse" | "PostToolUseFailure" => {
                let status = if name == "PostToolUse" { "success" } else { "failure" };
                tx.prepare_cached(
                    TOOL_ENDED,
                )?
                .execute(params![tool_use_id, rec.session_id, rec.tool_name, event_id, rec.received_at_ns, rec.reported_duration_ms, status])?;
            }
            _ => {}
        }
    }

    if !rec.calls.is_empty() {
        let mut stmt = tx.prepare_cached(
            INSERT_CALL,
        )?;
        for c in &rec.calls {
            stmt.execute(params![
                event_id,
                c.plugin,
                c.version,
                c.path,
                c.status,
                c.decision,
                c.fault,
                c.wall_ns as i64,
                c.cpu_ns as i64,
                c.allocations as i64,
                c.bytes_allocated as i64,
                c.peak_live_bytes as i64,
                c.memory_source,
                c.stdout_bytes as i64,
                c.cache
            ])?;
        }
    }
    if !rec.faults.is_empty() {
        let mut stmt = tx.prepare_cached("INSERT INTO faults (event_id, source, plugin, path, message) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for f in &rec.faults {
            stmt.execute(params![event_id, f.source, f.plugin, f.path, f.message])?;
        }
    }
    if !rec.cache_puts.is_empty() {
        let mut stmt =
            tx.prepare_cached(CACHE_PUT)?;
        for p in &rec.cache_puts {
            stmt.execute(params![p.key, p.plugin, p.value, p.expires_at_ns])?;
        }
        // Expiry and the size cap scan the whole table: do it on one event in 64, not on each.
        if event_id % 64 == 0 {
            tx.prepare_cached("DELETE FROM cache WHERE expires_at_ns <= ?1")?.execute(params![rec.received_at_ns])?;
            // Past the cap, the entries closest to expiry go first.
            tx.prepare_cached(
                "DELETE FROM cache WHERE key IN (SELECT key FROM cache ORDER BY expires_at_ns
                     LIMIT max(0, (SELECT count(*) FROM cache) - ?1))",
            )?
            .execute(params![crate::cache::L2_CAPACITY as i64])?;
        }
    }
    // A hit is counted in its `plugin_calls` row (`cache = 'hit'`), not in `cache.hits`: that
    // update dirtied a page of the cache table in every cached event's commit.
    Ok(Written::New(event_id))
}

/// The event's measurements and violations, with the store's own (`late`: event id, name,
/// milliseconds; `insert_over`: `store.insert` and its threshold when above it).
fn write_measurements(
    tx: &rusqlite::Transaction<'_>,
    event_id: i64,
    rec: &EventRecord,
    late: &[(i64, &str, f64)],
    insert_over: Option<(f64, f64)>,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(INSERT_METRIC)?;
    for m in &rec.metrics {
        stmt.execute(params![event_id, m.name, m.value])?;
    }
    for (id, name, ms) in late {
        stmt.execute(params![id, name, ms])?;
    }
    if rec.violations.is_empty() && insert_over.is_none() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached("INSERT INTO violations (event_id, metric, subject, value, threshold) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for v in &rec.violations {
        stmt.execute(params![event_id, v.metric, v.subject, v.value, v.threshold])?;
    }
    if let Some((value, threshold)) = insert_over {
        stmt.execute(params![event_id, "store.insert", "host", value, threshold])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_times_its_insert_and_records_each_commit_with_the_next_event() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("chronicle.db")).unwrap();
        let event = EventRecord { kind: "event".into(), payload: "{}".into(), insert_threshold_ms: Some(0.0), ..EventRecord::default() };
        let first = store.record(&event).unwrap();
        let second = store.record(&event).unwrap();
        let metric = |id: i64, name: &str| -> Option<f64> {
            store
                .conn
                .query_row("SELECT value FROM metrics WHERE event_id = ?1 AND name = ?2", params![id, name], |r| r.get(0))
                .optional()
                .unwrap()
        };
        assert!(metric(first, "store.insert").is_some_and(|v| v > 0.0));
        assert!(metric(first, "store.commit").is_some_and(|v| v > 0.0), "written with the second event");
        assert!(metric(second, "store.insert").is_some_and(|v| v > 0.0));
        assert_eq!(metric(second, "store.commit"), None, "not until a third event");
        let over: i64 = store.conn.query_row("SELECT count(*) FROM violations WHERE metric = 'store.insert'", [], |r| r.get(0)).unwrap();
        assert_eq!(over, 2, "a threshold of 0 ms is exceeded by every insert");
    }

    /// A group of events is one transaction: each gets its own rows and `store.insert`, all say
    /// how many shared the commit, an invocation already recorded adds nothing, and the
    /// group's commit time arrives with the next event.
    #[test]
    fn a_group_of_events_is_recorded_in_one_commit_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("chronicle.db")).unwrap();
        let event = |id: &str| EventRecord {
            kind: "event".into(),
            invocation_id: Some(id.into()),
            payload: format!("{{\"id\":\"{id}\"}}").as_str().into(),
            ..EventRecord::default()
        };
        let before = store.record(&event("a")).unwrap();
        let (a, b, c) = (event("a"), event("b"), event("c"));
        let ids = store.record_all(&[&b, &a, &c]).unwrap();
        assert_eq!(ids[1], before, "an invocation already recorded keeps its row");
        assert!(ids[0] > before && ids[2] > ids[0]);
        let count = |store: &Store, sql: &str| -> i64 { store.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count(&store, "SELECT count(*) FROM events"), 3);
        assert_eq!(count(&store, "SELECT count(*) FROM metrics WHERE name = 'store.insert'"), 3);
        assert_eq!(count(&store, "SELECT count(*) FROM metrics WHERE name = 'store.group' AND value = 3"), 2);
        assert_eq!(count(&store, &format!("SELECT count(*) FROM metrics WHERE name = 'store.commit' AND event_id = {before}")), 1);
        let after = store.record(&event("d")).unwrap();
        let commit_of_group = format!("SELECT count(*) FROM metrics WHERE name = 'store.commit' AND event_id = {}", ids[2]);
        assert_eq!(count(&store, &commit_of_group), 1);
        assert_eq!(count(&store, &format!("SELECT count(*) FROM metrics WHERE name = 'store.group' AND event_id = {after}")), 0);
    }
}
