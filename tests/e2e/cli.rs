//! The commands around the hook: install/uninstall, doctor, config, stats, demo.

use chronicle_e2e::{corpus_lines, Env};
use serde_json::Value;

const FOREIGN: &str = r#"{
  "model": "opus",
  "hooks": {
    "PreToolUse": [
      { "matcher": "Bash", "hooks": [ { "type": "command", "command": "/usr/local/bin/other-guard", "timeout": 5 } ] }
    ],
    "Stop": [ { "hooks": [ { "type": "command", "command": "notify-send done" } ] } ]
  },
  "permissions": { "allow": ["Bash(ls:*)"] }
}
"#;

fn settings_env() -> (Env, std::path::PathBuf) {
    let mut env = Env::new();
    let home = env.home().join("userhome");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    env.set_env("HOME", home.to_str().unwrap());
    let settings = home.join(".claude/settings.json");
    std::fs::write(&settings, FOREIGN).unwrap();
    (env, settings)
}

#[test]
fn install_merges_backs_up_is_idempotent_and_uninstall_restores() {
    let (env, settings) = settings_env();
    let dry = env.run(&["install", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("+++") && dry.stdout.contains("\"hook\""), "{}", dry.stdout);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), FOREIGN, "--dry-run must not write");

    let first = env.run(&["install"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("async"), "the output explains the async registrations");
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    let original: Value = serde_json::from_str(FOREIGN).unwrap();
    assert_eq!(after["permissions"], original["permissions"]);
    assert_eq!(after["hooks"]["PreToolUse"][0], original["hooks"]["PreToolUse"][0]);
    assert_eq!(after["hooks"]["Stop"][0], original["hooks"]["Stop"][0]);
    let ours = &after["hooks"]["PreToolUse"][1]["hooks"][0];
    assert_eq!(ours["args"][0], "hook");
    assert!(ours["command"].as_str().unwrap().ends_with("/chronicle"));
    assert!(ours.get("async").is_none(), "PreToolUse is answered by the installed guards");
    assert_eq!(after["hooks"]["Notification"][0]["hooks"][0]["async"], true);
    let backups: Vec<_> = std::fs::read_dir(settings.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("chronicle-backup"))
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read_to_string(backups[0].path()).unwrap(), FOREIGN);
    // The built-in plugins were installed where the hook looks for them.
    for lib in crate::adversarial::BUILTINS {
        assert!(env.plugin_dir().join(format!("lib{lib}.so")).exists(), "{lib}");
    }

    let bytes_after_first = std::fs::read(&settings).unwrap();
    let second = env.run(&["install"]);
    assert_eq!(second.code, 0);
    assert_eq!(std::fs::read(&settings).unwrap(), bytes_after_first, "running install twice changes nothing");
    assert!(second.stdout.contains("already up to date"));

    let un = env.run(&["uninstall"]);
    assert_eq!(un.code, 0, "{}", un.stderr);
    let restored: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(restored, original);
}

/// `install` readies the first event: the database exists and the plugin index knows every
/// built-in's manifest, so that event loads no plugin just to learn what it subscribes to
/// (it would write the index); an entry that says more (quarantined) survives a reinstall.
#[test]
fn install_prepares_the_first_event_and_keeps_what_the_index_knows() {
    let (mut env, _settings) = settings_env();
    let run = env.run(&["install"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.db().exists(), "{}", run.stdout);
    let index_file = env.home().join("plugin-index.json");
    let index: Value = serde_json::from_slice(&std::fs::read(&index_file).unwrap()).unwrap();
    for lib in crate::adversarial::BUILTINS {
        let entry = index.as_array().unwrap().iter().find(|e| e["path"].as_str().unwrap().ends_with(&format!("lib{lib}.so")));
        assert!(entry.is_some_and(|e| e["info"]["name"].is_string()), "{lib}: {index}");
    }
    let before = (std::fs::read(&index_file).unwrap(), std::fs::metadata(&index_file).unwrap().modified().unwrap());
    env.set_env("CHRONICLE_RESIDENT", "0");
    let first = env.hook(&chronicle_e2e::bash_event("rm -rf /"));
    assert_eq!(first.permission_decision(), "deny");
    let after = (std::fs::read(&index_file).unwrap(), std::fs::metadata(&index_file).unwrap().modified().unwrap());
    assert!(before == after, "the first event rewrote the index: it loaded plugins to learn their manifests");
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);

    // A quarantined plugin stays quarantined when install runs again.
    let mut entries = index.as_array().unwrap().clone();
    let guard = entries.iter_mut().find(|e| e["path"].as_str().unwrap().ends_with("libchronicle_bash_guard.so")).unwrap();
    guard["quarantined"] = Value::from("killed the host (test)");
    std::fs::write(&index_file, serde_json::to_vec(&entries).unwrap()).unwrap();
    assert_eq!(env.run(&["install"]).code, 0);
    let again: Value = serde_json::from_slice(&std::fs::read(&index_file).unwrap()).unwrap();
    let guard = again.as_array().unwrap().iter().find(|e| e["path"].as_str().unwrap().ends_with("libchronicle_bash_guard.so")).unwrap();
    assert_eq!(guard["quarantined"], "killed the host (test)", "{again}");
}

