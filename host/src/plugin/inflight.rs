//! In-flight markers: which plugin a process is inside right now, so that when plugin code
//! kills the process (a segfault, a bus error from a half-copied file, `abort()`, a stack
//! overflow, `exit()`), the next process knows which plugin to quarantine.
//!
//! Each host process that loads or calls plugins keeps one file, `<data dir>/inflight/<pid>`,
//! mapped shared into memory for its whole life: one 4 KiB slot per thread that serves events
//! (one for a hook process, one per serving thread of a resident host, see [`set_slots`]).
//! Before every `dlopen`, `init` and call the thread writes one line
//! `CALL\t<stage>\t<size>\t<mtime_ns>\t<inode>\t<path>` at the start of its slot, and after it
//! overwrites the first four bytes with `IDLE`: plain memory stores into the page cache, which
//! outlive the process however it dies. If the process is killed by a fault signal, a handler
//! (running on the faulting thread) writes `S<nnn>` (the signal number) over that thread's
//! `CALL` before the default action runs; if plugin code calls `exit()`, an `atexit` handler
//! writes `EXIT`. A process that ends on purpose removes its file first ([`finish`]), so any
//! file left behind by a dead pid is a death that was not planned, and [`claim_dead`] says what
//! each slot was inside: the plugin that crashed, and those caught running beside it.
//!
//! Cost: two short memory copies around each plugin load and call (measured: `pwrite`s there
//! cost ~20 µs per event, 2 % of a resident hook); nothing when no plugin runs.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::Candidate;

/// The marker's status field: the first four bytes of the file.
const CALL: &[u8; 4] = b"CALL";
const IDLE: &[u8; 4] = b"IDLE";
const EXIT: &[u8; 4] = b"EXIT";

/// Signals that mean the code that was running crashed (not a kill from outside).
const FAULT_SIGNALS: &[i32] = &[libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGABRT, libc::SIGSYS, libc::SIGTRAP];

/// Bytes of one slot: one line naming a plugin file (longer paths are cut; the reader then
/// finds no complete line and attributes nothing).
const SIZE: usize = 4096;
/// Slots a resident host can have at most (its serving threads).
pub const MAX_SLOTS: usize = 16;

struct Marker {
    path: PathBuf,
}

static MARKER: OnceLock<Option<Marker>> = OnceLock::new();
/// The mapped marker, for `enter`/`leave` and the signal and exit handlers (null: none).
static MAP: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// Slots the marker will have (set before it is created).
static SLOTS: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// This thread's slot: its serving thread's. Plain thread-local cells with constant
    /// initialisers, so the signal and exit handlers may read them.
    static SLOT: Cell<usize> = const { Cell::new(0) };
    /// Inside plugin code now (read by the exit handler).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    /// This thread's alternate signal stack, made at its first plugin stage (see [`enter`]).
    static SIGNAL_STACK: SignalStack = SignalStack::new();
}

/// An alternate stack for the fault handler: without one, a plugin that overflows its stack
/// kills the process before the handler can record it. Rust's start-up gives every thread
/// one, but `chronicle-host` has its own `main` (src/main.rs), so its threads have none; a
/// thread that already has one (any other program linking this library) keeps it.
struct SignalStack {
    mapping: *mut libc::c_void,
    len: usize,
}

impl SignalStack {
    /// Usable bytes: the handler writes a few bytes into the marker and re-raises.
    const SIZE: usize = 64 * 1024;

    fn new() -> SignalStack {
        let none = SignalStack { mapping: std::ptr::null_mut(), len: 0 };
        // SAFETY: sigaltstack, mmap and mprotect on a mapping made here; the stack stays
        // registered and mapped until this thread's `drop` unregisters it, then unmaps it.
        unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(std::ptr::null(), &mut current) != 0 || current.ss_flags & libc::SS_DISABLE == 0 {
                return none;
            }
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap_or(4096);
            let len = page + Self::SIZE;
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            let mapping = libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK, -1, 0);
            if mapping == libc::MAP_FAILED {
                return none;
            }
            // A guard page below it: a handler that overran it faults instead of writing over memory.
            libc::mprotect(mapping, page, libc::PROT_NONE);
            let stack = libc::stack_t { ss_sp: mapping.cast::<u8>().add(page).cast(), ss_flags: 0, ss_size: Self::SIZE };
            if libc::sigaltstack(&stack, std::ptr::null_mut()) != 0 {
                libc::munmap(mapping, len);
                return none;
            }
            SignalStack { mapping, len }
        }
    }
}

