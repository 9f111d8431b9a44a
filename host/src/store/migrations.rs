//! The schema, as an append-only list of migrations. `PRAGMA user_version` holds how many
//! have run. Never edit a migration that has shipped; append a new one.

use rusqlite::{Connection, TransactionBehavior};

pub(super) enum MigrateError {
    Sqlite(rusqlite::Error),
    TooNew { found: i64, supported: i64 },
}

impl MigrateError {
    /// The store's error for the database at `path`.
    pub(super) fn at(self, path: &std::path::Path) -> super::StoreError {
        match self {
            MigrateError::Sqlite(source) => super::StoreError::Sqlite { path: path.to_owned(), source },
            MigrateError::TooNew { found, supported } => super::StoreError::TooNew { path: path.to_owned(), found, supported },
        }
    }
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sqlite(e)
    }
}

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the first schema. Every index costs a page write per event on the hot path, so
    // tables are append-only where possible and keyed tables are WITHOUT ROWID (one b-tree).
    r#"
    CREATE TABLE sessions (
        session_id     TEXT PRIMARY KEY,
        first_seen_ns  INTEGER NOT NULL,
        last_seen_ns   INTEGER NOT NULL,
        ended_at_ns    INTEGER,
        end_reason     TEXT,
        cwd            TEXT,
        project_dir    TEXT,
        git_branch     TEXT,
        event_count    INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL CHECK (kind IN ('event', 'event_unknown_type', 'parse_error')),
        hook_event_name TEXT,
        session_id      TEXT,
        tool_name       TEXT,
        tool_use_id     TEXT,
        agent_id        TEXT,
        received_at_ns  INTEGER NOT NULL,
        payload         TEXT NOT NULL,
        payload_bytes   INTEGER NOT NULL,
        redacted        INTEGER NOT NULL,
        truncated       INTEGER NOT NULL,
        error           TEXT,
        decision        TEXT NOT NULL DEFAULT 'none',
        exit_code       INTEGER NOT NULL DEFAULT 0,
        answer          TEXT
    );
    CREATE INDEX events_by_session ON events (session_id, id);
    CREATE TABLE plugin_calls (
        id              INTEGER PRIMARY KEY,
        event_id        INTEGER NOT NULL REFERENCES events (id),
        plugin          TEXT NOT NULL,
        version         TEXT NOT NULL,
        path            TEXT NOT NULL,
        status          TEXT NOT NULL,
        decision        TEXT NOT NULL,
        fault           TEXT,
        wall_ns         INTEGER NOT NULL,
        cpu_ns          INTEGER NOT NULL,
        allocations     INTEGER NOT NULL,
        bytes_allocated INTEGER NOT NULL,
        peak_live_bytes INTEGER NOT NULL,
        memory_source   TEXT NOT NULL,
        stdout_bytes    INTEGER NOT NULL,
        cache           TEXT CHECK (cache IN ('hit', 'miss'))
    );
    CREATE INDEX plugin_calls_by_event ON plugin_calls (event_id);
    CREATE TABLE faults (
        id       INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events (id),
        source   TEXT NOT NULL,
        plugin   TEXT,
        path     TEXT,
        message  TEXT NOT NULL
    );
    CREATE INDEX faults_by_event ON faults (event_id);
    CREATE TABLE tool_durations (
        tool_use_id   TEXT PRIMARY KEY,
        session_id    TEXT,
        tool_name     TEXT,
        pre_event_id  INTEGER,
        post_event_id INTEGER,
        started_at_ns INTEGER,
        ended_at_ns   INTEGER,
        reported_ms   REAL,
        duration_ms   REAL,
        status        TEXT
    ) WITHOUT ROWID;
    CREATE TABLE metrics (
        event_id INTEGER NOT NULL REFERENCES events (id),
        name     TEXT NOT NULL,
        value    REAL NOT NULL
    );
    CREATE TABLE violations (
        id        INTEGER PRIMARY KEY,
        event_id  INTEGER NOT NULL REFERENCES events (id),
        metric    TEXT NOT NULL,
        subject   TEXT NOT NULL,
        value     REAL NOT NULL,
        threshold REAL NOT NULL
    );
    CREATE TABLE cache (
        key           TEXT PRIMARY KEY,
        plugin        TEXT NOT NULL,
        value         TEXT NOT NULL,
        expires_at_ns INTEGER NOT NULL,
        hits          INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    "#,
    // 2: what the resident host's background checkpointer did last. Its one-row update after a
    // complete checkpoint is also what starts the write-ahead log afresh, so that the header
    // write and fsync a fresh log needs happen there and not in an event's commit.
    r#"
    CREATE TABLE upkeep (
        id                 INTEGER PRIMARY KEY CHECK (id = 1),
        checkpoints        INTEGER NOT NULL,
        last_checkpoint_ns INTEGER NOT NULL
    );
    "#,
    // 3: the identity of each invocation, given by the client before anything can fail: a
    // retry (a handover after a host died between its commit and its reply, a stalled host
    // resuming, a spooled copy) can never add a second row for one invocation.
    r#"
    ALTER TABLE events ADD COLUMN invocation_id TEXT;
    CREATE UNIQUE INDEX events_by_invocation ON events (invocation_id);
    "#,
    // 4: this database's identity, for `chronicle sync`: the team database keys every row by
    // machine, this id and the local row id, so a database deleted and made anew on the same
    // machine (its ids starting at 1 again) never collides with the rows of the old one.
    r#"
    CREATE TABLE identity (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        store_id TEXT NOT NULL
    );
    INSERT INTO identity (id, store_id) VALUES (1, lower(hex(randomblob(16))));
    "#,
];

pub(super) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

pub(super) fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the schema up to date. Cheap when it already is (one pragma read); safe when several
/// processes race to create the same new database (the check is repeated under the write lock).
pub(super) fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let current = version(conn)?;
    if current == latest() {
        return Ok(());
    }
    if current > latest() {
        return Err(MigrateError::TooNew { found: current, supported: latest() });
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_cleanly_and_are_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).ok().unwrap();
        assert_eq!(version(&conn).unwrap(), latest());
        migrate(&mut conn).ok().unwrap();
        assert_eq!(version(&conn).unwrap(), latest());
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest() + 1).unwrap();
        assert!(matches!(migrate(&mut conn), Err(MigrateError::TooNew { .. })));
    }
}
