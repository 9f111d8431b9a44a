//! The resident host: events after the first are handed to `chronicle-host serve`, with the
//! same answers and records as in process; every way it can go away loses no event.

use std::time::{Duration, Instant};

use chronicle_e2e::{bash_event, chronicle_bin, corpus_lines, set_mode, Env};

const BUILTINS: &[&str] = &["chronicle_bash_guard", "chronicle_file_guard", "chronicle_secret_guard", "chronicle_session_context"];

/// Runs the realistic session through `env`; returns (exit code, stdout) per event.
fn replay_session(env: &Env) -> Vec<(i32, String)> {
    corpus_lines("session.jsonl")
        .iter()
        .map(|l| {
            let r = env.hook(l.as_bytes());
            (r.code, r.stdout)
        })
        .collect()
}

#[test]
fn events_after_the_first_go_to_the_resident_host_with_the_same_answers() {
    let mut in_process = Env::with_plugins(BUILTINS);
    in_process.set_env("CHRONICLE_RESIDENT", "0");
    let resident = Env::with_plugins(BUILTINS);
    let want = replay_session(&in_process);
    let got = replay_session(&resident);
    assert_eq!(got, want, "the resident host answers exactly as the in-process path does");

    let flags = resident.resident_flags();
    assert_eq!(flags.len(), want.len(), "every event recorded once");
    assert!(!flags[0], "the first event has no resident host to go to");
    let late = &flags[flags.len() / 2..];
    assert!(late.iter().all(|&f| f), "once started, the resident host handles every event: {flags:?}");
    assert!(in_process.resident_flags().iter().all(|&f| !f));
    assert!(in_process.resident_sockets().is_empty(), "CHRONICLE_RESIDENT=0 starts no resident host");

    // Same decisions recorded, and the client's own process stays small.
    let decisions = |e: &Env| e.query("SELECT decision FROM events ORDER BY id");
    assert_eq!(decisions(&resident), decisions(&in_process));
    let client_rss: f64 = resident
        .query("SELECT max(value) FROM metrics WHERE name = 'process.peak_rss_mb' AND event_id IN (SELECT event_id FROM metrics WHERE name = 'hook.resident')")[0][0]
        .parse()
        .unwrap();
    assert!(client_rss < 8.0, "the client process peaked at {client_rss} MiB");
}

#[test]
fn a_config_file_can_turn_the_resident_host_off() {
    let env = Env::with_plugins(&["fixture_echo"]);
    std::fs::write(env.home().join("config.toml"), "[hook]\nresident = false\n").unwrap();
    for _ in 0..4 {
        assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    assert_eq!(env.resident_flags(), vec![false; 5]);
    assert!(env.resident_sockets().is_empty());
}

#[test]
fn a_hung_plugin_retires_the_resident_host_and_the_next_event_is_still_answered() {
    let mut env = Env::with_plugins(&["fixture_hang", "fixture_echo"]);
    env.start_resident();
    let run = env.hook(&bash_event("hang-me"));
    assert_eq!(run.permission_decision(), "deny", "fail-closed plugin timed out: {}", run.stdout);
    assert!(env.wait_resident_gone(Duration::from_secs(10)), "a host with a stuck plugin thread must stop serving");
    assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    assert_eq!(env.resident_flags(), vec![true, false]);
    let statuses = env.query("SELECT status FROM plugin_calls WHERE plugin = 'fixture-hang' ORDER BY id");
    assert_eq!(statuses[0][0], "timeout");
}

#[test]
fn a_panicking_plugin_does_not_stop_the_resident_host() {
    let mut env = Env::with_plugins(&["fixture_panic", "fixture_echo"]);
    env.start_resident();
    assert_eq!(env.hook(&bash_event("panic-me && deny-me")).permission_decision(), "deny");
    assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    assert_eq!(env.resident_flags(), vec![true, true]);
}

#[test]
fn a_replaced_plugin_file_is_handed_back_and_loaded_fresh() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.start_resident();
    crate::plugin_faults::replace_between_two_events(&env);
    assert_eq!(env.resident_flags(), vec![true, false], "the stale host hands the event back");
}

