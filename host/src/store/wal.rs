//! Keeping the write-ahead log short.
//!
//! Hook processes exit without closing their connection (closing the last one checkpoints and
//! fsyncs on every event), so each commit leaves the log longer and nothing copies it back on
//! its own: a hook process checkpoints in line past a limit (`bound_wal`), or after its answer
//! when a client relays it (`bound_wal_after_answer`), a resident host on a
//! background thread with its own connection (`checkpoint_in_background`), restarting the log
//! between events (`restart_log`) and checkpointing in line only when that thread falls behind
//! (`enforce_wal_bound`). Only one process per database runs the background checkpointer, and
//! the resident host's worker threads share the connection that started it (`defer_upkeep`).

use std::time::Duration;

use rusqlite::{params, Connection};

use super::{wait_when_busy, Store, StoreError, BUSY_TIMEOUT};

/// WAL size past which a hook process checkpoints and truncates it (see `Store::bound_wal`).
const WAL_LIMIT_BYTES: u64 = 1024 * 1024;

/// Log content past which a handed-over hook process, its answer already relayed, checkpoints
/// and restarts the log (see `Store::bound_wal_after_answer`). The next process replays the
/// whole log when it opens the database (~0.27 µs per KiB here, before any event can be
/// recorded): at this limit rather than [`WAL_LIMIT_BYTES`], in-process events were 3-7 %
/// faster (BENCHMARKS.md), for a passive checkpoint every ~6 events instead of a truncating
/// one every ~25.
const HOOK_LOG_LIMIT_BYTES: u64 = 256 * 1024;

/// Log content past which a resident host's checkpointer copies it back. Each checkpoint
/// fsyncs the log and the database and copies every page the log holds once, however often
/// the events rewrote it (the indexes and measurement tables' last pages, in every event): at
/// 1 MiB the checkpointer took ~25 % of the host's CPU over the bundled session; at 4 MiB the
/// host spends 11-21 % less CPU per event (BENCHMARKS.md), which is what concurrent clients on
/// a busy machine wait for.
const BACKGROUND_CHECKPOINT_BYTES: u64 = 4 * WAL_LIMIT_BYTES;

/// The file size a resident host's log is trimmed back to when it restarts: above what a
/// steady stream of events reaches (the checkpointer's threshold plus a large event or two), so
/// that the file keeps its blocks. Trimming it at every restart freed blocks that the next
/// events allocated again, and on a filesystem mounted with `discard` each trim waited for the
/// device.
const WAL_KEEP_BYTES: u64 = 6 * WAL_LIMIT_BYTES;

/// Log content past which a resident host stops waiting for its background checkpointer and
/// checkpoints itself, between two events. The checkpointer runs at the lowest CPU priority so
/// that it only uses idle time; under a steady stream on a busy machine there is none, and the
/// log grew without bound (79 MiB after 5,000 events from 4 clients).
const WAL_HARD_LIMIT_BYTES: u64 = 8 * WAL_LIMIT_BYTES;

