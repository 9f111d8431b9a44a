//! `chronicle sync`: pushes every local row not yet in the team database.
//!
//! Each batch is one PostgreSQL transaction that inserts the next rows of every table (one
//! `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` per table) and moves this
//! database's watermarks (`chronicle.sync_state`) in the same commit. Killed at any point, the
//! batch either happened whole or not at all; run again, it starts after the last commit. Two
//! pushes of one database at once (the resident host's and a person's) take turns on an
//! advisory lock, and the unique keys make even a lost race harmless. Nothing is written to the
//! local database, so pushing never competes with the hook path for its write lock.
//!
//! Memory is bounded by the batch: at most [`BATCH_EVENTS`] events and [`BATCH_BYTES`] of
//! payload (but always one event, however large), [`BATCH_ROWS`] rows of each other table.

use std::collections::BTreeSet;

use postgres::Transaction;
use serde::Serialize;

use std::path::Path;

use super::{SyncError, Target};
use crate::store::export::{ExportCall, ExportEvent, ExportFault, ExportMetric, ExportViolation};
use crate::store::Store;

pub const BATCH_EVENTS: usize = 1000;
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
pub const BATCH_ROWS: usize = 5000;

/// The tables with a watermark, in `sync_state.table_name` spelling.
const TABLES: [&str; 5] = ["events", "plugin_calls", "faults", "violations", "metrics"];

/// Rows inserted into the team database (rows it already had are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pushed {
    pub events: u64,
    pub sessions: u64,
    pub plugin_calls: u64,
    pub faults: u64,
    pub violations: u64,
    pub metrics: u64,
    pub tool_durations: u64,
    pub batches: u64,
    /// The highest local event id in the team database afterwards.
    #[serde(skip)]
    pub through: i64,
}

impl Pushed {
    fn add(&mut self, o: &Pushed) {
        self.events += o.events;
        self.sessions += o.sessions;
        self.plugin_calls += o.plugin_calls;
        self.faults += o.faults;
        self.violations += o.violations;
        self.metrics += o.metrics;
        self.tool_durations += o.tool_durations;
        self.batches += o.batches;
        self.through = self.through.max(o.through);
    }
}

/// Who is pushing: this machine's name and this database's identity.
pub struct Origin {
    pub machine: String,
    pub store_id: String,
}

/// The two halves of a push, each on its own connection and thread: the events (with their
/// sessions and tool calls), whose large payloads keep one server process busy parsing jsonb,
/// and the many small rows of the other tables. Each half commits its own tables' watermarks
/// with its rows, so each is exactly-once by itself. (One connection for both measured 4,340
/// events/s with the bundled session's payloads; see BENCHMARKS.md.)
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    Events,
    Rows,
}

impl Half {
    /// Indexes into [`TABLES`] of what this half pushes.
    fn tables(self) -> std::ops::Range<usize> {
        match self {
            Half::Events => 0..1,
            Half::Rows => 1..5,
        }
    }
}

/// Pushes everything of the database at `db` not yet pushed. `progress` hears each committed
/// batch of events and how many events remain.
pub fn push(db: &Path, target: &Target, machine: &str, mut progress: impl FnMut(&Pushed, i64)) -> Result<Pushed, SyncError> {
    let store = Store::open_existing(db)?;
    let mut client = target.connect()?;
    super::schema::migrate(&mut client, &target.shown)?;
    let origin = Origin { machine: machine.to_owned(), store_id: store.store_id()? };
    let (events, rows) = std::thread::scope(|scope| {
        let rows = std::thread::Builder::new().name("chronicle-sync-rows".into()).spawn_scoped(scope, || {
            let store = Store::open_existing(db)?;
            let mut client = target.connect()?;
            run_half(&store, &mut client, &target.shown, &origin, Half::Rows, |_, _| {})
        });
        let events = run_half(&store, &mut client, &target.shown, &origin, Half::Events, &mut progress);
        let rows = match rows {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err(SyncError::Config("the pushing thread panicked".into()))),
            Err(e) => Err(SyncError::Config(format!("cannot start a pushing thread: {e}"))),
        };
        (events, rows)
    });
    let mut total = events?;
    total.add(&rows?);
    client
        .execute(
            "INSERT INTO chronicle.machines (machine, chronicle_version) VALUES ($1, $2)
             ON CONFLICT (machine) DO UPDATE SET last_sync_at = now(), chronicle_version = excluded.chronicle_version",
            &[&origin.machine, &crate::VERSION],
        )
        .map_err(|e| SyncError::from_pg(&target.shown, &e))?;
    Ok(total)
}

