//! Harness for the end-to-end tests: runs the real `chronicle` binary, built by
//! `cargo build --workspace`, against an isolated home directory with real plugin libraries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod claude_code;
pub mod fake_api;
pub mod postgres;

/// `target/<profile>`, where cargo put the binary and the plugin libraries.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-<hash>
    exe.parent().and_then(Path::parent).expect("target dir").to_path_buf()
}

/// The `chronicle` client the tests run: the one named by `CHRONICLE_E2E_CLIENT` (scripts/test.sh
/// names the musl build the release ships, beside a link to `chronicle-host`), else cargo's own
/// in `target/<profile>`.
pub fn chronicle_bin() -> PathBuf {
    let p = std::env::var_os("CHRONICLE_E2E_CLIENT").map_or_else(|| target_dir().join("chronicle"), PathBuf::from);
    assert!(p.exists(), "{} is missing: run `cargo build --workspace` first (scripts/test.sh does)", p.display());
    p
}

/// The built library of a workspace plugin crate (`fixture_echo`, `chronicle_bash_guard`, ...).
pub fn plugin_lib(lib_name: &str) -> PathBuf {
    let p = target_dir().join(format!("lib{lib_name}.{}", std::env::consts::DLL_EXTENSION));
    assert!(p.exists(), "{} is missing: run `cargo build --workspace` first", p.display());
    p
}

/// One ELF program header: `(p_type, p_offset, p_vaddr, p_filesz)`.
pub type Segment = (usize, usize, usize, usize);

/// Program header types (`p_type`) and dynamic entry tags (`d_tag`) read here.
pub const PT_LOAD: usize = 1;
pub const PT_DYNAMIC: usize = 2;
pub const PT_INTERP: usize = 3;
const DT_NEEDED: usize = 1;
const DT_STRTAB: usize = 5;

/// A 64-bit little-endian ELF file's bytes and program headers.
pub fn elf_segments(path: &Path) -> (Vec<u8>, Vec<Segment>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], &[0x7f, b'E', b'L', b'F', 2, 1], "{}: a 64-bit little-endian ELF file", path.display());
    let segments = {
        let at = |o: usize, n: usize| le(&bytes, o, n);
        let (phoff, phentsize, phnum) = (at(0x20, 8), at(0x36, 2), at(0x38, 2));
        (0..phnum).map(|i| phoff + i * phentsize).map(|h| (at(h, 4), at(h + 8, 8), at(h + 16, 8), at(h + 32, 8))).collect()
    };
    (bytes, segments)
}

/// The little-endian unsigned integer of `n` bytes at `offset`.
fn le(bytes: &[u8], offset: usize, n: usize) -> usize {
    bytes[offset..offset + n].iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) as usize
}

/// The shared libraries an ELF file asks for (its DT_NEEDED entries).
pub fn needed_libraries(path: &Path) -> Vec<String> {
    let (bytes, segments) = elf_segments(path);
    let Some(&(_, dynamic, _, size)) = segments.iter().find(|s| s.0 == PT_DYNAMIC) else { return Vec::new() };
    let entries: Vec<(usize, usize)> =
        (dynamic..dynamic + size).step_by(16).map(|e| (le(&bytes, e, 8), le(&bytes, e + 8, 8))).take_while(|e| e.0 != 0).collect();
    let strtab_addr = entries.iter().find(|e| e.0 == DT_STRTAB).expect("DT_STRTAB").1;
    let (_, offset, vaddr, _) =
        segments.iter().find(|s| s.0 == PT_LOAD && s.2 <= strtab_addr && strtab_addr < s.2 + s.3).expect("a PT_LOAD holding DT_STRTAB");
    let strtab = strtab_addr - vaddr + offset;
    let name = |o: usize| String::from_utf8_lossy(bytes[strtab + o..].split(|b| *b == 0).next().unwrap_or_default()).into_owned();
    entries.iter().filter(|e| e.0 == DT_NEEDED).map(|e| name(e.1)).collect()
}

/// The repository's `tests/corpus` directory.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Lines of a JSONL corpus file.
pub fn corpus_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(corpus_dir().join(name))
        .expect("corpus file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// What one `chronicle` run did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The stdout JSON object (panics with context if it is not one).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// PreToolUse's permissionDecision, or "none".
    pub fn permission_decision(&self) -> String {
        if self.stdout.trim().is_empty() {
            return "none".into();
        }
        self.json()["hookSpecificOutput"]["permissionDecision"].as_str().unwrap_or("none").to_owned()
    }
}

/// A `chronicle hook` started by [`Env::start_hook`], not yet waited for.
pub struct PendingRun {
    child: std::process::Child,
    writer: std::thread::JoinHandle<std::io::Result<()>>,
    started: Instant,
}

