//! Schema `chronicle` in the team database, as an append-only list of migrations recorded in
//! `chronicle.schema_version`. Never edit a migration that has shipped; append a new one.
//!
//! Several machines may migrate at once (a team upgrading on a Monday morning): each migrates
//! inside one transaction holding a transaction-scoped advisory lock, so the second waits for
//! the first, then finds the work done.
//!
//! Every row of a machine's is keyed by `machine`, `store_id` (its local database's identity)
//! and `local_id` (its id there): a push that is killed and run again, or two pushes racing,
//! insert each row once.

use super::SyncError;

/// `pg_advisory_xact_lock` key of migrations: "chronicle" in ASCII.
const MIGRATION_LOCK: i64 = 0x6368_726f_6e69_636c;

pub const MIGRATIONS: &[&str] = &[
    // 1: the first team schema.
    r#"
    CREATE TABLE chronicle.machines (
        machine           text PRIMARY KEY,
        first_sync_at     timestamptz NOT NULL DEFAULT now(),
        last_sync_at      timestamptz NOT NULL DEFAULT now(),
        chronicle_version text
    );
    CREATE TABLE chronicle.sync_state (
        machine        text NOT NULL,
        store_id       text NOT NULL,
        table_name     text NOT NULL,
        pushed_through bigint NOT NULL,
        updated_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (machine, store_id, table_name)
    );
    CREATE TABLE chronicle.events (
        id              bigserial PRIMARY KEY,
        machine         text NOT NULL,
        store_id        text NOT NULL,
        local_id        bigint NOT NULL,
        invocation_id   text,
        kind            text NOT NULL,
        hook_event_name text,
        session_id      text,
        tool_name       text,
        tool_use_id     text,
        agent_id        text,
        received_at     timestamptz NOT NULL,
        received_at_ns  bigint NOT NULL,
        payload         jsonb NOT NULL,
        payload_bytes   bigint NOT NULL,
        redacted        boolean NOT NULL,
        truncated       boolean NOT NULL,
        error           text,
        decision        text NOT NULL,
        exit_code       integer NOT NULL,
        answer          text,
        synced_at       timestamptz NOT NULL DEFAULT now(),
        UNIQUE (machine, store_id, local_id)
    );
    CREATE INDEX events_by_machine_time ON chronicle.events (machine, received_at);
    CREATE INDEX events_by_session_time ON chronicle.events (session_id, received_at);
    CREATE INDEX events_by_time ON chronicle.events (received_at);
    -- Large payloads are compressed with lz4 where the server has it (several times faster
    -- than the default pglz on the way in); elsewhere the default stays.
    DO $$ BEGIN
        ALTER TABLE chronicle.events ALTER COLUMN payload SET COMPRESSION lz4;
    EXCEPTION WHEN OTHERS THEN NULL;
    END $$;
    CREATE TABLE chronicle.sessions (
        machine     text NOT NULL,
        store_id    text NOT NULL,
        session_id  text NOT NULL,
        first_seen  timestamptz NOT NULL,
        last_seen   timestamptz NOT NULL,
        ended_at    timestamptz,
        end_reason  text,
        cwd         text,
        project_dir text,
        git_branch  text,
        event_count bigint NOT NULL,
        PRIMARY KEY (machine, session_id)
    );
    CREATE INDEX sessions_by_last_seen ON chronicle.sessions (last_seen);
    CREATE TABLE chronicle.plugin_calls (
        id              bigserial PRIMARY KEY,
        machine         text NOT NULL,
        store_id        text NOT NULL,
        local_id        bigint NOT NULL,
        event_local_id  bigint NOT NULL,
        plugin          text NOT NULL,
        version         text NOT NULL,
        path            text NOT NULL,
        status          text NOT NULL,
        decision        text NOT NULL,
        fault           text,
        wall_ns         bigint NOT NULL,
        cpu_ns          bigint NOT NULL,
        allocations     bigint NOT NULL,
        bytes_allocated bigint NOT NULL,
        peak_live_bytes bigint NOT NULL,
        memory_source   text NOT NULL,
        stdout_bytes    bigint NOT NULL,
        cache           text,
        -- Unique as (machine, store_id, local_id) is; ordered to serve the join to the event.
        UNIQUE (machine, store_id, event_local_id, local_id)
    );
    CREATE TABLE chronicle.faults (
        id             bigserial PRIMARY KEY,
        machine        text NOT NULL,
        store_id       text NOT NULL,
        local_id       bigint NOT NULL,
        event_local_id bigint NOT NULL,
        source         text NOT NULL,
        plugin         text,
        path           text,
        message        text NOT NULL,
        -- Unique as (machine, store_id, local_id) is; ordered to serve the join to the event.
        UNIQUE (machine, store_id, event_local_id, local_id)
    );
    CREATE TABLE chronicle.violations (
        id             bigserial PRIMARY KEY,
        machine        text NOT NULL,
        store_id       text NOT NULL,
        local_id       bigint NOT NULL,
        event_local_id bigint NOT NULL,
        metric         text NOT NULL,
        subject        text NOT NULL,
        value          double precision NOT NULL,
        threshold      double precision NOT NULL,
        -- Unique as (machine, store_id, local_id) is; ordered to serve the join to the event.
        UNIQUE (machine, store_id, event_local_id, local_id)
    );
    CREATE TABLE chronicle.metrics (
        machine        text NOT NULL,
        store_id       text NOT NULL,
        local_id       bigint NOT NULL,
        event_local_id bigint NOT NULL,
        name           text NOT NULL,
        value          double precision NOT NULL,
        PRIMARY KEY (machine, store_id, event_local_id, local_id)
    );
    CREATE TABLE chronicle.tool_durations (
        machine             text NOT NULL,
        store_id            text NOT NULL,
        tool_use_id         text NOT NULL,
        session_id          text,
        tool_name           text,
        pre_event_local_id  bigint,
        post_event_local_id bigint,
        started_at          timestamptz,
        ended_at            timestamptz,
        reported_ms         double precision,
        duration_ms         double precision,
        status              text,
        PRIMARY KEY (machine, store_id, tool_use_id)
    );
    -- For dashboards: every event with its whole-hook latency.
    CREATE VIEW chronicle.event_latency AS
        SELECT e.id, e.machine, e.session_id, e.hook_event_name, e.tool_name, e.decision, e.received_at, m.value AS hook_total_ms
        FROM chronicle.events e
        JOIN chronicle.metrics m
          ON m.machine = e.machine AND m.store_id = e.store_id AND m.event_local_id = e.local_id AND m.name = 'hook.total';
    "#,
];

pub fn latest() -> i32 {
    MIGRATIONS.len() as i32
}

/// Brings schema `chronicle` up to date; a database migrated by a newer chronicle is refused.
pub fn migrate(client: &mut postgres::Client, shown: &str) -> Result<(), SyncError> {
    let pg = |e: postgres::Error| SyncError::from_pg(shown, &e);
    // The cheap path: already current (no lock taken).
    if let Ok(row) = client.query_one("SELECT coalesce(max(version), 0) FROM chronicle.schema_version", &[]) {
        let current: i32 = row.get(0);
        if current == latest() {
            return Ok(());
        }
        if current > latest() {
            return Err(SyncError::TooNew { found: current, supported: latest() });
        }
    }
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(pg)?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS chronicle;
         CREATE TABLE IF NOT EXISTS chronicle.schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .map_err(pg)?;
    let current: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM chronicle.schema_version", &[]).map_err(pg)?.get(0);
    if current > latest() {
        return Err(SyncError::TooNew { found: current, supported: latest() });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        tx.batch_execute(sql).map_err(pg)?;
        tx.execute("INSERT INTO chronicle.schema_version (version) VALUES ($1)", &[&(i as i32 + 1)]).map_err(pg)?;
    }
    tx.commit().map_err(pg)
}