impl Drop for SignalStack {
    fn drop(&mut self) {
        if self.mapping.is_null() {
            return;
        }
        // SAFETY: unregisters the stack this thread registered, then unmaps it.
        unsafe {
            let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: Self::SIZE };
            libc::sigaltstack(&off, std::ptr::null_mut());
            libc::munmap(self.mapping, self.len);
        }
    }
}

/// How many serving threads will mark calls (a resident host: its own and its workers'); call
/// before the first plugin is loaded. At most [`MAX_SLOTS`].
pub fn set_slots(n: usize) {
    SLOTS.store(n.clamp(1, MAX_SLOTS), Ordering::SeqCst);
}

/// This thread's slot, for threads it hands plugin calls to ([`use_slot`]).
pub fn slot() -> usize {
    SLOT.with(Cell::get)
}

/// Marks this thread's plugin stages in `slot` (that of the serving thread it works for).
pub fn use_slot(slot: usize) {
    SLOT.with(|s| s.set(slot.min(SLOTS.load(Ordering::SeqCst) - 1)));
}

/// Where the markers of one data directory live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::config::INFLIGHT_DIR)
}

/// Opens this process's marker (once) and installs the handlers that complete it when the
/// process dies in plugin code. Without a marker (an unwritable data directory) plugins still
/// run; a crash is then only noticed, not attributed.
pub fn install(data_dir: &Path) {
    MARKER.get_or_init(|| {
        let dir = dir(data_dir);
        if let Err(e) = crate::private::create_private_dir(&dir) {
            tracing::warn!("cannot create {}: {e}; crashes in plugins will not be attributed", dir.display());
            return None;
        }
        let path = dir.join(std::process::id().to_string());
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).mode(0o600).open(&path)
        };
        let len = SIZE * SLOTS.load(Ordering::SeqCst);
        let map = file.and_then(|mut f| {
            // Real blocks, not a sparse file: a store into an unbacked page of a full
            // filesystem is a SIGBUS. With no room, there is no marker (and no crash).
            std::io::Write::write_all(&mut f, &vec![0u8; len])?;
            // SAFETY: a fresh shared mapping of a file this process just sized; kept for the life
            // of the process (never unmapped), so the pointer stays valid.
            let p =
                unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, f.as_raw_fd(), 0) };
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            Ok(p.cast::<u8>())
        });
        let map = match map {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("cannot create {}: {e}; crashes in plugins will not be attributed", path.display());
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        for slot in 0..len / SIZE {
            store(map, slot, 0, IDLE);
        }
        MAP.store(map, Ordering::SeqCst);
        install_handlers();
        Some(Marker { path })
    });
}

/// Copies `bytes` into slot `slot` of the mapping at `at` (cut at the slot's end).
fn store(map: *mut u8, slot: usize, at: usize, bytes: &[u8]) {
    let n = bytes.len().min(SIZE.saturating_sub(at));
    // SAFETY: `map` is a live mapping of SLOTS * SIZE bytes, `slot < SLOTS` (`use_slot` keeps it
    // there, and SLOTS is not changed after the mapping exists) and `at + n <= SIZE`.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.add(slot * SIZE + at), n) };
}

/// Marks the start of a plugin `stage` (`load`, `call`) for the file `c`.
pub fn enter(stage: &str, c: &Candidate) {
    let map = MAP.load(Ordering::SeqCst);
    if map.is_null() {
        return;
    }
    let line = format!("CALL\t{stage}\t{}\t{}\t{}\t{}\n", c.size, c.mtime_ns, c.inode, c.path.display());
    let _ = SIGNAL_STACK.try_with(|_| ());
    INSIDE.with(|i| i.set(true));
    let slot = slot();
    // The line first, its status last: a reader never sees CALL before the plugin it names.
    store(map, slot, 4, &line.as_bytes()[4..]);
    store(map, slot, 0, CALL);
}

