//! A plugin that crashes costs that plugin, never the answer or the event: C plugins written
//! from the public header that segfault, abort, overflow their stack or call `exit()`, and a
//! plugin file caught half-copied — each on the resident host and in process, beside
//! bash-guard, whose deny must survive, with exact row counts, also in the middle of a group
//! commit. And plugins that keep timing out are suspended.

use chronicle_e2e::{bash_event, c_plugin, plugin_lib, set_mode, Env};

const CRASH_C: &str = r#"
#include <stdlib.h>
#include <string.h>
#include <signal.h>
static char mode[16] = "segv";
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-crash\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"PreToolUse\"],"
           "\"tool_matcher\":\"Bash\",\"failure_policy\":\"" POLICY "\"}";
}
int chronicle_plugin_init(const char *config, size_t len) {
    (void)len;
    const char *k = strstr(config, "\"mode\":\"");
    if (k) { k += 8; const char *e = strchr(k, '"'); if (!e || e - k >= 15) return 1; memcpy(mode, k, e - k); mode[e - k] = 0; }
    return 0;
}
static int deep(int n) { volatile char buf[4096]; buf[0] = (char)n; return deep(n + 1) + buf[0]; }
char *chronicle_plugin_handle(const char *event, size_t len) {
    if (!strcmp(mode, "segv")) { volatile int *p = NULL; *p = 1; }
    if (!strcmp(mode, "abort")) abort();
    if (!strcmp(mode, "overflow")) return (char *)(long)deep(0);
    if (!strcmp(mode, "exit")) exit(0);
    if (!strcmp(mode, "boom"))
        for (size_t i = 0; i + 4 <= len; i++)
            if (!memcmp(event + i, "boom", 4)) { volatile int *p = NULL; *p = 1; }
    return NULL;
}
void chronicle_plugin_free(char *p) { free(p); }
"#;

/// Compiles the crashing plugin into `env`'s plugin directory, failing `policy`-wise.
fn install_crasher(env: &Env, policy: &str) {
    c_plugin(env, "c_crash", CRASH_C, &[&format!("-DPOLICY=\"{policy}\"")]);
}

/// An environment with bash-guard and the crashing plugin; the resident host's pid when `path`
/// is "resident".
fn env_for(path: &str, mode: &str, policy: &str) -> (Env, Option<u32>) {
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    env.set_env("HOME", "/home/dev");
    install_crasher(&env, policy);
    std::fs::write(env.home().join("config.toml"), format!("[plugins.c-crash]\nmode = \"{mode}\"\n")).unwrap();
    if path == "in process" {
        env.set_env("CHRONICLE_RESIDENT", "0");
        (env, None)
    } else {
        let pid = env.start_resident();
        (env, Some(pid))
    }
}

