//! Plugin directories that a resident host lists again only when something in them changed.
//!
//! Every event needs the plugin files there are now ([`super::discover`]: a stat of each
//! directory, a listing, a stat of each file), and a resident host also needs to know whether
//! a file it loaded has changed since (a stat of each loaded file): a dozen system calls per
//! event, ~10 % of a resident host's time per event (`perf`, 1 client). [`Watched`] lists the
//! directories once and watches them with inotify. While no event came and each directory is
//! still the one that was listed (one stat each: a directory replaced, re-permissioned or
//! reached through a symlink pointed elsewhere is not an event inside the old one), the
//! listing stands. Any event, a full queue or a watch the kernel dropped makes the next look
//! list again. A listing is never kept when a plugin file in it is a symlink (its target
//! changes elsewhere), or a directory cannot be watched or is on a filesystem whose changes
//! inotify may not hear of (network, FUSE: [`LOCAL_FILESYSTEMS`]).
//!
//! Changes are queued by the kernel inside the system call that makes them, so a change made
//! before an event arrives is seen when that event looks. Only a long-lived host watches: an
//! inotify descriptor's close waits for the kernel's grace period (5-20 ms here), which a
//! process handling one event would pay on its way out.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Candidate, Refusal};

/// What a plugin directory holds: the files to consider, and those refused.
pub type Listing = (Vec<Candidate>, Vec<Refusal>);

/// Everything that changes what a listing would find.
const MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// A directory as listed: what the per-look stat compares (device, inode, mode, owner).
type DirIdentity = Option<(u64, u64, u32, u32)>;

fn dir_identity(dir: &Path) -> DirIdentity {
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino(), m.mode(), m.uid()))
}

/// Filesystems whose every change inotify reports. On a network or FUSE filesystem (NFS, SMB,
/// a container's share of its host's files) a change made by another machine, or by the host
/// outside the container, is no event here.
const LOCAL_FILESYSTEMS: &[u32] = &[
    0x0000_ef53, // ext2, ext3, ext4
    0x5846_5342, // XFS
    0x9123_683e, // Btrfs
    0x0102_1994, // tmpfs
    0x794c_7630, // overlayfs
    0xf2f5_2010, // F2FS
    0x2fc1_2fc1, // ZFS
    0xca45_1a4e, // bcachefs
];

/// Whether the filesystem holding `dir` reports every change to inotify.
fn fully_watched(dir: &std::ffi::CStr) -> bool {
    // SAFETY: a NUL-terminated path and a zeroed buffer statfs fills.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(dir.as_ptr(), &mut fs) } != 0 {
        return false;
    }
    // The field's type differs between C libraries; its value is a 32-bit magic number.
    LOCAL_FILESYSTEMS.contains(&(fs.f_type as u64 as u32))
}

/// Plugin directories under an inotify watch, and their listing while it stands.
pub struct Watched {
    inotify: OwnedFd,
    /// The directories listed, each with its identity then (None: it did not exist).
    dirs: Vec<(PathBuf, DirIdentity)>,
    /// The watch descriptors in use.
    watches: Vec<libc::c_int>,
    /// The last listing, while nothing has changed since.
    listing: Option<Listing>,
}

impl Watched {
    /// None when inotify is not available (no descriptor to spare, not Linux).
    pub fn new() -> Option<Watched> {
        // SAFETY: inotify_init1 takes flags only; a descriptor it returns is ours to own.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Watched { inotify, dirs: Vec::new(), watches: Vec::new(), listing: None })
    }

    /// What `dirs` hold now: the last listing while it stands, a new one otherwise.
    pub fn listing(&mut self, dirs: &[PathBuf]) -> Listing {
        match self.standing(dirs) {
            Some(listing) => listing.clone(),
            None => self.list(dirs),
        }
    }

    /// The last listing of `dirs`, if nothing in them has changed since; None means a look
    /// must list them again ([`Watched::listing`]).
    pub fn standing(&mut self, dirs: &[PathBuf]) -> Option<&Listing> {
        // Nothing kept (never, or a change seen already): `list` reads the events itself.
        self.listing.as_ref()?;
        let same_dirs = self.dirs.len() == dirs.len()
            && self.dirs.iter().zip(dirs).all(|((listed, identity), dir)| listed == dir && dir_identity(dir) == *identity);
        if self.events_pending() || !same_dirs {
            self.listing = None;
        }
        self.listing.as_ref()
    }

