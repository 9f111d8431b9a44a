//! `chronicle`: the command Claude Code runs for every hook event, kept small on purpose.
//!
//! `chronicle hook` reads the event and hands it to the resident host for this configuration
//! (see `chronicle::resident`), then relays the answer. It links none of the plugin, database or
//! CLI machinery, so starting it costs about what starting `cat` does.
//!
//! It never runs plugin code itself, so it always survives to answer. With no resident host (or
//! one that did not answer) it runs `chronicle-host hook --handover` as a child on the bytes it
//! read and relays that child's answer (with none, it then starts one for the next event); a child that dies in plugin code (a crash, `exit()`)
//! is run again, and the new one quarantines the plugin that killed the last and answers for it
//! by its failure policy (see `chronicle::plugin::inflight`). Other subcommands, and a config
//! file that changes how the hook itself reads its input, are passed to `chronicle-host` with
//! `exec`.
#![no_main]

use std::ffi::OsString;
use std::io::{Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chronicle::config::{env, Config, HookSettings};
use chronicle::resident::{self, Endpoint, Handover, Request, Response, HOST_BIN};

/// Config keys that change what the client itself does (it does not read TOML): a config file
/// that mentions one leaves the whole hook to `chronicle-host`.
const HOST_ONLY_KEYS: &[&str] = &["resident", "max_input_bytes", "read_timeout_ms", "dispatch_budget_ms"];

// Its own C `main`, as `chronicle-host` has (see its main.rs): Rust's start-up (a signal stack
// for stack-overflow reports, four `sigaction`s) was a tenth of the client's system calls and
// ~10 µs of every event. What of it the client relies on is done here: closed standard
// descriptors opened on /dev/null, SIGPIPE ignored (a host that died mid-answer, or Claude
// Code closing our stdout, is an error the client handles), 101 on a panic, the arguments
// read from argv. `std::process::exit` still flushes stdout.
#[unsafe(no_mangle)]
unsafe extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    chronicle::start::prepare_process();
    let args: Vec<OsString> = (1..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            use std::os::unix::ffi::OsStrExt;
            // SAFETY: the C runtime passes argc NUL-terminated strings in argv, alive for the
            // whole process.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_owned()
        })
        .collect();
    // `run` only ever leaves by `exit` or `exec`: returning here means it panicked.
    let _ = std::panic::catch_unwind(|| run(&args));
    std::process::exit(chronicle::start::PANICKED)
}

fn run(args: &[OsString]) -> ! {
    if args.len() == 1 && args[0] == "hook" {
        hook();
    }
    // The client's own version (`chronicle-host --version` is the host's): doctor compares them.
    if args.len() == 1 && (args[0] == "--version" || args[0] == "-V") {
        println!("chronicle {}", chronicle::VERSION);
        std::process::exit(0);
    }
    exec_host(args, None);
}

/// Replaces this process with `chronicle-host ARGS`, optionally with `stdin` as fd 0.
fn exec_host(args: &[OsString], stdin: Option<std::fs::File>) -> ! {
    let host = resident::sibling(HOST_BIN);
    let mut cmd = Command::new(&host);
    cmd.args(args).arg0("chronicle");
    if let Some(f) = stdin {
        cmd.stdin(f);
    }
    let err = cmd.exec();
    eprintln!("chronicle: cannot run {}: {err} (install both binaries side by side)", host.display());
    std::process::exit(1)
}

/// The event on stdin, read with the default cap and deadline (the client's own settings).
fn read_request(received_at_ns: i64) -> Request {
    let defaults = HookSettings::default();
    let read = std::time::Instant::now();
    let input = chronicle::input::read_stdin(defaults.max_input_bytes, Duration::from_millis(defaults.read_timeout_ms)).unwrap_or_default();
    Request::new(input, received_at_ns, read.elapsed())
}

