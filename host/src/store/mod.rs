//! The embedded SQLite store: every event, every plugin call and every measurement.
//!
//! **Architecture Invariant:** this module is the only place that holds SQL for the local
//! database (the team database's lives in `chronicle::team`).
//!
//! Claude Code runs hooks in parallel and inside subagents, so many `chronicle hook` processes
//! write one file at once. The store therefore runs in WAL mode with `synchronous=NORMAL`
//! (a committed event survives a crash of the process; a power loss can lose the last few
//! transactions, never corrupt the file), waits on a busy timeout instead of failing with
//! "database is locked", and writes one event in one short `BEGIN IMMEDIATE` transaction.
//! The schema evolves by an append-only list of migrations tracked in `PRAGMA user_version`.

pub mod export;
mod migrations;
pub mod read;
pub mod stats;
mod template;
mod wal;

pub(crate) use wal::lower_this_threads_priority;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use read::{EventFilter, EventRow, SessionMatch, SessionRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    /// The database or its directory belongs to someone else, or others can write it.
    #[error("{0}")]
    NotPrivate(std::io::Error),
    #[error("database {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("database {path} has schema version {found}, newer than this chronicle ({supported}): upgrade chronicle")]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("no database at {0}: run `chronicle demo` or let a hook event create it")]
    Missing(PathBuf),
}

