//! What `install` tells Claude Code, on a fresh HOME: the dry run shows exactly what is written,
//! events whose hook replaces Claude Code's own handling stay unregistered, a plugin added later
//! keeps the registration right (`plugins install`) or `doctor` fails, the user's settings file
//! is handled with care; and faults that are visible outside the `faults` table.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chronicle_e2e::{bash_event, plugin_lib, Env};
use serde_json::Value;

/// A fresh HOME with no settings file yet.
fn fresh() -> (Env, PathBuf) {
    let mut env = Env::new();
    let home = env.home().join("userhome");
    std::fs::create_dir_all(&home).unwrap();
    env.set_env("HOME", home.to_str().unwrap());
    (env, home.join(".claude/settings.json"))
}

fn our_handlers(settings: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (event, groups) in settings["hooks"].as_object().into_iter().flatten() {
        for h in groups.as_array().into_iter().flatten().filter_map(|g| g["hooks"].as_array()).flatten() {
            if h["args"][0] == "hook" {
                out.push((event.clone(), h["async"] == true));
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_dry_run_shows_exactly_what_install_writes_and_worktree_events_stay_unregistered() {
    let (env, settings) = fresh();
    let dry = env.run(&["install", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(!settings.exists(), "--dry-run writes nothing");
    // The dry run's diff is the file's whole new text (it did not exist).
    let shown: String =
        dry.stdout.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).map(|l| format!("{}\n", &l[1..])).collect();
    let shown: Value = serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: {}", dry.stdout));
    let run = env.run(&["install"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = read(&settings);
    assert_eq!(shown, written, "the dry run shows exactly what install writes");
    let handlers = our_handlers(&written);
    let asyncs = handlers.iter().filter(|(_, a)| *a).count();
    assert!(dry.stdout.contains(&format!("{asyncs} events would be registered with \"async\": true")), "{}", dry.stdout);
    assert!(run.stdout.contains(&format!("{asyncs} events are registered with \"async\": true")), "{}", run.stdout);
    for e in ["WorktreeCreate", "WorktreeRemove"] {
        assert!(!handlers.iter().any(|(n, _)| n == e), "{e} is not registered");
        assert!(run.stdout.contains(&format!("not registered: {e}: its hook replaces")), "{}", run.stdout);
    }
    assert!(handlers.contains(&("PreToolUse".into(), false)), "the guards' event is waited for");
    let doctor = env.run(&["doctor"]);
    assert!(doctor.stdout.contains("ok    user settings"), "{}", doctor.stdout);
}

#[test]
fn a_plugin_dropped_in_after_install_fails_doctor_until_plugins_install_registers_it() {
    let (env, settings) = fresh();
    assert_eq!(env.run(&["install", "--no-plugins"]).code, 0);
    assert!(our_handlers(&read(&settings)).contains(&("PreToolUse".into(), true)), "no plugin: everything async");
    // The README's old way: copy the file in. Its denies would not be waited for.
    std::fs::copy(plugin_lib("chronicle_bash_guard"), env.plugin_dir().join("libchronicle_bash_guard.so")).unwrap();
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    assert!(
        doctor.stdout.contains("PreToolUse registered with \"async\": true although an installed plugin can answer"),
        "{}",
        doctor.stdout
    );
    assert!(doctor.stdout.contains("run `chronicle install` again"), "{}", doctor.stdout);

    // The way that keeps the registration right.
    let file_guard = plugin_lib("chronicle_file_guard");
    let run = env.run(&["plugins", "install", file_guard.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("installed plugin file-guard"), "{}", run.stdout);
    let installed = env.plugin_dir().join("libchronicle_file_guard.so");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&file_guard).unwrap());
    assert_eq!(std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777, 0o644);
    assert!(our_handlers(&read(&settings)).contains(&("PreToolUse".into(), false)));
    let doctor = env.run(&["doctor"]);
    assert!(doctor.stdout.contains("ok    user settings"), "{}", doctor.stdout);

    // Something that is not a plugin is refused, and nothing is copied.
    let junk = env.home().join("libjunk.so");
    std::fs::write(&junk, b"not an ELF file").unwrap();
    let run = env.run(&["plugins", "install", junk.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("is not a loadable plugin"), "{}", run.stderr);
    assert!(!env.plugin_dir().join("libjunk.so").exists());
}

#[test]
fn doctor_fails_when_a_worktree_hook_is_registered_without_a_plugin_for_it() {
    let (env, settings) = fresh();
    assert_eq!(env.run(&["install"]).code, 0);
    let mut v = read(&settings);
    let ours = v["hooks"]["PreToolUse"][0]["hooks"][0].clone();
    v["hooks"]["WorktreeCreate"] = serde_json::json!([{"hooks": [ours]}]);
    std::fs::write(&settings, v.to_string()).unwrap();
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 1);
    assert!(doctor.stdout.contains("WorktreeCreate registered, but no plugin implements it"), "{}", doctor.stdout);
    // Installing again takes it out.
    assert_eq!(env.run(&["install"]).code, 0);
    assert!(read(&settings)["hooks"].get("WorktreeCreate").is_none());
}

const FORMATTED: &str = r#"{
    "model": "opus",
    "cleanupPeriodDays": 30.0,
    "feedbackSurveyRate": 1e-1,
    "permissions": {"allow": ["Bash(ls:*)"]}
}
"#;

#[test]
fn the_users_settings_file_is_handled_with_care() {
    let (env, settings) = fresh();
    // Kept in a dotfiles directory, linked into place, private.
    let dotfiles = env.home().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let real = dotfiles.join("claude-settings.json");
    std::fs::write(&real, FORMATTED).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, &settings).unwrap();

    let run = env.run(&["install", "--no-plugins"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::symlink_metadata(&settings).unwrap().file_type().is_symlink(), "the link stays a link");
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(
        text.starts_with("{\n    \"model\": \"opus\",\n    \"cleanupPeriodDays\": 30.0,\n    \"feedbackSurveyRate\": 1e-1,\n"),
        "{text}"
    );
    assert!(text.contains("\n    \"hooks\": {\n        \"SessionStart\": ["), "our part in the file's indentation: {text}");
    assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o600, "mode kept");
    let backups = |dir: &Path| -> Vec<PathBuf> {
        let mut b: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("chronicle-backup"))
            .collect();
        b.sort();
        b
    };
    let first = backups(&dotfiles);
    assert_eq!(first.len(), 1, "the backup sits beside the real file");
    assert_eq!(std::fs::read_to_string(&first[0]).unwrap(), FORMATTED);
    assert_eq!(std::fs::metadata(&first[0]).unwrap().permissions().mode() & 0o777, 0o600, "the backup is no more readable");

    // Uninstall gives back the same bytes.
    assert_eq!(env.run(&["uninstall"]).code, 0);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), FORMATTED);

    // Old backups are pruned: the last five are kept.
    for _ in 0..4 {
        assert_eq!(env.run(&["install", "--no-plugins"]).code, 0);
        assert_eq!(env.run(&["uninstall"]).code, 0);
    }
    assert_eq!(backups(&dotfiles).len(), 5);

    // A read-only file is refused with one line, and left alone.
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o400)).unwrap();
    let run = env.run(&["install", "--no-plugins"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is read-only (mode 400); nothing was written"), "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), FORMATTED);
}