fn run_half(
    store: &Store,
    client: &mut postgres::Client,
    target: &str,
    origin: &Origin,
    half: Half,
    mut progress: impl FnMut(&Pushed, i64),
) -> Result<Pushed, SyncError> {
    let pg = |e: postgres::Error| SyncError::from_pg(target, &e);
    let mut total = Pushed::default();
    loop {
        let mut tx = client.transaction().map_err(pg)?;
        let batch = push_batch(store, &mut tx, origin, half).map_err(|e| match e {
            BatchError::Pg(e) => pg(e),
            BatchError::Store(e) => SyncError::Store(e),
        })?;
        let Some((pushed, marks)) = batch else {
            if half == Half::Events {
                total.through = read_marks(&mut tx, origin).map_err(pg)?[0];
            }
            tx.commit().map_err(pg)?;
            return Ok(total);
        };
        tx.commit().map_err(pg)?;
        total.add(&pushed);
        if half == Half::Events {
            let left = store.export_backlog([marks[0], i64::MAX, i64::MAX, i64::MAX, i64::MAX]).map(|b| b[0]).unwrap_or(0);
            progress(&total, left);
        }
    }
}

/// Every table's watermark for this database (0: nothing pushed yet).
fn read_marks(tx: &mut Transaction<'_>, o: &Origin) -> Result<[i64; 5], postgres::Error> {
    let mut marks = [0i64; 5];
    for row in tx.query(
        "SELECT table_name, pushed_through FROM chronicle.sync_state WHERE machine = $1 AND store_id = $2",
        &[&o.machine, &o.store_id],
    )? {
        let name: &str = row.get(0);
        if let Some(i) = TABLES.iter().position(|t| *t == name) {
            marks[i] = row.get(1);
        }
    }
    Ok(marks)
}

enum BatchError {
    Pg(postgres::Error),
    Store(crate::store::StoreError),
}

impl From<postgres::Error> for BatchError {
    fn from(e: postgres::Error) -> Self {
        BatchError::Pg(e)
    }
}

impl From<crate::store::StoreError> for BatchError {
    fn from(e: crate::store::StoreError) -> Self {
        BatchError::Store(e)
    }
}

/// One batch of `half` inside `tx`; `None` when it had nothing left to push.
fn push_batch(store: &Store, tx: &mut Transaction<'_>, o: &Origin, half: Half) -> Result<Option<(Pushed, [i64; 5])>, BatchError> {
    // One push per database and half at a time: the second waits here, then reads the first's
    // marks.
    let key = format!("chronicle.sync:{}:{}:{}", o.machine, o.store_id, half.tables().start);
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&key])?;
    let mut marks = read_marks(tx, o)?;
    let mut pushed = Pushed { batches: 1, ..Pushed::default() };
    let mut news = [None; 5];
    let started = std::time::Instant::now();
    match half {
        Half::Events => {
            let events = store.export_events(marks[0], BATCH_EVENTS, BATCH_BYTES)?;
            if events.is_empty() {
                return Ok(None);
            }
            pushed.events = insert_events(tx, o, &events)?;
            // Sessions and tool calls change after they are first written: push their state as
            // it is now, for those this batch's events touched.
            let sessions: BTreeSet<&str> = events.iter().filter_map(|e| e.session_id.as_deref()).collect();
            pushed.sessions = upsert_sessions(tx, o, store, &sessions.into_iter().collect::<Vec<_>>())?;
            let tools: BTreeSet<&str> = events.iter().filter_map(|e| e.tool_use_id.as_deref()).collect();
            pushed.tool_durations = upsert_tool_durations(tx, o, store, &tools.into_iter().collect::<Vec<_>>())?;
            news[0] = events.last().map(|r| r.local_id);
        }
        Half::Rows => {
            let calls = store.export_calls(marks[1], BATCH_ROWS)?;
            let faults = store.export_faults(marks[2], BATCH_ROWS)?;
            let violations = store.export_violations(marks[3], BATCH_ROWS)?;
            let metrics = store.export_metrics(marks[4], BATCH_ROWS)?;
            if calls.is_empty() && faults.is_empty() && violations.is_empty() && metrics.is_empty() {
                return Ok(None);
            }
            pushed.plugin_calls = insert_calls(tx, o, &calls)?;
            pushed.faults = insert_faults(tx, o, &faults)?;
            pushed.violations = insert_violations(tx, o, &violations)?;
            pushed.metrics = insert_metrics(tx, o, &metrics)?;
            news[1] = calls.last().map(|r| r.local_id);
            news[2] = faults.last().map(|r| r.local_id);
            news[3] = violations.last().map(|r| r.local_id);
            news[4] = metrics.last().map(|r| r.local_id);
        }
    }
    tracing::debug!(half = half.tables().start, ms = started.elapsed().as_millis() as u64, ?pushed, "batch inserted");
    for (i, new) in news.iter().enumerate() {
        if let Some(new) = *new {
            marks[i] = new;
            tx.execute(
                "INSERT INTO chronicle.sync_state (machine, store_id, table_name, pushed_through) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (machine, store_id, table_name)
                 DO UPDATE SET pushed_through = greatest(sync_state.pushed_through, excluded.pushed_through), updated_at = now()",
                &[&o.machine, &o.store_id, &TABLES[i], &new],
            )?;
        }
    }
    pushed.through = marks[0];
    Ok(Some((pushed, marks)))
}

