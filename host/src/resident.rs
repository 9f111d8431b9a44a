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
//! - Events are handled one at a time, in arrival order: plugins never see concurrent calls.

use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{env, Config};
use crate::hook::{Host, Origin, Reply, Stages};
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
const TICK: Duration = Duration::from_secs(2);
/// How long the server waits for a connected client to send its request.
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
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(name));
    exe.with_file_name(name)
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
        if data_dir.exists() {
            crate::store::check_ours(data_dir).map_err(|e| ResidentError::Unsafe(e.to_string()))?;
        }
        let dir = data_dir.join("resident");
        let mut h = std::hash::DefaultHasher::new();
        for bin in [CLIENT_BIN, HOST_BIN] {
            let path = sibling(bin);
            let m = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
            (path, m).hash(&mut h);
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

/// The identity of one `chronicle hook` invocation: when the client received the event and 64
/// random bits, made by the process Claude Code started before anything can fail. Every path
/// that records the event (the resident host, a handover child, a spool line) records it with
/// this id, and the store keeps one row per id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvocationId {
    pub received_at_ns: u64,
    pub random: u64,
}

impl InvocationId {
    pub fn new(received_at_ns: i64) -> InvocationId {
        let mut random = 0u64;
        // SAFETY: getrandom fills the 8 bytes of a u64 it is given.
        let got = unsafe { libc::getrandom((&mut random as *mut u64).cast(), 8, libc::GRND_NONBLOCK) };
        if got != 8 {
            // No entropy yet (early boot): the process id and the clock still separate invocations.
            random = (u64::from(std::process::id()) << 32) ^ crate::clock::unix_ns() as u64;
        }
        InvocationId { received_at_ns: received_at_ns as u64, random }
    }

    /// 32 hex digits, as stored in `events.invocation_id`.
    pub fn text(&self) -> String {
        format!("{:016x}{:016x}", self.received_at_ns, self.random)
    }

    pub fn parse(text: &str) -> Option<InvocationId> {
        if text.len() != 32 || !text.is_ascii() {
            return None;
        }
        Some(InvocationId {
            received_at_ns: u64::from_str_radix(&text[..16], 16).ok()?,
            random: u64::from_str_radix(&text[16..], 16).ok()?,
        })
    }
}