#[test]
fn plugin_faults_are_visible_outside_the_faults_table() {
    let mut env = Env::with_plugins(&["fixture_panic", "chronicle_bash_guard"]);
    env.set_env("CHRONICLE_RESIDENT", "0");
    let run = env.hook(&bash_event("rm -rf / # panic-me"));
    assert_eq!(run.permission_decision(), "deny", "bash-guard's deny survives the other plugin's panic");
    let events = env.events();
    let faults = events[0]["faults"].as_array().unwrap_or_else(|| panic!("{}", events[0]));
    let panic = faults.iter().find(|f| f["plugin"] == "fixture-panic").unwrap_or_else(|| panic!("{faults:?}"));
    assert_eq!(panic["kind"], "panic");
    assert!(!panic["message"].as_str().unwrap().is_empty());

    let list = env.run(&["plugins", "list", "--json"]);
    let entry: Value =
        list.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["name"] == "fixture-panic").unwrap();
    assert_eq!(entry["last_fault"]["kind"], "panic", "{entry}");
    assert!(entry["last_fault"]["at"].as_str().is_some());
    let guard: Value = list.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["name"] == "bash-guard").unwrap();
    assert!(guard["last_fault"].is_null());

    // A bare file name in the current directory.
    let check = env.command(&["plugins", "check", "libfixture_panic.so"]).current_dir(env.plugin_dir()).output().unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains("last fault: panic at "), "{out}");

    let doctor = env.run(&["doctor"]);
    assert!(doctor.stdout.contains("warn  plugin fault: fixture-panic: panic at "), "{}", doctor.stdout);
}