#[test]
fn a_crashing_plugin_is_quarantined_and_the_guards_deny_survives() {
    for path in ["resident", "in process"] {
        for (mode, death) in [("segv", "SIGSEGV"), ("abort", "SIGABRT"), ("overflow", "SIGSEGV"), ("exit", "called exit")] {
            let (env, resident) = env_for(path, mode, "open");
            let case = format!("{path}, {mode}");
            let run = env.hook(&bash_event("rm -rf /"));
            assert_eq!(run.code, 0, "{case}: {}", run.stderr);
            assert_eq!(run.permission_decision(), "deny", "{case}: bash-guard's deny survives: {}", run.stdout);
            assert_eq!(env.count("SELECT COUNT(*) FROM events"), 1, "{case}: exactly one row");
            let crash = env.query("SELECT plugin, message FROM faults WHERE message LIKE 'crash:%'");
            assert_eq!(crash.len(), 1, "{case}: one crash fault: {crash:?}");
            assert_eq!(crash[0][0], "c-crash", "{case}: attributed");
            assert!(crash[0][1].contains(death) && crash[0][1].contains("quarantined"), "{case}: {}", crash[0][1]);
            if let Some(pid) = resident {
                // The resident host's own death is attributed: no second process had to die.
                assert!(crash[0][1].contains(&format!("(pid {pid})")), "{case}: {}", crash[0][1]);
            }

            // Quarantined: not loaded again; a fail-open plugin then has no opinion.
            let run = env.hook(&bash_event("ls"));
            assert_eq!(run.code, 0, "{case}: {}", run.stderr);
            assert_eq!(run.stdout, "", "{case}");
            assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2, "{case}: exactly two rows");
            assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE plugin = 'c-crash' AND status = 'quarantined'"), 2, "{case}");
            let list = env.run(&["plugins", "list", "--json"]);
            assert!(list.stdout.contains("\"status\":\"quarantined\""), "{case}: {}", list.stdout);

            // A new file lifts the quarantine (here: the same code, rebuilt, which crashes again).
            install_crasher(&env, "open");
            let run = env.hook(&bash_event("rm -rf /"));
            assert_eq!(run.permission_decision(), "deny", "{case}");
            assert_eq!(env.count("SELECT COUNT(*) FROM events"), 3, "{case}");
            assert_eq!(
                env.count("SELECT COUNT(*) FROM faults WHERE message LIKE 'crash:%'"),
                2,
                "{case}: called, crashed, quarantined again"
            );
        }
    }
}

/// A plugin that kills the resident host while a group of events is being handled (group
/// commit: nothing of the group is recorded or answered yet): every client of the group, and
/// one still queued, gets its answer from a handover child, each event is recorded once, and
/// the crash is attributed to the plugin.
#[test]
fn a_crash_in_the_middle_of_a_group_loses_and_doubles_nothing() {
    let (env, pid) = env_for("resident", "boom", "open");
    let pid = pid.unwrap() as i32;
    assert_eq!(env.hook(&bash_event("echo warm")).code, 0);
    // SAFETY: signalling this test's own resident host.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let commands = ["rm -rf / # first", "echo boom", "ls # last"];
    let clients: Vec<_> = commands
        .iter()
        .map(|c| {
            let client = env.start_hook(&bash_event(c));
            // In this order at the stopped host's socket: the next starts once this one is queued.
            client.wait_until_awaiting_answer(std::time::Duration::from_secs(30));
            client
        })
        .collect();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let runs: Vec<_> = clients.into_iter().map(chronicle_e2e::PendingRun::wait).collect();
    for (c, run) in commands.iter().zip(&runs) {
        assert_eq!(run.code, 0, "{c}: {}", run.stderr);
    }
    assert_eq!(runs[0].permission_decision(), "deny", "bash-guard's deny of the group's first event survives: {}", runs[0].stdout);
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 4, "each event once");
    assert_eq!(env.count("SELECT COUNT(DISTINCT invocation_id) FROM events"), 4);
    // The first event was handled by the host but not yet recorded when it died with the
    // group: its row comes from its client's handover child, not from the resident host.
    let first_by_host = "SELECT COUNT(*) FROM events e JOIN metrics m ON m.event_id = e.id AND m.name = 'hook.resident'
                         WHERE json_extract(e.payload, '$.tool_input.command') = 'rm -rf / # first'";
    assert_eq!(env.count(first_by_host), 0, "the group's first event was recorded by the host that died");
    let crash = env.query("SELECT plugin, message FROM faults WHERE message LIKE 'crash:%'");
    // Everything that says how the crasher came to run twice, should it.
    let story = || {
        let faults = env.query("SELECT source, plugin, message FROM faults ORDER BY rowid");
        let index = std::fs::read_to_string(env.home().join("plugin-index.json")).unwrap_or_default();
        format!("faults {faults:?}\nindex {index}")
    };
    assert_eq!(crash.len(), 1, "one crash fault: {crash:?}\n{}", story());
    assert_eq!(crash[0][0], "c-crash");
    assert!(crash[0][1].contains(&format!("(pid {pid})")), "the resident host's death is attributed: {}", crash[0][1]);
}