/// What the client sends: the event bytes as read, and the client's own clock and memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub invocation: InvocationId,
    pub input: RawInput,
    pub received_at_ns: i64,
    pub client_started_unix_ns: i64,
    pub client_peak_rss_bytes: u64,
    pub read_ns: u64,
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Answered {
        exit_code: i32,
        stdout: Option<String>,
        stderr: Vec<String>,
    },
    /// Handle the event yourself (the server is retiring without having touched it).
    Retry,
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u64(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = usize::try_from(self.u64()?).map_err(|_| invalid("length out of range"))?;
        Ok(self.take(n)?.to_vec())
    }

    fn text(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| invalid("text is not UTF-8"))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl Request {
    /// The request for `input`, read in `read` by this process (the client), which Claude Code
    /// started and which received the event at `received_at_ns`.
    pub fn new(input: RawInput, received_at_ns: i64, read: Duration) -> Request {
        Request {
            invocation: InvocationId::new(received_at_ns),
            input,
            received_at_ns,
            client_started_unix_ns: received_at_ns - crate::clock::since_start().as_nanos() as i64,
            client_peak_rss_bytes: crate::clock::peak_rss_bytes(),
            read_ns: read.as_nanos() as u64,
        }
    }

    /// Bytes before the payload: magic, seven u64 fields, flags, the payload's length.
    pub const HEADER_LEN: usize = 4 + 7 * 8 + 1 + 8;

    /// Everything before the payload. Sent separately from it, so a large payload is never
    /// copied into a message buffer.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::HEADER_LEN);
        out.extend_from_slice(MAGIC);
        put_u64(&mut out, self.invocation.received_at_ns);
        put_u64(&mut out, self.invocation.random);
        put_u64(&mut out, self.received_at_ns as u64);
        put_u64(&mut out, self.client_started_unix_ns as u64);
        put_u64(&mut out, self.client_peak_rss_bytes);
        put_u64(&mut out, self.read_ns);
        put_u64(&mut out, self.input.total_bytes);
        out.push(u8::from(self.input.truncated) | (u8::from(self.input.timed_out) << 1));
        put_u64(&mut out, self.input.bytes.len() as u64);
        out
    }

    /// The request without its payload, and the payload's length, from the first
    /// [`Request::HEADER_LEN`] bytes of a message.
    pub fn decode_header(header: &[u8]) -> io::Result<(Request, usize)> {
        let mut c = Cursor(header);
        if c.take(4)? != MAGIC {
            return Err(invalid("not a chronicle request"));
        }
        let invocation = InvocationId { received_at_ns: c.u64()?, random: c.u64()? };
        let received_at_ns = c.u64()? as i64;
        let client_started_unix_ns = c.u64()? as i64;
        let client_peak_rss_bytes = c.u64()?;
        let read_ns = c.u64()?;
        let total_bytes = c.u64()?;
        let flags = c.take(1)?[0];
        let len = usize::try_from(c.u64()?).map_err(|_| invalid("length out of range"))?;
        let request = Request {
            invocation,
            input: RawInput { bytes: Vec::new(), total_bytes, truncated: flags & 1 != 0, timed_out: flags & 2 != 0 },
            received_at_ns,
            client_started_unix_ns,
            client_peak_rss_bytes,
            read_ns,
        };
        Ok((request, len))
    }

    /// Reads one request: header, then exactly the payload it announces, into one buffer.
    pub fn read_from(stream: &mut impl Read, header: &[u8]) -> io::Result<Request> {
        let (mut request, len) = Request::decode_header(header)?;
        // Every read asks for all that is still due (`read_to_end` starts at 8 KiB and doubles:
        // nine reads and as many wake-ups of the writing client for a 482 KB event). The buffer
        // grows as bytes arrive (1 MiB, then doubling), so an absurd announced length costs
        // nothing before the stream runs dry.
        let mut bytes = Vec::new();
        while bytes.len() < len {
            let from = bytes.len();
            bytes.resize(from + (len - from).min(from.max(1 << 20)), 0);
            stream.read_exact(&mut bytes[from..])?;
        }
        request.input.bytes = bytes;
        Ok(request)
    }

    /// Writes header and payload without joining them (vectored; a large payload takes
    /// several writes).
    pub fn write_to(&self, stream: &mut impl Write) -> io::Result<()> {
        let header = self.header();
        let payload = &self.input.bytes[..];
        let mut sent = 0;
        let total = header.len() + payload.len();
        while sent < total {
            let parts = if sent < header.len() {
                [io::IoSlice::new(&header[sent..]), io::IoSlice::new(payload)]
            } else {
                [io::IoSlice::new(&payload[sent - header.len()..]), io::IoSlice::new(&[])]
            };
            match stream.write_vectored(&parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        match self {
            Response::Retry => out.push(1),
            Response::Answered { exit_code, stdout, stderr } => {
                out.push(0);
                out.extend_from_slice(&exit_code.to_le_bytes());
                match stdout {
                    Some(s) => {
                        out.push(1);
                        put_bytes(&mut out, s.as_bytes());
                    }
                    None => out.push(0),
                }
                put_u64(&mut out, stderr.len() as u64);
                for line in stderr {
                    put_bytes(&mut out, line.as_bytes());
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> io::Result<Response> {
        let mut c = Cursor(bytes);
        if c.take(4)? != MAGIC {
            return Err(invalid("not a chronicle response"));
        }
        if c.take(1)?[0] == 1 {
            return Ok(Response::Retry);
        }
        let mut code = [0u8; 4];
        code.copy_from_slice(c.take(4)?);
        let stdout = if c.take(1)?[0] == 1 { Some(c.text()?) } else { None };
        let lines = c.u64()?;
        let mut stderr = Vec::new();
        for _ in 0..lines.min(64) {
            stderr.push(c.text()?);
        }
        Ok(Response::Answered { exit_code: i32::from_le_bytes(code), stdout, stderr })
    }
}

/// What the client tells `chronicle-host hook --handover SPEC` about an event it read but the
/// resident host did not answer (the bytes themselves arrive on stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    pub started_unix_ns: i64,
    pub received_at_ns: i64,
    pub total_bytes: u64,
    pub truncated: bool,
    pub timed_out: bool,
    /// The server took the event and died or stalled (rather than handing it back).
    pub lost: bool,
    /// How long the client took to read stdin (the event's `hook.read`).
    pub read_ns: u64,
    pub invocation: InvocationId,
}

impl Handover {
    pub fn new(request: &Request, lost: bool) -> Handover {
        Handover {
            started_unix_ns: request.client_started_unix_ns,
            received_at_ns: request.received_at_ns,
            total_bytes: request.input.total_bytes,
            truncated: request.input.truncated,
            timed_out: request.input.timed_out,
            lost,
            read_ns: request.read_ns,
            invocation: request.invocation,
        }
    }

    pub fn format(&self) -> String {
        let flags = u8::from(self.truncated) | (u8::from(self.timed_out) << 1) | (u8::from(self.lost) << 2);
        format!("{}:{}:{}:{flags}:{}:{}", self.started_unix_ns, self.received_at_ns, self.total_bytes, self.read_ns, self.invocation.text())
    }

    pub fn parse(spec: &str) -> Option<Handover> {
        let mut parts = spec.split(':');
        let h = Handover {
            started_unix_ns: parts.next()?.parse().ok()?,
            received_at_ns: parts.next()?.parse().ok()?,
            total_bytes: parts.next()?.parse().ok()?,
            truncated: false,
            timed_out: false,
            lost: false,
            read_ns: 0,
            invocation: InvocationId::default(),
        };
        let flags: u8 = parts.next()?.parse().ok()?;
        // Absent in specs from clients older than these fields (a new id is made then).
        let read_ns = match parts.next() {
            Some(n) => n.parse().ok()?,
            None => 0,
        };
        let invocation = match parts.next() {
            Some(id) => InvocationId::parse(id)?,
            None => InvocationId::new(h.received_at_ns),
        };
        if parts.next().is_some() {
            return None;
        }
        let h = Handover { read_ns, invocation, ..h };
        Some(Handover { truncated: flags & 1 != 0, timed_out: flags & 2 != 0, lost: flags & 4 != 0, ..h })
    }
}

/// Why the client got no answer from a server.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No server is listening (none started yet, or it exited): start one.
    #[error("no resident host is listening: {0}")]
    Unavailable(io::Error),
    /// A server took the event but did not answer (it died, or is stuck).
    #[error("the resident host took the event but did not answer: {0}")]
    Lost(io::Error),
}

/// How long a client waits for its answer: long enough for a queue of slow events ahead of
/// its own (each bounded by the dispatch budget); a server that takes longer is treated as lost.
pub fn patience(dispatch_budget_ms: u64) -> Duration {
    Duration::from_millis(2 * dispatch_budget_ms + 5000)
}

/// Sends one event to the server and waits up to `timeout` for its answer.
pub fn ask(endpoint: &Endpoint, request: &Request, timeout: Duration) -> Result<Response, AskError> {
    let stream = endpoint.connect().map_err(AskError::Unavailable)?;
    exchange(stream, request, timeout).map_err(AskError::Lost)
}

/// Sends one event over a connected stream and waits up to `timeout` for the answer.
pub fn exchange(mut stream: UnixStream, request: &Request, timeout: Duration) -> io::Result<Response> {
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(timeout))?;
    request.write_to(&mut stream)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Response::decode(&reply)
}

/// Starts a server for `endpoint` in the background unless one is already starting or running.
/// The child is detached: it holds none of Claude Code's pipes, so the hook's exit is not
/// delayed by it.
pub fn start_server(endpoint: &Endpoint) -> io::Result<()> {
    if let Ok(lock) = std::fs::File::open(&endpoint.lock) {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Ok(()); // a server holds it: it is starting or running
        }
    }
    use std::os::unix::process::CommandExt;
    std::process::Command::new(sibling(HOST_BIN))
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

/// Runs a server for this process's configuration until it is idle for `idle`, its socket is
/// taken away, or it retires. Returns at once if another server holds the lock.
pub fn serve(config: Config, idle: Duration) -> Result<(), ResidentError> {
    let endpoint = Endpoint::for_config(&config)?;
    // SAFETY: setsid has no preconditions; failing (already a group leader) is harmless.
    unsafe { libc::setsid() };
    crate::store::create_private_dir(endpoint.dir())?;
    check_private(endpoint.dir())?;
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&endpoint.lock)?;
    // SAFETY: flock on a descriptor we own; the lock lives as long as `lock`.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        tracing::debug!("another resident host holds {}", endpoint.lock.display());
        return Ok(());
    }
    let _ = std::fs::remove_file(&endpoint.socket);
    let listener = UnixListener::bind(&endpoint.socket)?;
    let ours = std::fs::metadata(&endpoint.socket)?.ino();
    tracing::info!(socket = %endpoint.socket.display(), "resident host listening");

    if crate::team::background::start(&config) {
        tracing::info!("pushing to the team database in the background");
    }
    let mut host = Host::new(config);
    host.warm_up();
    host.upkeep();
    let mut last_event = Instant::now();
    loop {
        match wait(&listener, host.log_checkpointed(), TICK)? {
            Wake::LogCheckpointed => host.restart_log(),
            Wake::Tick => {
                let still_ours = std::fs::metadata(&endpoint.socket).is_ok_and(|m| m.ino() == ours);
                if !still_ours || last_event.elapsed() >= idle {
                    tracing::info!(still_ours, "resident host exiting");
                    break;
                }
            }
            Wake::Client => {
                let Ok((stream, _)) = listener.accept() else { continue };
                last_event = Instant::now();
                match serve_one(&mut host, stream) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => tracing::warn!("resident host: dropped a connection: {e}"),
                }
            }
        }
    }
    // Unlink first so new clients start a fresh server instead of queueing on this one.
    if std::fs::metadata(&endpoint.socket).is_ok_and(|m| m.ino() == ours) {
        let _ = std::fs::remove_file(&endpoint.socket);
    }
    drop(lock);
    crate::plugin::inflight::finish();
    Ok(())
}

