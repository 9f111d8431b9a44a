//! The calibration reference workload for `chronicle bench`: a fixed program doing the kind of
//! work `chronicle hook` does — start a process, read the event from stdin, parse it as JSON,
//! append it to a SQLite database in WAL mode in one transaction, exit without closing — but
//! none of Chronicle's own code. Measured in the same run as the hook scenarios, it lets
//! `chronicle regress compare` cancel machine-speed drift between a stored baseline and now.
//!
//! Keep this file frozen: changing it changes what every stored baseline is calibrated against.
//! Usage: chronicle-calibrate DB < event.json

use std::io::Read;

fn main() {
    let Some(db) = std::env::args_os().nth(1) else {
        eprintln!("usage: chronicle-calibrate DB < event.json");
        std::process::exit(2);
    };
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        std::process::exit(1);
    }
    let value: serde_json::Value = serde_json::from_slice(&input).unwrap_or(serde_json::Value::Null);
    let name = value.get("hook_event_name").and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let run = || -> rusqlite::Result<()> {
        let mut conn = rusqlite::Connection::open(std::path::Path::new(&db))?;
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL; CREATE TABLE IF NOT EXISTS e (id INTEGER PRIMARY KEY, name TEXT, payload TEXT)")?;
        let tx = conn.transaction()?;
        tx.execute("INSERT INTO e (name, payload) VALUES (?1, ?2)", rusqlite::params![name, String::from_utf8_lossy(&input)])?;
        tx.commit()?;
        // Keep the log bounded the same way the host does, or the reference would slow down.
        if tx_wal_big(&db) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        }
        std::mem::forget(conn);
        Ok(())
    };
    let code = i32::from(run().is_err());
    std::process::exit(code);
}

fn tx_wal_big(db: &std::ffi::OsStr) -> bool {
    let mut wal = db.to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 1024 * 1024)
}
