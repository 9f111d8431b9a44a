//! Deliberately bad plugins: the host survives each one, answers correctly, and records it.

use std::time::Duration;

use chronicle_e2e::{bash_event, set_mode, Env};

#[test]
fn a_panicking_plugin_is_recorded_and_the_others_still_answer() {
    let env = Env::with_plugins(&["fixture_panic", "fixture_echo"]);
    let run = env.hook(&bash_event("panic-me && deny-me"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.permission_decision(), "deny");
    let rows = env.query("SELECT status, fault FROM plugin_calls WHERE plugin = 'fixture-panic'");
    assert_eq!(rows[0][0], "panic");
    assert!(rows[0][1].contains("fixture panic on purpose"), "{rows:?}");
    // RUST_BACKTRACE=1 is set by the harness: the quiet panic hook keeps the call cheap.
    let wall_ms: f64 = env.query("SELECT wall_ns / 1e6 FROM plugin_calls WHERE plugin = 'fixture-panic'")[0][0].parse().unwrap();
    assert!(wall_ms < 50.0, "a caught panic took {wall_ms} ms: is the backtrace being captured?");
}

#[test]
fn a_panic_in_a_fail_open_plugin_is_no_opinion() {
    let env = Env::with_plugins(&["fixture_panic"]);
    let run = env.hook(&bash_event("panic-me"));
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
}

#[test]
fn a_hung_plugin_is_abandoned_at_its_deadline_and_fails_closed() {
    let env = Env::with_plugins(&["fixture_hang", "fixture_echo"]);
    let run = env.hook(&bash_event("hang-me"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.permission_decision(), "deny");
    assert!(run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().contains("fail closed"));
    // Its deadline is 150 ms; the host answered long before the plugin would ever return.
    assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);
    let rows = env.query("SELECT status FROM plugin_calls ORDER BY id");
    assert_eq!(rows, vec![vec!["ok".to_string()], vec!["timeout".to_string()]]);
}

#[test]
fn an_abi_mismatch_is_refused_in_one_line_that_says_what_to_do() {
    let env = Env::with_plugins(&["fixture_abi_mismatch", "fixture_echo"]);
    let run = env.hook(&bash_event("deny-me"));
    assert_eq!(run.permission_decision(), "deny", "the other plugin still runs");
    let faults = env.query("SELECT message FROM faults WHERE source = 'plugin_load'");
    assert_eq!(faults.len(), 1);
    let msg = &faults[0][0];
    assert!(!msg.contains('\n') && msg.len() < 400, "not condensed: {msg}");
    assert!(msg.contains("libfixture_abi_mismatch") && msg.contains("rebuild"), "{msg}");

    let file = env.plugin_dir().join("libfixture_abi_mismatch.so");
    let check = env.run(&["plugins", "check", file.to_str().unwrap()]);
    assert_eq!(check.code, 1);
    assert!(check.stdout.starts_with("refused:") && check.stdout.contains("rebuild"), "{}", check.stdout);
}

#[test]
fn a_plugins_layout_is_compared_once_per_host_build_and_never_for_a_refused_file() {
    // Comparing an abi_stable root module's layout with the host's costs 70-135 µs a load; the
    // plugin index remembers which build found a file compatible, and that build loads the
    // same file again without comparing. Another build (or an older index) compares again.
    let mut env = Env::with_plugins(&["fixture_abi_mismatch", "fixture_echo"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    let version = env.run(&["--version"]).stdout;
    let checker =
        format!("{} abi 1", version.trim().strip_prefix("chronicle-host ").or(version.trim().strip_prefix("chronicle ")).unwrap());
    let index_file = env.home().join("plugin-index.json");
    let entry = |name: &str| -> serde_json::Value {
        let all: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&index_file).unwrap()).unwrap();
        all.into_iter().find(|e| e["path"].as_str().unwrap().ends_with(name)).unwrap()
    };
    assert_eq!(env.hook(&bash_event("deny-me")).permission_decision(), "deny");
    assert_eq!(entry("libfixture_echo.so")["layout_checked_by"], checker.as_str());
    let refused = entry("libfixture_abi_mismatch.so");
    assert!(refused["error"].as_str().unwrap().contains("rebuild") && refused.get("layout_checked_by").is_none(), "{refused}");
    // An entry another build wrote: compared again, and the entry now names this build.
    let text = std::fs::read_to_string(&index_file).unwrap().replace(&checker, "chronicle 0.0.0 (commit other) abi 1");
    std::fs::write(&index_file, text).unwrap();
    assert_eq!(env.hook(&bash_event("deny-me too")).permission_decision(), "deny");
    assert_eq!(entry("libfixture_echo.so")["layout_checked_by"], checker.as_str());
    // The file replaced by the incompatible one (a new inode): the entry no longer describes
    // it, so it is compared, and refused.
    let echo = env.plugin_dir().join("libfixture_echo.so");
    let tmp = env.plugin_dir().join(".swap");
    std::fs::copy(env.plugin_dir().join("libfixture_abi_mismatch.so"), &tmp).unwrap();
    std::fs::rename(&tmp, &echo).unwrap();
    let run = env.hook(&bash_event("deny-me again"));
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    assert!(entry("libfixture_echo.so")["error"].as_str().unwrap().contains("rebuild"));
    assert_eq!(env.count("SELECT count(*) FROM events"), 3);
}

#[test]
fn a_known_guard_that_fails_to_load_is_answered_for_by_its_failure_policy() {
    // The plugin index keeps each file's manifest, so a process decides who wants an event
    // without loading anything; if a file it knows then fails to load (here its first bytes
    // spoiled in place, size, inode and mtime kept), the guard must not drop out quietly.
    // fixture-garbage is loaded before its call; bash-guard (cacheable) only on a cache miss.
    let mut env = Env::with_plugins(&["fixture_garbage", "chronicle_bash_guard"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    let first = env.hook(&bash_event("ls"));
    assert_eq!((first.code, first.stdout.as_str()), (0, ""), "{}", first.stderr);
    for lib in ["libfixture_garbage.so", "libchronicle_bash_guard.so"] {
        let file = env.plugin_dir().join(lib);
        let before = std::fs::metadata(&file).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[0u8; 64], 0).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        drop(f);
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!((after.len(), after.modified().unwrap()), (before.len(), before.modified().unwrap()));
    }
    let run = env.hook(&bash_event("ls -la"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.permission_decision(), "deny", "{}", run.stdout);
    let reason = run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().to_string();
    assert!(reason.contains("fixture-garbage") && reason.contains("bash-guard") && reason.contains("fail closed"), "{reason}");
    let calls =
        env.query("SELECT plugin, status, decision FROM plugin_calls WHERE event_id = (SELECT max(id) FROM events) ORDER BY plugin");
    let row = |p: &str| vec![p.to_string(), "load_error".to_string(), "deny".to_string()];
    assert_eq!(calls, vec![row("bash-guard"), row("fixture-garbage")]);
    let faults = env.query("SELECT plugin FROM faults WHERE source = 'plugin_load' ORDER BY plugin");
    assert_eq!(faults, vec![vec!["bash-guard".to_string()], vec!["fixture-garbage".to_string()]]);
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
}

/// A guard whose file is replaced by one that does not load (a copy cut short, by a full disk
/// say; a file others can write) is answered for by the manifest that last loaded from its
/// path, until the file loads again or is removed: not quietly gone until someone looks.
#[test]
fn a_guard_replaced_by_a_file_that_does_not_load_still_fails_closed() {
    let mut env = Env::with_plugins(&["fixture_garbage"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    let decision = |env: &Env, command: &str| {
        let run = env.hook(&bash_event(command));
        assert_eq!(run.code, 0, "{}", run.stderr);
        if run.stdout.is_empty() {
            return "none".to_string();
        }
        let reason = run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().to_owned();
        assert!(reason.contains("fixture-garbage") && reason.contains("fail closed"), "{reason}");
        run.permission_decision()
    };
    assert_eq!(decision(&env, "ls"), "none");
    let file = env.plugin_dir().join("libfixture_garbage.so");
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() / 2]).unwrap();
    let run = env.hook(&bash_event("ls -a"));
    assert_eq!(run.permission_decision(), "deny", "half-copied");
    let reason = run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().to_owned();
    assert!(reason.contains("does not load") && reason.contains("incomplete file"), "says why: {reason}");
    assert_eq!(decision(&env, "ls -b"), "deny", "and at the next event, from the index");
    let last = "(SELECT max(id) FROM events)";
    let fault = env.query(&format!("SELECT message FROM faults WHERE event_id = {last} AND source = 'plugin_load'"));
    assert!(fault[0][0].contains("incomplete"), "{fault:?}");
    let call = env.query(&format!("SELECT plugin, status, decision FROM plugin_calls WHERE event_id = {last}"));
    assert_eq!(call, vec![vec!["fixture-garbage".to_string(), "load_error".into(), "deny".into()]]);
    std::fs::write(&file, &whole).unwrap();
    set_mode(&file, 0o666);
    assert_eq!(decision(&env, "ls -c"), "deny", "others can write it: refused unloaded, answered for");
    let prompt = env.hook(&chronicle_e2e::event("UserPromptSubmit", serde_json::json!({"prompt": "hello"})));
    assert_eq!(prompt.stdout, "", "an event it never wanted gets nothing from it");
    set_mode(&file, 0o644);
    assert_eq!(decision(&env, "ls -d"), "none", "whole and private again: called");
    std::fs::write(&file, b"not a library").unwrap();
    assert_eq!(decision(&env, "ls -e"), "deny");
    std::fs::remove_file(&file).unwrap();
    assert_eq!(decision(&env, "ls -f"), "none", "removed: nothing stands in");
    // A plugin directory that cannot be listed (here a file in its place: root lists any
    // directory) stands in for every plugin the index knows in it.
    std::fs::write(&file, &whole).unwrap();
    assert_eq!(decision(&env, "ls -g"), "none");
    let dir = env.plugin_dir();
    std::fs::rename(&dir, env.home().join("plugins.away")).unwrap();
    std::fs::write(&dir, b"").unwrap();
    assert_eq!(decision(&env, "ls -h"), "deny", "an unlistable plugin directory");
}

#[test]
fn garbage_from_a_plugin_is_a_fault_and_fail_closed_denies() {
    let env = Env::with_plugins(&["fixture_garbage"]);
    let run = env.hook(&bash_event("garbage-me"));
    assert_eq!(run.permission_decision(), "deny");
    let rows = env.query("SELECT status, fault FROM plugin_calls");
    assert_eq!(rows[0][0], "garbage");
    assert!(rows[0][1].contains("99"));
}

#[test]
fn a_plugin_printing_to_stdout_cannot_corrupt_the_answer() {
    let env = Env::with_plugins(&["fixture_stdout", "fixture_echo"]);
    let run = env.hook(&bash_event("deny-me"));
    assert_eq!(run.permission_decision(), "deny");
    assert!(!run.stdout.contains("noisy"), "{}", run.stdout);
    assert!(run.stdout.starts_with('{') && run.stdout.matches('{').count() == 2, "{}", run.stdout);
    let faults = env.query("SELECT message FROM faults WHERE plugin = 'fixture-stdout'");
    assert!(faults[0][0].contains("bytes to stdout"), "{faults:?}");

    // With no other opinion the answer stays empty, whatever the plugin printed.
    let env = Env::with_plugins(&["fixture_stdout"]);
    let run = env.hook(&bash_event("ls"));
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
}

#[test]
fn non_libraries_in_the_plugin_directory_are_skipped_with_a_reason() {
    let env = Env::with_plugins(&["fixture_echo"]);
    std::fs::write(env.plugin_dir().join("notes.so"), "this is a text file").unwrap();
    std::fs::write(env.plugin_dir().join("empty.so"), "").unwrap();
    std::fs::write(env.plugin_dir().join("README.md"), "not considered at all").unwrap();
    // A real shared library that is not a Chronicle plugin.
    let libc_like =
        std::fs::read_dir(chronicle_e2e::target_dir().join("deps")).unwrap().filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.extension().is_some_and(|e| e == "so")
                && !p.to_string_lossy().contains("fixture")
                && !p.to_string_lossy().contains("chronicle")
        });
    if let Some(lib) = &libc_like {
        std::fs::copy(lib, env.plugin_dir().join("zz_other.so")).unwrap();
    }
    let run = env.hook(&bash_event("deny-me"));
    assert_eq!(run.permission_decision(), "deny");
    let faults = env.query("SELECT path, message FROM faults WHERE source = 'plugin_load' ORDER BY path");
    assert!(faults.len() >= 2, "{faults:?}");
    for f in &faults {
        assert!(!f[1].contains('\n'), "{f:?}");
    }
    assert!(faults.iter().any(|f| f[0].ends_with("notes.so")));
    assert!(faults.iter().any(|f| f[0].ends_with("empty.so")));
    assert!(!faults.iter().any(|f| f[0].ends_with("README.md")));
}

#[test]
fn a_world_writable_plugin_directory_is_refused() {
    let env = Env::with_plugins(&["fixture_echo"]);
    set_mode(&env.plugin_dir(), 0o777);
    let run = env.hook(&bash_event("deny-me"));
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "no plugin from a world-writable directory may run");
    let faults = env.query("SELECT message FROM faults WHERE source = 'plugin_load'");
    assert!(faults[0][0].contains("world-writable") && faults[0][0].contains("chmod go-w"), "{faults:?}");
    set_mode(&env.plugin_dir(), 0o700);
}