/// Three clients at once against the resident host `pid`: it starts a worker thread.
fn start_a_worker_thread(env: &Env, pid: u32) {
    std::thread::scope(|s| {
        for i in 0..3 {
            s.spawn(move || assert_eq!(env.hook(&bash_event(&format!("echo warm {i}"))).code, 0));
        }
    });
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten();
    let workers = tasks.filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("chronicle-srv"))).count();
    assert!(workers >= 1, "three clients at once started no worker thread");
}

/// Sends `first`, and `second` 100 ms after the host has it (while the first is still being
/// handled, on the other serving thread); returns both runs.
fn one_then_another(env: &Env, first: &str, second: &str) -> (chronicle_e2e::Run, chronicle_e2e::Run) {
    let first = env.start_hook(&bash_event(first));
    // From the host's having it, not from the client's start, which a loaded machine can slow.
    first.wait_until_awaiting_answer(std::time::Duration::from_secs(30));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let second = env.start_hook(&bash_event(second));
    (first.wait(), second.wait())
}

/// A plugin that kills the resident host while another serving thread is inside another
/// plugin: both events are answered (by handover children) and recorded once each, the crasher
/// is quarantined, and the plugin caught running beside it is named but not blamed.
#[test]
fn a_crash_on_one_serving_thread_blames_only_the_crasher() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("SKIP: one core, so a host starts no worker threads");
        return;
    }
    let mut env = Env::with_plugins(&["fixture_busy"]);
    install_crasher(&env, "open");
    let config = "[plugins.c-crash]\nmode = \"boom\"\n[plugins.fixture-busy]\nsleep_us = 300000\n";
    std::fs::write(env.home().join("config.toml"), config).unwrap();
    let pid = env.start_resident();
    start_a_worker_thread(&env, pid);
    // The slow event is inside fixture-busy (300 ms) on one thread when the other takes boom.
    let (slow, boom) = one_then_another(&env, "echo slow", "echo boom");
    assert_eq!((slow.code, slow.stdout.as_str()), (0, ""), "{}", slow.stderr);
    assert_eq!((boom.code, boom.stdout.as_str()), (0, ""), "{}", boom.stderr);
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 5, "each event once");
    assert_eq!(env.count("SELECT COUNT(DISTINCT invocation_id) FROM events"), 5);
    let crash = env.query("SELECT plugin, message FROM faults WHERE message LIKE 'crash:%'");
    assert_eq!(crash.len(), 1, "one crash fault: {crash:?}");
    assert_eq!(crash[0][0], "c-crash");
    assert!(crash[0][1].contains(&format!("(pid {pid})")), "the resident host's death is attributed: {}", crash[0][1]);
    let beside = env.query("SELECT plugin, message FROM faults WHERE message LIKE '%another plugin killed the process%'");
    assert_eq!(beside.len(), 1, "the plugin on the other thread is named once: {beside:?}");
    assert_eq!(beside[0][0], "fixture-busy");
    assert!(beside[0][1].contains("not quarantined"), "{}", beside[0][1]);
    let list = env.run(&["plugins", "list", "--json"]);
    // One JSON object per plugin file, one per line.
    let plugins: Vec<serde_json::Value> = list.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let status = |name: &str| plugins.iter().find(|p| p["name"] == name).map(|p| p["status"].clone());
    assert_eq!(status("c-crash"), Some("quarantined".into()), "{}", list.stdout);
    assert_ne!(status("fixture-busy"), Some("quarantined".into()), "{}", list.stdout);
}