/// A resident host lists its plugin directory again only when something in it changed
/// (`plugin::watch`): each kind of change is seen by the very next event, by the same host.
#[test]
fn a_resident_host_sees_each_change_to_its_plugin_directory_at_the_next_event() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.start_resident();
    let mut n = 0;
    let mut event = |env: &Env| -> (Vec<String>, i64) {
        n += 1;
        assert_eq!(env.hook(&bash_event(&format!("ls {n}"))).code, 0);
        let last = "(SELECT max(id) FROM events)";
        // Called: a refused file that loaded before has a `load_error` row of its own instead.
        let called = env.query(&format!("SELECT plugin FROM plugin_calls WHERE event_id = {last} AND status = 'ok' ORDER BY plugin"));
        let refused = env.count(&format!("SELECT count(*) FROM faults WHERE event_id = {last} AND message LIKE '%writable%'"));
        (called.into_iter().map(|r| r[0].clone()).collect(), refused)
    };
    let echo = || vec!["fixture-echo".to_string()];
    let both = || vec!["fixture-echo".to_string(), "fixture-stdout".to_string()];

    assert_eq!(event(&env), (echo(), 0));
    let added = env.install("fixture_stdout");
    assert_eq!(event(&env), (both(), 0), "a plugin dropped in is called");
    set_mode(&added, 0o666);
    assert_eq!(event(&env), (echo(), 1), "a plugin file others can write is refused");
    set_mode(&added, 0o644);
    assert_eq!(event(&env), (both(), 0), "and called again once it is not");
    std::fs::remove_file(&added).unwrap();
    assert_eq!(event(&env), (echo(), 0), "a removed plugin is gone");
    set_mode(&env.plugin_dir(), 0o770);
    assert_eq!(event(&env), (vec![], 1), "a directory others can write is not trusted");
    set_mode(&env.plugin_dir(), 0o700);
    let renamed_in = env.plugin_dir().join(".incoming");
    std::fs::copy(chronicle_e2e::plugin_lib("fixture_stdout"), &renamed_in).unwrap();
    std::fs::rename(&renamed_in, &added).unwrap();
    assert_eq!(event(&env), (both(), 0), "a plugin renamed in is called");
    // The last file took a path this host had loaded: the loader would serve the old code, so
    // that event was handed back (to a fresh process); the host saw the others itself.
    assert_eq!(env.resident_flags(), [vec![true; 6], vec![false]].concat());
}

/// Plugin files replaced over and over while clients send events at once: an event whose
/// resident host finds a plugin file changed after it loaded it (the loader would give it the
/// old code) is handed back and decided by a fresh process, never answered without the
/// plugin; and that passing state is never written into the plugin index as the new file's
/// fault (it was, and then every process refused the new file until it changed again).
#[test]
fn a_plugin_replaced_under_a_busy_resident_host_is_never_skipped_or_refused() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.start_resident();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let per_client = 60;
    let codes: Vec<i32> = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let tmp = env.plugin_dir().join(format!(".incoming-{n}"));
                std::fs::copy(chronicle_e2e::plugin_lib("fixture_echo"), &tmp).unwrap();
                std::fs::rename(&tmp, env.plugin_dir().join("libfixture_echo.so")).unwrap();
                std::thread::sleep(Duration::from_millis(3 + n % 7));
            }
        });
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let env = &env;
                s.spawn(move || (0..per_client).map(|i| env.hook(&bash_event(&format!("ls {c} {i}"))).code).collect::<Vec<_>>())
            })
            .collect();
        let codes = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        codes
    });
    assert!(codes.iter().all(|&c| c == 0), "every event answered: {codes:?}");
    assert_eq!(env.count("SELECT count(DISTINCT invocation_id) FROM events"), 4 * per_client, "each once");
    assert_eq!(env.count("SELECT count(*) FROM events"), 4 * per_client);
    let skipped = env.query("SELECT event_id, message FROM faults WHERE message LIKE '%changed after this process loaded it%'");
    assert!(skipped.is_empty(), "{} events answered without their plugin, the first {:?}", skipped.len(), skipped.first());
    let called = env.count("SELECT count(DISTINCT event_id) FROM plugin_calls WHERE plugin = 'fixture-echo'");
    assert_eq!(called, 4 * per_client, "the plugin decided every event");
    let index = std::fs::read_to_string(env.home().join("plugin-index.json")).unwrap_or_default();
    assert!(!index.contains("changed after this process"), "a passing state written into the index: {index}");
}