impl Store {
    /// For a long-lived process: `record` no longer checkpoints; a thread with its own
    /// connection does, in passive mode (never blocking this connection's writes), when nudged
    /// through the returned sender after each event. When a checkpoint copied the whole log it
    /// calls `log_checkpointed`: the owner should then call [`Store::restart_log`] while no
    /// event is in flight. (Waiting for a pause in the events before checkpointing was tried:
    /// under a steady stream the log then grew to the cap and its bigger checkpoints put
    /// 5-10 ms outliers into the p99.)
    pub fn checkpoint_in_background(
        &mut self,
        log_checkpointed: impl Fn() + Send + 'static,
    ) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
        self.conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES as i64).map_err(|e| self.err(e))?;
        let log_frames = std::sync::Arc::clone(&self.log_frames);
        let checkpointing = std::sync::Arc::clone(&self.checkpointing);
        let page_size = self.page_size;
        let conn = Connection::open(&self.path).map_err(|e| self.err(e))?;
        conn.busy_timeout(Duration::from_millis(100)).map_err(|e| self.err(e))?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("chronicle-checkpoint".into())
            .spawn(move || {
                let lull = Lull::new();
                while rx.recv().is_ok() {
                    while rx.try_recv().is_ok() {}
                    let logged = log_frames.load(std::sync::atomic::Ordering::Relaxed).saturating_mul(page_size);
                    if logged > BACKGROUND_CHECKPOINT_BYTES as i64 {
                        lull.wait();
                        let _turn = checkpointing.lock().unwrap_or_else(|e| e.into_inner());
                        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                        });
                        tracing::debug!("background wal checkpoint (busy, log frames, checkpointed): {result:?}");
                        if matches!(result, Ok((0, log, done)) if log > 0 && done == log) {
                            log_checkpointed();
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Sqlite { path: self.path.clone(), source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)) })?;
        self.defer_upkeep = true;
        Ok(tx)
    }

    /// For a long-lived process whose log another process checkpoints: `record` no longer
    /// bounds the log in line (see [`Store::enforce_wal_bound`] for the owner's share).
    pub fn defer_upkeep(&mut self) {
        self.defer_upkeep = true;
    }

    /// Starts a checkpointed write-ahead log afresh, outside any event.
    ///
    /// The first commit into a fully checkpointed log restarts it: SQLite writes a new log
    /// header and fsyncs it (even at `synchronous=NORMAL`, so old frames can never pass for new
    /// ones), and trims the file to `journal_size_limit`. Left to the next event, that cost
    /// (0.3-0.5 ms, and a trim that waited for writeback up to 11 ms) landed in every second
    /// large event's commit, before its answer. A one-row write here pays it instead. It must be
    /// this connection: a write through another one would also discard this connection's page
    /// cache, which cost every large event ~0.4 ms more than the fsync it saved (measured).
    ///
    /// Optional work: if another process holds the write lock it gives up after 5 ms (the
    /// next event's commit then restarts the log) rather than keep the host from its events.
    pub fn restart_log(&mut self) -> Result<(), StoreError> {
        wait_when_busy(&mut self.conn, Duration::from_millis(5)).map_err(|e| self.err(e))?;
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO upkeep (id, checkpoints, last_checkpoint_ns) VALUES (1, 1, ?1)
                 ON CONFLICT (id) DO UPDATE SET checkpoints = checkpoints + 1, last_checkpoint_ns = excluded.last_checkpoint_ns",
            )
            .and_then(|mut s| s.execute(params![crate::clock::unix_ns()]))
            .map(drop);
        let restored = wait_when_busy(&mut self.conn, BUSY_TIMEOUT);
        result.and(restored).map_err(|e| self.err(e))
    }

    /// Starts the log of a database whose log file did not exist yet (one just made from the
    /// template, see `create_complete`), with the `upkeep` row at zero checkpoints, and without
    /// syncing; a database that has the row already is left alone (nothing is written). The
    /// first commit into an empty log syncs the log's header and, as a process's first sync of
    /// it, the directory: two fsyncs (1.5-2 ms here) that a configuration's first event waited
    /// for in its commit. They protect nothing in a new log file: at `synchronous=NORMAL` no
    /// commit syncs the log until the first checkpoint (which syncs it, and then the directory,
    /// making the database's name durable too), so a machine crash before it loses the same
    /// events whether the header was synced or not, and an unsynced header only makes SQLite
    /// ignore the whole log. (SQLite syncs a header because a log file it restarts still holds
    /// old frames; a new file holds none.)
    pub(super) fn start_first_log(&mut self) {
        let result = self.conn.execute_batch(
            "PRAGMA synchronous=OFF;
             INSERT INTO upkeep (id, checkpoints, last_checkpoint_ns) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;",
        );
        let restored = self.conn.execute_batch("PRAGMA synchronous=NORMAL");
        if let Err(e) = result.and(restored) {
            tracing::debug!("cannot start the new database's log: {e}");
        }
    }

    /// For a long-lived process whose background checkpointer cannot keep up (see
    /// [`WAL_HARD_LIMIT_BYTES`]): past that much log, checkpoint and truncate it now. Called
    /// between events, after an answer.
    pub fn enforce_wal_bound(&mut self) {
        let bytes = self.log_bytes();
        if bytes == i64::MAX || bytes <= WAL_HARD_LIMIT_BYTES as i64 {
            return;
        }
        let _turn = self.checkpointing.lock().unwrap_or_else(|e| e.into_inner());
        // A worker's checkpoint may still be running (busy = 1): try again a few times.
        let mut result = Ok(1);
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            result = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
            if !matches!(result, Ok(1)) {
                break;
            }
        }
        tracing::info!(log_bytes = bytes, "the background checkpointer fell behind; checkpointed in line (busy: {result:?})");
        if matches!(result, Ok(0)) {
            self.log_frames.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// For a resident host that is leaving: copies the whole log into the database and
    /// truncates it, waiting at most `patience` for other connections, then starts the new log
    /// itself ([`Store::start_new_log`]). The next process to open the database (the first
    /// hook after an idle-out) then replays nothing; left as it was, up to 4 MiB of log were
    /// read and checksummed before that event could be recorded. Returns whether it was done
    /// (another process busy with the database: not).
    pub fn truncate_log(&mut self, patience: Duration) -> bool {
        let result = {
            let checkpointing = std::sync::Arc::clone(&self.checkpointing);
            let _turn = checkpointing.lock().unwrap_or_else(|e| e.into_inner());
            let _ = wait_when_busy(&mut self.conn, patience);
            let result = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
            let _ = wait_when_busy(&mut self.conn, BUSY_TIMEOUT);
            result
        };
        tracing::debug!("truncating the log on the way out (busy): {result:?}");
        if matches!(result, Ok(0)) {
            self.log_frames.store(0, std::sync::atomic::Ordering::Relaxed);
            self.start_new_log();
            return true;
        }
        false
    }

    /// After a checkpoint that emptied the log: writes one small transaction (the `upkeep`
    /// row), so that this process, not the next event's, pays for starting a log. The first
    /// commit into an empty log writes its header and syncs it, and a process's first sync of
    /// the log also syncs the directory: two fsyncs (1-2.5 ms here) that the first event after
    /// an idle-out, and the event after each in-line checkpoint of a hook process, waited for.
    fn start_new_log(&mut self) {
        if let Err(e) = self.restart_log() {
            tracing::debug!("cannot start the new log: {e}");
        }
    }

    /// For a hook process whose answer is out (its client relayed it at the end mark, so
    /// nobody waits for this; `record` left the log alone, see [`Store::defer_upkeep`]): keeps
    /// the log short for the next process. Past [`HOOK_LOG_LIMIT_BYTES`], a passive checkpoint,
    /// which holds no lock another process's event waits for, and once it copied the whole
    /// log a restart ([`Store::restart_log`]): the next process replays one frame. Past
    /// [`WAL_LIMIT_BYTES`] (concurrent events kept the passive ones from restarting it), the
    /// truncating bound of [`Store::bound_wal`].
    pub fn bound_wal_after_answer(&mut self) {
        let bytes = self.log_bytes();
        if bytes == i64::MAX || bytes <= HOOK_LOG_LIMIT_BYTES as i64 {
            return; // nothing committed here, or short enough
        }
        if bytes > WAL_LIMIT_BYTES as i64 {
            self.bound_wal();
            return;
        }
        let copied = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)));
        match copied {
            Ok((0, log, done)) if log > 0 && done == log => {
                if let Err(e) = self.restart_log() {
                    tracing::debug!("cannot restart the write-ahead log: {e}");
                }
            }
            other => tracing::debug!("passive checkpoint after the answer: {other:?}"),
        }
    }

    /// Whether the log has grown past the background checkpointer's threshold (or its size
    /// is not known yet): what the checkpointer, once woken, checks again.
    pub fn wants_background_checkpoint(&self) -> bool {
        self.log_bytes() > BACKGROUND_CHECKPOINT_BYTES as i64
    }

    /// Bytes the write-ahead log holds after the last commit (`i64::MAX` before any).
    fn log_bytes(&self) -> i64 {
        self.log_frames.load(std::sync::atomic::Ordering::Relaxed).saturating_mul(self.page_size)
    }

    /// Keeps the write-ahead log short.
    ///
    /// Hook processes exit without closing the connection (closing the last one checkpoints and
    /// fsyncs on every event), so the WAL outlives them and each new process replays it when it
    /// opens. That replay also forgets how far earlier checkpoints got, so SQLite's own
    /// autocheckpoint can never restart the log and it grows without bound, making every open
    /// slower. Past [`WAL_LIMIT_BYTES`] of log (what SQLite reported after our commit; not the
    /// file's size, which a resident host keeps larger) we checkpoint and truncate it
    /// ourselves; if other processes are busy we skip quickly and a later event does it.
    pub(super) fn bound_wal(&mut self) {
        if self.log_bytes() <= WAL_LIMIT_BYTES as i64 {
            return;
        }
        let _ = wait_when_busy(&mut self.conn, Duration::from_millis(20));
        let result = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        tracing::debug!("wal checkpoint: {result:?}");
        let _ = wait_when_busy(&mut self.conn, BUSY_TIMEOUT);
        if matches!(result, Ok(0)) {
            self.start_new_log();
        }
    }
}

