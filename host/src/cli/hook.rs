//! `chronicle hook`: read one event from stdin, answer Claude Code, record everything.
//!
//! The event goes to the resident host for this configuration when one is listening (see
//! [`chronicle::resident`]); otherwise, or if it fails, this process handles it itself and
//! starts a resident host for the next event. Either way the answer and the record are the same.
//!
//! Exit codes: 0 (answered, possibly with nothing; input that is not a hook event is recorded
//! as `parse_error`, answered with nothing and explained in one line on stderr: failing open,
//! since Claude Code shows non-zero exits as hook errors and a stray byte must not block work),
//! 2 (a plugin blocked an event that only exit 2 can block; reason on stderr, stdout empty).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::time::Duration;

use chronicle::config::Config;
use chronicle::hook::{Host, Origin, Reply, Stages, StoreOpening};
use chronicle::input::RawInput;
use chronicle::output::Output;
use chronicle::resident::{self, AskError, Endpoint, Handover, InvocationId, Request, Response};
use chronicle::store::FaultRow;

/// How this process came to handle the event.
pub enum Mode {
    /// `chronicle-host hook`: ask the resident host, else handle it here.
    Standalone,
    /// `--in-process STARTED_NS`: the client found no resident host (and started one); stdin is
    /// untouched. Clients since crash containment hand over instead; kept for a client from an
    /// older build still running while a newer host is installed beside it.
    InProcess { started_unix_ns: i64 },
    /// `--handover SPEC`: the client read the event but the resident host did not answer it;
    /// stdin holds exactly the bytes the client read.
    Handover(Handover),
}

impl Mode {
    pub fn parse(args: &[OsString]) -> Option<Mode> {
        let text: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
        match text.as_slice() {
            [] => Some(Mode::Standalone),
            ["--in-process", started] => Some(Mode::InProcess { started_unix_ns: started.parse().ok()? }),
            ["--handover", spec] => Some(Mode::Handover(Handover::parse(spec)?)),
            _ => None,
        }
    }
}

pub fn run(mode: Mode) -> ! {
    chronicle::shutdown::finish_on_sigterm();
    let received_at_ns = match &mode {
        Mode::Handover(h) => h.received_at_ns,
        _ => chronicle::clock::unix_ns(),
    };
    let (config, config_error) = match Config::load(None) {
        Ok(c) => (c, None),
        Err(e) => (fallback_config(), Some(e.to_string())),
    };
    // A client that found no resident host started this process to handle the event here: the
    // database is opened from the start. A thread started later waited ~0.8 ms to run at all,
    // while the first plugin's loading held the dynamic loader's lock.
    let store_opening = match &mode {
        Mode::Handover(h) if h.client_makes_db => StoreOpening::start_after_client(config.db_path.clone()),
        Mode::Handover(_) | Mode::InProcess { .. } => StoreOpening::start(config.db_path.clone()),
        Mode::Standalone => None,
    };
    let log_file = config.file.log.file.clone().unwrap_or_else(|| chronicle::logging::default_file(&config.data_dir));
    // Logs name events and plugins: never into another user's data directory.
    let private = !config.data_dir.exists() || chronicle::private::check_ours(&config.data_dir).is_ok();
    if private || config.file.log.file.is_some() {
        chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::File(&log_file));
    }
    if let Some(e) = &config_error {
        tracing::error!("{e}; using defaults for this event");
    }
    let mut stages = Stages::default();
    let mut faults = Vec::new();
    // A broken config file: this event is handled in process with defaults, and says why.
    let config_ok = config_error.is_none();
    if let Some(e) = config_error {
        faults.push(FaultRow { source: "config", plugin: None, path: None, message: e });
    }
    if let Mode::Handover(h) = &mode {
        let mut bytes = Vec::new();
        // The client's memfd: read as a file, whose size sizes the buffer (stdin's own reader
        // starts at 32 bytes and doubles: six reads for an ordinary event, ~15 and as many
        // copies for a 482 KB one).
        // SAFETY: fd 0 stays open for the life of the process; ManuallyDrop never closes it.
        let stdin = std::mem::ManuallyDrop::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(0) });
        if let Err(e) = (&*stdin).read_to_end(&mut bytes) {
            tracing::error!("cannot read the handed-over event: {e}");
        }
        let input = RawInput { bytes, total_bytes: h.total_bytes, truncated: h.truncated, timed_out: h.timed_out };
        stages.add("hook.read", Duration::from_nanos(h.read_ns));
        if h.lost {
            faults.push(FaultRow {
                source: "resident",
                plugin: None,
                path: None,
                message: "the resident host took the event but did not answer; handled in process".into(),
            });
        }
        let origin = Origin::TakenOver { started_unix_ns: h.started_unix_ns, spawned: true };
        in_process(host_for(config, store_opening), &input, h.invocation, received_at_ns, stages, faults, origin, h.announce_end)
    }
    let cap = config.file.hook.max_input_bytes;
    let read_timeout = config.read_timeout();
    let input = stages.time("hook.read", || chronicle::input::read_stdin(cap, read_timeout));
    let input = match input {
        Ok(i) => i,
        Err(e) => {
            tracing::error!("cannot read stdin: {e}");
            RawInput::default()
        }
    };
    let invocation = InvocationId::new(received_at_ns);
    if let Mode::InProcess { started_unix_ns } = mode {
        let origin = Origin::TakenOver { started_unix_ns, spawned: false };
        in_process(host_for(config, store_opening), &input, invocation, received_at_ns, stages, faults, origin, false)
    }
    if config_ok {
        match Endpoint::for_config(&config) {
            Ok(endpoint) => {
                let read = stages.entries.first().map_or(Duration::ZERO, |(_, d)| *d);
                let request = Request { invocation, ..Request::new(input, received_at_ns, read) };
                match resident::ask(&endpoint, &request, resident::patience(config.file.hook.dispatch_budget_ms)) {
                    Ok(Response::Answered { exit_code, stdout, stderr }) => {
                        reply(&Output::direct(), &Reply { exit_code, stdout, stderr, retire: false }, false);
                    }
                    Ok(Response::Retry) => tracing::info!("the resident host handed the event back"),
                    Err(AskError::Unavailable(e)) => {
                        tracing::debug!("no resident host: {e}");
                        if let Err(e) = resident::start_server(&endpoint) {
                            tracing::warn!("cannot start a resident host: {e}");
                        }
                    }
                    Err(e @ AskError::Lost(_)) => {
                        tracing::warn!("{e}");
                        faults.push(FaultRow { source: "resident", plugin: None, path: None, message: e.to_string() });
                    }
                }
                in_process(Host::new(config), &request.input, invocation, received_at_ns, stages, faults, Origin::InProcess, false)
            }
            Err(e) => tracing::debug!("resident host not used: {e}"),
        }
    }
    in_process(Host::new(config), &input, invocation, received_at_ns, stages, faults, Origin::InProcess, false)
}