/// Handles one connection; false means the server must stop serving.
fn serve_one(host: &mut Host, mut stream: UnixStream) -> io::Result<bool> {
    if !same_user(&stream) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "peer is another user"));
    }
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let received = Instant::now();
    // One deadline for the whole request: a peer sending a byte at a time must not hold the
    // host (and every client queued behind it) for longer.
    let mut reader = Deadline { stream: &stream, until: received + REQUEST_TIMEOUT };
    let mut header = [0u8; Request::HEADER_LEN];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        // A probe (`chronicle doctor`): connected and left.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
        Err(e) => return Err(e),
    }
    let request = Request::read_from(&mut reader, &header)?;
    let receive = received.elapsed();
    // A client waits `patience`, then hands its event to a child of its own: a request that
    // waited longer than that (this host was stopped, or stuck behind a slow event) has been
    // handled already. Its id would keep the record single anyway; not running the plugins
    // again keeps their side effects single too.
    let budget = host.config.file.hook.dispatch_budget_ms.max(crate::config::HookSettings::default().dispatch_budget_ms);
    let waited = Duration::from_nanos(crate::clock::unix_ns().saturating_sub(request.received_at_ns).max(0) as u64);
    if waited >= patience(budget) {
        tracing::warn!(waited_ms = waited.as_millis() as u64, "dropping a request whose client has given up");
        return Ok(true);
    }
    if host.plugins_changed() {
        tracing::info!("a plugin file changed; handing this event back and retiring");
        stream.write_all(&Response::Retry.encode())?;
        return Ok(false);
    }
    let mut stages = Stages::default();
    stages.add("hook.read", Duration::from_nanos(request.read_ns));
    stages.add("resident.receive", receive);
    let origin = Origin::Client { started_unix_ns: request.client_started_unix_ns, peak_rss_bytes: request.client_peak_rss_bytes };
    let Reply { exit_code, stdout, stderr, retire } =
        host.answer(&request.input, request.invocation, request.received_at_ns, &mut stages, origin, Vec::new());
    let sent = stream.write_all(&Response::Answered { exit_code, stdout, stderr }.encode());
    if retire {
        tracing::warn!("a plugin hung and was abandoned on its thread; the resident host retires");
    }
    sent?;
    drop(stream);
    host.upkeep();
    Ok(!retire)
}

