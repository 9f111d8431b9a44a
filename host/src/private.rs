//! Files and directories only their owner can touch: the data directory, the database, the
//! resident host's socket directory, the spool. Used by the client too, so it needs nothing
//! but the standard library and `libc`.

use std::path::Path;

/// Creates `dir` (and parents) readable only by the owner: events hold prompts and file bodies.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.is_dir() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    check_ours(dir)
}

/// The database file exists, is the user's, and is readable by nobody else. Created 0600 here
/// (SQLite gives its `-wal` and `-shm` files the database's mode); an older one that is more
/// open is narrowed.
#[cfg(feature = "host")]
pub(crate) fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::metadata(path)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is owned by uid {}, not by you (uid {me}); use a database of your own (CHRONICLE_DB)", path.display(), m.uid()),
        ));
    }
    if m.mode() & 0o077 != 0 {
        let sibling = |suffix: &str| std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        for p in [path.to_owned(), sibling("-wal"), sibling("-shm")] {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
        }
    }
    Ok(())
}

/// A shared directory (sticky and writable by all, like /tmp) is meant to stay that way: the fix
/// for keeping Chronicle's files there is another directory, not a chmod.
pub fn is_shared_dir(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.mode() & 0o1002 == 0o1002
}

/// A directory Chronicle writes events, markers or sockets into must be the user's own and
/// writable by nobody else: another user's (a `CHRONICLE_HOME` under /tmp that someone else
/// created first) could read every event and swap the files under us.
pub fn check_ours(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let refuse = |why: String| Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
    if m.uid() != me {
        return refuse(format!(
            "{} is owned by uid {}, not by you (uid {me}): anyone owning it could read every event; use a directory of your own (set CHRONICLE_HOME, or remove it and let chronicle create it)",
            dir.display(),
            m.uid()
        ));
    }
    if is_shared_dir(&m) {
        return refuse(format!(
            "{} is a shared directory (mode {:o}): anyone could read every event; use a directory of your own (set CHRONICLE_HOME, or CHRONICLE_DB to a file in such a directory)",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    if m.mode() & 0o022 != 0 {
        return refuse(format!(
            "{} is writable by others (mode {:o}); fix with `chmod 700 {}`",
            dir.display(),
            m.mode() & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}