    /// Lists `dirs` and watches them. Events queued so far are read first (what they say is
    /// in the listing), then the identities taken and the watches set: a change after that is
    /// an event, one before it is in the listing.
    fn list(&mut self, dirs: &[PathBuf]) -> Listing {
        self.events_pending();
        self.dirs = dirs.iter().map(|d| (d.clone(), dir_identity(d))).collect();
        let mut watchable = true;
        let mut watches = Vec::new();
        for (dir, identity) in &self.dirs {
            if identity.is_none() {
                continue;
            }
            let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
                watchable = false;
                continue;
            };
            // A directory watched already keeps its watch (and its descriptor).
            // SAFETY: a NUL-terminated path and our own descriptor.
            let wd = unsafe { libc::inotify_add_watch(self.inotify.as_raw_fd(), path.as_ptr(), MASK) };
            if wd < 0 {
                watchable = false;
            } else {
                watches.push(wd);
                watchable &= fully_watched(&path);
            }
        }
        for &wd in self.watches.iter().filter(|wd| !watches.contains(wd)) {
            // The directory is no longer one of these (replaced, or gone and the watch with
            // it): its events, and the removal's own, are not counted (see `events_pending`).
            // SAFETY: our own descriptor; a watch the kernel dropped already fails harmlessly.
            unsafe { libc::inotify_rm_watch(self.inotify.as_raw_fd(), wd) };
        }
        self.watches = watches;
        let listing = super::discover(dirs);
        let symlinked = listing.0.iter().any(|c| std::fs::symlink_metadata(&c.path).map(|m| m.file_type().is_symlink()).unwrap_or(true));
        self.listing = (watchable && !symlinked).then(|| listing.clone());
        listing
    }

    /// Reads every queued event: whether any concerns a directory watched now (a full queue,
    /// or an error reading, counts as one).
    fn events_pending(&mut self) -> bool {
        const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
        let mut any = false;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a buffer of the length given, from our own descriptor.
            let n = unsafe { libc::read(self.inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                let drained = n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
                return any || !drained;
            }
            let mut at = 0;
            while at + HEADER <= n as usize {
                // SAFETY: the kernel wrote whole events; an unaligned read of one header.
                let event = unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast::<libc::inotify_event>()) };
                any |= event.mask & libc::IN_Q_OVERFLOW != 0 || self.watches.contains(&event.wd);
                at += HEADER + event.len as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private_dir(path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    fn plugin(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(format!("{name}.{}", super::super::LIBRARY_EXTENSION));
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn names(listing: &Listing) -> Vec<String> {
        listing.0.iter().map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned()).collect()
    }

    /// Whatever happens to the directory, a look after it sees what a fresh listing sees,
    /// and only a look after nothing happened is answered from the last listing.
    #[test]
    fn a_listing_stands_until_something_in_the_directories_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let at = std::ffi::CString::new(tmp.path().as_os_str().as_encoded_bytes()).unwrap();
        if !fully_watched(&at) {
            eprintln!("skipped: {} is not on a filesystem inotify fully watches", tmp.path().display());
            return;
        }
        let dir = tmp.path().join("plugins");
        let missing = tmp.path().join("project-plugins");
        private_dir(&dir);
        plugin(&dir, "liba", b"one");
        let dirs = vec![dir.clone(), missing.clone()];
        let mut watched = Watched::new().unwrap();

        let first = watched.listing(&dirs);
        assert_eq!(names(&first), ["liba.so"]);
        assert_eq!(watched.standing(&dirs), Some(&first), "nothing changed: the listing stands");

        type Change<'a> = (&'static str, Box<dyn Fn() + 'a>);
        let changes: Vec<Change> = vec![
            ("a file rewritten in place", Box::new(|| std::fs::write(dir.join("liba.so"), b"three").unwrap())),
            ("a file added", Box::new(|| drop(plugin(&dir, "libb", b"two")))),
            ("a file made writable by others", Box::new(|| std::fs::set_permissions(dir.join("libb.so"), std::fs::Permissions::from_mode(0o777)).unwrap())),
            ("a file renamed in", Box::new(|| {
                let outside = plugin(tmp.path(), "libc", b"four");
                std::fs::rename(outside, dir.join("libc.so")).unwrap();
            })),
            ("a file removed", Box::new(|| std::fs::remove_file(dir.join("libc.so")).unwrap())),
            ("the directory made writable by others", Box::new(|| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap())),
            ("the directory made private again", Box::new(|| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap())),
            ("a missing directory created", Box::new(|| {
                private_dir(&missing);
                plugin(&missing, "libd", b"five");
            })),
            ("a directory replaced by another", Box::new(|| {
                let other = tmp.path().join("other");
                private_dir(&other);
                plugin(&other, "libe", b"six");
                std::fs::rename(&missing, tmp.path().join("old")).unwrap();
                std::fs::rename(&other, &missing).unwrap();
            })),
        ];
        for (what, change) in changes {
            change();
            assert_eq!(watched.standing(&dirs), None, "{what}: the listing no longer stands");
            let now = watched.listing(&dirs);
            assert_eq!(now, super::super::discover(&dirs), "{what}: the new listing is what is there");
            assert_eq!(watched.standing(&dirs), Some(&now), "{what}: and it stands until the next change");
        }
    }

    #[test]
    fn only_local_filesystems_are_trusted_to_report_every_change() {
        let c = |p: &str| std::ffi::CString::new(p).unwrap();
        if Path::new("/dev/shm").is_dir() {
            assert!(fully_watched(&c("/dev/shm")), "tmpfs reports every change");
        }
        assert!(!fully_watched(&c("/proc")), "procfs changes are no inotify events");
        assert!(!fully_watched(&c("/no/such/directory")));
    }

    /// A plugin file reached through a symlink changes where no watch sees it: such a listing
    /// is made afresh at every look.
    #[test]
    fn a_listing_with_a_symlinked_plugin_is_never_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plugins");
        private_dir(&dir);
        let target = plugin(tmp.path(), "libreal", b"one");
        std::os::unix::fs::symlink(&target, dir.join("liblink.so")).unwrap();
        let dirs = vec![dir];
        let mut watched = Watched::new().unwrap();
        assert_eq!(names(&watched.listing(&dirs)), ["liblink.so"]);
        assert_eq!(watched.standing(&dirs), None);
        std::fs::write(&target, b"changed elsewhere").unwrap();
        assert_eq!(watched.listing(&dirs).0[0].size, 17, "the target's new size");
    }
}
