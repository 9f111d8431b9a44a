//! The resident host: one long-lived `chronicle serve` process per configuration that keeps the
//! plugins loaded and the database open, so that `chronicle hook` only has to pass the event
//! over a Unix socket and relay the answer.
//!
//! Why: a fresh process pays for the dynamic loader, each plugin's `dlopen` and layout check,
//! opening SQLite and spawning a dispatch thread — several times what starting a process costs.
//! A client that only reads stdin and talks to a socket costs about as much as `cat`.
//!
//! The contract with the in-process path is that nothing changes but the cost:
//! - The server is keyed by everything that shapes an invocation: the binary file, the config
//!   file (path, size, mtime), the environment variables the host and the built-in plugins
//!   read ([`KEY_ENV`]) and every variable whose name starts with `CLAUDE` (what Claude Code
//!   gives a hook: plugins see the values of the invocation they serve). A client with a
//!   different key talks to a different server (or none).
//! - The server is started by the first `chronicle hook` that finds none (that event is handled
//!   in process) and exits after `hook.resident_idle_s` without events, when its socket is
//!   removed, or right after an event in which a plugin hung (its thread cannot be reclaimed).
//! - A plugin file that changed since the server loaded it cannot be reloaded (the dynamic loader
//!   keeps the old code for a path): the server answers [`Response::Retry`] and exits, and the
//!   client handles the event itself.
//! - Any failure to reach the server, or a server that dies mid-event, falls back to handling the
//!   event in process. The server records an event before it answers, exactly like the
//!   in-process path, so an answered event is in the database.
//! - The socket lives in `<data dir>/resident/`, which must be owned by the user and not
//!   writable by anyone else (checked by both sides); the server also checks the peer's uid.
//! - One thread handles events one at a time (or a group of them, committed together), in
//!   arrival order. When clients queue up, a host starts worker threads (sibling hosts on the
//!   same socket, one per core), so events of parallel tool calls are answered in parallel; a
//!   plugin still never sees two calls at once unless its manifest allows it (`workers`).
//!
//! The parts: this module (where a configuration's server listens, and when there is one),
//! `protocol` (the bytes between client and server), `client` (asking, starting a server) and
//! `server` (the accept loop and one event's exchange), `workers` (more serving threads on
//! the same socket when events arrive together).

mod client;
mod protocol;
#[cfg(feature = "host")]
mod server;
#[cfg(feature = "host")]
mod workers;

pub use client::*;
pub use protocol::*;
#[cfg(feature = "host")]
pub use server::*;
#[cfg(feature = "host")]
pub use workers::WORKER_IDLE;

use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
#[cfg(feature = "host")]
use std::os::unix::net::UnixListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(feature = "host")]
use std::time::Instant;

use crate::config::{env, Config};
#[cfg(feature = "host")]
use crate::hook::{Host, Origin, Pending, Reply, Stages};
use crate::input::RawInput;

/// Environment variables that shape an invocation (read by the host or by the built-in plugins):
/// clients that differ in any of them never share a server.
pub const KEY_ENV: &[&str] = &[
    env::HOME,
    env::CONFIG,
    env::DB,
    env::PLUGIN_PATH,
    env::LOG,
    env::PROJECT_DIR,
    env::RESIDENT_IDLE,
    // The background push (`chronicle::team::background`) reads these.
    env::SYNC_URL,
    env::MACHINE,
    "PGPASSWORD",
    "PGPASSFILE",
    "PGUSER",
    "PGHOST",
    "HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
];

/// Unix socket paths are limited to ~104–108 bytes; longer data directories run in process.
const MAX_SOCKET_PATH: usize = 100;
const MAGIC: &[u8; 4] = b"CHR1";
/// How often an idle server checks that its socket is still its own.
#[cfg(feature = "host")]
const TICK: Duration = Duration::from_secs(2);
/// How long the server waits for a connected client to send its request.
#[cfg(feature = "host")]
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ResidentError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the resident host is disabled")]
    Disabled,
    #[error("{0}")]
    Unsafe(String),
}