/// Reads a stream against one deadline for all reads together.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the request did not arrive within its deadline"));
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

enum Wake {
    Client,
    /// The background checkpointer copied the whole log: restart it before the next event.
    LogCheckpointed,
    Tick,
}

/// Waits for a client (first) or the checkpointer, at most `timeout`.
fn wait(listener: &UnixListener, checkpointed: Option<std::os::fd::BorrowedFd<'_>>, timeout: Duration) -> io::Result<Wake> {
    use std::os::fd::AsRawFd;
    let mut fds = [
        libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: checkpointed.map_or(-1, |f| f.as_raw_fd()), events: libc::POLLIN, revents: 0 },
    ];
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: two valid pollfds (a negative fd is ignored by poll).
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(Wake::Tick) } else { Err(e) };
    }
    Ok(if fds[0].revents != 0 {
        Wake::Client
    } else if fds[1].revents != 0 {
        Wake::LogCheckpointed
    } else {
        Wake::Tick
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let r = Request {
            invocation: InvocationId { received_at_ns: 17, random: u64::MAX - 1 },
            input: RawInput { bytes: b"{\"a\":1}".to_vec(), total_bytes: 99, truncated: true, timed_out: false },
            received_at_ns: 17,
            client_started_unix_ns: -3,
            client_peak_rss_bytes: 4096,
            read_ns: 12,
        };
        let mut wire = Vec::new();
        r.write_to(&mut wire).unwrap();
        assert_eq!(wire.len(), Request::HEADER_LEN + r.input.bytes.len());
        let (header, mut rest) = wire.split_at(Request::HEADER_LEN);
        assert_eq!(Request::read_from(&mut rest, header).unwrap(), r);
        // Larger than the first read buffer: it grows as the bytes arrive.
        let big =
            Request { input: RawInput { bytes: (0..5 << 19).map(|i| i as u8).collect(), ..RawInput::default() }, ..Request::default() };
        let mut wire = Vec::new();
        big.write_to(&mut wire).unwrap();
        let (header, mut rest) = wire.split_at(Request::HEADER_LEN);
        assert_eq!(Request::read_from(&mut rest, header).unwrap(), big);
        let a = Response::Answered { exit_code: 2, stdout: Some("{}".into()), stderr: vec!["x".into(), String::new()] };
        assert_eq!(Response::decode(&a.encode()).unwrap(), a);
        let none = Response::Answered { exit_code: 0, stdout: None, stderr: vec![] };
        assert_eq!(Response::decode(&none.encode()).unwrap(), none);
        assert_eq!(Response::decode(&Response::Retry.encode()).unwrap(), Response::Retry);
    }

    #[test]
    fn handovers_round_trip() {
        let h = Handover {
            started_unix_ns: -5,
            received_at_ns: 7,
            total_bytes: 11,
            truncated: true,
            timed_out: false,
            lost: true,
            read_ns: 42,
            invocation: InvocationId { received_at_ns: 7, random: 0xdead_beef },
        };
        assert_eq!(Handover::parse(&h.format()), Some(h));
        assert_eq!(Handover::parse("1:2:3"), None);
        assert_eq!(Handover::parse("1:2:3:0:9:00000000000000070000000000000001:1"), None);
        assert_eq!(Handover::parse("1:2:3:0:9:not-an-id"), None);
        // From a client older than read_ns and the invocation id: a fresh id.
        let old = Handover::parse("1:2:3:4").unwrap();
        assert_eq!((old.lost, old.read_ns, old.invocation.received_at_ns), (true, 0, 2));
    }

    #[test]
    fn invocation_ids_are_distinct_and_round_trip_as_text() {
        let a = InvocationId::new(5);
        let b = InvocationId::new(5);
        assert_ne!(a, b);
        assert_eq!(a.text().len(), 32);
        assert_eq!(InvocationId::parse(&a.text()), Some(a));
        assert_eq!(InvocationId::parse("xyz"), None);
    }

    #[test]
    fn garbage_and_truncated_messages_are_errors() {
        assert!(Request::decode_header(&[b'H'; Request::HEADER_LEN]).is_err());
        assert!(Request::decode_header(b"CHR1").is_err());
        // A payload shorter than announced, and an absurd announced length.
        let r = Request { input: RawInput { bytes: b"{}".to_vec(), ..RawInput::default() }, ..Request::default() };
        let mut wire = Vec::new();
        r.write_to(&mut wire).unwrap();
        let (header, rest) = wire.split_at(Request::HEADER_LEN);
        assert!(Request::read_from(&mut &rest[..1], header).is_err());
        let mut huge = header.to_vec();
        huge[Request::HEADER_LEN - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Request::read_from(&mut &rest[..], &huge).is_err());
        let a = Response::Answered { exit_code: 0, stdout: Some("x".repeat(10)), stderr: vec![] }.encode();
        assert!(Response::decode(&a[..a.len() - 4]).is_err());
    }
}
