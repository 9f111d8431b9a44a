//! The empty database, built once and kept in the binary (`empty.db`, 4 KiB pages, WAL, every
//! migration). A configuration's first event creates its database from a copy instead of
//! building one: opening a new file, switching it to WAL and running the migrations took
//! 1.0-1.2 ms of that event's store thread here, which the event waited for (its plugins load
//! in ~0.9 ms meanwhile).
//!
//! Each copy gets its own store id (the `identity` row, which keeps team sync's rows of two
//! databases apart): the template holds [`PLACEHOLDER`] there, and the copy's bytes are
//! patched before they reach the disk, so the id is as durable as the file. An id of the same
//! length changes no record's size, so the b-tree is untouched otherwise.
//!
//! A template older than the migrations is still correct (the opener runs the missing ones),
//! only slower; the test `the_template_is_what_the_migrations_build` fails until it is made
//! again with `CHRONICLE_BLESS_TEMPLATE=1 cargo test -p chronicle --lib store::template`.

use std::path::Path;

use rusqlite::Connection;

const EMPTY: &[u8] = include_bytes!("empty.db");

/// The store id the template holds: 32 characters, as `lower(hex(randomblob(16)))` makes.
const PLACEHOLDER: &[u8; 32] = b"7e3p1a7e5t0re1dp1acehe1dertemp1a";

/// A copy of the template with a fresh store id; None if it cannot be made (no randomness, a
/// template without exactly one placeholder): the caller builds the database instead.
pub(super) fn copy() -> Option<Vec<u8>> {
    let at = only_occurrence(EMPTY, PLACEHOLDER)?;
    let mut random = [0u8; 16];
    // SAFETY: getrandom fills at most the 16 bytes of the buffer it is given.
    let got = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    if got != random.len() as isize {
        return None;
    }
    let mut bytes = EMPTY.to_vec();
    for (i, b) in random.iter().enumerate() {
        bytes[at + 2 * i] = HEX[usize::from(b >> 4)];
        bytes[at + 2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    Some(bytes)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn only_occurrence(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    // memchr's search: a window-by-window comparison took ~70 µs of the 72 KiB here.
    let mut found = memchr::memmem::find_iter(haystack, needle);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Builds an empty database at `path` the slow way: a new file switched to WAL, every
/// migration. Nothing is synced (the caller syncs the whole file).
pub(super) fn build(path: &Path) -> Result<(), super::StoreError> {
    let sql = |source| super::StoreError::Sqlite { path: path.to_owned(), source };
    let mut conn = Connection::open(path).map_err(sql)?;
    super::configure(&conn, "OFF").map_err(sql)?;
    super::migrations::migrate(&mut conn).map_err(|e| e.at(path))?;
    // Closing the last connection copies the log into the file and deletes it.
    conn.close().map_err(|(_, e)| sql(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What makes two databases the same to Chronicle: the schema's text, the migrations
    /// applied, the page size and journal mode, the rows the migrations insert (the store id
    /// aside).
    fn shape(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut out: Vec<String> = conn
            .prepare("SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for pragma in ["user_version", "page_size", "journal_mode", "integrity_check"] {
            let value: rusqlite::types::Value = conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0)).unwrap();
            out.push(format!("{pragma} {value:?}"));
        }
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'identity' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for table in tables {
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)).unwrap();
            out.push(format!("{table}: {n} rows"));
        }
        out
    }

    fn store_id(path: &Path) -> String {
        Connection::open(path).unwrap().query_row("SELECT store_id FROM identity", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn the_template_is_what_the_migrations_build() {
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("built.db");
        build(&built).unwrap();
        if std::env::var_os("CHRONICLE_BLESS_TEMPLATE").is_some() {
            let conn = Connection::open(&built).unwrap();
            conn.execute("UPDATE identity SET store_id = ?1", [std::str::from_utf8(PLACEHOLDER).unwrap()]).unwrap();
            // No free page keeps the id the migration drew.
            conn.execute_batch("VACUUM").unwrap();
            conn.close().unwrap();
            std::fs::copy(&built, Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/empty.db")).unwrap();
            return;
        }
        let copied = dir.path().join("copied.db");
        std::fs::write(&copied, copy().expect("a copy of the template")).unwrap();
        let (want, got) = (shape(&built), shape(&copied));
        assert_eq!(
            want, got,
            "src/store/empty.db is not what the migrations build; make it again: \
             CHRONICLE_BLESS_TEMPLATE=1 cargo test -p chronicle --lib store::template"
        );
    }

    #[test]
    fn each_copy_has_its_own_store_id() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..2)
            .map(|n| {
                let path = dir.path().join(format!("{n}.db"));
                std::fs::write(&path, copy().unwrap()).unwrap();
                store_id(&path)
            })
            .collect();
        for id in &ids {
            assert!(id.len() == 32 && id.bytes().all(|b| HEX.contains(&b)), "{id}");
            assert_ne!(id.as_bytes(), PLACEHOLDER);
        }
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn only_one_occurrence_is_an_occurrence() {
        assert_eq!(only_occurrence(b"abcXYabc", b"XY"), Some(3));
        assert_eq!(only_occurrence(b"XYabcXY", b"XY"), None);
        assert_eq!(only_occurrence(b"abc", b"XY"), None);
    }
}