/// Where the server for this configuration listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub socket: PathBuf,
    pub lock: PathBuf,
}

/// Whether the resident host is enabled: `CHRONICLE_RESIDENT` (`0`/`off`/`false` or
/// `1`/`on`/`true`) wins over the config's `hook.resident`.
pub fn enabled(config: &Config) -> bool {
    enabled_by_env().unwrap_or(config.file.hook.resident)
}

/// What `CHRONICLE_RESIDENT` says, if anything.
pub fn enabled_by_env() -> Option<bool> {
    match std::env::var(env::RESIDENT).ok()?.trim().to_ascii_lowercase().as_str() {
        "0" | "off" | "false" | "no" => Some(false),
        "1" | "on" | "true" | "yes" => Some(true),
        _ => None,
    }
}

/// The bytes of `input` in an anonymous file positioned at its start, to become another
/// process's stdin.
pub fn spill(input: &RawInput) -> io::Result<std::fs::File> {
    use std::io::Seek;
    let mut file = anonymous_file()?;
    file.write_all(&input.bytes)?;
    file.rewind()?;
    Ok(file)
}

#[cfg(target_os = "linux")]
fn anonymous_file() -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name; the descriptor is checked and then owned by the File.
    let fd = unsafe { libc::memfd_create(c"chronicle-event".as_ptr(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn anonymous_file() -> io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("chronicle-event-{}", std::process::id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

/// How long a server waits for its next event before exiting.
pub fn idle_limit(config: &Config) -> Duration {
    let secs = std::env::var(env::RESIDENT_IDLE).ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s > 0.0);
    Duration::from_secs_f64(secs.unwrap_or(config.file.hook.resident_idle_s as f64))
}

/// The command Claude Code runs: a small client that hands events to the resident host.
pub const CLIENT_BIN: &str = "chronicle";
/// Everything else: the CLI, in-process hook handling and the resident host itself.
pub const HOST_BIN: &str = "chronicle-host";

/// `name` in the directory of the running executable (the two binaries ship side by side).
pub fn sibling(name: &str) -> PathBuf {
    own_exe().map_or_else(|| PathBuf::from(name), |exe| exe.with_file_name(name))
}

/// The running executable's path. On Linux, first the path it was started by (`AT_EXECFN`)
/// when that is absolute and names a regular file, not a link to one (whose sibling could be
/// elsewhere): `/proc/self/exe` is a new process's first touch of its /proc directory, which
/// the kernel builds for it (~12 µs of the client's ~280 here). Otherwise `current_exe`.
fn own_exe() -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: getauxval has no preconditions; AT_EXECFN, when present, is the address of
        // a NUL-terminated string the kernel placed on the initial stack for the process's life.
        let started_as = unsafe { libc::getauxval(libc::AT_EXECFN) } as *const libc::c_char;
        if !started_as.is_null() {
            // SAFETY: see above.
            let path = Path::new(std::ffi::OsStr::from_bytes(unsafe { std::ffi::CStr::from_ptr(started_as) }.to_bytes()));
            if path.is_absolute() && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
                return Some(path.to_owned());
            }
        }
    }
    std::env::current_exe().ok()
}

impl Endpoint {
    /// The endpoint for this process's configuration and environment, or why there is none.
    pub fn for_config(config: &Config) -> Result<Endpoint, ResidentError> {
        if !enabled(config) {
            return Err(ResidentError::Disabled);
        }
        Endpoint::compute(&config.data_dir, config.config_file.as_deref())
    }

