//! The manifest index: what each plugin file said about itself the last time it was loaded,
//! keyed by path and the file's identity (size, mtime, inode). With it the host `dlopen`s only
//! the plugins that subscribe to the current event; a changed file is simply loaded again.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Candidate, PluginInfo};

/// The index file in the data directory. A plain file rather than a table so the host can
/// choose plugins before (and while) the database opens.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::failsafe::INDEX_FILE)
}

/// Reads the index; a missing or unreadable file is an empty index (everything gets loaded).
pub fn load(file: &Path) -> HashMap<String, IndexEntry> {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<IndexEntry>>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect()
}

/// Merges `updates` into the index on disk: write to a temporary file, then rename, so
/// concurrent hook processes never read a half-written index. Writers take turns (see
/// [`take_turn`]), and a quarantine outlives any update of the same file that lacks it.
pub fn update(file: &Path, updates: &[IndexEntry]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        crate::private::create_private_dir(dir)?;
    }
    let _turn = take_turn(file);
    let mut all = load(file);
    for u in updates {
        let mut u = u.clone();
        let before = all.get(&u.path);
        if u.info.is_none() && u.last_loaded.is_none() {
            u.last_loaded = before.and_then(IndexEntry::manifest).cloned();
        }
        // Quarantined until the file changes: an entry for the same file from a process that
        // read the index before the quarantine was written (its layout check, its first load)
        // does not lift it, or the plugin that killed a host is loaded again.
        if u.quarantined.is_none() {
            u.quarantined = before.filter(|b| b.same_file(&u)).and_then(|b| b.quarantined.clone());
        }
        all.insert(u.path.clone(), u);
    }
    let mut entries: Vec<&IndexEntry> = all.values().collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    // One name per writer: the serving threads of a resident host may update it at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = file.with_extension(format!("json.{}-{n}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?))
        .and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        // A full disk: no empty or partial file left behind for every event that meets it.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Waits for this process's turn to change the index: an exclusive `flock` on a file beside
/// it, held until the returned file is dropped. Without it two writers (handover children of
/// one dead host, a resident host's serving threads) each merged into the index as they had
/// read it, and the later rename put back an index without the other's change: a quarantine
/// among them. The wait is bounded ([`TURN_PATIENCE`]): a writer stopped while holding the lock
/// (SIGSTOP) must not hold every hook after it; past that, this one writes as before. None
/// then, or when the lock file cannot be made (a read-only or full directory, where the index
/// cannot be written either).
fn take_turn(file: &Path) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = file.as_os_str().to_owned();
    name.push(".lock");
    let lock = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(name).ok()?;
    let deadline = std::time::Instant::now() + TURN_PATIENCE;
    loop {
        // SAFETY: flock on a descriptor this function owns; released when it is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Some(lock);
        }
        if std::time::Instant::now() >= deadline {
            tracing::warn!("the plugin index's lock is held too long; updating it without");
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// How long a writer waits for another to finish its update (which takes well under 1 ms).
const TURN_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);

/// The entry that describes `c` as it is now, if the index has one.
pub fn fresh<'a>(index: &'a HashMap<String, IndexEntry>, c: &Candidate) -> Option<&'a IndexEntry> {
    index.get(&*c.path.to_string_lossy()).filter(|e| e.is_fresh_for(c))
}

/// Why `c` must not be loaded or called now (quarantined or suspended), if it must not.
pub fn benched(index: &HashMap<String, IndexEntry>, c: &Candidate, now_ns: i64) -> Option<super::Fault> {
    fresh(index, c).and_then(|e| e.benched(now_ns))
}

