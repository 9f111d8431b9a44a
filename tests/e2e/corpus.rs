//! Every line of the realistic session corpora goes through `chronicle hook` and is recorded.

use chronicle_e2e::{corpus_lines, Env};
use serde_json::Value;

fn replay(env: &Env, file: &str) -> usize {
    let lines = corpus_lines(file);
    for (i, line) in lines.iter().enumerate() {
        let run = env.hook(line.as_bytes());
        assert_eq!(run.code, 0, "{file} line {}: exit {} ({})", i + 1, run.code, run.stderr);
        if !run.stdout.trim().is_empty() {
            let v = run.json();
            let sent: Value = serde_json::from_str(line).unwrap();
            if let Some(hso) = v.get("hookSpecificOutput") {
                assert_eq!(hso["hookEventName"], sent["hook_event_name"], "{file} line {}", i + 1);
            }
        }
    }
    lines.len()
}

#[test]
fn every_session_event_is_recorded_as_an_event() {
    let env = Env::new();
    let n = replay(&env, "session.jsonl") + replay(&env, "session_modern.jsonl");
    let events = env.events();
    assert_eq!(events.len(), n);
    for e in &events {
        assert_eq!(e["kind"], "event", "{e}");
        assert!(e["hook_event_name"].is_string());
        assert!(e["payload"].is_object());
    }
}

#[test]
fn with_a_plugin_for_every_event_the_answers_keep_the_contract() {
    let env = Env::with_plugins(&["fixture_echo"]);
    replay(&env, "session.jsonl");
    replay(&env, "session_modern.jsonl");
    // Every call of the fixture was recorded, and none faulted.
    let calls = env.count("SELECT count(*) FROM plugin_calls WHERE plugin = 'fixture-echo' AND status = 'ok'");
    assert_eq!(calls as usize, corpus_lines("session.jsonl").len() + corpus_lines("session_modern.jsonl").len());
}

#[test]
fn sessions_keep_their_first_sighting_and_end() {
    let env = Env::new();
    replay(&env, "session.jsonl");
    let sessions = env.run(&["sessions", "--json"]);
    assert_eq!(sessions.code, 0);
    let rows: Vec<Value> = sessions.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!rows.is_empty());
    let main = rows.iter().max_by_key(|r| r["event_count"].as_i64()).unwrap();
    assert!(main["first_seen"].as_str().unwrap() < main["last_seen"].as_str().unwrap());
    assert!(main["ended_at"].is_string(), "SessionEnd must close the session: {main}");
    assert!(main["cwd"].is_string());
}

#[test]
fn tool_durations_pair_pre_and_post_by_tool_use_id() {
    let env = Env::new();
    replay(&env, "session.jsonl");
    let paired =
        env.count("SELECT count(*) FROM tool_durations WHERE pre_event_id IS NOT NULL AND post_event_id IS NOT NULL AND duration_ms >= 0");
    let pre_only = env.count("SELECT count(*) FROM tool_durations WHERE post_event_id IS NULL");
    assert!(paired >= 30, "paired {paired}");
    // The corpus has two PreToolUse without a PostToolUse.
    assert_eq!(pre_only, 2);
}

#[test]
fn the_built_in_plugins_answer_the_realistic_session_without_false_alarms() {
    let env = Env::with_plugins(crate::adversarial::BUILTINS);
    replay(&env, "session.jsonl");
    replay(&env, "session_modern.jsonl");
    // Ordinary work gets no opinion; the session's two planted hazards (a Read of `.env`, which
    // the session itself shows a hook denying, and a `curl … | sh` that auto mode blocked) are
    // denied, and nothing else is.
    let denied = env.query("SELECT tool_name, answer FROM events WHERE decision IN ('deny', 'block') ORDER BY id");
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(denied[0][0], "Read");
    assert!(denied[0][1].contains("file-guard") && denied[0][1].contains(".env"), "{denied:?}");
    assert_eq!(denied[1][0], "Bash");
    assert!(denied[1][1].contains("bash-guard") && denied[1][1].contains("sh"), "{denied:?}");
    let asked = env.query("SELECT tool_name, answer FROM events WHERE decision = 'ask'");
    assert!(asked.is_empty(), "{asked:?}");
    let faults = env.query("SELECT plugin, message FROM faults WHERE source IN ('plugin_call', 'plugin_load')");
    assert!(faults.is_empty(), "{faults:?}");
    // SessionStart got its context.
    let ctx = env.query("SELECT answer FROM events WHERE hook_event_name = 'SessionStart'");
    assert!(ctx.iter().all(|r| r[0].contains("additionalContext")), "{ctx:?}");
}