#[test]
fn a_group_writable_plugin_file_is_refused() {
    let env = Env::with_plugins(&["fixture_echo"]);
    set_mode(&env.plugin_dir().join("libfixture_echo.so"), 0o664);
    let run = env.hook(&bash_event("deny-me"));
    assert_eq!(run.stdout, "");
    let list = env.run(&["plugins", "list", "--json"]);
    assert!(list.stdout.contains("refused") && list.stdout.contains("group- or world-writable"), "{}", list.stdout);
}

#[test]
fn plugins_are_not_loaded_for_events_they_do_not_subscribe_to() {
    // fixture-panic subscribes to PreToolUse/Bash only; after the first event indexes it, a
    // Stop event must not dlopen it (the index answers instead).
    let env = Env::with_plugins(&["fixture_panic"]);
    env.hook(&bash_event("ls"));
    let run = env.hook(&chronicle_e2e::event("Stop", serde_json::json!({"stop_hook_active": false})));
    assert_eq!(run.code, 0);
    let index = std::fs::read_to_string(env.home().join("plugin-index.json")).unwrap();
    assert!(index.contains("fixture-panic"), "{index}");
    assert_eq!(env.count("SELECT count(*) FROM plugin_calls"), 1);
    let load_ms: Vec<Vec<String>> = env.query("SELECT value FROM metrics WHERE name = 'hook.load' ORDER BY event_id");
    assert_eq!(load_ms.len(), 2);
}

#[test]
fn a_replaced_plugin_file_is_loaded_again() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    replace_between_two_events(&env);
}

/// One event, the echo plugin replaced by another (of another name), one more event: the
/// second call must come from the new file. (tests/e2e/resident.rs runs it through a resident host.)
pub fn replace_between_two_events(env: &Env) {
    env.hook(&bash_event("ls"));
    env.replace_plugin("libfixture_echo.so", "fixture_panic");
    env.hook(&bash_event("ls"));
    let names = env.query("SELECT plugin FROM plugin_calls ORDER BY id");
    assert_eq!(names, vec![vec!["fixture-echo".to_string()], vec!["fixture-panic".to_string()]]);
}
