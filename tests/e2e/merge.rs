//! Outcomes through the real binary: every decision shape of the output contract.

use chronicle_e2e::{bash_event, event, Env};
use serde_json::json;

#[test]
fn pre_tool_use_decisions_use_permission_decision_and_never_stop_the_agent() {
    let env = Env::with_plugins(&["fixture_echo"]);
    for (cmd, want) in [("deny-me", "deny"), ("ask-me", "ask"), ("allow-me", "allow"), ("ls -la", "none")] {
        let run = env.hook(&bash_event(cmd));
        assert_eq!(run.code, 0);
        assert_eq!(run.permission_decision(), want, "{cmd}: {}", run.stdout);
        if want != "none" {
            let v = run.json();
            assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
            assert!(v.get("continue").is_none());
        } else {
            assert_eq!(run.stdout, "", "no opinion must be an empty answer, never an allow");
        }
    }
}

#[test]
fn updated_input_and_stop_come_through() {
    let env = Env::with_plugins(&["fixture_echo"]);
    let v = env.hook(&bash_event("rewrite-me")).json();
    assert_eq!(v["hookSpecificOutput"]["updatedInput"]["command"], "echo rewritten");
    let v = env.hook(&bash_event("stop-me")).json();
    assert_eq!(v["continue"], false);
    assert_eq!(v["stopReason"], "fixture stops the agent");
}

#[test]
fn stop_blocks_once_and_never_again_while_stop_hook_active() {
    let env = Env::with_plugins(&["fixture_echo"]);
    let v = env.hook(&event("Stop", json!({"stop_hook_active": false}))).json();
    assert_eq!(v["decision"], "block");
    assert_eq!(v["reason"], "fixture: keep going");
    let run = env.hook(&event("Stop", json!({"stop_hook_active": true})));
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    // The string "false" is not coerced: it is not `true`, so the block stands.
    let v = env.hook(&event("Stop", json!({"stop_hook_active": "false"}))).json();
    assert_eq!(v["decision"], "block");
}

#[test]
fn session_start_context_and_exit_code_blocking() {
    let env = Env::with_plugins(&["fixture_echo"]);
    let v = env.hook(&event("SessionStart", json!({"source": "startup"}))).json();
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "SessionStart");
    assert_eq!(v["hookSpecificOutput"]["additionalContext"], "echo: session started");

    let run = env.hook(&event("TaskCompleted", json!({"task_id": "1", "task_subject": "x"})));
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.trim(), "fixture: task not done");
}

#[test]
fn plugin_config_sections_reach_init() {
    let env = Env::with_plugins(&["fixture_echo"]);
    std::fs::write(env.home().join("config.toml"), "[plugins.fixture-echo]\nprefix = \"configured\"\n").unwrap();
    let v = env.hook(&event("SessionStart", json!({"source": "startup"}))).json();
    assert_eq!(v["hookSpecificOutput"]["additionalContext"], "configured: session started");
}

#[test]
fn unknown_events_are_recorded_and_answered_with_nothing() {
    let env = Env::with_plugins(&["fixture_echo"]);
    let run = env.hook(&event("PostModelSwitchV2", json!({})));
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    assert_eq!(env.events()[0]["kind"], "event_unknown_type");
}