/// Marks the end of the plugin stage begun by [`enter`].
pub fn leave() {
    let map = MAP.load(Ordering::SeqCst);
    if map.is_null() {
        return;
    }
    store(map, slot(), 0, IDLE);
    INSIDE.with(|i| i.set(false));
}

/// Removes this process's marker: called right before a deliberate exit, so that the file of
/// a process that is gone always means an unplanned death.
pub fn finish() {
    let Some(Some(m)) = MARKER.get() else { return };
    MAP.store(std::ptr::null_mut(), Ordering::SeqCst);
    let _ = std::fs::remove_file(&m.path);
}

/// How a dead process's last plugin stage ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Death {
    /// Killed by this fault signal inside plugin code.
    Signal(i32),
    /// Plugin code ended the process (`exit()`).
    Exit,
    /// It was inside plugin code and is gone without a trace of why: killed from outside
    /// (SIGKILL, the OOM killer) or a signal that has no handler. Not the plugin's fault, as far
    /// as anyone can tell.
    Vanished,
    /// It was inside plugin code on another thread when a plugin on this one (named in its own
    /// marker slot) killed the process. Not its fault.
    Beside,
}

/// What a dead process was doing when it died.
#[derive(Debug, Clone)]
pub struct DeadMarker {
    pub pid: u32,
    pub stage: String,
    pub plugin: Candidate,
    pub death: Death,
}

impl DeadMarker {
    /// The fault message, naming the signal.
    pub fn describe(&self) -> String {
        let how = match self.death {
            Death::Signal(s) => format!("killed the process with {} ({})", signal_name(s), s),
            Death::Exit => "ended the process (called exit)".to_owned(),
            Death::Vanished => "was running when the process was killed from outside".to_owned(),
            Death::Beside => "was running on another thread when another plugin killed the process".to_owned(),
        };
        format!("{how} during {} (pid {})", self.stage, self.pid)
    }
}

/// Markers left by processes that are gone, each claimed by exactly one caller (renamed, read),
/// with the claim to [`Claims::release`] once what they say is in the plugin index. Markers of
/// dead processes that were not inside a plugin are removed silently.
///
/// A claim stays visible until released: another process looking meanwhile waits for it (up to
/// [`CLAIM_PATIENCE`]) instead of reading an index that does not yet quarantine the plugin that
/// killed the host, and loading that plugin again. (Several handover children of one dead
/// resident host start at once; one claims the marker, the others must not run the crasher
/// before its quarantine is written.)
pub fn claim_dead(data_dir: &Path) -> Claims {
    let dir = dir(data_dir);
    let mut claims = Claims::default();
    let Ok(entries) = std::fs::read_dir(&dir) else { return claims };
    let me = std::process::id();
    let mut pending = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((pid, claimer)) = claimed_name(name) {
            if claimer != me && alive(claimer) {
                pending.push(entry.path());
                continue;
            }
            // Its claimer died before releasing it: claim it anew.
            if let Some(marker) = claim(&dir, entry.path(), pid, me) {
                claims.take(pid, marker);
            }
            continue;
        }
        let Ok(pid) = name.parse::<u32>() else { continue };
        if pid != me {
            look_at_marker(&dir, pid, me, &mut claims, &mut pending);
        }
    }
    let deadline = std::time::Instant::now() + CLAIM_PATIENCE;
    while pending.iter().any(|p| p.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    claims
}

/// Claims the marker of process `pid`, as a listing of `dir` found it, if `pid` is dead or
/// dying; or notes another process's claim on it in `pending`, to be waited for.
fn look_at_marker(dir: &Path, pid: u32, me: u32, claims: &mut Claims, pending: &mut Vec<PathBuf>) {
    let marker = dir.join(pid.to_string());
    // A process whose marker names its death (a fault signal caught, exit called in plugin
    // code) is gone for our purposes even while the kernel still tears it down: its client
    // can see the socket close first, and a replacement must not load the plugin again.
    if alive(pid) && !dying(&marker) {
        // Gone since the listing while its process still runs: another process renamed it to
        // claim it (which it does only for a dying process) before this one could read it.
        // Its claim is waited for like any other: taken for a live process's marker, the
        // crasher was loaded again before the claimer had quarantined it.
        if !marker.exists() {
            pending.extend(claims_of_others(dir, pid, me));
        }
        return;
    }
    // Two processes may look at once: the one whose rename succeeds owns the marker.
    match claim(dir, marker, pid, me) {
        Some(marker) => claims.take(pid, marker),
        // Lost to another claimer, whose claim (a name this listing did not have) is waited
        // for like any other: without it, this process read an index that did not yet
        // quarantine the crasher, and ran it again.
        None => pending.extend(claims_of_others(dir, pid, me)),
    }
}