impl PendingRun {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the client is blocked reading a resident host's answer: it has connected
    /// and sent its event, so it is queued at the host's socket ahead of any client started
    /// after this returns (the order a test of a stopped host needs, without guessing a sleep).
    /// Panics after `limit`, saying where the client is instead.
    pub fn wait_until_awaiting_answer(&self, limit: Duration) {
        let wchan = format!("/proc/{}/wchan", self.pid());
        let deadline = Instant::now() + limit;
        loop {
            // The kernel function a sleeping task waits in: a Unix stream socket's read.
            let at = std::fs::read_to_string(&wchan).unwrap_or_default();
            if at.starts_with("unix_stream_read") {
                return;
            }
            assert!(Instant::now() < deadline, "client {} is not waiting for a host's answer after {limit:?} (wchan {at:?})", self.pid());
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the client to exit and returns what it did.
    pub fn wait(self) -> Run {
        let out = self.child.wait_with_output().expect("wait");
        let elapsed = self.started.elapsed();
        let write_result = self.writer.join().expect("writer thread");
        assert!(write_result.is_ok(), "writing stdin failed (the host must read to EOF): {write_result:?}");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        }
    }
}

/// An isolated Chronicle installation: its own home, database and plugin directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub extra_env: Vec<(String, String)>,
    /// A resident host started by [`Env::start_resident`].
    resident: Option<std::process::Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut child) = self.resident.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        stop_processes_under(self.dir.path());
    }
}

