//! Keeping the empty database new ones are copied from (`host/src/empty.db`, see
//! [`crate::newdb`]) true to the migrations. A configuration's first event copies it instead
//! of building a database: opening a new file, switching it to WAL and running the migrations
//! took 1.0-1.2 ms of that event's store thread here, which the event waited for.
//!
//! A template older than the migrations is still correct (the opener runs the missing ones),
//! only slower; the test `the_template_is_what_the_migrations_build` fails until it is made
//! again with `CHRONICLE_BLESS_TEMPLATE=1 cargo test -p chronicle --lib store::template`.

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use crate::newdb::{copy_of_template, PLACEHOLDER};

    /// An empty database built the slow way: a new file switched to WAL, every migration.
    fn build(path: &Path) {
        let mut conn = Connection::open(path).unwrap();
        crate::store::configure(&conn, "OFF").unwrap();
        assert!(crate::store::migrations::migrate(&mut conn).is_ok());
        // Closing the last connection copies the log into the file and deletes it.
        conn.close().unwrap();
    }

    /// What makes two databases the same to Chronicle: the schema's text, the migrations
    /// applied, the page size and journal mode, the rows the migrations insert (the store id
    /// aside).
    fn shape(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let strings = |sql: &str| -> Vec<String> {
            conn.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        let mut out =
            strings("SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name");
        for pragma in ["user_version", "page_size", "journal_mode", "integrity_check"] {
            let value: rusqlite::types::Value = conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0)).unwrap();
            out.push(format!("{pragma} {value:?}"));
        }
        for table in strings("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'identity' ORDER BY name") {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)).unwrap();
            out.push(format!("{table}: {n} rows"));
        }
        out
    }

    #[test]
    fn the_template_is_what_the_migrations_build() {
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("built.db");
        build(&built);
        if std::env::var_os("CHRONICLE_BLESS_TEMPLATE").is_some() {
            let conn = Connection::open(&built).unwrap();
            conn.execute("UPDATE identity SET store_id = ?1", [std::str::from_utf8(PLACEHOLDER).unwrap()]).unwrap();
            // No free page keeps the id the migration drew.
            conn.execute_batch("VACUUM").unwrap();
            conn.close().unwrap();
            std::fs::copy(&built, Path::new(env!("CARGO_MANIFEST_DIR")).join("src/empty.db")).unwrap();
            return;
        }
        let copied = dir.path().join("copied.db");
        std::fs::write(&copied, copy_of_template().expect("a copy of the template")).unwrap();
        assert_eq!(
            shape(&built),
            shape(&copied),
            "src/empty.db is not what the migrations build; make it again: \
             CHRONICLE_BLESS_TEMPLATE=1 cargo test -p chronicle --lib store::template"
        );
        let id: String = Connection::open(&copied).unwrap().query_row("SELECT store_id FROM identity", [], |r| r.get(0)).unwrap();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
    }
}
