//! A new database file, made from the empty database kept in the binary (`empty.db`: 4 KiB
//! pages, WAL, every migration; see `store::template` for how it is checked and made again).
//! No SQLite here: the client makes the file too, while the child it handed the event to is
//! still starting (see [`Making`]).
//!
//! Each copy gets its own store id (the `identity` row, which keeps team sync's rows of two
//! databases apart): the template holds [`PLACEHOLDER`] there, and the copy's bytes are
//! patched before they reach the disk, so the id is as durable as the file. An id of the same
//! length changes no record's size, so the b-tree is untouched otherwise.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The empty database.
pub const TEMPLATE: &[u8] = include_bytes!("empty.db");

/// The store id the template holds: 32 characters, as `lower(hex(randomblob(16)))` makes.
pub const PLACEHOLDER: &[u8; 32] = b"7e3p1a7e5t0re1dp1acehe1dertemp1a";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where the template holds [`PLACEHOLDER`]: found when the binary is compiled, which fails if
/// the template does not hold it exactly once. Searched at run time, the search was the only
/// thing in the client to ask the CPU for its features (memchr's AVX2 check: seven `cpuid`s,
/// each a trap to the hypervisor in a VM, ~60 µs of a configuration's first event here).
const PLACEHOLDER_AT: usize = match only_occurrence(TEMPLATE, PLACEHOLDER) {
    Some(at) => at,
    None => panic!("empty.db must hold the store id placeholder exactly once"),
};