/// Kills every process whose environment names a path under `dir`: resident hosts (and their
/// workers) that clients started for a test's home. A client starts its host after answering,
/// so the host may still be setting up when the test ends; left alone it would recreate the
/// home's files after the temporary directory is removed and idle there for 30 minutes.
pub fn stop_processes_under(dir: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let needle = dir.as_os_str().as_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let names_dir = environ.split(|&b| b == 0).any(|var| {
            let value = var.iter().position(|&b| b == b'=').map_or(&[][..], |i| &var[i + 1..]);
            value.starts_with(needle) && matches!(value.get(needle.len()), None | Some(b'/'))
        });
        if names_dir {
            // SAFETY: kill(2) with a pid read from /proc; a process that exited meanwhile is ESRCH.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = Env { dir, extra_env: Vec::new(), resident: None };
        std::fs::create_dir_all(env.plugin_dir()).expect("plugin dir");
        set_mode(env.home(), 0o700);
        set_mode(&env.plugin_dir(), 0o700);
        env
    }

    /// An environment with these workspace plugin libraries installed.
    pub fn with_plugins(libs: &[&str]) -> Env {
        let env = Env::new();
        for lib in libs {
            env.install(lib);
        }
        env
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.home().join("plugins")
    }

    pub fn db(&self) -> PathBuf {
        self.home().join("chronicle.db")
    }

    /// Copies a built plugin library into the plugin directory (mode 0644).
    pub fn install(&self, lib_name: &str) -> PathBuf {
        let src = plugin_lib(lib_name);
        let dst = self.plugin_dir().join(src.file_name().expect("file name"));
        std::fs::copy(&src, &dst).expect("copy plugin");
        set_mode(&dst, 0o644);
        dst
    }

    /// Replaces the installed `file` with the library `lib` the way an installer should: write
    /// a new file, rename it over the old one.
    pub fn replace_plugin(&self, file: &str, lib: &str) {
        let tmp = self.plugin_dir().join(".tmp");
        std::fs::copy(plugin_lib(lib), &tmp).expect("copy plugin");
        std::fs::rename(&tmp, self.plugin_dir().join(file)).expect("rename over the plugin");
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.into(), value.into()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_at(&chronicle_bin(), args)
    }

    /// [`Env::command`] with the client started by another path (a link to it, say).
    pub fn command_at(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .env_remove("CHRONICLE_PLUGIN_PATH")
            .env_remove("CHRONICLE_DB")
            .env_remove("CHRONICLE_CONFIG")
            .env_remove("CHRONICLE_LOG")
            .env_remove("CLAUDE_PROJECT_DIR")
            .env_remove("NO_COLOR")
            .env("CHRONICLE_HOME", self.home())
            // The spool's fallback directory (see chronicle::spool) stays inside the test's home.
            .env("XDG_RUNTIME_DIR", self.home())
            .env("RUST_BACKTRACE", "1");
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    /// The resident host's sockets, if any are listening (or left behind).
    pub fn resident_sockets(&self) -> Vec<PathBuf> {
        let dir = self.home().join("resident");
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "sock")).collect()
    }

    /// Starts `chronicle serve` for this environment (as the first hook would) and waits until it
    /// listens, so that the next `hook` is handled by it. Returns its pid.
    pub fn start_resident(&mut self) -> u32 {
        let child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chronicle serve");
        let pid = child.id();
        self.resident = Some(child);
        assert!(self.wait_resident_listening(1, Duration::from_secs(20)), "the resident host did not start listening");
        pid
    }

    /// Kills the host [`Env::start_resident`] started and waits until it is gone.
    pub fn stop_resident(&mut self) {
        if let Some(mut child) = self.resident.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the host [`Env::start_resident`] started to end by itself: how it ended.
    pub fn wait_resident_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.resident.take().and_then(|mut child| child.wait().ok())
    }

    /// Waits until at least `hosts` resident hosts listen (one per configuration key); false
    /// after `limit`.
    pub fn wait_resident_listening(&self, hosts: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.resident_sockets().len() < hosts {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Waits until no resident host listens (its socket is gone); false after `limit`.
    pub fn wait_resident_gone(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.resident_sockets().is_empty() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Which recorded events the resident host handled (by `hook.resident`), in order.
    pub fn resident_flags(&self) -> Vec<bool> {
        self.query(
            "SELECT EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = e.id AND m.name = 'hook.resident') FROM events e ORDER BY e.id",
        )
        .into_iter()
        .map(|r| r[0] == "1")
        .collect()
    }

    /// Waits until no process of this environment (one whose `CHRONICLE_HOME` is this home)
    /// runs: a handed-over host goes on after its client relayed the answer. False after `limit`.
    pub fn wait_for_hook_processes(&self, limit: Duration) -> bool {
        let needle = format!("CHRONICLE_HOME={}", self.home().display());
        let deadline = Instant::now() + limit;
        loop {
            let running = std::fs::read_dir("/proc").into_iter().flatten().filter_map(Result::ok).any(|e| {
                let is_pid = e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
                is_pid
                    && std::fs::read(e.path().join("environ")).is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
                    && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z "))
            });
            if !running {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs `chronicle hook` with `stdin`, closing stdin after writing it.
    pub fn hook(&self, stdin: &[u8]) -> Run {
        self.hook_holding_stdin(stdin, Duration::ZERO)
    }

    /// Runs `chronicle hook`, keeping stdin open for `hold` after writing (a misbehaving writer).
    pub fn hook_holding_stdin(&self, stdin: &[u8], hold: Duration) -> Run {
        self.hook_at(&chronicle_bin(), stdin, hold)
    }

    /// Runs `program hook` (the client by another path) with `stdin`, as [`Env::hook_holding_stdin`].
    pub fn hook_at(&self, program: &Path, stdin: &[u8], hold: Duration) -> Run {
        self.start_hook_at(program, stdin, hold).wait()
    }

    /// Starts `chronicle hook` with `stdin` and returns at once: the caller can watch the
    /// client (see [`PendingRun::wait_until_awaiting_answer`]) before it waits for its run.
    pub fn start_hook(&self, stdin: &[u8]) -> PendingRun {
        self.start_hook_at(&chronicle_bin(), stdin, Duration::ZERO)
    }

    fn start_hook_at(&self, program: &Path, stdin: &[u8], hold: Duration) -> PendingRun {
        let started = Instant::now();
        let mut child = self
            .command_at(program, &["hook"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chronicle hook");
        let mut pipe = child.stdin.take().expect("stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            // The host may stop reading early only after draining; EPIPE here would be a bug.
            let res = pipe.write_all(&data);
            if !hold.is_zero() {
                std::thread::sleep(hold);
            }
            drop(pipe);
            res
        });
        PendingRun { child, writer, started }
    }

    /// Runs `chronicle <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = self.command(args).stdin(Stdio::null()).output().expect("run chronicle");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// `chronicle events --json`, parsed.
    pub fn events(&self) -> Vec<Value> {
        let r = self.run(&["events", "--json", "--all"]);
        assert_eq!(r.code, 0, "events --json failed: {}", r.stderr);
        r.stdout.lines().map(|l| serde_json::from_str(l).expect("events --json line")).collect()
    }

    /// Rows of an SQL query against the store, as strings.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        query_db(&self.db(), sql)
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.query(sql)[0][0].parse().expect("a count")
    }
}

/// Rows of an SQL query against the database at `db`, every column as text (NULL as "NULL").
pub fn query_db(db: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => "NULL".into(),
                    rusqlite::types::ValueRef::Integer(x) => x.to_string(),
                    rusqlite::types::ValueRef::Real(x) => x.to_string(),
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Compiles the C plugin `source` with `cc` (extra `flags`, e.g. `-DPOLICY="open"`) into
/// `env`'s plugin directory as `lib<name>.so`, mode 0644, as a plugin author would from the
/// public header. Returns its path.
pub fn c_plugin(env: &Env, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = env.home().join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write C source");
    let lib = env.plugin_dir().join(format!("lib{name}.so"));
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api/include");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O0", "-w", "-I"])
        .arg(include)
        .args(flags)
        .arg("-o")
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success(), "cc {name}.c");
    set_mode(&lib, 0o644);
    lib
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A PreToolUse Bash payload with `command`.
pub fn bash_event(command: &str) -> Vec<u8> {
    serde_json::json!({
        "session_id": "11111111-2222-3333-4444-555555555555",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/home/dev/code/acme-billing",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_use_id": format!("toolu_{}", command.len()),
    })
    .to_string()
    .into_bytes()
}

/// An event of `name` with extra fields merged in.
pub fn event(name: &str, extra: Value) -> Vec<u8> {
    let mut v = serde_json::json!({
        "session_id": "11111111-2222-3333-4444-555555555555",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/home/dev/code/acme-billing",
        "hook_event_name": name,
    });
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v.to_string().into_bytes()
}