/// How long a writer waits for another before giving up (then the event goes to the spool).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The page size of a new database (see `configure`); `chronicle doctor` names a database
/// made with another.
pub const PAGE_SIZE: i64 = 4096;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The database file's device and inode when it was opened (see [`Store::replaced`]).
    file: Option<(u64, u64)>,
    /// Leave WAL upkeep to [`Store::upkeep`] (a resident host runs it after answering).
    defer_upkeep: bool,
    /// How many frames the write-ahead log holds, as SQLite reports after each commit (the
    /// file's size says little: a resident host keeps it larger than what it holds).
    log_frames: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Held for each checkpoint this process runs: SQLite fails a checkpoint that finds
    /// another one running at once, without waiting, so the in-line one and the background
    /// one take turns instead.
    checkpointing: std::sync::Arc<std::sync::Mutex<()>>,
    page_size: i64,
    /// The last event's id and how long its commit took: recorded with the next event (a
    /// transaction cannot hold its own commit time).
    unrecorded_commit: Option<(i64, f64)>,
}

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
    /// Opens (creating if needed) the database at `path`, migrating it to the current schema.
    ///
    /// Several hook processes may create a new database at the same moment. Switching it to WAL
    /// needs an exclusive lock that SQLite's busy handler does not always wait for, so a busy
    /// or locked answer while opening is retried (with jitter) for up to two seconds.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::create_private_dir(dir).map_err(|source| match source.kind() {
                std::io::ErrorKind::PermissionDenied => StoreError::NotPrivate(source),
                _ => StoreError::CreateDir { path: dir.to_owned(), source },
            })?;
        }
        // Whatever goes wrong creating it, the open below meets it again and says so.
        let created = !path.exists() && create_complete(path);
        // No log file yet (a database just made, here or by the client that handed this
        // process its event): this process starts it, see `start_first_log`.
        let new_log = created || {
            let mut log = path.as_os_str().to_owned();
            log.push("-wal");
            !Path::new(&log).exists()
        };
        let started = std::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            match Self::open_once(path) {
                Err(StoreError::Sqlite { source, .. }) if is_busy(&source) && started.elapsed() < Duration::from_secs(2) => {
                    attempt += 1;
                    // Jitter from the process id and attempt, so racing processes spread out.
                    let jitter = u64::from(std::process::id().wrapping_mul(2_654_435_761).wrapping_add(attempt) % 7);
                    std::thread::sleep(Duration::from_millis(3 + jitter + u64::from(attempt.min(10))));
                }
                Ok(mut store) => {
                    if new_log {
                        store.start_first_log();
                    }
                    return Ok(store);
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path) -> Result<Store, StoreError> {
        let sql = |source| StoreError::Sqlite { path: path.to_owned(), source };
        crate::private::private_file(path).map_err(StoreError::NotPrivate)?;
        let mut conn = Connection::open(path).map_err(sql)?;
        wait_when_busy(&mut conn, BUSY_TIMEOUT).map_err(sql)?;
        // Unknown until the first commit reports it.
        let log_frames = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX));
        let file = file_identity(path);
        let mut store = Store {
            conn,
            path: path.to_owned(),
            file,
            defer_upkeep: false,
            log_frames,
            checkpointing: Default::default(),
            page_size: PAGE_SIZE,
            unrecorded_commit: None,
        };
        configure(&store.conn, "NORMAL").map_err(sql)?;
        migrations::migrate(&mut store.conn).map_err(|e| e.at(path))?;
        store.page_size = store.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).map_err(sql)?;
        let frames = std::sync::Arc::clone(&store.log_frames);
        store
            .conn
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                frames.store(i64::from(n), std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }))
            .map_err(sql)?;
        Ok(store)
    }

    /// Opens an existing database (reports, `events`, `sessions`); a missing one is an error
    /// that says how to create it.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        Store::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file at this store's path is no longer the one it opened (deleted, or
    /// replaced by another): a long-lived process writing on would record into a file nobody
    /// can read. One `stat`.
    pub fn replaced(&self) -> bool {
        self.file.is_some() && file_identity(&self.path) != self.file
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

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

    /// The raw connection, for the read-side modules (`read`, reports).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The database's page size in bytes (a database keeps the one it was made with).
    pub fn page_size(&self) -> i64 {
        self.page_size
    }

    /// `PRAGMA integrity_check`: `ok` or the problems found.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(|e| self.err(e))
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Waits up to `limit` for another connection's lock, polling finely at first.
///
/// SQLite's own busy timeout sleeps 1, 2, 5, 10 ms... between attempts: a write lock held for
/// 0.3 ms (another event's commit, the checkpointer restarting the log) cost a waiting event a
/// whole millisecond or more. Locks here are held for well under a millisecond, so the first
/// 2 ms are polled every 50 µs, then every 0.5 ms, then every 5 ms up to the limit.
fn wait_when_busy(conn: &mut Connection, limit: Duration) -> rusqlite::Result<()> {
    let mut since = std::time::Instant::now();
    conn.busy_handler(Some(move |attempt: i32| {
        if attempt == 0 {
            since = std::time::Instant::now();
        }
        let waited = since.elapsed();
        if waited >= limit {
            return false;
        }
        let pause = match waited.as_micros() {
            0..2_000 => Duration::from_micros(50),
            2_000..50_000 => Duration::from_micros(500),
            _ => Duration::from_millis(5),
        };
        std::thread::sleep(pause.min(limit - waited));
        true
    }))
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

/// Settings every connection gets; a new database is first given its page size and WAL mode.
/// `synchronous` is NORMAL for the store, OFF while a new database is built unseen.
fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    // First: switching a new file to WAL writes it, and at OFF that write is not synced.
    // SQLite's autocheckpoint cannot help processes that never close (see `bound_wal`).
    conn.execute_batch(&format!("PRAGMA synchronous={synchronous}; PRAGMA foreign_keys=OFF; PRAGMA wal_autocheckpoint=0;"))?;
    // journal_mode=WAL is persistent in the file; asking costs one query and switching
    // happens once. synchronous is per connection.
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Before the first write fixes it. An event's commit logs every page it touches, and
        // an ordinary event touches nine b-trees (rows, indexes, session, cache) for ~2 KB of
        // rows: 36 KiB of log with 4 KiB pages, 144 KiB with 16 KiB ones, and checkpoints
        // copy it all again. 16 KiB pages were tried: a 482 KB payload logs fewer frames
        // (−3 % on that event), but every other event paid 4× the log and its checkpoints
        // (2 clients: 0.87 of cat's throughput against 1.01; BENCHMARKS.md). A database that
        // already has pages keeps its size.
        conn.execute_batch(&format!("PRAGMA page_size={PAGE_SIZE}"))?;
        let now: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !now.eq_ignore_ascii_case("wal") {
            // Another process holds the database: report busy so `open` retries.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("could not switch to WAL".into()),
            ));
        }
    }
    Ok(())
}

/// Creates the database at `path` complete (4 KiB pages, WAL, the current schema): a copy of
/// the empty database kept in the binary, synced, linked into place (see
/// [`crate::newdb::create`]); true if this process linked it. Created where it lies, a new
/// database first switched to WAL through a rollback journal and then wrote the schema through
/// a new log: six fsyncs, ~4 ms of a configuration's first event (measured with strace); that
/// is what happens still if the copy cannot be made (the open after this meets the same
/// trouble, if any, and says so).
fn create_complete(path: &Path) -> bool {
    crate::newdb::create(path).unwrap_or_else(|e| {
        tracing::debug!("creating {} from the template: {e}; creating it in place", path.display());
        false
    })
}