/// The live claims other processes hold on the marker of dead process `pid`.
fn claims_of_others(dir: &Path, pid: u32, me: u32) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().and_then(claimed_name).is_some_and(|(p, claimer)| p == pid && claimer != me && alive(claimer)))
        .map(|e| e.path())
        .collect()
}

/// How long a process waits for another's claim on a dead marker to be released.
pub const CLAIM_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

/// `.<pid>.claimed.<claimer>`: a dead process's marker while `claimer` handles it.
fn claimed_name(name: &str) -> Option<(u32, u32)> {
    let (pid, claimer) = name.strip_prefix('.')?.split_once(".claimed.")?;
    Some((pid.parse().ok()?, claimer.parse().ok()?))
}

fn claim(dir: &Path, marker: PathBuf, pid: u32, me: u32) -> Option<PathBuf> {
    let claimed = dir.join(format!(".{pid}.claimed.{me}"));
    std::fs::rename(marker, &claimed).ok().map(|()| claimed)
}

/// Dead markers claimed by this process: what they say, and the files that keep the claim
/// visible to other processes until [`Claims::release`].
#[derive(Default)]
pub struct Claims {
    pub dead: Vec<DeadMarker>,
    files: Vec<PathBuf>,
}

impl Claims {
    fn take(&mut self, pid: u32, file: PathBuf) {
        let text = std::fs::read(&file).unwrap_or_default();
        self.dead.extend(parse_slots(pid, &text));
        self.files.push(file);
    }