/// PostgreSQL text cannot hold NUL characters; they become U+FFFD.
fn text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_owned()
    }
}

fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(text)
}

/// The payload as jsonb accepts it: JSON text (`\u0000` escapes, which jsonb refuses, become
/// U+FFFD) or, for what is not JSON (a parse error's raw input), `None` and the text itself.
fn payload(e: &ExportEvent) -> (Option<String>, Option<String>) {
    if e.kind == "parse_error" {
        return (None, Some(text(&e.payload)));
    }
    // Validated without building it (a push reads every payload once; most are large).
    if serde_json::from_str::<serde::de::IgnoredAny>(&e.payload).is_err() {
        return (None, Some(text(&e.payload)));
    }
    if !e.payload.contains("u0000") {
        return (Some(e.payload.clone()), None);
    }
    match serde_json::from_str::<serde_json::Value>(&e.payload) {
        Ok(mut v) => {
            scrub_nul(&mut v);
            (serde_json::to_string(&v).ok(), None)
        }
        Err(_) => (None, Some(text(&e.payload))),
    }
}

fn scrub_nul(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub_nul),
        serde_json::Value::Object(m) => {
            let entries: Vec<(String, serde_json::Value)> = std::mem::take(m).into_iter().collect();
            for (k, mut v) in entries {
                scrub_nul(&mut v);
                m.insert(text(&k), v);
            }
        }
        _ => {}
    }
}

fn insert_events(tx: &mut Transaction<'_>, o: &Origin, rows: &[ExportEvent]) -> Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let (json, raw): (Vec<Option<String>>, Vec<Option<String>>) = rows.iter().map(payload).unzip();
    let col = |f: fn(&ExportEvent) -> &Option<String>| rows.iter().map(|r| opt_text(f(r))).collect::<Vec<_>>();
    tx.execute(
        "INSERT INTO chronicle.events (machine, store_id, local_id, invocation_id, kind, hook_event_name, session_id, tool_name,
                                       tool_use_id, agent_id, received_at, received_at_ns, payload, payload_bytes, redacted,
                                       truncated, error, decision, exit_code, answer)
         SELECT $1, $2, u.local_id, u.invocation_id, u.kind, u.hook_event_name, u.session_id, u.tool_name, u.tool_use_id,
                u.agent_id, to_timestamp(u.ns::double precision / 1e9), u.ns, coalesce(u.json::jsonb, to_jsonb(u.raw)),
                u.payload_bytes, u.redacted, u.truncated, u.error, u.decision, u.exit_code, u.answer
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                     $11::bigint[], $12::text[], $13::text[], $14::bigint[], $15::boolean[], $16::boolean[], $17::text[],
                     $18::text[], $19::integer[], $20::text[])
              AS u(local_id, invocation_id, kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, ns, json, raw,
                   payload_bytes, redacted, truncated, error, decision, exit_code, answer)
         ON CONFLICT (machine, store_id, local_id) DO NOTHING",
        &[
            &o.machine,
            &o.store_id,
            &rows.iter().map(|r| r.local_id).collect::<Vec<_>>(),
            &col(|r| &r.invocation_id),
            &rows.iter().map(|r| text(&r.kind)).collect::<Vec<_>>(),
            &col(|r| &r.hook_event_name),
            &col(|r| &r.session_id),
            &col(|r| &r.tool_name),
            &col(|r| &r.tool_use_id),
            &col(|r| &r.agent_id),
            &rows.iter().map(|r| r.received_at_ns).collect::<Vec<_>>(),
            &json,
            &raw,
            &rows.iter().map(|r| r.payload_bytes).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.redacted).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.truncated).collect::<Vec<_>>(),
            &col(|r| &r.error),
            &rows.iter().map(|r| text(&r.decision)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.exit_code).collect::<Vec<_>>(),
            &col(|r| &r.answer),
        ],
    )
}

