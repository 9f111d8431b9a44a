//! Guards that cannot be switched off by accident: an oversized tool call, a permission mode in
//! which nobody is asked, a config edit that cached outcomes must see, and what is reported as
//! redacted. Each case runs through the real binary, on the resident host and in process.

use chronicle_e2e::{bash_event, c_plugin, Env, Run};
use serde_json::{json, Value};

/// The two ways an event is handled: by a resident host, and in the hook's own process.
fn both_paths(libs: &[&str]) -> Vec<(&'static str, Env)> {
    let mut resident = Env::with_plugins(libs);
    resident.set_env("HOME", "/home/dev");
    resident.start_resident();
    let mut in_process = Env::with_plugins(libs);
    in_process.set_env("HOME", "/home/dev");
    in_process.set_env("CHRONICLE_RESIDENT", "0");
    vec![("resident", resident), ("in process", in_process)]
}

const GUARDS: &[&str] = &["chronicle_bash_guard", "chronicle_file_guard"];

/// Past the default `hook.max_input_bytes` (10 MiB).
fn padding() -> String {
    "x".repeat(11 * 1024 * 1024)
}

/// A PreToolUse event in Claude Code's field order, with `tool_input` written as given (raw
/// JSON text, so padding can go before or after the field a guard reads) and `after` appended
/// as further top-level fields.
fn pre_tool_use(tool: &str, tool_input: &str, after: &str) -> Vec<u8> {
    format!(
        r#"{{"session_id":"11111111-2222-3333-4444-555555555555","transcript_path":"/tmp/t.jsonl","cwd":"/home/dev/code/acme-billing","permission_mode":"default","hook_event_name":"PreToolUse","tool_name":"{tool}","tool_input":{tool_input}{after}}}"#
    )
    .into_bytes()
}

fn reason(run: &Run) -> String {
    run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap_or("").to_owned()
}