#[test]
fn a_killed_resident_host_loses_no_event_and_is_replaced() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    let pid = env.start_resident();
    let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(50));
    assert!(!env.resident_sockets().is_empty(), "a killed host leaves its socket behind");
    assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);
    // That event started a new host; a later event reaches it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
        if env.resident_flags().last() == Some(&true) {
            break;
        }
        assert!(Instant::now() < deadline, "no new resident host took over: {:?}", env.resident_flags());
        std::thread::sleep(Duration::from_millis(20));
    }
    let n = env.resident_flags().len() as i64;
    assert_eq!(env.count("SELECT count(*) FROM events"), n);
}

/// SIGTERM (a service manager, a user's `kill`) stops a resident host the way idling out does:
/// it refuses new clients at once, so they hand their events over instead of queueing on a
/// host that is going away, and the event it is in the middle of is still answered and
/// recorded by it, not dropped and handled again by its client's child.
#[test]
fn sigterm_stops_the_resident_host_after_the_event_it_is_handling() {
    let mut env = Env::with_plugins(&["fixture_busy"]);
    std::fs::write(env.home().join("config.toml"), "[hook]\nplugin_timeout_ms = 8000\n[plugins.fixture-busy]\nsleep_us = 3000000\n")
        .unwrap();
    let pid = env.start_resident() as i32;
    std::thread::scope(|s| {
        let slow = s.spawn(|| env.hook(&bash_event("a slow one")));
        std::thread::sleep(Duration::from_millis(1000));
        assert!(!slow.is_finished(), "the event left the plugin before the signal: no test");
        // SAFETY: signalling this test's own resident host.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(100));
        let prompt = env.hook(&chronicle_e2e::event("UserPromptSubmit", serde_json::json!({"prompt": "meanwhile"})));
        assert_eq!(prompt.code, 0, "{}", prompt.stderr);
        assert!(!slow.is_finished(), "the new event waited for the stopping host's");
        let slow = slow.join().unwrap();
        assert_eq!(slow.code, 0, "{}", slow.stderr);
    });
    let ended = env.wait_resident_exit().expect("the host's exit status");
    assert_eq!(ended.code(), Some(0), "the host ended by itself, not by the signal: {ended:?}");
    assert!(env.resident_sockets().is_empty(), "it left its socket behind");
    let handled_by = env.query(
        "SELECT hook_event_name, EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = e.id AND m.name = 'hook.resident') FROM events e ORDER BY hook_event_name",
    );
    assert_eq!(handled_by, vec![vec!["PreToolUse".to_string(), "1".into()], vec!["UserPromptSubmit".into(), "0".into()]]);
    assert_eq!(env.count("SELECT count(*) FROM plugin_calls WHERE plugin = 'fixture-busy' AND status = 'ok'"), 1);
}

#[test]
fn a_resident_directory_others_can_write_is_not_trusted() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.start_resident();
    set_mode(&env.home().join("resident"), 0o777);
    assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    assert_eq!(env.resident_flags(), vec![false], "not handed to a socket in a directory others can write");
    let doctor = env.run(&["doctor"]);
    assert!(doctor.stdout.contains("resident host: not used") && doctor.stdout.contains("mode 0700"), "{}", doctor.stdout);
    set_mode(&env.home().join("resident"), 0o700);
}