/// Replaces this process with `chronicle-host hook`, which reads the event itself (the config
/// names settings only it reads, or there is no data directory the client can work out). If
/// it cannot run, the event goes where `unstartable` puts it, given a data directory.
fn host_hook_in_place(data_dir: Option<&Path>, received_at_ns: i64) -> ! {
    let host = resident::sibling(HOST_BIN);
    let started = std::time::Instant::now();
    let err = loop {
        let err = Command::new(&host).arg("hook").arg0("chronicle").exec();
        if !upgrading(&err) || started.elapsed() >= UPGRADE_PATIENCE {
            break err;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let Some(data_dir) = data_dir else {
        eprintln!("chronicle: cannot run {}: {err} (install both binaries side by side)", host.display());
        std::process::exit(1)
    };
    unstartable(data_dir, &read_request(received_at_ns), &host, &err)
}

fn hook() -> ! {
    let received_at_ns = chronicle::clock::unix_ns();
    chronicle::shutdown::finish_on_sigterm();
    let data_dir = Config::data_dir_from_env().ok();
    let config_file = match client_config_file() {
        Ok(f) => f,
        Err(()) => host_hook_in_place(data_dir.as_deref(), received_at_ns),
    };
    let Some(data_dir) = data_dir else { host_hook_in_place(None, received_at_ns) };
    let request = read_request(received_at_ns);
    let endpoint = match resident::enabled_by_env() {
        Some(false) => None,
        // An unsafe socket directory: handled here; `chronicle doctor` says why.
        _ => Endpoint::compute(&data_dir, config_file.as_deref()).ok().filter(|e| e.unsafe_dir().is_none()),
    };
    let Some(endpoint) = endpoint else {
        supervise(&data_dir, &request, false, None, missing_db(&data_dir, config_file.as_deref()).as_deref())
    };
    // No socket file: `connect` says so as cheaply as a `stat` would.
    let connected = endpoint.connect_in_checked_dir().ok();
    let Some(stream) = connected else {
        // No resident host (none yet, or it idled out): a child handles this event, and a host
        // is started for the next one once the answer is out. Started first, it loaded the same
        // plugins and opened the same database alongside the child, and the event waited.
        supervise(&data_dir, &request, false, Some(&endpoint), missing_db(&data_dir, config_file.as_deref()).as_deref());
    };
    match resident::exchange(stream, &request, resident::patience(HookSettings::default().dispatch_budget_ms)) {
        Ok(Response::Answered { exit_code, stdout, stderr }) => answer(stdout.as_deref().map(str::as_bytes), &stderr, exit_code, None),
        Ok(Response::Retry) => supervise(&data_dir, &request, false, None, None),
        Err(_) => supervise(&data_dir, &request, true, None, None),
    }
}

/// The database this event's host will open, when it does not exist yet and the client can
/// tell where it goes (`CHRONICLE_DB`, or the data directory's `chronicle.db` when no config
/// file could name another): the client makes it while the child starts.
fn missing_db(data_dir: &Path, config_file: Option<&Path>) -> Option<std::path::PathBuf> {
    let path = match std::env::var_os(env::DB).filter(|v| !v.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None if config_file.is_none() => data_dir.join("chronicle.db"),
        None => return None,
    };
    (!path.exists()).then_some(path)
}

/// Writes the answer and exits; `then_start`: a resident host to start once it is written.
fn answer(stdout: Option<&[u8]>, stderr: &[String], exit_code: i32, then_start: Option<&Endpoint>) -> ! {
    if let Some(out) = stdout {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(out).and_then(|()| o.flush());
    }
    for line in stderr {
        eprintln!("{line}");
    }
    if let Some(endpoint) = then_start {
        let _ = resident::start_server(endpoint);
    }
    std::process::exit(exit_code)
}

/// How long the client keeps trying to start a `chronicle-host` that is being replaced.
const UPGRADE_PATIENCE: Duration = Duration::from_secs(2);

/// Whether starting `chronicle-host` failed as it does while an upgrade is under way: `install`
/// or `cp` is writing it (no file for a moment, no exec bit yet, busy); it is back within
/// moments.
fn upgrading(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), PermissionDenied | NotFound | ExecutableFileBusy)
}

