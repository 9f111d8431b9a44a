//! What the store keeps: payload fidelity, flags, and the record of every invocation.

use chronicle_e2e::{event, Env};
use serde_json::json;

#[test]
fn unredacted_payloads_are_stored_byte_exact() {
    let env = Env::new();
    let raw = r#"{"session_id":"s","hook_event_name":"UserPromptSubmit","prompt":"zwj 👩‍💻 rtl ‏ line\u2028sep","z":1,"a":2}"#;
    env.hook(raw.as_bytes());
    assert_eq!(env.query("SELECT payload FROM events")[0][0], raw);
}

#[test]
fn events_json_has_the_documented_fields() {
    let env = Env::new();
    env.hook(&event("PreToolUse", json!({"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "t1"})));
    env.hook(b"not json");
    let events = env.events();
    for field in ["kind", "hook_event_name", "tool_name", "session_id", "redacted", "truncated", "payload"] {
        assert!(events[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(events[0]["tool_name"], "Bash");
    assert_eq!(events[0]["payload"]["tool_input"]["command"], "ls");
    assert_eq!(events[1]["kind"], "parse_error");
    assert_eq!(events[1]["payload"], "not json");
}

#[test]
fn every_invocation_records_its_stage_timings() {
    let env = Env::new();
    env.hook(&event("Stop", json!({})));
    let names: Vec<String> = env.query("SELECT name FROM metrics ORDER BY name").into_iter().map(|r| r[0].clone()).collect();
    for want in ["hook.parse", "hook.read", "hook.total", "store.insert", "process.peak_rss_mb"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}

#[test]
fn an_unwritable_database_spools_the_event_and_still_answers() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    let blocker = env.home().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    env.set_env("CHRONICLE_DB", blocker.join("chronicle.db").to_str().unwrap());
    let run = env.hook(&chronicle_e2e::bash_event("deny-me"));
    assert_eq!(run.permission_decision(), "deny", "guards keep working without a database");
    assert!(run.stderr.contains("cannot record"), "{}", run.stderr);
    let spool = std::fs::read_to_string(env.home().join("spool.jsonl")).unwrap();
    assert!(spool.contains("deny-me"));
}

#[test]
fn logs_go_to_the_log_file_never_to_stdout() {
    let mut env = Env::with_plugins(&["fixture_echo"]);
    env.set_env("CHRONICLE_LOG", "trace");
    let run = env.hook(&chronicle_e2e::bash_event("deny-me"));
    assert_eq!(run.permission_decision(), "deny");
    assert_eq!(run.stdout.matches('{').count(), 2, "only the answer on stdout: {}", run.stdout);
    let log = std::fs::read_to_string(env.home().join("logs/chronicle.log")).unwrap_or_default();
    assert!(!log.is_empty(), "trace level writes something to the log file");
}

#[test]
fn the_project_context_is_cached_across_processes_and_invalidated_when_head_moves() {
    let env = Env::new();
    let repo = env.home().join("repo");
    std::fs::create_dir_all(repo.join(".git/refs/heads")).unwrap();
    std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    let start = |session: &str| event("SessionStart", json!({"session_id": session, "cwd": repo, "source": "startup"}));
    env.hook(&start("s1"));
    env.hook(&start("s2"));
    // A checkout rewrites HEAD: new size and mtime, new key.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/cache\n").unwrap();
    env.hook(&start("s3"));
    let branches = env.query("SELECT session_id, git_branch FROM sessions ORDER BY session_id");
    assert_eq!(
        branches,
        vec![vec!["s1".to_string(), "main".into()], vec!["s2".to_string(), "main".into()], vec!["s3".to_string(), "feature/cache".into()],]
    );
    let lookups: Vec<String> =
        env.query("SELECT name FROM metrics WHERE name LIKE 'cache.host.%' ORDER BY event_id").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(lookups, vec!["cache.host.miss", "cache.host.hit", "cache.host.miss"]);
    let stats: serde_json::Value = serde_json::from_str(&env.run(&["stats", "--json"]).stdout).unwrap();
    assert_eq!((stats["cache_stats"]["hits"].as_u64(), stats["cache_stats"]["misses"].as_u64()), (Some(1), Some(2)));
}

/// Large events are parsed without building their large fields (tool output, file content):
/// what is stored, redacted and keyed must not change because of it.
#[test]
fn large_events_are_stored_redacted_and_keyed_like_small_ones() {
    let env = Env::with_plugins(&["chronicle_bash_guard"]);
    let filler = "fn main() { println!(\"plain code\"); }\n".repeat(1000);
    let write = |content: &str| {
        event(
            "PostToolUse",
            json!({"tool_name": "Write", "tool_input": {"file_path": "/a.rs", "content": content}, "tool_response": {"filePath": "/a.rs", "content": content}}),
        )
    };
    let clean = write(&filler);
    assert!(clean.len() > 64 * 1024);
    env.hook(&clean);
    // A plain secret, and one whose trigger word only exists once the JSON escape is decoded.
    env.hook(&write(&format!("{filler}export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n")));
    let hidden =
        String::from_utf8(write(&format!("{filler}db = \"postgres://billing:s3cr3t-EXAMPLE@db/b\"\n"))).unwrap().replace("://", ":\\/\\/");
    env.hook(hidden.as_bytes());
    let rows = env.query("SELECT payload, redacted FROM events ORDER BY id");
    assert_eq!(rows[0][0].as_bytes(), &clean[..], "a clean large event is stored byte-exact");
    assert_eq!(rows[0][1], "0");
    for row in &rows[1..] {
        assert_eq!(row[1], "1");
        assert!(!row[0].contains("AKIAIOSFODNN7EXAMPLE") && !row[0].contains("s3cr3t-EXAMPLE"), "secret stored");
        assert!(row[0].contains("[REDACTED:"));
        let v: serde_json::Value = serde_json::from_str(&row[0]).unwrap();
        assert!(v["tool_response"]["content"].as_str().unwrap().starts_with("fn main()"), "the tree survives redaction");
    }
    // bash-guard caches on /tool_input/command: two large commands must not share a key.
    let bash = |command: String| {
        event("PreToolUse", json!({"tool_name": "Bash", "tool_input": {"command": command, "description": filler}, "tool_use_id": "t"}))
    };
    let deny = env.hook(&bash("rm -rf /".into()));
    let safe = env.hook(&bash("ls -la".into()));
    let deny_again = env.hook(&bash("rm -rf /".into()));
    assert_eq!(deny.permission_decision(), "deny", "{}", deny.stdout);
    assert_eq!(safe.stdout, "", "{}", safe.stdout);
    assert_eq!(deny_again.permission_decision(), "deny", "{}", deny_again.stdout);
    let cache = env.query("SELECT cache FROM plugin_calls WHERE plugin = 'bash-guard' ORDER BY id");
    assert_eq!(cache, vec![vec!["miss".to_string()], vec!["miss".into()], vec!["hit".into()]], "the repeated command is a hit");
}

#[test]
fn hook_processes_keep_the_write_ahead_log_bounded() {
    // Processes that never close their connection would let the log grow without end; each
    // checkpoints and truncates it once it holds more than 1 MiB.
    let mut env = Env::new();
    env.set_env("CHRONICLE_RESIDENT", "0");
    let prompt = "x".repeat(400_000);
    for _ in 0..8 {
        assert_eq!(env.hook(&event("UserPromptSubmit", json!({ "prompt": prompt }))).code, 0);
    }
    // A handed-over child bounds the log after its client relayed the answer: wait for it (under
    // a loaded machine the client's exit came first and this read the log mid-checkpoint).
    assert!(env.wait_for_hook_processes(std::time::Duration::from_secs(10)), "a hook process is still running");
    // Measured before querying: closing the last connection checkpoints and removes the log.
    let wal = std::fs::metadata(env.home().join("chronicle.db-wal")).map_or(0, |m| m.len());
    assert!(wal < 2 << 20, "eight 400 KB events left a {wal}-byte log");
    assert_eq!(env.count("SELECT count(*) FROM events"), 8);
}

#[test]
fn a_handed_over_process_keeps_the_log_short_for_the_next_one_after_its_answer() {
    // Every hook process replays the whole log when it opens the database, before it can record
    // anything. A child whose client relays its answer at the end mark checkpoints and restarts
    // the log once it holds more than 256 KiB (in line, the bound is 1 MiB).
    let mut env = Env::new();
    env.set_env("CHRONICLE_RESIDENT", "0");
    let wal = env.home().join("chronicle.db-wal");
    let mut most = 0;
    for i in 0..40 {
        let run = env.hook(&event("UserPromptSubmit", json!({ "prompt": format!("prompt {i}: {}", "y".repeat(2_000)) })));
        assert_eq!(run.code, 0, "{}", run.stderr);
        // The child checkpoints after its client has gone: wait for it.
        env.wait_for_hook_processes(std::time::Duration::from_secs(10));
        most = most.max(frames_in_log(&wal));
    }
    assert!(most > 0, "no log read");
    // 256 KiB of 4 KiB pages, and the one event that went past it (~10 pages here).
    assert!(most <= 64 + 20, "the log held {most} frames at its longest");
    assert_eq!(env.count("SELECT count(*) FROM events"), 40);
    assert!(env.count("SELECT checkpoints FROM upkeep") >= 2, "restarted after the answers");
    assert_eq!(env.query("PRAGMA integrity_check"), vec![vec!["ok".to_string()]]);
}

/// Frames of the write-ahead log's current generation: those after the header whose salts are
/// the header's (a restarted log overwrites the file from its start; what follows is stale).
fn frames_in_log(wal: &std::path::Path) -> usize {
    let Ok(bytes) = std::fs::read(wal) else { return 0 };
    if bytes.len() < 32 {
        return 0;
    }
    let page = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let salts = &bytes[16..24];
    let mut frames = 0;
    let mut at = 32;
    while at + 24 + page <= bytes.len() && &bytes[at + 8..at + 16] == salts {
        frames += 1;
        at += 24 + page;
    }
    frames
}

/// Claude Code is a ~200 MiB process: `ru_maxrss` survives `exec`, so a hook that reads it
/// reports its parent's peak. Run under a parent holding 300 MiB, on both paths, the recorded
/// figures must be Chronicle's own.
#[test]
fn peak_memory_is_the_hook_s_own_under_a_large_parent() {
    for resident in [false, true] {
        let mut env = Env::with_plugins(&["fixture_echo"]);
        env.set_env("CHRONICLE_RESIDENT", if resident { "1" } else { "0" });
        let parent = "import subprocess, sys\n\
                      held = b'\\x01' * (300 << 20)\n\
                      for _ in range(3):\n    subprocess.run(sys.argv[1:], input=b'{\"session_id\":\"s\",\"hook_event_name\":\"Stop\"}', check=True)\n";
        let hook = env.command(&["hook"]);
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c").arg(parent).arg(hook.get_program()).arg("hook");
        for (k, v) in hook.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let status = cmd.status().expect("python3 runs");
        assert!(status.success());
        let peaks: Vec<f64> = env
            .query("SELECT value, name FROM metrics WHERE name IN ('process.peak_rss_mb', 'resident.peak_rss_mb')")
            .iter()
            .map(|r| r[0].parse().unwrap())
            .collect();
        assert!(peaks.len() >= 3, "{peaks:?}");
        assert!(
            peaks.iter().all(|&mb| mb < 100.0),
            "resident {resident}: a parent's 300 MiB leaked into {peaks:?}: {:?}",
            env.query("SELECT name, value FROM metrics WHERE name LIKE '%rss%'")
        );
        let growth = env.count("SELECT count(*) FROM violations WHERE metric = 'memory.growth'");
        assert_eq!(growth, 0, "no memory-growth violation is invented from the parent's peak");
    }
}