/// Waits for room on the CPU before a background checkpoint, which then runs at normal
/// priority.
///
/// A checkpoint copies every event's pages into the database file, ~1 ms of CPU after a large
/// event. Started at normal priority whenever nudged, it competed for this machine's two cores
/// with the next event's client and host, and a 482 KB event took 2.5 -> 3.3x `cat` once the
/// database held a few hundred of them; so it ran at the lowest priority, in the gaps between
/// events. But run wholly at the lowest priority on a saturated machine, it held SQLite's
/// checkpoint lock for hundreds of milliseconds while every in-line TRUNCATE of the host and
/// its workers failed busy, and the log grew to 12.7-20.6 MiB against its 8 MiB bound (4
/// clients beside two busy loops, measured). Now only a helper thread is at the lowest
/// priority, and only the start waits for it to get the CPU.
struct Lull {
    /// Asks the helper, and hears back from it; none if it could not be started.
    helper: Option<(std::sync::mpsc::SyncSender<()>, std::sync::mpsc::Receiver<()>)>,
}

impl Lull {
    fn new() -> Lull {
        let (ask, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let (answered, answer) = std::sync::mpsc::sync_channel::<()>(1);
        let started = std::thread::Builder::new().name("chronicle-lull".into()).spawn(move || {
            lower_this_threads_priority();
            while asked.recv().is_ok() && answered.send(()).is_ok() {}
        });
        Lull { helper: started.ok().map(|_| (ask, answer)) }
    }

    /// Returns once the lowest-priority helper got the CPU (at once without a helper).
    fn wait(&self) {
        if let Some((ask, answer)) = &self.helper {
            if ask.send(()).is_ok() {
                let _ = answer.recv();
            }
        }
    }
}

/// Puts the calling thread at the lowest CPU priority (nice 19).
pub(crate) fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; failure changes nothing.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::EventRecord;
    use super::*;