/// No `chronicle-host` could be started.
fn unstartable(data_dir: &Path, request: &Request, host: &Path, e: &std::io::Error) -> ! {
    let why = format!("cannot run {}: {e}", host.display());
    no_host(data_dir, request, &why, "install chronicle and chronicle-host side by side")
}

/// No `chronicle-host` handled the event (`why`; `fix`: what to do about it): the raw event
/// goes to the spool (the next host process records it) and one line says why. Claude Code
/// gets no opinion, unless a plugin that fails closed wants the event: then it is denied on
/// that plugin's behalf (`chronicle::failsafe`), as a host denies for a fail-closed plugin
/// that cannot run.
fn no_host(data_dir: &Path, request: &Request, why: &str, fix: &str) -> ! {
    let spooled = chronicle::spool::append_raw(data_dir, &request.invocation.text(), request.received_at_ns, &request.input.bytes, why);
    let refusal = chronicle::failsafe::refusal(data_dir, &disabled_plugins(), &request.input.bytes, request.input.truncated, why);
    if let Some(r) = &refusal {
        if let Some(out) = &r.stdout {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(out.as_bytes()).and_then(|()| o.flush());
        }
        if let Some(err) = &r.stderr {
            eprintln!("{err}");
        }
    }
    // A lost event is exit 1 (a hook error Claude Code shows), unless a refusal is the answer:
    // Claude Code would not read its JSON after exit 1.
    let code = match &spooled {
        Ok(kept) => {
            eprintln!("chronicle: {why}; the event is kept in {} ({fix})", kept.display());
            0
        }
        Err(spool_err) => {
            eprintln!("chronicle: {why}, and the event was lost: cannot spool it ({spool_err})");
            1
        }
    };
    std::process::exit(refusal.map_or(code, |r| r.exit_code))
}

/// The config's `disabled_plugins`, parsed on their own: the whole config's parsing would
/// double the client's size. A config that does not parse disables nothing here (this path
/// denies too much rather than too little).
fn disabled_plugins() -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Disabled {
        #[serde(default)]
        disabled_plugins: Vec<String>,
    }
    let named = std::env::var_os(env::CONFIG).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let text = named.or_else(Config::default_config_path).and_then(|path| std::fs::read_to_string(path).ok());
    text.and_then(|t| toml::from_str::<Disabled>(&t).ok()).map_or_else(Vec::new, |d| d.disabled_plugins)
}

/// How many times a dying host process is replaced for one event: each death in plugin code
/// quarantines that plugin, so only several crashing plugins at once could use them all up.
const MAX_RUNS: usize = 4;

