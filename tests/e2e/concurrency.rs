//! Claude Code runs hooks in parallel (and inside subagents): no event may be lost.

use chronicle_e2e::{event, Env};
use serde_json::json;

#[test]
fn sixteen_concurrent_writers_times_a_hundred_events_store_exactly_1600() {
    let env = Env::with_plugins(&["fixture_echo"]);
    // Create the database first through one event, then race: also covers concurrent creation
    // in `fresh_database_created_by_many_processes_at_once`.
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let home = env.home().to_path_buf();
            std::thread::spawn(move || {
                let env = EnvRef(home);
                for i in 0..100 {
                    let payload = event("PostToolUse", json!({"tool_name": "Bash", "tool_use_id": format!("w{w}-{i}"), "tool_input": {"command": "ls"}, "tool_response": {"stdout": "x"}}));
                    let run = env.hook(&payload);
                    assert_eq!(run.0, 0, "worker {w} event {i}: {}", run.1);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(!env.home().join("spool.jsonl").exists(), "no event may fall back to the spool");
    assert_eq!(env.count("SELECT count(*) FROM events"), 1600);
    assert_eq!(env.count("SELECT count(DISTINCT tool_use_id) FROM events"), 1600);
    assert_eq!(env.count("SELECT count(*) FROM faults WHERE source = 'input'"), 0);
    assert_eq!(env.query("PRAGMA integrity_check")[0][0], "ok");
}

#[test]
fn fresh_database_created_by_many_processes_at_once() {
    let env = Env::new();
    let workers: Vec<_> = (0..12)
        .map(|w| {
            let home = env.home().to_path_buf();
            std::thread::spawn(move || EnvRef(home).hook(&event("Notification", json!({"message": format!("n{w}")}))))
        })
        .collect();
    let mut stderrs = Vec::new();
    for w in workers {
        let (code, stderr) = w.join().unwrap();
        assert_eq!(code, 0, "{stderr}");
        stderrs.push(stderr);
    }
    let spool = std::fs::read_to_string(env.home().join("spool.jsonl")).unwrap_or_default();
    assert!(spool.is_empty(), "an event fell back to the spool: {spool}\n{stderrs:?}");
    assert_eq!(env.count("SELECT count(*) FROM events"), 12, "{stderrs:?}");
}

/// A minimal runner usable from threads (the `Env` owns a TempDir and is not shared).
struct EnvRef(std::path::PathBuf);

impl EnvRef {
    fn hook(&self, stdin: &[u8]) -> (i32, String) {
        use std::io::Write;
        let mut child = std::process::Command::new(chronicle_e2e::chronicle_bin())
            .arg("hook")
            .env("CHRONICLE_HOME", &self.0)
            .env_remove("CHRONICLE_DB")
            .env_remove("CHRONICLE_PLUGIN_PATH")
            .env_remove("CHRONICLE_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
