//! `chronicle hook`: read one event from stdin, answer Claude Code, record everything.
//!
//! Exit codes: 0 (answered, possibly with nothing; input that is not a hook event is recorded
//! as `parse_error`, answered with nothing and explained in one line on stderr: failing open,
//! since Claude Code shows non-zero exits as hook errors and a stray byte must not block work),
//! 2 (a plugin blocked an event that only exit 2 can block; reason on stderr, stdout empty).

use chronicle::config::Config;
use chronicle::hook::{Host, Stages};
use chronicle::payload::Kind;

pub fn run() -> ! {
    let received_at_ns = chronicle::clock::unix_ns();
    let (config, config_error) = match Config::load(None) {
        Ok(c) => (c, None),
        Err(e) => (fallback_config(), Some(e.to_string())),
    };
    let log_file = config.file.log.file.clone().unwrap_or_else(|| chronicle::logging::default_file(&config.data_dir));
    chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::File(&log_file));
    if let Some(e) = &config_error {
        tracing::error!("{e}; using defaults for this event");
    }
    let mut stages = Stages::default();
    let cap = config.file.hook.max_input_bytes;
    let read_timeout = config.read_timeout();
    let input = stages.time("hook.read", || chronicle::input::read_stdin(cap, read_timeout));
    let input = match input {
        Ok(i) => i,
        Err(e) => {
            tracing::error!("cannot read stdin: {e}");
            chronicle::input::RawInput::default()
        }
    };

    let mut host = Host::new(config);
    let handled = host.handle(&input, received_at_ns, &mut stages);
    let mut record = handled.record;
    if let Some(e) = config_error {
        record.faults.push(chronicle::store::FaultRow { source: "config", plugin: None, path: None, message: e });
    }
    let kind = record.kind.clone();
    let parse_error = record.error.clone();

    // By reference: the record holds the payload (up to the input cap); no copy on the hot path.
    if let Err(e) = host.record(&mut record, &stages) {
        tracing::error!("cannot record the event: {e}");
        // Also one line on stderr: Claude Code keeps it in its debug log.
        eprintln!("chronicle: cannot record the event: {e} (kept in the spool)");
        if let Err(spool_err) = chronicle::spool::append(&host.config.data_dir, &record, &e) {
            tracing::error!("cannot spool the event either: {spool_err}");
        }
    }

    let answer = handled.answer;
    tracing::debug!(
        kind = %kind,
        event = record.hook_event_name.as_deref().unwrap_or("-"),
        decision = %record.decision,
        plugins = record.calls.len(),
        total_ms = chronicle::clock::since_start().as_secs_f64() * 1000.0,
        "handled"
    );
    let code = answer.exit_code;
    if let Some(out) = &answer.stdout {
        if let Err(e) = host.write_answer(out.as_bytes()) {
            tracing::error!("cannot write the answer: {e}");
        }
    }
    if let Some(err) = &answer.stderr {
        eprintln!("{}", err.lines().next().unwrap_or(""));
    }
    if kind == Kind::ParseError.as_str() {
        eprintln!("chronicle: {}", parse_error.unwrap_or_else(|| "input is not a hook event".into()));
    }
    std::process::exit(code)
}

/// Defaults with the usual paths, for when the config file itself is broken.
fn fallback_config() -> Config {
    Config::without_file().unwrap_or_else(|_| Config::in_dir(&std::env::temp_dir().join("chronicle")))
}
