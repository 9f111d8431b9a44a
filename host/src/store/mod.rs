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
mod record;
pub mod stats;
mod template;
mod wal;

pub(crate) use wal::lower_this_threads_priority;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use read::{EventFilter, EventRow, SessionMatch, SessionRow};
pub use record::{CachePut, CallRow, EventRecord, FaultRow, MetricRow, ViolationRow};

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
    /// Leave WAL upkeep to the host's `upkeep` (a resident host runs it after answering).
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

}