    /// Ends the claims: call once the quarantines they imply are in the plugin index.
    pub fn release(self) {
        for f in self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Whether a marker records its process's death in plugin code (`S<signal>` or `EXIT`) in
/// any slot.
fn dying(marker: &Path) -> bool {
    let text = std::fs::read(marker).unwrap_or_default();
    text.chunks(SIZE).any(|slot| {
        let status = slot.split(|b| *b == b'\t').next().unwrap_or_default();
        status == EXIT || (status.len() > 1 && status[0] == b'S' && status[1..].iter().all(u8::is_ascii_digit))
    })
}

/// What each slot of a dead process's marker was inside. A slot caught in a call while
/// another slot names the death was running beside the plugin that caused it.
fn parse_slots(pid: u32, text: &[u8]) -> Vec<DeadMarker> {
    let mut found: Vec<DeadMarker> = text.chunks(SIZE).filter_map(|slot| parse(pid, slot)).collect();
    if found.iter().any(|m| matches!(m.death, Death::Signal(_) | Death::Exit)) {
        for m in &mut found {
            if m.death == Death::Vanished {
                m.death = Death::Beside;
            }
        }
    }
    found
}

fn parse(pid: u32, text: &[u8]) -> Option<DeadMarker> {
    // The mapping is zero-padded past the line.
    let text = text.split(|b| *b == 0).next()?;
    let line = std::str::from_utf8(text).ok()?.lines().next()?;
    let mut fields = line.splitn(6, '\t');
    let status = fields.next()?;
    let death = match status.as_bytes() {
        s if s == IDLE => return None,
        s if s == CALL => Death::Vanished,
        s if s == EXIT => Death::Exit,
        [b'S', digits @ ..] => Death::Signal(std::str::from_utf8(digits).ok()?.parse().ok()?),
        _ => return None,
    };
    let stage = fields.next()?.to_owned();
    let size = fields.next()?.parse().ok()?;
    let mtime_ns = fields.next()?.parse().ok()?;
    let inode = fields.next()?.parse().ok()?;
    let path = PathBuf::from(fields.next()?);
    Some(DeadMarker { pid, stage, plugin: Candidate { path, size, mtime_ns, inode }, death })
}

/// Whether `pid` still runs. A zombie (dead, not yet reaped: a resident host that just
/// crashed is one for a moment) does not: its marker is final.
fn alive(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(raw, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !zombie(pid)
}

fn zombie(pid: u32) -> bool {
    // /proc/<pid>/stat: "pid (comm) S ...", comm may hold spaces and parentheses.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSYS => "SIGSYS",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Writes `S<nnn>` over the status, then lets the signal's default action run (the handler is
/// installed with SA_RESETHAND: returning re-executes the faulting instruction, or `abort`
/// raises again). Only async-signal-safe calls.
extern "C" fn on_fault(signal: libc::c_int) {
    let map = MAP.load(Ordering::SeqCst);
    if !map.is_null() {
        let n = signal.clamp(0, 255) as u8;
        store(map, slot(), 0, &[b'S', b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10]);
    }
}

/// Runs at `exit()`: a process that exits while plugin code runs was ended by that code (the
/// host's own exits call [`finish`] first).
extern "C" fn on_exit() {
    let map = MAP.load(Ordering::SeqCst);
    // `try_with`: at exit, this thread's locals may already be gone.
    if !map.is_null() && INSIDE.try_with(Cell::get).unwrap_or(false) {
        store(map, slot(), 0, EXIT);
    }
}

fn install_handlers() {
    for &signal in FAULT_SIGNALS {
        // SAFETY: a zeroed sigaction with a valid handler; SA_ONSTACK uses the alternate stack
        // a thread gets at its first plugin stage (`SignalStack`), so a stack overflow is
        // recorded too.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_ONSTACK | libc::SA_RESETHAND | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    // SAFETY: registering a plain function.
    unsafe { libc::atexit(on_exit) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_by_status() {
        let line = |status: &str| format!("{status}\tcall\t10\t20\t30\t/p/libx.so\n");
        assert!(parse(1, line("IDLE").as_bytes()).is_none());
        let m = parse(1, line("S011").as_bytes()).unwrap();
        assert_eq!(m.death, Death::Signal(11));
        assert_eq!(m.plugin.path, PathBuf::from("/p/libx.so"));
        assert_eq!((m.plugin.size, m.plugin.mtime_ns, m.plugin.inode), (10, 20, 30));
        assert_eq!(parse(1, line("EXIT").as_bytes()).unwrap().death, Death::Exit);
        assert_eq!(parse(1, line("CALL").as_bytes()).unwrap().death, Death::Vanished);
        assert!(parse(1, b"garbage").is_none());
    }

    #[test]
    fn a_crash_names_its_plugin_and_clears_those_running_beside_it() {
        let slot = |status: &str, lib: &str| {
            let mut s = format!("{status}\tcall\t10\t20\t30\t/p/{lib}.so\n").into_bytes();
            s.resize(SIZE, 0);
            s
        };
        let file = [slot("CALL", "beside"), slot("IDLE", "idle"), slot("S011", "crasher")].concat();
        let dead = parse_slots(7, &file);
        assert_eq!(dead.len(), 2, "the idle slot names nothing: {dead:?}");
        assert_eq!(dead[0].plugin.path, PathBuf::from("/p/beside.so"));
        assert_eq!(dead[0].death, Death::Beside);
        assert_eq!(dead[1].death, Death::Signal(11));
        // Without a crash in any slot, a call caught running was killed from outside.
        let killed = parse_slots(7, &[slot("CALL", "a"), slot("CALL", "b")].concat());
        assert!(killed.iter().all(|m| m.death == Death::Vanished));
    }

    /// A pid that has exited (a child started and reaped here).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    /// Another live process's claim on a dead marker holds everyone else back until it is
    /// released (the quarantine it implies is then in the index); a claim whose claimer died is
    /// taken over, and this process's own claim stays visible until it releases it.
    #[test]
    fn a_claim_is_waited_for_until_released_and_taken_over_when_its_claimer_died() {
        let data = tempfile::tempdir().unwrap();
        let dir = dir(data.path());
        std::fs::create_dir_all(&dir).unwrap();
        let crashed = "S011\tcall\t10\t20\t30\t/p/crasher.so\n";
        let (victim, claimer) = (dead_pid(), std::process::Command::new("sleep").arg("5").spawn().unwrap());
        let in_progress = dir.join(format!(".{victim}.claimed.{}", claimer.id()));
        std::fs::write(&in_progress, crashed).unwrap();
        let released = std::thread::spawn({
            let in_progress = in_progress.clone();
            move || {
                std::thread::sleep(std::time::Duration::from_millis(150));
                std::fs::remove_file(in_progress).unwrap();
            }
        });
        let started = std::time::Instant::now();
        let claims = claim_dead(data.path());
        assert!(started.elapsed() >= std::time::Duration::from_millis(150), "did not wait for the claim in progress");
        assert!(claims.dead.is_empty(), "another process's claim is not ours");
        released.join().unwrap();
        let mut claimer = claimer;
        claimer.kill().unwrap();
        claimer.wait().unwrap();

        // Its claimer died before releasing it: taken over, and visible until released.
        let orphan = dir.join(format!(".{victim}.claimed.{}", dead_pid()));
        std::fs::write(&orphan, crashed).unwrap();
        let claims = claim_dead(data.path());
        assert_eq!(claims.dead.len(), 1);
        assert_eq!(claims.dead[0].death, Death::Signal(11));
        let mine = dir.join(format!(".{victim}.claimed.{}", std::process::id()));
        assert!(mine.exists() && !orphan.exists());
        claims.release();
        assert!(!mine.exists());
    }

    /// A dying process's marker claimed by another between this process's listing and its
    /// look (the process itself not yet gone): that claim is waited for, not taken for a sign
    /// that the process lives on.
    #[test]
    fn a_marker_claimed_from_under_the_listing_is_waited_for() {
        let data = tempfile::tempdir().unwrap();
        let dir = dir(data.path());
        std::fs::create_dir_all(&dir).unwrap();
        let mut dying = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let mut claimer = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let theirs = dir.join(format!(".{}.claimed.{}", dying.id(), claimer.id()));
        std::fs::write(&theirs, "S011\tcall\t10\t20\t30\t/p/crasher.so\n").unwrap();
        let (mut claims, mut pending) = (Claims::default(), Vec::new());
        look_at_marker(&dir, dying.id(), std::process::id(), &mut claims, &mut pending);
        assert!(claims.dead.is_empty(), "another process's claim is not ours");
        assert_eq!(pending, vec![theirs], "the claim made from under the listing is waited for");
        // A live process's marker, still in place and naming no death, is left alone.
        std::fs::write(dir.join(dying.id().to_string()), "CALL\tcall\t10\t20\t30\t/p/busy.so\n").unwrap();
        std::fs::remove_file(dir.join(format!(".{}.claimed.{}", dying.id(), claimer.id()))).unwrap();
        let (mut claims, mut pending) = (Claims::default(), Vec::new());
        look_at_marker(&dir, dying.id(), std::process::id(), &mut claims, &mut pending);
        assert!(claims.dead.is_empty() && pending.is_empty());
        for child in [&mut dying, &mut claimer] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// A process that lost the rename of a dead marker to another waits for that claim: the
    /// listing it lost with did not hold the claim's name, so it looks for it by the dead pid.
    #[test]
    fn a_lost_claim_is_found_by_the_dead_pid() {
        let data = tempfile::tempdir().unwrap();
        let dir = dir(data.path());
        std::fs::create_dir_all(&dir).unwrap();
        let (victim, other_victim, me) = (dead_pid(), dead_pid() - 1, std::process::id());
        let mut claimer = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let theirs = dir.join(format!(".{victim}.claimed.{}", claimer.id()));
        for name in [theirs.clone(), dir.join(format!(".{victim}.claimed.{me}")), dir.join(format!(".{other_victim}.claimed.{}", claimer.id()))] {
            std::fs::write(name, "").unwrap();
        }
        std::fs::write(dir.join(format!(".{victim}.claimed.{}", dead_pid())), "").unwrap();
        assert_eq!(claims_of_others(&dir, victim, me), vec![theirs], "only a live other's claim on that pid");
        claimer.kill().unwrap();
        claimer.wait().unwrap();
    }
}
