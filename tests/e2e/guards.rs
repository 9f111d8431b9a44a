//! The guards' decision table (tests/corpus/guards.jsonl, shared with the plugins' in-process
//! tests) through the real binary: each row's plugin installed alone, the event sent to
//! `chronicle hook`, the answer's decision compared.

use chronicle_e2e::{corpus_lines, event, Env};
use serde_json::{json, Value};

#[test]
fn every_table_row_gets_its_decision_through_the_binary() {
    let rows: Vec<Value> = corpus_lines("guards.jsonl").iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut failures = Vec::new();
    for plugin in ["bash-guard", "file-guard", "secret-guard"] {
        let mut env = Env::with_plugins(&[&format!("chronicle_{}", plugin.replace('-', "_"))]);
        env.set_env("HOME", "/home/dev");
        for row in rows.iter().filter(|r| r["plugin"] == plugin) {
            let payload = match row["prompt"].as_str() {
                Some(p) => event("UserPromptSubmit", json!({"prompt": p})),
                None => event("PreToolUse", json!({"tool_name": row["tool"], "tool_input": row["input"], "tool_use_id": "t"})),
            };
            let run = env.hook(&payload);
            let got = if run.stdout.is_empty() {
                "none".to_owned()
            } else {
                let v = run.json();
                v["hookSpecificOutput"]["permissionDecision"].as_str().or(v["decision"].as_str()).unwrap_or("none").to_owned()
            };
            if got != row["decision"] {
                failures.push(format!("{plugin} {}: want {}, got {got} ({})", row["input"], row["decision"], run.stdout));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