/// Runs `chronicle-host hook --handover` on the event read so far and relays its answer. A
/// child that died (killed by a signal, or ended while its in-flight marker says it was inside
/// plugin code) is run again. `lost`: a resident host took the event and did not answer.
/// `then_start`: a resident host to start once the answer is out. `make_db`: a database to
/// make from the template while the first child starts (its host waits for it; see
/// `Handover::client_makes_db`): its write and fsync overlap that process's start instead of
/// following it.
fn supervise(data_dir: &Path, request: &Request, lost: bool, then_start: Option<&Endpoint>, make_db: Option<&Path>) -> ! {
    let host = resident::sibling(HOST_BIN);
    let mut file = match resident::spill(&request.input) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("chronicle: cannot hand the event over: {e}");
            std::process::exit(1)
        }
    };
    // Begun before the child starts, so that its host sees the build file and waits for it;
    // written and synced on a thread from then on, so that its fsync (0.3-2.3 ms here: what a
    // first event's store waits for) runs while the child starts rather than after. No thread:
    // the build file goes with it, and the host makes the database itself.
    let mut making = make_db
        .and_then(|db| chronicle::newdb::Making::start(db).ok())
        .and_then(|making| std::thread::Builder::new().spawn(move || making.finish()).ok());
    for run in 0..MAX_RUNS {
        let makes_db = run == 0 && making.is_some();
        let spec = Handover { client_makes_db: makes_db, ..Handover::new(request, lost && run == 0) }.format();
        let started = std::time::Instant::now();
        let child = loop {
            let stdin = file.rewind().and_then(|()| file.try_clone());
            let child = stdin.and_then(|stdin| {
                Command::new(&host)
                    .args(["hook", "--handover", &spec])
                    .arg0("chronicle")
                    .stdin(stdin)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            });
            match child {
                Err(e) if upgrading(&e) && started.elapsed() < UPGRADE_PATIENCE => std::thread::sleep(Duration::from_millis(10)),
                other => break other,
            }
        };
        let mut child = match child {
            Ok(c) => c,
            Err(e) => unstartable(data_dir, request, &host, &e),
        };
        if let Some(making) = making.take() {
            // Failing (a full disk), its build file goes, the host stops waiting, meets the same
            // trouble and says so.
            let _ = making.join();
        }
        let pid = child.id();
        let marker = data_dir.join(chronicle::config::INFLIGHT_DIR).join(pid.to_string());
        let Ok((stdout, stderr)) = read_until_closed(&mut child) else {
            let _ = child.wait();
            continue;
        };
        let relay = |said: &[u8]| -> Vec<String> { String::from_utf8_lossy(said).lines().map(str::to_owned).collect() };
        // A host that ends on purpose removes its marker; one left behind means plugin code
        // ended the process (or something killed it): its answer, if any, is not the answer.
        // One that announced its end (after removing the marker) is answered for while the
        // process is still being torn down.
        if let Some((said, code)) = resident::announced_end(&stderr) {
            if !marker.exists() {
                answer(Some(stdout.as_slice()).filter(|o| !o.is_empty()), &relay(said), code, then_start);
            }
        }
        let Ok(status) = child.wait() else { continue };
        if let (Some(code), false) = (status.code(), marker.exists()) {
            answer(Some(stdout.as_slice()).filter(|o| !o.is_empty()), &relay(&stderr), code, then_start);
        }
    }
    // Plugins that crashed it are quarantined one per death; a host binary that cannot run at
    // all (half copied: it dies as it starts) ends here too.
    no_host(data_dir, request, &format!("the host process died {MAX_RUNS} times in a row"), "see `chronicle doctor`")
}

/// Everything the child writes on stdout and stderr, until it has closed both (on exit, or
/// when it announces its end).
fn read_until_closed(child: &mut std::process::Child) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other("the child's output is not piped"));
    };
    let fds = [out.as_raw_fd(), err.as_raw_fd()];
    let pipes: [&mut dyn Read; 2] = [&mut out, &mut err];
    let mut said = [Vec::new(), Vec::new()];
    let mut open = [true, true];
    let mut buf = [0u8; 16 * 1024];
    while open.contains(&true) {
        let mut polled = [0, 1].map(|i| libc::pollfd { fd: if open[i] { fds[i] } else { -1 }, events: libc::POLLIN, revents: 0 });
        // SAFETY: polling two descriptors this process owns (or -1, which poll skips).
        if unsafe { libc::poll(polled.as_mut_ptr(), 2, -1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for i in (0..2).filter(|&i| polled[i].revents != 0) {
            match pipes[i].read(&mut buf) {
                Ok(0) => open[i] = false,
                Ok(n) => said[i].extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    let [stdout, stderr] = said;
    Ok((stdout, stderr))
}

/// The config file in effect, if any; Err when only the full host can deal with it (it
/// mentions a client-side key, or is named but unreadable: the host reports why).
fn client_config_file() -> Result<Option<std::path::PathBuf>, ()> {
    let named = std::env::var_os(env::CONFIG).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let Some(path) = named.clone().or_else(Config::default_config_path) else { return Ok(None) };
    match std::fs::read_to_string(&path) {
        Ok(text) if HOST_ONLY_KEYS.iter().any(|k| text.contains(k)) => Err(()),
        Ok(_) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => Ok(None),
        Err(_) => Err(()),
    }
}