/// An idle host leaves, and leaves its log emptied and started afresh: the first hook after the
/// idle-out opens the database without replaying what the host wrote, and appends to the log
/// without starting it (a header write and two fsyncs).
#[test]
fn an_idle_resident_host_exits_on_its_own_and_truncates_its_log() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.set_env("CHRONICLE_RESIDENT_IDLE_S", "1");
    let pid = env.start_resident();
    for i in 0..5 {
        assert_eq!(env.hook(&bash_event(&format!("echo {i}"))).code, 0);
    }
    let wal = env.home().join("chronicle.db-wal");
    assert!(std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0, "the host's events are in its log");
    assert!(env.wait_resident_gone(Duration::from_secs(15)), "still listening after its idle limit");
    // The socket goes first; the log is truncated before the process ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
    };
    while !gone() {
        assert!(std::time::Instant::now() < deadline, "the idle host did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
    // A header and the frames of one small write: the events themselves were copied out.
    assert!((32..=32 + 4 * (4096 + 24)).contains(&left), "the idle host left a {left}-byte log");
    // A log's salts (header bytes 16..24) change whenever it is started anew.
    let salts = || std::fs::read(&wal).unwrap()[16..24].to_vec();
    let before = salts();
    env.set_env("CHRONICLE_RESIDENT", "0");
    assert_eq!(env.hook(&bash_event("echo after the idle-out")).code, 0);
    assert_eq!(salts(), before, "the first event after the idle-out started the log itself");
    assert!(std::fs::metadata(&wal).unwrap().len() > left, "it appended to the log");
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 6);
}

#[test]
fn the_client_links_none_of_the_host_machinery() {
    // Searched as text with the (optimised) standard library: the debug binaries are large.
    let read = |p: std::path::PathBuf| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    let client = read(chronicle_e2e::chronicle_bin());
    let host = read(chronicle_e2e::chronicle_bin().with_file_name("chronicle-host"));
    let contains = |hay: &str, needle: &str| hay.contains(needle);
    // String literals (not debug info) of SQLite's code, the store's SQL and the plugin
    // dispatch: present in the host only. (The client carries the empty database's bytes,
    // `newdb::TEMPLATE`, so the file format's magic and the schema's text are in both.)
    for marker in ["unable to open database file", "INSERT INTO events (kind", "is configured to fail closed"] {
        assert!(contains(&host, marker), "{marker} should be in chronicle-host (is the marker still right?)");
        assert!(!contains(&client, marker), "the `chronicle` client links {marker}: it must stay small");
    }
}

#[test]
fn doctor_says_whether_a_resident_host_is_listening() {
    let mut env = Env::new();
    let before = env.run(&["doctor"]);
    assert!(before.stdout.contains("resident host: not running"), "{}", before.stdout);
    env.start_resident();
    let after = env.run(&["doctor"]);
    assert!(after.stdout.contains("resident host: listening at"), "{}", after.stdout);
    env.set_env("CHRONICLE_RESIDENT", "off");
    let off = env.run(&["doctor"]);
    assert!(off.stdout.contains("resident host: disabled"), "{}", off.stdout);
}