    /// The endpoint for a data directory and config file (None: no file), keyed by both
    /// binaries, the config file and [`KEY_ENV`]. The client, the host and the server all
    /// compute it this way.
    pub fn compute(data_dir: &Path, config_file: Option<&Path>) -> Result<Endpoint, ResidentError> {
        // Never a socket (nor a host writing events) in another user's data directory.
        match crate::private::check_ours(data_dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ResidentError::Unsafe(e.to_string())),
            _ => {}
        }
        let dir = data_dir.join("resident");
        let mut h = std::hash::DefaultHasher::new();
        // The binaries by identity, not by path: a client started through a symlinked
        // directory and a host that found itself by its real path key the same host.
        let exe = own_exe();
        for bin in [CLIENT_BIN, HOST_BIN] {
            let path = exe.as_deref().map_or_else(|| PathBuf::from(bin), |e| e.with_file_name(bin));
            match std::fs::metadata(&path) {
                Ok(m) => (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()).hash(&mut h),
                Err(_) => path.hash(&mut h),
            }
        }
        match config_file {
            Some(f) => match std::fs::metadata(f) {
                Ok(m) => (f, m.ino(), m.len(), m.mtime(), m.mtime_nsec()).hash(&mut h),
                Err(_) => f.hash(&mut h),
            },
            None => 0u8.hash(&mut h),
        }
        for name in KEY_ENV {
            (name, std::env::var_os(name)).hash(&mut h);
        }
        // Every variable Claude Code gives a hook (CLAUDE_ENV_FILE, CLAUDE_CODE_SESSION_ID,
        // CLAUDE_EFFORT, ...): a plugin reading one must see this invocation's value, never the
        // first client's. So each session (and SessionStart, which alone gets CLAUDE_ENV_FILE)
        // has a host of its own.
        let mut claude: Vec<(std::ffi::OsString, std::ffi::OsString)> =
            std::env::vars_os().filter(|(k, _)| k.as_encoded_bytes().starts_with(b"CLAUDE")).collect();
        claude.sort();
        claude.hash(&mut h);
        let key = h.finish();
        let socket = dir.join(format!("{key:016x}.sock"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ResidentError::Unsafe(format!("socket path {} is too long for a Unix socket", socket.display())));
        }
        Ok(Endpoint { lock: socket.with_extension("lock"), socket })
    }

    fn dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("."))
    }

    /// An existing socket directory that others could write (or that is not ours): no server
    /// may be trusted or started there. A missing one is fine (the server creates it).
    pub fn unsafe_dir(&self) -> Option<ResidentError> {
        match check_private(self.dir()) {
            Err(ResidentError::Io(e)) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => Some(e),
            Ok(()) => None,
        }
    }

    /// Connects to the server, if one is listening in a directory only we control.
    pub fn connect(&self) -> io::Result<UnixStream> {
        check_private(self.dir()).map_err(|e| io::Error::other(e.to_string()))?;
        self.connect_in_checked_dir()
    }

    /// [`Endpoint::connect`] for a caller that has just found the directory safe
    /// ([`Endpoint::unsafe_dir`]): one `stat` fewer on every event; the server's uid is
    /// still checked, and that is what makes it certain.
    pub fn connect_in_checked_dir(&self) -> io::Result<UnixStream> {
        let stream = UnixStream::connect(&self.socket)?;
        // The server must be us too: the private directory makes another user's socket there
        // impossible short of root, and this makes it certain.
        if !same_user(&stream) {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the resident host's socket is served by another user"));
        }
        Ok(stream)
    }
}

/// The directory holding sockets must be ours alone: anyone who could create a socket there
/// could answer for our hooks.
fn check_private(dir: &Path) -> Result<(), ResidentError> {
    let m = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me || m.mode() & 0o077 != 0 {
        return Err(ResidentError::Unsafe(format!(
            "{} must be owned by uid {me} with mode 0700 (is uid {}, mode {:o})",
            dir.display(),
            m.uid(),
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Whether the peer of `stream` runs as this process's user (both sides check).
#[cfg(target_os = "linux")]
fn same_user(stream: &UnixStream) -> bool {
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the length we pass.
    let rc = unsafe {
        libc::getsockopt(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len)
    };
    // SAFETY: geteuid has no preconditions.
    rc == 0 && cred.uid == unsafe { libc::geteuid() }
}

#[cfg(not(target_os = "linux"))]
fn same_user(_stream: &UnixStream) -> bool {
    // The socket's directory is private to the user (checked on both sides).
    true
}