#[test]
fn install_refuses_malformed_settings_and_names_the_line() {
    let (env, settings) = settings_env();
    let broken = "{\n  \"model\": \"opus\",\n  \"hooks\": {\n}\n";
    std::fs::write(&settings, broken).unwrap();
    let run = env.run(&["install"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("settings.json:5:"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), broken, "never write over a broken file");
}

#[test]
fn the_installed_hook_answers_like_claude_code_would_see_it() {
    let (env, settings) = settings_env();
    env.run(&["install"]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    let ours = &v["hooks"]["PreToolUse"][1]["hooks"][0];
    // Run exactly the registered command (exec form) with a dangerous payload.
    let mut cmd = std::process::Command::new(ours["command"].as_str().unwrap());
    cmd.args(ours["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()))
        .env("CHRONICLE_HOME", env.home())
        .env("HOME", env.home().join("userhome"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&chronicle_e2e::bash_event("rm -rf /")).unwrap();
    let out = child.wait_with_output().unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "deny");
}

#[test]
fn doctor_passes_on_a_good_setup_and_fails_with_fixes_on_a_broken_one() {
    let (env, _settings) = settings_env();
    env.run(&["install"]);
    env.hook(&chronicle_e2e::event("Stop", serde_json::json!({})));
    let good = env.run(&["doctor"]);
    assert_eq!(good.code, 0, "{}", good.stdout);
    assert!(good.stdout.contains("all 29 events wired (2 left out on purpose)"), "{}", good.stdout);

    // Break it: a world-writable plugin directory and an unknown config key.
    chronicle_e2e::set_mode(&env.plugin_dir(), 0o777);
    std::fs::write(env.home().join("config.toml"), "[hook]\nmax_input_byts = 1\n").unwrap();
    let bad = env.run(&["doctor"]);
    assert_eq!(bad.code, 1, "{}", bad.stdout);
    assert!(bad.stdout.contains("FAIL  config") && bad.stdout.contains("max_input_byts"), "{}", bad.stdout);
    assert!(bad.stdout.contains("FAIL  plugin") && bad.stdout.contains("chmod go-w"), "{}", bad.stdout);
    // A shared directory (sticky, like /tmp) is not to be chmodded: the plugins move.
    chronicle_e2e::set_mode(&env.plugin_dir(), 0o1777);
    let shared = env.run(&["doctor"]);
    assert!(shared.stdout.contains("FAIL  plugin") && shared.stdout.contains("directory only you can write"), "{}", shared.stdout);
    assert!(!shared.stdout.contains("chmod go-w"), "{}", shared.stdout);
    chronicle_e2e::set_mode(&env.plugin_dir(), 0o700);
}

/// A database made with 16 KiB pages (what the previous versions made) works, but logs four
/// times as much per event: doctor says so and how to convert it, and the advice does what it
/// says (fails and changes nothing while a host holds the database, converts once it is gone).
#[test]
fn doctor_names_a_database_with_large_pages_and_its_conversion_works() {
    let mut env = Env::new();
    {
        let conn = rusqlite::Connection::open(env.db()).unwrap();
        conn.execute_batch("PRAGMA page_size=16384; PRAGMA journal_mode=WAL;").unwrap();
    }
    env.start_resident();
    env.hook(&chronicle_e2e::event("Stop", serde_json::json!({})));
    let before = env.run(&["doctor"]);
    let line = before.stdout.lines().find(|l| l.contains("database pages")).unwrap_or_else(|| panic!("{}", before.stdout));
    assert!(line.starts_with("warn") && line.contains("16 KiB pages") && line.contains("4×"), "{line}");
    // The advice as printed, run through SQLite (its quoted statements).
    let sql = line.rsplit_once(" \"").and_then(|(_, rest)| rest.strip_suffix('"')).unwrap_or_else(|| panic!("{line}"));
    let db = env.db();
    let page_size = || -> i64 { rusqlite::Connection::open(&db).unwrap().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap() };
    let busy = rusqlite::Connection::open(&db).unwrap();
    busy.busy_timeout(std::time::Duration::ZERO).unwrap();
    let refused = busy.execute_batch(sql).unwrap_err();
    assert!(refused.to_string().contains("locked"), "{refused}");
    assert_eq!(page_size(), 16384);
    env.stop_resident();
    busy.execute_batch(sql).unwrap();
    drop(busy);
    assert_eq!(page_size(), 4096);
    let after = env.run(&["doctor"]);
    assert!(!after.stdout.contains("database pages"), "{}", after.stdout);
    env.hook(&chronicle_e2e::event("Stop", serde_json::json!({})));
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
}

#[test]
fn config_show_names_the_source_of_each_value() {
    let mut env = Env::new();
    std::fs::write(env.home().join("config.toml"), "[hook]\nplugin_timeout_ms = 250\n").unwrap();
    env.set_env("CHRONICLE_DB", env.home().join("elsewhere.db").to_str().unwrap());
    let run = env.run(&["config", "show"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("plugin_timeout_ms = 250  # config file"), "{}", run.stdout);
    assert!(run.stdout.contains("read_timeout_ms = 2000  # default"), "{}", run.stdout);
    assert!(run.stdout.contains("elsewhere.db\"  # env CHRONICLE_DB"), "{}", run.stdout);
}

#[test]
fn config_show_prints_what_is_in_effect_as_a_config_file_that_loads() {
    let mut env = Env::new();
    std::fs::write(env.home().join("config.toml"), "redact_patterns = [\"tok_[a-z0-9]{8}\"]\n[hook]\nresident = true\n").unwrap();
    env.set_env("CHRONICLE_RESIDENT", "0");
    env.set_env("CHRONICLE_RESIDENT_IDLE_S", "90");
    env.set_env("CHRONICLE_LOG", "debug");
    let run = env.run(&["config", "show"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("resident = false  # env CHRONICLE_RESIDENT"), "{}", run.stdout);
    assert!(run.stdout.contains("resident_idle_s = 90  # env CHRONICLE_RESIDENT_IDLE_S"), "{}", run.stdout);
    assert!(run.stdout.contains("level = \"debug\"  # env CHRONICLE_LOG"), "{}", run.stdout);
    assert!(run.stdout.contains(r#"redact_patterns = ["tok_[a-z0-9]{8}"]"#), "{}", run.stdout);
    // The output is a config file: fed back, it loads (unknown keys would be errors).
    let shown = env.home().join("shown.toml");
    std::fs::write(&shown, &run.stdout).unwrap();
    env.set_env("CHRONICLE_CONFIG", shown.to_str().unwrap());
    let again = env.run(&["config", "show"]);
    assert_eq!(again.code, 0, "{}\n{}", again.stderr, run.stdout);
}

#[test]
fn stats_counts_match_a_known_replay_and_the_second_pass_hits_the_cache() {
    let env = Env::with_plugins(crate::adversarial::BUILTINS);
    let lines = corpus_lines("session.jsonl");
    for pass in 0..2 {
        for l in &lines {
            let r = env.hook(l.as_bytes());
            assert_eq!(r.code, 0, "pass {pass}");
        }
    }
    let run = env.run(&["stats", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s: Value = serde_json::from_str(&run.stdout).unwrap();
    let total = &s["performance_stats"]["operations"]["hook.total"];
    assert_eq!(total["count"], 2 * lines.len());
    let (p50, p95, p99, max) = (
        total["p50_ms"].as_f64().unwrap(),
        total["p95_ms"].as_f64().unwrap(),
        total["p99_ms"].as_f64().unwrap(),
        total["max_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99 && p99 <= max, "{total}");
    let pre = lines.iter().filter(|l| l.contains("\"hook_event_name\":\"PreToolUse\"")).count() as u64;
    assert_eq!(s["events"]["PreToolUse"]["count"].as_u64().unwrap(), 2 * pre);
    // bash-guard is cacheable: the second pass over identical tool calls hits. file-guard is
    // not (where a path leads depends on the links on disk): it is called every time.
    let c = &s["cache_stats"];
    assert!(c["hits"].as_u64().unwrap() > 0, "{c}");
    assert!(c["hit_ratio"].as_f64().unwrap() > 0.0);
    assert_eq!(c["hits"].as_u64().unwrap() + c["misses"].as_u64().unwrap(), s["plugins"]["bash-guard"]["calls"].as_u64().unwrap());
    assert_eq!(s["plugins"]["bash-guard"]["cached"].as_u64().unwrap(), c["hits"].as_u64().unwrap());
    assert!(s["plugins"]["file-guard"]["calls"].as_u64().unwrap() > 0);
    assert_eq!(s["plugins"]["file-guard"]["cached"].as_u64().unwrap(), 0);
    for key in ["hook_execution_ms", "security_validation_ms", "cache_operation_ms", "database_operation_ms", "memory_growth_mb"] {
        assert!(s["thresholds"][key].is_number(), "{key}");
    }
    assert!(s["performance_stats"]["operations"]["plugin.secret-guard"]["count"].as_u64().unwrap() > 0);
    // Operations are durations only; memory and markers are reported apart. The store times
    // its insert for every event and each commit with the next event.
    let ops = s["performance_stats"]["operations"].as_object().unwrap();
    assert!(ops.keys().all(|k| !k.ends_with("_mb") && k != "hook.resident"), "{:?}", ops.keys());
    assert_eq!(ops["store.insert"]["count"], 2 * lines.len());
    // In-process events (before the resident host listens) exit without a next event to carry
    // their commit time; the resident host's carry all but its last.
    let resident = env.resident_flags().iter().filter(|&&f| f).count() as u64;
    assert_eq!(ops["store.commit"]["count"].as_u64().unwrap(), resident - 1);
    assert!(s["memory"]["resident_peak_rss_mb"]["count"].as_u64().unwrap() > 0);
    // The cached decisions are the same decisions.
    // session.jsonl plants one hazard (a Read of .env): denied on both passes, the second from the cache.
    assert_eq!(env.count("SELECT count(*) FROM events WHERE decision = 'deny'"), 2);

    // The table form is readable and has no colour when not on a terminal.
    let table = env.run(&["stats"]);
    assert!(table.stdout.contains("hook.total") && !table.stdout.contains('\x1b'));
    // The whole hook comes first, the stages under it; microseconds are whole.
    let total_at = table.stdout.find("hook.total").unwrap();
    assert!(table.stdout.find("hook.parse").unwrap() > total_at, "{}", table.stdout);
    assert!(!table.stdout.contains(".0 µs"), "{}", table.stdout);
    // --session names a session that exists (or says there is none), --since parses.
    let none = env.run(&["stats", "--json", "--session", "no-such-session"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no session starts with"), "{}", none.stderr);
    assert_eq!(env.run(&["stats", "--since", "10x"]).code, 2);
}

#[test]
fn demo_replays_the_bundled_session_and_reports() {
    let env = Env::new();
    // The built plugins sit next to the binary in target/: the demo finds them there.
    let run = env.run(&["demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for want in ["86 events replayed", "Events by type", "Decisions taken", "file-guard", "Slowest tool calls", "Cache", "hook.total"] {
        assert!(run.stdout.contains(want), "missing {want:?} in\n{}", run.stdout);
    }
    // What the demo shows is what Chronicle found in the session, not the host's own setup:
    // loading plugins and opening the database is not an event's memory growth.
    assert!(!run.stdout.contains("memory.growth  host"), "{}", run.stdout);
}

#[test]
fn demo_keeps_its_database_only_where_nobody_else_can_write() {
    let env = Env::new();
    // The demo's database in a new directory of this mode under the home.
    let demo_in = |name: &str, mode: u32| {
        let dir = env.home().join(name);
        std::fs::create_dir(&dir).unwrap();
        chronicle_e2e::set_mode(&dir, mode);
        let db = dir.join("demo.db");
        (env.run(&["demo", "--db", db.to_str().unwrap()]), db)
    };
    // A shared directory (like /tmp): refused before any event, with advice that is not a chmod
    // of the shared directory, and nothing spooled into the user's own data directory.
    let (run, db) = demo_in("shared", 0o1777);
    assert_eq!(run.code, 2, "a usage or data error: {}", run.stderr);
    assert!(run.stderr.contains("shared directory") && run.stderr.contains("of your own"), "{}", run.stderr);
    assert!(!run.stderr.contains("chmod"), "{}", run.stderr);
    assert!(!db.exists() && !env.home().join("spool.jsonl").exists());
    // A directory of one's own: the database is kept there with every event.
    let (run, db) = demo_in("kept", 0o700);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The demo runs in a home of its own: its events are served by a resident host like a real
    // session's, with no fault (its config file exists), and nothing lands in the user's home.
    assert_eq!(chronicle_e2e::query_db(&db, "SELECT count(*) FROM faults")[0][0], "0");
    let resident: i64 = chronicle_e2e::query_db(&db, "SELECT count(*) FROM metrics WHERE name = 'hook.resident'")[0][0].parse().unwrap();
    assert!(resident >= 43, "{resident} of 86 events served by the demo's resident host");
    assert!(!env.home().join("plugin-index.json").exists() && !env.home().join("resident").exists());
    assert_eq!(chronicle_e2e::query_db(&db, "SELECT count(*) FROM events")[0][0], "86");
}

#[test]
fn hook_help_completions_and_the_man_page_are_there_for_the_asking() {
    let env = Env::new();
    let help = env.run(&["hook", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("Handle one hook event from stdin"), "{}", help.stdout);
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef chronicle"), ("fish", "complete -c chronicle")] {
        let run = env.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker) && run.stdout.contains("doctor"), "{shell}: {}", &run.stdout[..run.stdout.len().min(300)]);
    }
    let man = env.run(&["man"]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH chronicle") && man.stdout.contains("install"), "{}", &man.stdout[..man.stdout.len().min(300)]);
}

#[test]
fn events_take_session_prefixes_filters_and_a_default_limit() {
    let env = Env::with_plugins(&["chronicle_bash_guard"]);
    let bash = |session: &str, command: &str| {
        serde_json::to_vec(&serde_json::json!({
            "session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": command}, "cwd": "/home/dev/project"
        }))
        .unwrap()
    };
    env.hook(&bash("alpha-0001", "rm -rf /"));
    env.hook(&bash("alpha-0002", "ls"));
    for i in 0..55 {
        env.hook(&bash("beta-0001", &format!("echo {i}")));
    }
    let ids =
        |run: &chronicle_e2e::Run| run.stdout.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>();

    let beta = env.run(&["events", "--session", "be", "--json"]);
    assert_eq!(beta.code, 0, "{}", beta.stderr);
    assert_eq!(ids(&beta).len(), 50, "the newest 50 by default");
    assert_eq!(ids(&beta).last().unwrap()["payload"]["tool_input"]["command"], "echo 54", "the newest, not the oldest");
    assert_eq!(ids(&env.run(&["events", "--session", "be", "--all", "--json"])).len(), 55);

    let ambiguous = env.run(&["events", "--session", "alpha"]);
    assert_eq!(ambiguous.code, 2);
    assert!(ambiguous.stderr.contains("alpha-0001") && ambiguous.stderr.contains("alpha-0002"), "{}", ambiguous.stderr);
    let none = env.run(&["events", "--session", "gamma"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no session starts with"), "{}", none.stderr);

    let denies = ids(&env.run(&["events", "--decision", "deny", "--tool", "Bash", "--since", "1h", "--json"]));
    assert_eq!(denies.len(), 1);
    assert_eq!(denies[0]["session_id"], "alpha-0001");
    let nothing = env.run(&["events", "--decision", "deny", "--tool", "Write"]);
    assert_eq!((nothing.code, nothing.stdout.as_str()), (0, ""));
    assert!(nothing.stderr.contains("no events match"), "{}", nothing.stderr);
    // The table fits 80 columns; --wide shows full ids.
    let table = env.run(&["events", "--limit", "5"]);
    assert!(table.stdout.lines().all(|l| l.chars().count() <= 80), "{}", table.stdout);
    assert!(!table.stdout.contains("beta-0001") && table.stdout.contains("beta-000"), "{}", table.stdout);
    assert!(env.run(&["events", "--limit", "5", "--wide"]).stdout.contains("beta-0001"));
    // stats takes the same prefixes.
    let stats = env.run(&["stats", "--session", "alpha-0001", "--json"]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
}

/// `--help` reads on an 80-column terminal, every option says what it does, and the commands
/// people use come before the ones Claude Code runs.
#[test]
fn help_fits_80_columns_and_leaves_no_option_unexplained() {
    let env = Env::new();
    let top = env.run(&["--help"]);
    let hook_at = top.stdout.find("\n  hook ").expect("hook is listed");
    assert!(top.stdout.find("\n  events ").unwrap() < hook_at, "internal commands come last:\n{}", top.stdout);
    for cmd in [
        "",
        "events",
        "sessions",
        "stats",
        "report",
        "install",
        "uninstall",
        "sync",
        "demo",
        "bench",
        "regress ab",
        "regress save",
        "regress compare",
        "plugins list",
        "plugins check",
        "plugins install",
        "new-plugin",
        "completions",
        "config show",
        "spool ingest",
        "doctor",
        "serve",
        "hook",
    ] {
        let mut args: Vec<&str> = cmd.split_whitespace().collect();
        args.push("--help");
        let long = env.run(&args);
        assert_eq!(long.code, 0, "{cmd} --help: {}", long.stderr);
        for line in long.stdout.lines().filter(|l| !l.starts_with("Usage:")) {
            assert!(line.chars().count() <= 80, "`chronicle {cmd} --help` has a line of {}: {line}", line.chars().count());
        }
        *args.last_mut().unwrap() = "-h";
        let short = env.run(&args);
        let indent = |l: &str| l.len() - l.trim_start().len();
        let options =
            short.stdout.lines().filter(|l| indent(l) < 10 && (l.trim_start().starts_with('-') || l.trim_start().starts_with('<')));
        for line in options {
            let described = line.trim().split("  ").filter(|p| !p.trim().is_empty()).count() >= 2;
            let continued = short.stdout.lines().skip_while(|l| *l != line).nth(1).is_some_and(|n| n.starts_with("     "));
            assert!(described || continued, "`chronicle {cmd}` has an option without help: {line}");
        }
    }
}

/// `bench --session FILE --concurrency N` replays every line with N clients against cat.
#[test]
fn bench_replays_a_session_with_several_clients() {
    let env = Env::new();
    let file = env.home().join("three.jsonl");
    std::fs::write(&file, corpus_lines("session.jsonl")[..3].join("\n")).unwrap();
    let run = env.run(&["bench", "--session", file.to_str().unwrap(), "--concurrency", "2", "--runs", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("3 events of"), "{}", run.stdout);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("chronicle") || l.starts_with("cat")).collect();
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    // 3 events x 2 clients x 2 rounds on each side.
    assert!(rows.iter().all(|r| r.split_whitespace().nth(1) == Some("12")), "{}", run.stdout);
    assert_eq!(env.run(&["bench", "--concurrency", "0"]).code, 2);
    // The third line is a PreToolUse TodoWrite: without it, 2 events x 1 client x 2 rounds.
    let run = env.run(&["bench", "--session", file.to_str().unwrap(), "--skip-tool", "TodoWrite", "--runs", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("2 events of") && run.stdout.contains("without TodoWrite"), "{}", run.stdout);
    let rows: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("chronicle") || l.starts_with("cat")).collect();
    assert!(rows.len() == 2 && rows.iter().all(|r| r.split_whitespace().nth(1) == Some("4")), "{}", run.stdout);
}