#[test]
fn oversized_tool_calls_are_still_decided_by_the_guards() {
    let pad = padding();
    // (case, event, decision, what the reason must say)
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "padding inside the command",
            pre_tool_use("Bash", &format!(r#"{{"command":"rm -rf ~ # {pad}"}}"#), ""),
            "deny",
            "too large to check",
        ),
        (
            "padding before the command",
            pre_tool_use("Bash", &format!(r#"{{"description":"{pad}","command":"rm -rf ~"}}"#), ""),
            "deny",
            "too large to check",
        ),
        (
            "padding after the command: the guard sees it whole",
            pre_tool_use("Bash", &format!(r#"{{"command":"rm -rf ~","description":"{pad}"}}"#), ""),
            "deny",
            "bash-guard: ",
        ),
        (
            "padding after a harmless command: the guard sees it and has no opinion",
            pre_tool_use("Bash", &format!(r#"{{"command":"ls -la","description":"{pad}"}}"#), ""),
            "none",
            "",
        ),
        (
            "padding in a top-level field after tool_input",
            pre_tool_use("Bash", r#"{"command":"rm -rf ~"}"#, &format!(r#","tool_use_id":"{pad}""#)),
            "deny",
            "bash-guard: ",
        ),
        (
            "a Write of 11 MiB to authorized_keys, content first",
            pre_tool_use("Write", &format!(r#"{{"content":"{pad}","file_path":"/home/dev/.ssh/authorized_keys"}}"#), ""),
            "deny",
            "too large to check",
        ),
        (
            "a Write of 11 MiB to authorized_keys, path first",
            pre_tool_use("Write", &format!(r#"{{"file_path":"/home/dev/.ssh/authorized_keys","content":"{pad}"}}"#), ""),
            "deny",
            "too large to check",
        ),
    ];
    for (path, env) in both_paths(GUARDS) {
        for (i, (case, payload, want, says)) in cases.iter().enumerate() {
            let run = env.hook(payload);
            assert_eq!(run.code, 0, "{path}, {case}: {}", run.stderr);
            assert_eq!(run.permission_decision(), *want, "{path}, {case}: {}", run.stdout);
            if *want != "none" {
                assert!(reason(&run).contains(says), "{path}, {case}: {}", reason(&run));
            }
            // Recorded once, truncated, with the decision and a fault that says why.
            let rows = env.query(&format!("SELECT truncated, decision FROM events ORDER BY id LIMIT 1 OFFSET {i}"));
            assert_eq!(rows, vec![vec!["1".to_owned(), want.to_string()]], "{path}, {case}");
        }
        assert_eq!(env.count("SELECT COUNT(*) FROM events"), cases.len() as i64, "{path}: one row per event");
        let too_large = env.count("SELECT COUNT(*) FROM faults WHERE message LIKE 'too_large:%'");
        assert!(too_large >= 4, "{path}: each unchecked guard leaves a fault ({too_large})");
    }
}

#[test]
fn a_fail_open_plugin_that_cannot_see_the_call_stays_silent_with_a_fault() {
    // fixture-echo fails open and declares no cache key: on a cut event it is not called.
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    let run = env.hook(&pre_tool_use("Bash", &format!(r#"{{"command":"echo {}"}}"#, padding()), ""));
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "", "a fail-open plugin may stay silent");
    assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE status = 'too_large' AND decision = 'none'"), 1);
}

fn bash_in_mode(command: &str, mode: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&bash_event(command)).unwrap();
    v["permission_mode"] = json!(mode);
    v.to_string().into_bytes()
}

#[test]
fn asks_become_denies_where_nobody_can_be_asked() {
    // bash-guard asks before a force-push to a protected branch.
    let command = "git push --force origin main";
    for (path, env) in both_paths(&["chronicle_bash_guard"]) {
        for (mode, want) in [
            ("default", "ask"),
            ("plan", "ask"),
            ("acceptEdits", "ask"),
            ("bypassPermissions", "deny"),
            ("dontAsk", "deny"),
            ("auto", "deny"),
        ] {
            let run = env.hook(&bash_in_mode(command, mode));
            assert_eq!(run.permission_decision(), want, "{path}, {mode}: {}", run.stdout);
            let r = reason(&run);
            assert!(r.contains("bash-guard: "), "{path}, {mode}: the guard's own reason is kept: {r}");
            if want == "deny" {
                assert!(r.contains(&format!("nobody can be asked under permission mode {mode}")), "{path}, {mode}: {r}");
            }
        }
        let notes =
            env.count("SELECT COUNT(*) FROM faults WHERE source = 'answer' AND message LIKE 'ask from bash-guard turned into deny%'");
        assert_eq!(notes, 3, "{path}: each conversion is recorded");
    }
    // Configurable: asks pass through when the user says so.
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    std::fs::write(env.home().join("config.toml"), "[hook]\nunattended_ask = \"ask\"\n").unwrap();
    assert_eq!(env.hook(&bash_in_mode(command, "bypassPermissions")).permission_decision(), "ask");
    let show = env.run(&["config", "show"]);
    assert!(show.stdout.contains("unattended_ask = \"ask\""), "{}", show.stdout);
}

#[test]
fn a_config_edit_reaches_the_next_event_in_both_directions() {
    let command = "git push --force origin release-7";
    let without = "[plugins.bash-guard]\nprotected_branches = [\"main\"]\n";
    let with = "[plugins.bash-guard]\nprotected_branches = [\"main\", \"release-7\"]\n";
    for (path, env) in both_paths(&["chronicle_bash_guard"]) {
        let config = env.home().join("config.toml");
        for (round, (text, want)) in [(without, "none"), (with, "ask"), (without, "none"), (with, "ask")].into_iter().enumerate() {
            std::fs::write(&config, text).unwrap();
            // Twice each: the second is answered from the cache, and must agree.
            for _ in 0..2 {
                assert_eq!(env.hook(&bash_event(command)).permission_decision(), want, "{path}, round {round}");
            }
        }
        let hits = env.count("SELECT COUNT(*) FROM plugin_calls WHERE status = 'cached'");
        assert!(hits >= 4, "{path}: repeats are cache hits ({hits})");
    }
}

#[test]
fn a_c_plugins_cached_outcome_follows_its_config() {
    let env = Env::new();
    c_plugin(
        &env,
        "c_cached",
        r#"#include <stdlib.h>
#include <string.h>
static char word[64] = "terraform";
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-cached\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"PreToolUse\"],"
           "\"tool_matcher\":\"Bash\",\"failure_policy\":\"closed\",\"cache_ttl_ms\":600000,"
           "\"cache_key\":[\"/tool_input/command\"]}";
}
int chronicle_plugin_init(const char *config, size_t len) {
    (void)len;
    const char *k = strstr(config, "\"word\":\"");
    if (k) { k += 8; const char *e = strchr(k, '"'); if (!e || e - k >= 63) return 1; memcpy(word, k, e - k); word[e - k] = 0; }
    return 0;
}
char *chronicle_plugin_handle(const char *event, size_t len) {
    (void)len;
    if (!strstr(event, word)) return NULL;
    return strdup("{\"decision\":\"deny\",\"reason\":\"c-cached: no\"}");
}
void chronicle_plugin_free(char *p) { free(p); }
"#,
        &[],
    );
    let config = env.home().join("config.toml");
    for (text, want) in [("", "none"), ("[plugins.c-cached]\nword = \"kubectl\"\n", "deny"), ("", "none")] {
        std::fs::write(&config, text).unwrap();
        for _ in 0..2 {
            assert_eq!(env.hook(&bash_event("kubectl delete ns prod")).permission_decision(), want, "config {text:?}");
        }
    }
}

#[test]
fn large_payloads_are_reported_redacted_only_when_something_was_replaced() {
    for (path, env) in both_paths(&[]) {
        // Over 100 KB, with trigger words ("token", "password") but no secret.
        let clean = "the password field and the token column are documented here\n".repeat(3000);
        let secret = format!("{clean}AKIAIOSFODNN7EXAMPLE\n");
        for (content, want) in [(&clean, "0"), (&secret, "1")] {
            let payload = json!({
                "session_id": "s", "cwd": "/tmp", "hook_event_name": "PostToolUse", "tool_name": "Write",
                "tool_input": {"file_path": "/tmp/a.md", "content": content},
                "tool_response": {"filePath": "/tmp/a.md", "content": content},
            });
            assert_eq!(env.hook(payload.to_string().as_bytes()).code, 0);
            let rows = env.query("SELECT redacted, payload FROM events ORDER BY id DESC LIMIT 1");
            assert_eq!(rows[0][0], want, "{path}: {} KB payload", content.len() / 1024);
            assert!(!rows[0][1].contains("AKIAIOSFODNN7EXAMPLE"), "{path}");
            if want == "0" {
                assert_eq!(rows[0][1], payload.to_string(), "{path}: nothing replaced, stored byte-exact");
            }
        }
    }
}

/// A C plugin that promises silence without the word `kubectl` (plugin-api 1.4's
/// `only_if_text_contains`): it logs each load (its constructor) and each call to files in the
/// home, and denies whatever it is called on.
const WORDY: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void note(const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", getenv("CHRONICLE_HOME"), file);
    FILE *f = fopen(path, "a");
    if (f) { fputs("x\n", f); fclose(f); }
}
__attribute__((constructor)) static void loaded(void) { note("loads"); }
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-wordy\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"PreToolUse\"],"
           "\"only_if_text_contains\":[\"kubectl\"]}";
}
int chronicle_plugin_init(const char *config, size_t len) { (void)config; (void)len; return 0; }
char *chronicle_plugin_handle(const char *event, size_t len) {
    (void)event; (void)len;
    note("calls");
    return strdup("{\"decision\":\"deny\",\"reason\":\"c-wordy: no\"}");
}
void chronicle_plugin_free(char *p) { free(p); }
"#;

#[test]
fn a_plugin_that_promised_silence_without_its_words_is_neither_loaded_nor_called() {
    for resident in [false, true] {
        let mut env = Env::new();
        c_plugin(&env, "c_wordy", WORDY, &[]);
        if resident {
            env.start_resident();
        } else {
            env.set_env("CHRONICLE_RESIDENT", "0");
        }
        let home = env.home().to_owned();
        let lines = |file: &str| std::fs::read_to_string(home.join(file)).map_or(0, |t| t.lines().count());
        let path = if resident { "resident" } else { "in process" };
        // The first event loads it once to read its manifest (nothing indexed yet).
        assert_eq!(env.hook(&bash_event("ls -la")).permission_decision(), "none", "{path}");
        let loads_after_first = lines("loads");
        for (command, want) in
            [("git status", "none"), ("KUBECTL delete ns prod", "deny"), ("echo done", "none"), ("kubectl get pods", "deny")]
        {
            assert_eq!(env.hook(&bash_event(command)).permission_decision(), want, "{path}: {command}");
        }
        assert_eq!(lines("calls"), 2, "{path}: called on the two events with its word only");
        assert_eq!(env.count("SELECT COUNT(*) FROM plugin_calls WHERE plugin = 'c-wordy'"), 2, "{path}: no call recorded for the rest");
        assert_eq!(env.count("SELECT COUNT(*) FROM events WHERE hook_event_name = 'PreToolUse'"), 5, "{path}");
        if resident {
            assert_eq!(lines("loads"), 1, "a resident host loads it once");
        } else {
            // One process per event: the two with the word load it, the others do not.
            assert_eq!(lines("loads"), loads_after_first + 2, "in process: loaded only for the events with its word");
        }
    }
}

/// Runs `command` with `stdin` on a pipe and its descriptors 1 and 2 closed, as a careless
/// parent would start it.
fn run_with_stdout_and_stderr_closed(mut command: std::process::Command, stdin: &[u8]) -> std::process::ExitStatus {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    // SAFETY: close is async-signal-safe; the forked child owns its descriptors.
    unsafe {
        command.pre_exec(|| {
            libc::close(1);
            libc::close(2);
            Ok(())
        });
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait().unwrap()
}

/// Files under `home` that hold `needle` (the database's too, if `database`: it records the
/// answer on purpose, but never a plugin's stderr).
fn files_holding(home: &std::path::Path, needle: &[u8], database: bool) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![home.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let skipped = !database && entry.file_name().to_string_lossy().starts_with("chronicle.db");
            if path.is_dir() {
                dirs.push(path);
            } else if !skipped && std::fs::read(&path).unwrap_or_default().windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

/// A C plugin that says something on stderr at every call, and has no opinion.
const NOISY: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-noisy\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"PreToolUse\"]}";
}
int chronicle_plugin_init(const char *config, size_t len) { (void)config; (void)len; return 0; }
char *chronicle_plugin_handle(const char *event, size_t len) {
    (void)event; (void)len;
    fputs("noisy-plugin-", stderr); /* in two pieces: the line is nowhere but where it went */
    fputs("was-here\n", stderr);
    fflush(stderr);
    return strdup("{}");
}
void chronicle_plugin_free(char *p) { free(p); }
"#;

/// The client, started with its standard descriptors closed, must not write the answer, or
/// the stderr it relays from a handed-over host, into what it opens (the event's memfd, the
/// new database it builds, the socket). It points closed ones at /dev/null first, as Rust's
/// start-up did before it had its own C `main`; without that, only the order of its steps
/// (the database's file closed before the child's stderr is relayed) keeps this true.
#[test]
fn a_client_started_with_stdout_and_stderr_closed_writes_into_none_of_its_files() {
    let env = Env::with_plugins(&["chronicle_bash_guard"]);
    c_plugin(&env, "c_noisy", NOISY, &[]);
    for (i, command) in ["rm -rf /", "echo fine", "rm -rf /", "echo fine"].into_iter().enumerate() {
        // The first event is handed to a child (whose stderr the client relays) and makes the
        // database; the later ones go to the resident host it starts.
        let hook = env.command(&["hook"]);
        let status = run_with_stdout_and_stderr_closed(hook, &bash_event(command));
        assert!(status.code().is_some(), "event {i} ({command}): killed by a signal: {status:?}");
        if i == 0 {
            assert!(env.wait_resident_listening(1, std::time::Duration::from_secs(20)), "no resident host started");
        }
    }
    assert_eq!(env.count("SELECT count(*) FROM events"), 4);
    assert_eq!(env.query("PRAGMA integrity_check")[0][0], "ok");
    assert_eq!(env.query("SELECT decision FROM events ORDER BY id").concat(), ["deny", "none", "deny", "none"].map(String::from));
    let written_into =
        [files_holding(env.home(), b"permissionDecision", false), files_holding(env.home(), b"noisy-plugin-was-here", true)].concat();
    assert!(written_into.is_empty(), "the answer or the plugin's stderr went into {written_into:?}");
}

/// Whatever runs `chronicle-host` may start it with its standard descriptors closed. It then
/// must not let a file it opens become descriptor 1 or 2: the answer and its
/// messages would be written into that file (here the in-process host's in-flight marker,
/// its plugin index, its log under `logs/`). They go to /dev/null, and the event is recorded.
#[test]
fn a_host_started_with_stdout_and_stderr_closed_writes_into_none_of_its_files() {
    let env = Env::with_plugins(&["chronicle_bash_guard"]);
    // A key only the host reads: the client hands the whole hook to `chronicle-host`.
    std::fs::write(env.home().join("config.toml"), "[hook]\nresident = false\n").unwrap();
    for (i, command) in ["rm -rf /", "echo fine"].into_iter().enumerate() {
        // `chronicle-host` itself: the client's start-up already points closed descriptors at
        // /dev/null before it execs the host.
        let client = env.command(&["hook"]);
        let mut hook = std::process::Command::new(chronicle_e2e::chronicle_bin().with_file_name("chronicle-host"));
        hook.arg("hook").env("CHRONICLE_LOG", "debug");
        for (key, value) in client.get_envs() {
            match value {
                Some(v) => hook.env(key, v),
                None => hook.env_remove(key),
            };
        }
        let status = run_with_stdout_and_stderr_closed(hook, &bash_event(command));
        assert!(status.code().is_some(), "event {i} ({command}): killed by a signal: {status:?}");
    }
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
    assert_eq!(env.query("PRAGMA integrity_check")[0][0], "ok");
    let mut written_into = Vec::new();
    let mut dirs = vec![env.home().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            // The database records the answer on purpose; its integrity is checked above.
            let database = entry.file_name().to_string_lossy().starts_with("chronicle.db");
            if path.is_dir() {
                dirs.push(path);
            } else if !database && std::fs::read(&path).unwrap_or_default().windows(18).any(|w| w == b"permissionDecision") {
                written_into.push(path);
            }
        }
    }
    assert!(written_into.is_empty(), "the answer went into {written_into:?}");
}

/// A home with these plugins, indexed by a host's first event (in process), and a copy of the
/// client in a directory of its own: no `chronicle-host` beside it unless the test puts one.
fn home_and_lone_client(libs: &[&str]) -> (Env, std::path::PathBuf) {
    let mut env = Env::with_plugins(libs);
    env.set_env("CHRONICLE_RESIDENT", "0");
    assert_eq!(env.hook(&bash_event("true")).code, 0);
    let bin = env.home().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(chronicle_e2e::chronicle_bin(), bin.join("chronicle")).unwrap();
    (env, bin.join("chronicle"))
}

/// `run` was denied in bash-guard's name (its reason containing `because`), its event kept in
/// the spool and recorded when asked to (with `before` events already there).
fn assert_denied_for_bash_guard_and_kept(env: &Env, run: &Run, because: &str, before: i64) {
    assert_eq!((run.code, run.permission_decision()), (0, "deny".to_string()), "{}", run.stderr);
    assert!(reason(run).contains(&format!("bash-guard could not check this ({because}")), "{}", reason(run));
    assert!(run.stderr.contains("the event is kept in"), "{}", run.stderr);
    let ingest = env.run(&["spool", "ingest"]);
    assert!(ingest.stdout.starts_with("ingested 1 event(s)"), "{}", ingest.stdout);
    assert_eq!(env.count("SELECT count(*) FROM events"), before + 1);
}

/// No `chronicle-host` can run (its binary gone past an upgrade's patience): the event is kept
/// in the spool and reaches no plugin. A guard that fails closed is not switched off by that:
/// the client denies, from the plugin index, what such a guard wants, naming it and why; what
/// only a fail-open guard wants is answered with nothing. Every event is still recorded once
/// the host is back.
#[test]
fn without_a_host_the_events_a_fail_closed_guard_wants_are_denied_not_waved_through() {
    let (env, client) = home_and_lone_client(&["chronicle_bash_guard", "chronicle_file_guard", "chronicle_secret_guard"]);
    let events = [
        bash_event("ls -la"),
        pre_tool_use("Read", r#"{"file_path":"/home/dev/code/acme-billing/README.md"}"#, ""),
        chronicle_e2e::event("UserPromptSubmit", json!({"prompt": "what does this repo do?"})),
        chronicle_e2e::event("SessionStart", json!({"source": "startup"})),
    ];
    // Each client waits out an upgrade's patience (2 s) before it gives up on the host.
    let runs: Vec<Run> = std::thread::scope(|s| {
        let clients: Vec<_> = events.iter().map(|e| s.spawn(|| env.hook_at(&client, e, std::time::Duration::ZERO))).collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (run, guard) in [(&runs[0], "bash-guard"), (&runs[1], "file-guard")] {
        assert_eq!((run.code, run.permission_decision()), (0, "deny".to_string()), "{}", run.stderr);
        let why = reason(run);
        assert!(why.contains(&format!("{guard} could not check this (cannot run ")) && why.contains("fail closed"), "{why}");
        assert!(run.stderr.contains("the event is kept in"), "{}", run.stderr);
    }
    for run in &runs[2..] {
        assert_eq!((run.code, run.stdout.as_str()), (0, ""), "no fail-closed guard wants it: {}", run.stderr);
        assert!(run.stderr.contains("the event is kept in"), "{}", run.stderr);
    }
    let ingest = env.run(&["spool", "ingest"]);
    assert!(ingest.stdout.starts_with("ingested 4 event(s)"), "{}", ingest.stdout);
    assert_eq!(env.count("SELECT count(*) FROM events"), 5);
}

/// A guard disabled in the config is not answered for either.
#[test]
fn without_a_host_a_disabled_guard_denies_nothing() {
    let (env, client) = home_and_lone_client(&["chronicle_bash_guard"]);
    std::fs::write(env.home().join("config.toml"), "disabled_plugins = [\"bash-guard\"]\n").unwrap();
    let run = env.hook_at(&client, &bash_event("ls -la"), std::time::Duration::ZERO);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
}

/// The same when the config names a setting only `chronicle-host` reads, so that the client
/// hands it the whole hook, stdin unread: when it cannot run, the client reads the event and
/// answers for the fail-closed guards itself.
#[test]
fn without_a_host_a_config_only_the_host_reads_still_gets_the_guards_denial() {
    let (env, client) = home_and_lone_client(&["chronicle_bash_guard"]);
    std::fs::write(env.home().join("config.toml"), "[hook]\nmax_input_bytes = 5000000\n").unwrap();
    let run = env.hook_at(&client, &bash_event("ls -la"), std::time::Duration::ZERO);
    assert_denied_for_bash_guard_and_kept(&env, &run, "cannot run ", 1);
}

/// An event past `hook.max_input_bytes` when no host can run: the client reads the fields that
/// arrived before the cut, as a host would, and a fail-closed guard's denial still stands.
#[test]
fn without_a_host_an_oversized_call_is_denied_for_a_fail_closed_guard() {
    let (env, client) = home_and_lone_client(&["chronicle_bash_guard"]);
    let oversized = pre_tool_use("Bash", &format!(r#"{{"command":"ls","description":"{}"}}"#, padding()), "");
    let run = env.hook_at(&client, &oversized, std::time::Duration::ZERO);
    assert_denied_for_bash_guard_and_kept(&env, &run, "cannot run ", 1);
}

/// A half-copied `chronicle-host` (an upgrade by `cp` caught mid-write) starts and dies at once,
/// every time: after the client's last attempt the event is kept and the fail-closed guard's
/// denial stands, as when no host can start at all (it was exit 1 and the event lost).
#[test]
fn a_half_copied_host_binary_loses_no_event_and_switches_no_guard_off() {
    let (env, client) = home_and_lone_client(&["chronicle_bash_guard"]);
    let bin = client.parent().unwrap();
    let host = std::fs::read(chronicle_e2e::target_dir().join("chronicle-host")).unwrap();
    // Short of its code and data (the debug build's loadable segments end past 20 MB, the
    // release build's past 13 MB): it dies as it starts.
    std::fs::write(bin.join("chronicle-host"), &host[..4 << 20]).unwrap();
    chronicle_e2e::set_mode(&bin.join("chronicle-host"), 0o755);
    let run = env.hook_at(&client, &bash_event("ls -la"), std::time::Duration::ZERO);
    assert_denied_for_bash_guard_and_kept(&env, &run, "the host process died 4 times", 1);
}