/// A copy of the template with a fresh store id; None if it cannot be made (no randomness).
pub fn copy_of_template() -> Option<Vec<u8>> {
    let at = PLACEHOLDER_AT;
    let mut random = [0u8; 16];
    // SAFETY: getrandom fills at most the 16 bytes of the buffer it is given.
    let got = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
    if got != random.len() as isize {
        return None;
    }
    let mut bytes = TEMPLATE.to_vec();
    for (i, b) in random.iter().enumerate() {
        bytes[at + 2 * i] = HEX[usize::from(b >> 4)];
        bytes[at + 2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    Some(bytes)
}

/// Where `needle` starts in `haystack` if it occurs there exactly once.
const fn only_occurrence(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut found = None;
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        let mut j = 0;
        while j < needle.len() && haystack[i + j] == needle[j] {
            j += 1;
        }
        if j == needle.len() {
            if found.is_some() {
                return None;
            }
            found = Some(i);
        }
        i += 1;
    }
    found
}

/// Makes the database at `path` from a copy of the template; true if this process linked it,
/// false if another one did first. [`Making::start`] then [`Making::finish`], at once.
pub fn create(path: &Path) -> std::io::Result<bool> {
    Making::start(path)?.finish()
}

/// A database being made: from [`Making::start`] until it is linked into place or given up,
/// a file under its build name ([`build_name`]) says so to a host waiting for it
/// ([`wait_for_maker`]), which stops waiting as soon as that file is gone.
pub struct Making {
    tmp: PathBuf,
    path: PathBuf,
    file: std::fs::File,
}

impl Making {
    /// Makes the private directory and the file under its build name; nothing is written yet.
    pub fn start(path: &Path) -> std::io::Result<Making> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        crate::private::create_private_dir(dir)?;
        static MADE: AtomicU32 = AtomicU32::new(0);
        let tmp = build_name(path, std::process::id(), MADE.fetch_add(1, Ordering::Relaxed));
        // A leftover of a dead process that had this pid.
        let _ = std::fs::remove_file(&tmp);
        let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        Ok(Making { tmp, path: path.to_owned(), file })
    }

    /// The name the database has while it is made.
    pub fn build_name(&self) -> &Path {
        &self.tmp
    }

    /// Writes the copy, syncs it, and hard-links it into place; true if this process linked
    /// it, false if another one did first (a link never replaces a file). The directory is
    /// not synced: the log's first sync (its first checkpoint) syncs it, and until then a
    /// machine crash loses only what an unsynced log loses anyway (see
    /// `Store::start_first_log`); the next event makes the database again.
    pub fn finish(mut self) -> std::io::Result<bool> {
        let bytes = copy_of_template().ok_or_else(|| std::io::Error::other("no copy of the empty database"))?;
        self.file.write_all(&bytes)?;
        self.file.sync_all()?;
        match std::fs::hard_link(&self.tmp, &self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Making {
    fn drop(&mut self) {
        // Linked or given up: the build name goes either way.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The name the `n`th database process `pid` makes for `path` has while it is made.
pub fn build_name(path: &Path, pid: u32, n: u32) -> PathBuf {
    path.with_file_name(format!("{}{pid}-{n}", build_prefix(path)))
}

/// The name a database under construction has beside `path`: `.<name>.new-<pid>-<n>`.
pub fn build_prefix(path: &Path) -> String {
    format!(".{}.new-", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// Waits up to `limit` for the database another process is making at `path` under the build
/// name `building` (see [`build_name`]; [`Making::start`]ed before this process looks):
/// whether it is there. It stops as soon as the build file is gone without a database (the
/// maker failed: a full disk, a directory not its own), or was never there (the maker died).
/// It looks every 100 µs: inotify woke it at once, but closing an inotify descriptor waits for
/// the kernel's grace period (`fsnotify_destroy_group`), which took 5-20 ms here.
pub fn wait_for_maker(path: &Path, building: &Path, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if path.exists() {
            return true;
        }
        if !building.exists() {
            // Linked between the two looks, or not at all.
            return path.exists();
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_copy_has_its_own_store_id() {
        let ids: Vec<Vec<u8>> = (0..2)
            .map(|_| {
                let copy = copy_of_template().unwrap();
                assert_eq!(&TEMPLATE[PLACEHOLDER_AT..PLACEHOLDER_AT + 32], PLACEHOLDER);
                copy[PLACEHOLDER_AT..PLACEHOLDER_AT + 32].to_vec()
            })
            .collect();
        for id in &ids {
            assert!(id.iter().all(|b| HEX.contains(b)), "{id:?}");
        }
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn only_one_occurrence_is_an_occurrence() {
        assert_eq!(only_occurrence(b"abcXYabc", b"XY"), Some(3));
        assert_eq!(only_occurrence(b"XYabcXY", b"XY"), None);
        assert_eq!(only_occurrence(b"abc", b"XY"), None);
        assert_eq!(only_occurrence(b"XXY", b"XY"), Some(1));
    }

    #[test]
    fn a_second_maker_finds_the_file_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        assert!(create(&path).unwrap());
        assert!(!create(&path).unwrap(), "a link never replaces a file");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["chronicle.db"], "nothing else left beside it");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), TEMPLATE.len() as u64);
    }

    /// The waiter returns once the database is linked, or at once when its maker gave up
    /// or never began; only a maker still at work holds it to the limit.
    #[test]
    fn a_waiter_waits_only_while_its_maker_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chronicle.db");
        let long = Duration::from_secs(20);
        let quick = Duration::from_secs(10);

        let started = std::time::Instant::now();
        assert!(!wait_for_maker(&path, &build_name(&path, 1, 0), long), "no maker: nothing to wait for");
        assert!(started.elapsed() < quick);

        let in_a_while = |making: Making, finish: bool| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                if finish {
                    making.finish().unwrap()
                } else {
                    false
                }
            })
        };
        let making = Making::start(&path).unwrap();
        let building = making.build_name().to_owned();
        let maker = in_a_while(making, false);
        let started = std::time::Instant::now();
        assert!(!wait_for_maker(&path, &building, long), "the maker gave up");
        assert!(started.elapsed() < quick);
        maker.join().unwrap();
        assert!(!building.exists());

        let making = Making::start(&path).unwrap();
        let started = std::time::Instant::now();
        assert!(!wait_for_maker(&path, making.build_name(), Duration::from_millis(30)), "still at work");
        assert!(started.elapsed() >= Duration::from_millis(30));

        let building = making.build_name().to_owned();
        let maker = in_a_while(making, true);
        let started = std::time::Instant::now();
        assert!(wait_for_maker(&path, &building, long));
        assert!(started.elapsed() < quick, "found once it is linked, not at the limit");
        assert!(maker.join().unwrap());
        assert!(!building.exists());
    }
}