/// A plugin that hangs on one serving thread must not decide the events that wait for its
/// turn on another: those never reached the plugin, so they are handed back to their clients
/// and decided afresh (as if the host had retired before taking them), not denied by the
/// hung plugin's fail-closed policy, and not counted towards its suspension.
#[test]
fn an_event_waiting_for_a_hung_plugins_turn_is_handed_back_not_denied() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        eprintln!("SKIP: one core, so a host starts no worker threads");
        return;
    }
    let mut env = Env::with_plugins(&["fixture_busy", "fixture_hang"]);
    std::fs::write(env.home().join("config.toml"), "[plugins.fixture-busy]\nsleep_us = 50000\n").unwrap();
    let pid = env.start_resident();
    start_a_worker_thread(&env, pid);
    // hang-me: fixture-busy (50 ms), then fixture-hang hangs (its deadline is 150 ms). On the
    // other thread: fixture-busy, then a wait for fixture-hang's turn that never comes.
    let (hung, waiting) = one_then_another(&env, "hang-me", "echo waiting");
    assert_eq!(hung.permission_decision(), "deny", "the hung plugin fails closed: {}", hung.stdout);
    assert_eq!((waiting.code, waiting.stdout.as_str()), (0, ""), "decided as without the hang: {}", waiting.stderr);
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 5, "each event once");
    assert_eq!(env.count("SELECT COUNT(DISTINCT invocation_id) FROM events"), 5);
    let decided = "SELECT c.status FROM plugin_calls c JOIN events e ON e.id = c.event_id
                   WHERE c.plugin = 'fixture-hang' AND json_extract(e.payload, '$.tool_input.command') = 'echo waiting'";
    assert_eq!(env.query(decided), vec![vec!["ok".to_owned()]], "the waiting event was decided by fixture-hang itself");
    assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE plugin = 'fixture-hang' AND status = 'timeout'"), 1);
}

#[test]
fn a_fail_closed_plugin_that_crashes_denies_with_its_name() {
    for path in ["resident", "in process"] {
        let (env, _) = env_for(path, "segv", "closed");
        for command in ["ls", "git status"] {
            let run = env.hook(&bash_event(command));
            assert_eq!(run.permission_decision(), "deny", "{path}: {}", run.stdout);
            assert!(run.stdout.contains("c-crash"), "{path}: the reason names the plugin: {}", run.stdout);
        }
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2, "{path}");
    }
}

#[test]
fn a_half_copied_plugin_file_is_refused_before_it_is_mapped() {
    for path in ["resident", "in process"] {
        let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
        env.set_env("HOME", "/home/dev");
        let whole = std::fs::read(plugin_lib("chronicle_file_guard")).unwrap();
        let half = env.plugin_dir().join("libchronicle_file_guard.so");
        std::fs::write(&half, &whole[..300_000.min(whole.len() / 2)]).unwrap();
        set_mode(&half, 0o644);
        if path == "in process" {
            env.set_env("CHRONICLE_RESIDENT", "0");
        } else {
            env.start_resident();
        }
        let run = env.hook(&bash_event("rm -rf /"));
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        assert_eq!(run.permission_decision(), "deny", "{path}");
        // An event the half file would not even subscribe to.
        assert_eq!(env.hook(&chronicle_e2e::event("Stop", serde_json::json!({}))).code, 0, "{path}");
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2, "{path}");
        assert!(env.count("SELECT COUNT(*) FROM faults WHERE message LIKE '%incomplete file%'") >= 1, "{path}");
        for args in [&["plugins", "list"][..], &["plugins", "check", half.to_str().unwrap()], &["doctor"]] {
            let run = env.run(args);
            assert!(matches!(run.code, 0 | 1), "{path}: {args:?} ended with {}: {}", run.code, run.stderr);
            assert!(run.stdout.contains("incomplete file"), "{path}: {args:?}: {}", run.stdout);
        }
    }
}