fn insert_calls(tx: &mut Transaction<'_>, o: &Origin, rows: &[ExportCall]) -> Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ints = |f: fn(&ExportCall) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let texts = |f: fn(&ExportCall) -> &str| rows.iter().map(|r| text(f(r))).collect::<Vec<_>>();
    tx.execute(
        "INSERT INTO chronicle.plugin_calls (machine, store_id, local_id, event_local_id, plugin, version, path, status, decision,
                                             fault, wall_ns, cpu_ns, allocations, bytes_allocated, peak_live_bytes, memory_source,
                                             stdout_bytes, cache)
         SELECT $1, $2, u.* FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                                        $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[],
                                        $16::text[], $17::bigint[], $18::text[]) AS u
         ON CONFLICT (machine, store_id, event_local_id, local_id) DO NOTHING",
        &[
            &o.machine,
            &o.store_id,
            &ints(|r| r.local_id),
            &ints(|r| r.event_id),
            &texts(|r| &r.plugin),
            &texts(|r| &r.version),
            &texts(|r| &r.path),
            &texts(|r| &r.status),
            &texts(|r| &r.decision),
            &rows.iter().map(|r| opt_text(&r.fault)).collect::<Vec<_>>(),
            &ints(|r| r.wall_ns),
            &ints(|r| r.cpu_ns),
            &ints(|r| r.allocations),
            &ints(|r| r.bytes_allocated),
            &ints(|r| r.peak_live_bytes),
            &texts(|r| &r.memory_source),
            &ints(|r| r.stdout_bytes),
            &rows.iter().map(|r| opt_text(&r.cache)).collect::<Vec<_>>(),
        ],
    )
}

fn insert_faults(tx: &mut Transaction<'_>, o: &Origin, rows: &[ExportFault]) -> Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO chronicle.faults (machine, store_id, local_id, event_local_id, source, plugin, path, message)
         SELECT $1, $2, u.* FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u
         ON CONFLICT (machine, store_id, event_local_id, local_id) DO NOTHING",
        &[
            &o.machine,
            &o.store_id,
            &rows.iter().map(|r| r.local_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.event_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| text(&r.source)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.plugin)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.path)).collect::<Vec<_>>(),
            &rows.iter().map(|r| text(&r.message)).collect::<Vec<_>>(),
        ],
    )
}

fn insert_violations(tx: &mut Transaction<'_>, o: &Origin, rows: &[ExportViolation]) -> Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO chronicle.violations (machine, store_id, local_id, event_local_id, metric, subject, value, threshold)
         SELECT $1, $2, u.* FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::float8[], $8::float8[]) AS u
         ON CONFLICT (machine, store_id, event_local_id, local_id) DO NOTHING",
        &[
            &o.machine,
            &o.store_id,
            &rows.iter().map(|r| r.local_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.event_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| text(&r.metric)).collect::<Vec<_>>(),
            &rows.iter().map(|r| text(&r.subject)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.value).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.threshold).collect::<Vec<_>>(),
        ],
    )
}

fn insert_metrics(tx: &mut Transaction<'_>, o: &Origin, rows: &[ExportMetric]) -> Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "INSERT INTO chronicle.metrics (machine, store_id, local_id, event_local_id, name, value)
         SELECT $1, $2, u.* FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::float8[]) AS u
         ON CONFLICT (machine, store_id, event_local_id, local_id) DO NOTHING",
        &[
            &o.machine,
            &o.store_id,
            &rows.iter().map(|r| r.local_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.event_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| text(&r.name)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.value).collect::<Vec<_>>(),
        ],
    )
}

fn ts(ns: Option<i64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e9)
}