    fn frames_in_log(path: &Path) -> (i64, i64) {
        let other = Connection::open(path).unwrap();
        other.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?))).unwrap()
    }

    #[test]
    fn the_background_checkpointer_waits_until_the_log_holds_more_than_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("chronicle.db")).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let nudge = store
            .checkpoint_in_background(move || {
                let _ = done_tx.send(());
            })
            .unwrap();
        let small = EventRecord { kind: "event".into(), payload: "{}".into(), ..EventRecord::default() };
        for _ in 0..5 {
            store.record(&small).unwrap();
            nudge.send(()).unwrap();
        }
        assert!(done_rx.recv_timeout(Duration::from_millis(500)).is_err(), "a short log is left alone");
        assert!(!store.wants_background_checkpoint(), "and the host does not wake the checkpointer for it");
        // Half the threshold: still left alone.
        let big = EventRecord { payload: format!("\"{}\"", "x".repeat(600_000)).into(), ..small.clone() };
        let half = BACKGROUND_CHECKPOINT_BYTES as usize / 2 / 600_000;
        for _ in 0..half {
            store.record(&big).unwrap();
        }
        nudge.send(()).unwrap();
        assert!(done_rx.recv_timeout(Duration::from_millis(500)).is_err(), "a log under the limit is left alone");
        assert!(!store.wants_background_checkpoint());
        for _ in 0..=half + 1 {
            store.record(&big).unwrap();
        }
        assert!(store.wants_background_checkpoint(), "past the limit the host wakes it");
        nudge.send(()).unwrap();
        assert!(done_rx.recv_timeout(Duration::from_secs(20)).is_ok(), "a log past the limit is checkpointed");
    }

    #[test]
    fn restarting_the_log_gives_up_quickly_when_another_writer_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let mut store = Store::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        assert!(store.restart_log().is_err());
        assert!(started.elapsed() < Duration::from_secs(2), "optional work must not hold the host up");
        // Events still wait for the lock as long as they always did.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        store.record(&EventRecord { kind: "event".into(), payload: "{}".into(), ..EventRecord::default() }).unwrap();
        release.join().unwrap();
    }

    #[test]
    fn a_checkpointed_log_is_restarted_by_restart_log_not_by_the_next_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let mut store = Store::open(&path).unwrap();
        for _ in 0..3 {
            store.record(&EventRecord { kind: "event".into(), payload: "{}".into(), ..EventRecord::default() }).unwrap();
        }
        let (log, done) = frames_in_log(&path);
        assert!(log > 0 && done == log, "fully checkpointed: {log} {done}");
        store.restart_log().unwrap();
        // A restarted log holds only the restart's own write; an appended one would hold more.
        let (log, _) = frames_in_log(&path);
        assert_eq!(log, 1, "the log starts afresh");
        store.restart_log().unwrap();
        let checkpoints: i64 = store.conn.query_row("SELECT checkpoints FROM upkeep", [], |r| r.get(0)).unwrap();
        assert_eq!(checkpoints, 2);
    }

    #[test]
    fn a_hook_process_bounds_its_log_after_the_answer_and_not_in_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let mut store = Store::open(&path).unwrap();
        store.defer_upkeep();
        let checkpoints = |s: &Store| -> i64 {
            s.conn.query_row("SELECT coalesce(max(checkpoints), 0) FROM upkeep", [], |r| r.get(0)).unwrap()
        };
        let event = |bytes: usize| EventRecord {
            kind: "event".into(),
            payload: format!("\"{}\"", "x".repeat(bytes)).into(),
            ..EventRecord::default()
        };
        // Nothing committed by this process: nothing to do.
        store.bound_wal_after_answer();
        assert_eq!(checkpoints(&store), 0);
        // Under the limit: left alone.
        store.record(&event(10)).unwrap();
        let short = store.log_bytes();
        store.bound_wal_after_answer();
        assert_eq!((store.log_bytes(), checkpoints(&store)), (short, 0));
        // Past it: checkpointed and restarted; the log holds the restart's one write.
        store.record(&event(HOOK_LOG_LIMIT_BYTES as usize)).unwrap();
        assert!(store.log_bytes() > HOOK_LOG_LIMIT_BYTES as i64);
        store.bound_wal_after_answer();
        assert_eq!(checkpoints(&store), 1);
        assert_eq!(store.log_bytes(), store.page_size, "one frame left");
        // Past the hard limit, the commit still leaves it (the answer is not out yet) ...
        store.record(&event(WAL_LIMIT_BYTES as usize + 100_000)).unwrap();
        let wal = dir.path().join("chronicle.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > WAL_LIMIT_BYTES);
        // ... and the bound after the answer truncates it.
        store.bound_wal_after_answer();
        assert!(std::fs::metadata(&wal).unwrap().len() < 3 * store.page_size as u64, "truncated and restarted");
        assert_eq!(checkpoints(&store), 2);
        // Every event is there.
        let events: i64 = store.conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(events, 3);
    }
}