impl Store {
    /// Removes databases a killed process left half-built beside this one (see
    /// `create_complete`): those whose process is gone. A resident host does this when it
    /// starts; nothing on an event's path lists the directory.
    pub fn remove_abandoned_builds(&self) {
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let prefix = crate::newdb::build_prefix(&self.path);
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok()) else { continue };
            // SAFETY: kill with signal 0 only checks whether the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                tracing::info!("removing {}, left half-built by process {pid}", entry.path().display());
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled SQLite is built without what Chronicle never uses (`.cargo/config.toml`):
    /// full-text search registered its modules at every connection's open.
    #[test]
    fn sqlite_is_built_without_the_extensions_chronicle_does_not_use() {
        let conn = Connection::open_in_memory().unwrap();
        let used = |option: &str| -> i64 { conn.query_row("SELECT sqlite_compileoption_used(?1)", [option], |r| r.get(0)).unwrap() };
        for option in ["ENABLE_FTS3", "ENABLE_FTS5", "ENABLE_RTREE", "ENABLE_DBSTAT_VTAB", "ENABLE_STAT4"] {
            assert_eq!(used(option), 0, "SQLite was built with {option}: is LIBSQLITE3_FLAGS set?");
        }
        assert_eq!(used("DEFAULT_MEMSTATUS=0"), 1, "SQLite keeps memory statistics");
        // Still there: what the store and the reports rely on.
        assert_eq!(used("ENABLE_COLUMN_METADATA"), 1);
        let json: String = conn.query_row("SELECT json_extract('{\"a\":1}', '$.a')", [], |r| r.get::<_, i64>(0).map(|v| v.to_string())).unwrap();
        assert_eq!(json, "1");
    }

    /// What a process killed while building a database left beside it is removed once that
    /// process is gone; a build still in progress (a live process's) is not touched.
    #[test]
    fn half_built_databases_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let store = Store::open(&path).unwrap();
        // No process has this id (above any pid_max); ours is alive.
        let dead = ["-0", "-0-wal", "-3-shm"].map(|s| dir.path().join(format!(".chronicle.db.new-2147483647{s}")));
        let live = dir.path().join(format!(".chronicle.db.new-{}-7", std::process::id()));
        let unrelated = dir.path().join(".other.db.new-2147483647-0");
        for f in dead.iter().chain([&live, &unrelated]) {
            std::fs::write(f, b"half").unwrap();
        }
        store.remove_abandoned_builds();
        for f in &dead {
            assert!(!f.exists(), "{} is still there", f.display());
        }
        assert!(live.exists() && unrelated.exists() && path.exists());
    }

    /// A new database arrives whole: private, WAL, 4 KiB pages, the current schema, and no
    /// file of its making left beside it, also when several threads create it at once.
    #[test]
    fn a_new_database_is_created_whole_and_leaves_nothing_beside_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let ids: Vec<i64> = std::thread::scope(|s| {
            let opened: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        let mut store = Store::open(&path).unwrap();
                        store.record(&EventRecord { kind: "event".into(), payload: "{}".into(), ..EventRecord::default() }).unwrap()
                    })
                })
                .collect();
            opened.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let store = Store::open(&path).unwrap();
        let count: i64 = store.conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 6, "every thread's event is in the one database: {ids:?}");
        let mode: String = store.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(store.page_size, PAGE_SIZE);
        assert_eq!(migrations::version(&store.conn).unwrap(), migrations::latest());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["chronicle.db", "chronicle.db-shm", "chronicle.db-wal"]);
    }

    /// The process that creates a database starts its log (unsynced), so the first event's
    /// commit appends to it instead of writing and syncing a new log's header; a started log
    /// is not a checkpoint (`upkeep.checkpoints` stays 0, see `restart_log`).
    #[test]
    fn a_new_database_has_its_log_started_by_the_process_that_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let log = dir.path().join("chronicle.db-wal");
        let salts = || std::fs::read(&log).unwrap()[16..24].to_vec();
        let mut store = Store::open(&path).unwrap();
        assert!(std::fs::metadata(&log).unwrap().len() > 32, "the log has a header and a frame");
        let checkpoints: i64 = store.conn.query_row("SELECT checkpoints FROM upkeep", [], |r| r.get(0)).unwrap();
        assert_eq!(checkpoints, 0);
        let before = salts();
        store.record(&EventRecord { kind: "event".into(), payload: "{}".into(), ..EventRecord::default() }).unwrap();
        assert_eq!(salts(), before, "the event's commit went into the log already started");
        // Opening an existing database writes nothing.
        let size = std::fs::metadata(&log).unwrap().len();
        drop(Store::open(&path).unwrap());
        assert!(std::fs::metadata(&log).map_or(0, |m| m.len()) <= size);
    }

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