/// The host for an event handled here, taking over the database opening started for it.
fn host_for(config: Config, store_opening: Option<StoreOpening>) -> Host {
    let mut host = Host::new(config);
    host.adopt_store_opening(store_opening);
    host
}

/// Handles the event here and exits with the answer (`announce_end`: see [`reply`]). The host
/// is never dropped: that would close the database's last connection, which checkpoints and
/// deletes the log (~1 ms of fsyncs).
#[allow(clippy::too_many_arguments)]
fn in_process(
    mut host: Host,
    input: &RawInput,
    invocation: InvocationId,
    received_at_ns: i64,
    mut stages: Stages,
    mut faults: Vec<FaultRow>,
    origin: Origin,
    announce_end: bool,
) -> ! {
    // A host that died in plugin code before this one (the client runs this process again after
    // such a death): its plugin is quarantined before anything is loaded.
    faults.extend(host.attribute_crashes());
    if announce_end {
        host.defer_log_bound();
    }
    let answer = host.answer(input, invocation, received_at_ns, &mut stages, origin, faults);
    // The database works again: what an earlier event had to spool goes in now (a stat when
    // there is none; this answer waits for it only when there is).
    if host.recorded() {
        host.ingest_spool(false);
    }
    write_reply(&host.answer_output(), &answer, announce_end);
    // The client relayed the answer at the end mark: nobody waits for this.
    host.bound_log_after_answer();
    std::process::exit(answer.exit_code)
}

/// Writes the answer where Claude Code reads it and exits with its code. Exiting here also
/// ends any plugin thread that was abandoned.
fn reply(output: &Output, reply: &Reply, announce_end: bool) -> ! {
    write_reply(output, reply, announce_end);
    std::process::exit(reply.exit_code)
}

/// Writes the answer where Claude Code reads it. `announce_end`: the client that handed the
/// event over reads [`resident::END_MARK`] (see `Handover::announce_end`), and relays the answer
/// then, without waiting for this process to exit.
fn write_reply(output: &Output, reply: &Reply, announce_end: bool) {
    if let Some(out) = &reply.stdout {
        if let Err(e) = output.write_answer(out.as_bytes()) {
            tracing::error!("cannot write the answer: {e}");
        }
    }
    // Each in one write: stderr is unbuffered, `eprintln!` wrote every piece of its format on
    // its own (three writes for the end mark), and each woke the client reading the pipe.
    let said: String = reply.stderr.iter().map(|line| format!("{line}\n")).collect();
    if !said.is_empty() {
        let _ = std::io::stderr().write_all(said.as_bytes());
    }
    // A deliberate end: the marker must not read as a death in plugin code.
    chronicle::plugin::inflight::finish();
    if announce_end {
        // After the marker is gone: a mark followed by a death still reads as a death.
        let _ = std::io::stderr().write_all(format!("{}{}\n", resident::END_MARK, reply.exit_code).as_bytes());
        output.release();
    }
}

/// Defaults with the usual paths, for when the config file itself is broken.
fn fallback_config() -> Config {
    Config::without_file().unwrap_or_else(|_| Config::in_dir(&std::env::temp_dir().join("chronicle")))
}