fn upsert_sessions(tx: &mut Transaction<'_>, o: &Origin, store: &Store, ids: &[&str]) -> Result<u64, BatchError> {
    let rows = store.export_sessions(ids)?;
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(tx.execute(
        "INSERT INTO chronicle.sessions (machine, store_id, session_id, first_seen, last_seen, ended_at, end_reason, cwd,
                                         project_dir, git_branch, event_count)
         SELECT $1, $2, u.session_id, to_timestamp(u.first_seen), to_timestamp(u.last_seen), to_timestamp(u.ended_at),
                u.end_reason, u.cwd, u.project_dir, u.git_branch, u.event_count
         FROM unnest($3::text[], $4::float8[], $5::float8[], $6::float8[], $7::text[], $8::text[], $9::text[], $10::text[],
                     $11::bigint[])
              AS u(session_id, first_seen, last_seen, ended_at, end_reason, cwd, project_dir, git_branch, event_count)
         ON CONFLICT (machine, session_id) DO UPDATE SET
             store_id = excluded.store_id, first_seen = least(sessions.first_seen, excluded.first_seen),
             last_seen = excluded.last_seen, ended_at = excluded.ended_at, end_reason = excluded.end_reason,
             cwd = excluded.cwd, project_dir = excluded.project_dir, git_branch = excluded.git_branch,
             event_count = excluded.event_count
         WHERE sessions.last_seen <= excluded.last_seen",
        &[
            &o.machine,
            &o.store_id,
            &rows.iter().map(|r| text(&r.session_id)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.first_seen_ns as f64 / 1e9).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.last_seen_ns as f64 / 1e9).collect::<Vec<_>>(),
            &rows.iter().map(|r| ts(r.ended_at_ns)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.end_reason)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.cwd)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.project_dir)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.git_branch)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.event_count).collect::<Vec<_>>(),
        ],
    )?)
}

fn upsert_tool_durations(tx: &mut Transaction<'_>, o: &Origin, store: &Store, ids: &[&str]) -> Result<u64, BatchError> {
    let rows = store.export_tool_durations(ids)?;
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(tx.execute(
        "INSERT INTO chronicle.tool_durations (machine, store_id, tool_use_id, session_id, tool_name, pre_event_local_id,
                                               post_event_local_id, started_at, ended_at, reported_ms, duration_ms, status)
         SELECT $1, $2, u.tool_use_id, u.session_id, u.tool_name, u.pre, u.post, to_timestamp(u.started), to_timestamp(u.ended),
                u.reported_ms, u.duration_ms, u.status
         FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::float8[], $9::float8[], $10::float8[],
                     $11::float8[], $12::text[])
              AS u(tool_use_id, session_id, tool_name, pre, post, started, ended, reported_ms, duration_ms, status)
         ON CONFLICT (machine, store_id, tool_use_id) DO UPDATE SET
             session_id = excluded.session_id, tool_name = excluded.tool_name, pre_event_local_id = excluded.pre_event_local_id,
             post_event_local_id = excluded.post_event_local_id, started_at = excluded.started_at, ended_at = excluded.ended_at,
             reported_ms = excluded.reported_ms, duration_ms = excluded.duration_ms, status = excluded.status",
        &[
            &o.machine,
            &o.store_id,
            &rows.iter().map(|r| text(&r.tool_use_id)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.session_id)).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.tool_name)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.pre_event_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.post_event_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| ts(r.started_at_ns)).collect::<Vec<_>>(),
            &rows.iter().map(|r| ts(r.ended_at_ns)).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.reported_ms).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.duration_ms).collect::<Vec<_>>(),
            &rows.iter().map(|r| opt_text(&r.status)).collect::<Vec<_>>(),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, payload: &str) -> ExportEvent {
        ExportEvent {
            local_id: 1,
            invocation_id: None,
            kind: kind.into(),
            hook_event_name: None,
            session_id: None,
            tool_name: None,
            tool_use_id: None,
            agent_id: None,
            received_at_ns: 0,
            payload: payload.into(),
            payload_bytes: payload.len() as i64,
            redacted: false,
            truncated: false,
            error: None,
            decision: "none".into(),
            exit_code: 0,
            answer: None,
        }
    }

    #[test]
    fn payloads_become_what_jsonb_accepts() {
        assert_eq!(payload(&event("event", r#"{"a":1}"#)), (Some(r#"{"a":1}"#.into()), None));
        let (json, raw) = payload(&event("event", r#"{"a\u0000":"x\u0000y"}"#));
        assert_eq!((json.as_deref(), raw), (Some("{\"a\u{FFFD}\":\"x\u{FFFD}y\"}"), None));
        assert_eq!(payload(&event("parse_error", "{not json\0")), (None, Some("{not json\u{FFFD}".into())));
    }
}