#[test]
fn a_plugin_that_keeps_timing_out_is_suspended() {
    for path in ["resident", "in process"] {
        let mut env = Env::with_plugins(&["fixture_hang"]);
        if path == "in process" {
            env.set_env("CHRONICLE_RESIDENT", "0");
        }
        // fixture-hang fails closed with a 150 ms deadline.
        for i in 0..3 {
            let run = env.hook(&bash_event("hang-me"));
            assert_eq!(run.permission_decision(), "deny", "{path}, call {i}");
        }
        let started = std::time::Instant::now();
        let run = env.hook(&bash_event("hang-me"));
        let took = started.elapsed();
        assert_eq!(run.permission_decision(), "deny", "{path}: suspended, its failure policy still answers");
        assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE status = 'suspended'"), 1, "{path}");
        assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE status = 'timeout'"), 3, "{path}");
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 4, "{path}");
        let list = env.run(&["plugins", "list", "--json"]);
        assert!(list.stdout.contains("\"status\":\"suspended\""), "{path}: {}", list.stdout);
        // Not a timing assertion on the machine: the suspended call waits for no deadline.
        assert!(run.stdout.contains("suspended"), "{path}: {} ({took:?})", run.stdout);
    }
}

#[test]
fn a_plugin_reads_the_environment_of_the_invocation_it_serves() {
    let mut env = Env::new();
    c_plugin(
        &env,
        "c_env",
        r#"#include <stdio.h>
#include <stdlib.h>
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-env\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"SessionStart\"],\"failure_policy\":\"open\"}";
}
int chronicle_plugin_init(const char *c, size_t n) { (void)c; (void)n; return 0; }
char *chronicle_plugin_handle(const char *e, size_t n) {
    (void)e; (void)n;
    const char *f = getenv("CLAUDE_ENV_FILE");
    char *out = malloc(512);
    snprintf(out, 512, "{\"additional_context\":\"env file: %s\"}", f ? f : "none");
    return out;
}
void chronicle_plugin_free(char *p) { free(p); }
"#,
        &[],
    );
    let start = chronicle_e2e::event("SessionStart", serde_json::json!({"source": "startup"}));
    let context = |env: &Env| env.hook(&start).json()["hookSpecificOutput"]["additionalContext"].as_str().unwrap_or("").to_owned();
    let mut seen = Vec::new();
    for (session, rounds, hosts) in [("a", 3, 1), ("b", 3, 2), ("a", 1, 2)] {
        env.extra_env.retain(|(k, _)| k != "CLAUDE_ENV_FILE" && k != "CLAUDE_CODE_SESSION_ID");
        env.set_env("CLAUDE_ENV_FILE", &format!("/tmp/session-{session}.env"));
        env.set_env("CLAUDE_CODE_SESSION_ID", session);
        for _ in 0..rounds {
            let got = context(&env);
            assert_eq!(got, format!("env file: /tmp/session-{session}.env"), "session {session}");
            seen.push(got);
            // A session's first event starts its host after answering: let it listen (on a
            // busy machine the next event can otherwise come first and be handled in process).
            env.wait_resident_listening(hosts, std::time::Duration::from_secs(20));
        }
    }
    // The later events of each session were served by a resident host (not only in process).
    let flags = env.resident_flags();
    assert!(flags.iter().filter(|f| **f).count() >= 4, "{flags:?}");
}

#[test]
fn a_rust_plugin_calling_process_exit_is_quarantined_and_the_deny_survives() {
    for path in ["resident", "in process"] {
        let mut env = Env::with_plugins(&["fixture_panic", "chronicle_bash_guard"]);
        env.set_env("HOME", "/home/dev");
        if path == "in process" {
            env.set_env("CHRONICLE_RESIDENT", "0");
        } else {
            env.start_resident();
        }
        // exit(0) with nothing on stdout would read as "no opinion": the deny must survive.
        let run = env.hook(&bash_event("rm -rf / # exit-me"));
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        assert_eq!(run.permission_decision(), "deny", "{path}: {}", run.stdout);
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 1, "{path}");
        let crash = env.query("SELECT plugin, message FROM faults WHERE message LIKE 'crash:%'");
        assert_eq!(crash.len(), 1, "{path}: {crash:?}");
        assert_eq!(crash[0][0], "fixture-panic");
        assert!(crash[0][1].contains("called exit"), "{path}: {}", crash[0][1]);
        assert_eq!(env.hook(&bash_event("echo fine # exit-me")).code, 0, "{path}: quarantined, not called");
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2, "{path}");
    }
}