#[test]
fn the_resident_host_restarts_its_checkpointed_log_between_events() {
    // Large events fill the write-ahead log past its limit; the background checkpointer copies
    // it, and the host (not the next event's commit) starts it afresh.
    let mut env = Env::new();
    env.start_resident();
    let prompt = "x".repeat(400_000);
    let restarts = || env.query("SELECT checkpoints FROM upkeep").first().map_or(0, |r| r[0].parse::<i64>().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    loop {
        assert_eq!(env.hook(&chronicle_e2e::event("UserPromptSubmit", serde_json::json!({ "prompt": prompt }))).code, 0);
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
        if restarts() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no restart recorded after {sent} large events");
    }
    assert_eq!(env.count("SELECT count(*) FROM events"), sent);
    // The first restart came once the log held more than 4 MiB of ~430 KB events (until the
    // database was created whole, the schema's own frames in a new log made this loop end
    // after one event, and the test could not fail).
    let wal_size = || std::fs::metadata(env.home().join("chronicle.db-wal")).unwrap().len();
    let at_restart = wal_size();
    assert!(sent >= 9 && at_restart > 4 << 20, "restarted after {sent} events at {at_restart} bytes of log");
    // Restarted, the log is written from its start again: five more events fit in the file.
    for _ in 0..5 {
        assert_eq!(env.hook(&chronicle_e2e::event("UserPromptSubmit", serde_json::json!({ "prompt": prompt }))).code, 0);
    }
    assert_eq!(env.count("SELECT count(*) FROM events"), sent + 5);
    let after = wal_size();
    assert!(
        after == at_restart && after <= 6 << 20,
        "kept at its working size ({at_restart} bytes at the restart), the log is {after} bytes"
    );
}

/// A database file deleted (or moved aside, as doctor advises for a broken one) under a running
/// host: the host does not record into the file nobody can read any more; the next event goes
/// into a new database, and so does every one after it.
#[test]
fn a_database_deleted_under_a_running_host_loses_no_later_event() {
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    env.start_resident();
    assert_eq!(env.hook(&bash_event("echo one")).code, 0);
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", env.db().display()));
    }
    for (i, cmd) in ["echo two", "echo three", "rm -rf /"].iter().enumerate() {
        let run = env.hook(&bash_event(cmd));
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(env.count("SELECT count(*) FROM events"), i as i64 + 1, "after {cmd:?}");
    }
    assert_eq!(env.count("SELECT count(*) FROM events WHERE decision = 'deny'"), 1, "the guard still decides");
}

/// A resident host that could not open its database (here a directory stands at its path; in
/// life a full disk, or a data directory being restored) tries again at its next event. It kept
/// the error: every event until it idled out was spooled, and the spool waited with them.
#[test]
fn a_resident_host_that_could_not_open_its_database_tries_again_at_the_next_event() {
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    std::fs::create_dir(env.db()).unwrap();
    env.start_resident();
    let run = env.hook(&bash_event("rm -rf /"));
    assert_eq!(run.permission_decision(), "deny", "still guarded: {}", run.stderr);
    assert!(run.stderr.contains("cannot record the event"), "{}", run.stderr);
    std::fs::remove_dir(env.db()).unwrap();
    for cmd in ["echo two", "echo three"] {
        let run = env.hook(&bash_event(cmd));
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{cmd}");
    }
    let decisions = env.query("SELECT json_extract(payload, '$.tool_input.command'), decision FROM events ORDER BY received_at_ns");
    let row = |c: &str, d: &str| vec![c.to_string(), d.to_string()];
    assert_eq!(decisions, vec![row("rm -rf /", "deny"), row("echo two", "none"), row("echo three", "none")]);
    // The two after it were the resident host's own (the first came from its spool).
    let resident = env.count(
        "SELECT count(*) FROM events e WHERE json_extract(payload, '$.tool_input.command') LIKE 'echo%'
           AND EXISTS (SELECT 1 FROM metrics m WHERE m.event_id = e.id AND m.name = 'hook.resident')",
    );
    assert_eq!(resident, 2);
}

