//! `chronicle`: the command Claude Code runs for every hook event, kept small on purpose.
//!
//! `chronicle hook` reads the event and hands it to the resident host for this configuration
//! (see `chronicle::resident`), then relays the answer. It links none of the plugin, database or
//! CLI machinery, so starting it costs about what starting `cat` does. Everything else — other
//! subcommands, a config file that changes how the hook itself behaves, no resident host yet, or
//! one that did not answer — is passed to `chronicle-host`, the full binary beside it, with
//! `exec` (same process, same stdin/stdout), so the answer and the record are always the same.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use chronicle::config::{env, Config, HookSettings};
use chronicle::resident::{self, Endpoint, Handover, Request, Response, HOST_BIN};

/// Config keys that change what the client itself does (it does not read TOML): a config file
/// that mentions one leaves the whole hook to `chronicle-host`.
const HOST_ONLY_KEYS: &[&str] = &["resident", "max_input_bytes", "read_timeout_ms", "dispatch_budget_ms"];

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.len() == 1 && args[0] == "hook" {
        hook();
    }
    exec_host(&args, None);
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

fn host_hook(extra: &[String], stdin: Option<std::fs::File>) -> ! {
    let mut args = vec![OsString::from("hook")];
    args.extend(extra.iter().map(OsString::from));
    exec_host(&args, stdin)
}

fn hook() -> ! {
    let received_at_ns = chronicle::clock::unix_ns();
    let started_unix_ns = received_at_ns - chronicle::clock::since_start().as_nanos() as i64;
    let in_process = || host_hook(&["--in-process".into(), started_unix_ns.to_string()], None);
    let config_file = match client_config_file() {
        Ok(f) => f,
        Err(()) => host_hook(&[], None),
    };
    let Ok(data_dir) = Config::data_dir_from_env() else { host_hook(&[], None) };
    if let Some(false) = resident::enabled_by_env() {
        in_process();
    }
    let Ok(endpoint) = Endpoint::compute(&data_dir, config_file.as_deref()) else { in_process() };
    if endpoint.unsafe_dir().is_some() {
        in_process(); // `chronicle doctor` says why
    }
    if !endpoint.socket.exists() {
        // No resident host yet: start one for the next event; the host handles this one.
        let _ = resident::start_server(&endpoint);
        in_process();
    }

    let defaults = HookSettings::default();
    let read = std::time::Instant::now();
    let input = chronicle::input::read_stdin(defaults.max_input_bytes, Duration::from_millis(defaults.read_timeout_ms)).unwrap_or_default();
    let request = Request::new(input, received_at_ns, read.elapsed());
    let stream = match endpoint.connect() {
        Ok(s) => s,
        Err(_) => {
            let _ = resident::start_server(&endpoint);
            hand_over(&request, false);
        }
    };
    match resident::exchange(stream, &request, resident::patience(defaults.dispatch_budget_ms)) {
        Ok(Response::Answered { exit_code, stdout, stderr }) => {
            if let Some(out) = stdout {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(out.as_bytes()).and_then(|()| o.flush());
            }
            for line in stderr {
                eprintln!("{line}");
            }
            std::process::exit(exit_code)
        }
        Ok(Response::Retry) => hand_over(&request, false),
        Err(_) => hand_over(&request, true),
    }
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

/// Gives the event read so far to `chronicle-host`, which handles it in process.
fn hand_over(request: &Request, lost: bool) -> ! {
    let spec = Handover::new(request, lost).format();
    match resident::spill(&request.input) {
        Ok(file) => host_hook(&["--handover".into(), spec], Some(file)),
        Err(e) => {
            eprintln!("chronicle: cannot hand the event over: {e}");
            std::process::exit(1)
        }
    }
}