#[test]
fn a_library_that_crashes_while_loading_costs_neither_the_hook_nor_the_cli() {
    for path in ["resident", "in process"] {
        let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
        env.set_env("HOME", "/home/dev");
        let boom = "__attribute__((constructor)) static void boom(void) { *(volatile int *)0 = 1; }\nconst char *chronicle_plugin_manifest(void) { return \"{}\"; }\n";
        let lib = c_plugin(&env, "boom", boom, &[]);
        if path == "in process" {
            env.set_env("CHRONICLE_RESIDENT", "0");
        } else {
            env.start_resident();
        }
        for i in 0..2 {
            let run = env.hook(&bash_event("rm -rf /"));
            assert_eq!(run.code, 0, "{path}, event {i}: {}", run.stderr);
            assert_eq!(run.permission_decision(), "deny", "{path}, event {i}");
        }
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2, "{path}");
        // Every host that died loading it is attributed (a resident host's warm-up loads every
        // plugin, and a new host may start before the first death is claimed) ...
        let crashes = env.count("SELECT COUNT(*) FROM faults WHERE message LIKE 'crash:%during load%'");
        assert!(crashes >= 1, "{path}");
        // ... and once it is quarantined, nothing loads it again.
        for _ in 0..3 {
            assert_eq!(env.hook(&bash_event("rm -rf /")).permission_decision(), "deny", "{path}");
        }
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), 5, "{path}");
        assert_eq!(env.count("SELECT COUNT(*) FROM faults WHERE message LIKE 'crash:%'"), crashes, "{path}: no crash after the quarantine");
        for args in [&["plugins", "list"][..], &["plugins", "check", lib.to_str().unwrap()], &["doctor"]] {
            let run = env.run(args);
            assert!(matches!(run.code, 0 | 1), "{path}: {args:?} ended with {}: {}", run.code, run.stderr);
            assert!(
                run.stdout.contains("quarantined") || run.stdout.contains("killed the process with SIGSEGV"),
                "{path}: {args:?}: {}",
                run.stdout
            );
        }
        // Probed in a child even before any hook ran into it.
        let fresh = Env::new();
        let copy = fresh.plugin_dir().join("libboom.so");
        std::fs::copy(&lib, &copy).unwrap();
        set_mode(&copy, 0o644);
        let check = fresh.run(&["plugins", "check", copy.to_str().unwrap()]);
        assert_eq!(check.code, 1, "{}", check.stderr);
        assert!(check.stdout.contains("loading it killed the process with SIGSEGV"), "{}", check.stdout);
    }
}

/// A plugin whose library takes its time to unload (a destructor that sleeps, as a plugin that
/// flushes or joins something at exit might): a handed-over event is answered once its host
/// announces its end, not when the process has finished exiting.
#[test]
fn a_handed_over_answer_does_not_wait_for_the_process_to_exit() {
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    c_plugin(
        &env,
        "c_slow_exit",
        r#"#include <stdlib.h>
#include <unistd.h>
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-slow-exit\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"PreToolUse\"]}";
}
int chronicle_plugin_init(const char *config, size_t len) { (void)config; (void)len; return 0; }
char *chronicle_plugin_handle(const char *event, size_t len) { (void)event; (void)len; return NULL; }
void chronicle_plugin_free(char *p) { free(p); }
__attribute__((destructor)) static void unloading(void) { usleep(3000 * 1000); }
"#,
        &[],
    );
    for (command, want) in [("rm -rf /", "deny"), ("ls", "none")] {
        let run = env.hook(&bash_event(command));
        assert_eq!((run.code, run.permission_decision()), (0, want.to_owned()), "{command}: {}", run.stderr);
        assert!(run.elapsed < std::time::Duration::from_millis(2500), "{command}: waited for the exit ({:?})", run.elapsed);
        assert!(!run.stderr.contains('\u{1}'), "{command}: the end mark reached Claude Code: {:?}", run.stderr);
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM events"), 2, "recorded before answered");
    assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE plugin = 'c-slow-exit'"), 2);
}