/// The resident host a hook starts holds none of that hook's descriptors: not one Claude Code
/// passed down without close-on-exec (here a pipe whose reader waits for its end: the host
/// would hold it for as long as it serves), not the client's copy of the event.
#[test]
fn a_resident_host_started_by_a_hook_holds_none_of_its_descriptors() {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let env = Env::with_plugins(&["fixture_echo"]);
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors; both close on exec in every other child.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (reader, writer) = (fds[0], fds[1]);
    let mut hook = env.command(&["hook"]);
    // SAFETY: fcntl on a descriptor the forked child owns; async-signal-safe.
    unsafe {
        hook.pre_exec(move || {
            libc::fcntl(writer, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let mut child = hook.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&bash_event("echo inherited")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // SAFETY: our own write end, closed once.
    unsafe { libc::close(writer) };
    assert!(env.wait_resident_listening(1, Duration::from_secs(20)), "the hook started no resident host");
    let mut poll = libc::pollfd { fd: reader, events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd of ours.
    let ready = unsafe { libc::poll(&mut poll, 1, 3000) };
    assert!(ready == 1 && poll.revents & libc::POLLHUP != 0, "the pipe's write end is still open in the resident host");
    let memfds: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(p.path().join("environ")).unwrap_or_default();
            let home = format!("CHRONICLE_HOME={}", env.home().display());
            cmdline.split(|&b| b == 0).any(|a| a == b"serve") && environ.split(|&b| b == 0).any(|v| v == home.as_bytes())
        })
        .flat_map(|p| std::fs::read_dir(p.path().join("fd")).into_iter().flatten().flatten())
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.contains("memfd:chronicle-event"))
        .collect();
    assert!(memfds.is_empty(), "the resident host holds {memfds:?}");
}

/// An outcome a resident host read from the persistent cache (stored by an earlier process)
/// stays in its memory: the next identical event needs no SQLite lookup, and is still a hit
/// once the persistent entry is gone.
#[test]
fn a_resident_host_keeps_what_it_read_from_the_persistent_cache() {
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    let event = bash_event("cargo test --workspace");
    let cache_column = |env: &Env| env.query("SELECT cache FROM plugin_calls ORDER BY id DESC LIMIT 1")[0][0].clone();
    // In process: the outcome goes to the database only.
    env.set_env("CHRONICLE_RESIDENT", "0");
    assert_eq!(env.hook(&event).code, 0);
    assert_eq!(cache_column(&env), "miss");
    env.set_env("CHRONICLE_RESIDENT", "1");
    env.start_resident();
    assert_eq!(env.hook(&event).code, 0);
    assert_eq!(cache_column(&env), "hit", "from the persistent tier");
    assert_eq!(env.count("DELETE FROM cache RETURNING 1"), 1);
    assert_eq!(env.hook(&event).code, 0);
    assert_eq!(cache_column(&env), "hit", "from the host's memory");
    assert_eq!(env.resident_flags(), [false, true, true]);
}

/// The client finds its host binary, and its host's socket, by the path it was started by when
/// that names the file itself (no /proc read per event), else by /proc/self/exe. Started
/// through a linked directory, through a link to the file, or by its own path, it must reach
/// the same resident host: the socket is keyed by the binaries' identity, not their spelling.
#[test]
fn a_client_started_through_links_reaches_the_same_resident_host() {
    let env = Env::with_plugins(&["fixture_echo"]);
    let real = chronicle_bin();
    let links = tempfile::tempdir().unwrap();
    let linked_dir = links.path().join("bin-dir");
    std::os::unix::fs::symlink(real.parent().unwrap(), &linked_dir).unwrap();
    let through_dir = linked_dir.join(real.file_name().unwrap());
    std::fs::create_dir(links.path().join("file")).unwrap();
    let linked_file = links.path().join("file").join("chronicle");
    std::os::unix::fs::symlink(&real, &linked_file).unwrap();

    let spellings = [real.clone(), through_dir, linked_file];
    for round in 0..4 {
        for program in &spellings {
            let run = env.hook_at(program, &bash_event("deny-me"), Duration::ZERO);
            assert_eq!(run.permission_decision(), "deny", "round {round}, {}: {}", program.display(), run.stderr);
        }
        if round == 0 {
            assert!(env.wait_resident_listening(1, Duration::from_secs(20)), "no resident host started");
        }
    }
    assert_eq!(env.resident_sockets().len(), 1, "one resident host for every spelling: {:?}", env.resident_sockets());
    let flags = env.resident_flags();
    assert_eq!(flags.len(), 12, "every event recorded once");
    assert!(flags[3..].iter().all(|&f| f), "after the first round, the resident host answers every spelling: {flags:?}");
}