/// One remembered plugin file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    /// The manifest, when the file loaded.
    pub info: Option<PluginInfo>,
    /// Why it did not load, when it did not.
    pub error: Option<String>,
    /// It killed a host process (see [`super::inflight`]): never loaded again until the file
    /// changes; its failure policy answers for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
    /// Calls in a row that timed out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeouts_in_a_row: u32,
    /// Not called before this time (Unix ns) after too many timeouts in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_until_ns: Option<i64>,
    /// The host build ([`super::layout_checker`]) that found this file's root-module layout
    /// compatible: the same build loads it again without comparing ([`super::Layout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout_checked_by: Option<String>,
    /// For a file that did not load (or was quarantined before its manifest was read): the
    /// manifest of the last file at this path that did. Its failure policy answers for the
    /// events it wanted, so a guard replaced by a half-copied or broken file is not quietly gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_loaded: Option<PluginInfo>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl IndexEntry {
    pub fn for_candidate(c: &Candidate, info: Option<PluginInfo>, error: Option<String>) -> IndexEntry {
        IndexEntry {
            path: c.path.to_string_lossy().into_owned(),
            size: c.size,
            mtime_ns: c.mtime_ns,
            inode: c.inode,
            info,
            error,
            quarantined: None,
            timeouts_in_a_row: 0,
            suspended_until_ns: None,
            layout_checked_by: None,
            last_loaded: None,
        }
    }

    /// The manifest this path's plugin answers by: this file's, else the last loaded one's.
    pub fn manifest(&self) -> Option<&PluginInfo> {
        self.info.as_ref().or(self.last_loaded.as_ref())
    }

    /// This entry, naming this host build as the one that compared the file's layout when
    /// `checked` (a load by this build did: [`super::LoadedPlugin::layout_checked`]).
    pub fn with_layout_checked(self, checked: bool) -> IndexEntry {
        IndexEntry { layout_checked_by: checked.then(super::layout_checker).flatten().map(str::to_owned), ..self }
    }

    /// Whether this build may load the file without comparing its layout again.
    pub fn layout_checked_here(&self) -> bool {
        super::layout_checker().is_some_and(|me| self.layout_checked_by.as_deref() == Some(me))
    }

    /// Why the plugin must not be loaded or called now, if it must not.
    pub fn benched(&self, now_ns: i64) -> Option<super::Fault> {
        if let Some(why) = &self.quarantined {
            return Some(super::Fault::Quarantined(why.clone()));
        }
        let until = self.suspended_until_ns.filter(|u| *u > now_ns)?;
        Some(super::Fault::Suspended(format!(
            "timed out on its last {} calls; not called for another {} s (or until its file changes)",
            self.timeouts_in_a_row,
            (until - now_ns) / 1_000_000_000 + 1
        )))
    }

    /// Whether `other` describes the same file at the same path (size, mtime, inode).
    fn same_file(&self, other: &IndexEntry) -> bool {
        (self.size, self.mtime_ns, self.inode, &self.path) == (other.size, other.mtime_ns, other.inode, &other.path)
    }

    /// True when the entry describes the file as it is now.
    pub fn is_fresh_for(&self, c: &Candidate) -> bool {
        self.size == c.size && self.mtime_ns == c.mtime_ns && self.inode == c.inode && self.path == c.path.to_string_lossy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(size: u64) -> Candidate {
        Candidate { path: "/p/libcrash.so".into(), size, mtime_ns: 1, inode: 7 }
    }

    #[test]
    fn a_quarantine_holds_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        let quarantined = IndexEntry { quarantined: Some("it killed the process".into()), ..IndexEntry::for_candidate(&candidate(10), None, None) };
        update(&file, &[quarantined]).unwrap();
        // A process that read the index before the quarantine writes its entry for the file.
        update(&file, &[IndexEntry::for_candidate(&candidate(10), None, None).with_layout_checked(true)]).unwrap();
        assert!(load(&file)["/p/libcrash.so"].quarantined.is_some(), "a stale entry lifted the quarantine");
        // A new file is a new plugin.
        update(&file, &[IndexEntry::for_candidate(&candidate(11), None, None)]).unwrap();
        assert!(load(&file)["/p/libcrash.so"].quarantined.is_none());
    }

    #[test]
    fn a_writer_that_holds_the_lock_forever_delays_the_next_only_briefly() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        // A writer that stopped while holding the lock.
        let held = take_turn(&file).expect("the first turn");
        let started = std::time::Instant::now();
        update(&file, &[IndexEntry::for_candidate(&candidate(10), None, None)]).unwrap();
        assert!(started.elapsed() >= TURN_PATIENCE, "did not wait for the turn");
        assert!(started.elapsed() < TURN_PATIENCE * 10, "waited {:?}", started.elapsed());
        assert!(load(&file).contains_key("/p/libcrash.so"));
        drop(held);
    }

    #[test]
    fn writers_at_once_lose_none_of_each_others_entries() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        let writers = 16;
        let start = std::sync::Barrier::new(writers);
        std::thread::scope(|s| {
            for i in 0..writers {
                let (file, start) = (&file, &start);
                s.spawn(move || {
                    let c = Candidate { path: format!("/p/lib{i}.so").into(), size: 1, mtime_ns: 1, inode: i as u64 };
                    start.wait();
                    update(file, &[IndexEntry::for_candidate(&c, None, None)]).unwrap();
                });
            }
        });
        assert_eq!(load(&file).len(), writers, "an update was lost to another's rename");
    }

    #[test]
    fn a_file_that_does_not_load_keeps_the_manifest_of_the_last_one_that_did() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        let at = |size: u64| Candidate { path: "/p/libguard.so".into(), size, mtime_ns: size as i64, inode: 7 };
        let manifest = PluginInfo::from_manifest(
            &chronicle_plugin_api::Manifest::new("guard", "1.0.0").events(&["PreToolUse"]).fail_closed(),
            "abi_stable",
        );
        update(&file, &[IndexEntry::for_candidate(&at(100), Some(manifest.clone()), None)]).unwrap();
        update(&file, &[IndexEntry::for_candidate(&at(50), None, Some("incomplete file".into()))]).unwrap();
        let cut = load(&file).remove("/p/libguard.so").unwrap();
        assert_eq!((cut.size, cut.manifest()), (50, Some(&manifest)));
        // Carried on through further failures, dropped once a file loads again.
        update(&file, &[IndexEntry::for_candidate(&at(60), None, Some("not a plugin".into()))]).unwrap();
        assert_eq!(load(&file)["/p/libguard.so"].last_loaded.as_ref(), Some(&manifest));
        let other = PluginInfo { name: "other".into(), ..manifest };
        update(&file, &[IndexEntry::for_candidate(&at(120), Some(other.clone()), None)]).unwrap();
        let loaded = load(&file).remove("/p/libguard.so").unwrap();
        assert_eq!((loaded.last_loaded.as_ref(), loaded.manifest()), (None, Some(&other)));
    }
}
