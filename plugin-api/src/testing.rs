//! Data-driven tests for plugins: a JSON-lines table of events and expected decisions.
//!
//! Each line: `{"plugin": NAME, "tool": TOOL, "input": {...}, "decision": "deny"}` for a
//! PreToolUse event, or `{"plugin": NAME, "prompt": "...", "decision": "block"}` for a
//! UserPromptSubmit. Chronicle's built-in guards share one table (tests/corpus/guards.jsonl)
//! between their in-process tests and the end-to-end tests that run it through the binary.

use serde_json::{json, Value};

use crate::{Decision, Event, Outcome};

/// Runs every row of `table` for `plugin` through `decide`, with `cwd` as the event's working
/// directory. Returns how many rows ran and a description of each mismatch.
pub fn run_table(table: &str, plugin: &str, cwd: &str, decide: impl Fn(&Event) -> Outcome) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in table.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("bad table line {line:?}: {e}"));
                continue;
            }
        };
        if row["plugin"] != plugin {
            continue;
        }
        rows += 1;
        let event = match row["prompt"].as_str() {
            Some(p) => json!({"hook_event_name": "UserPromptSubmit", "cwd": cwd, "prompt": p}),
            None => json!({"hook_event_name": "PreToolUse", "cwd": cwd, "tool_name": row["tool"], "tool_input": row["input"]}),
        };
        let Some(want) = row["decision"].as_str().and_then(Decision::parse) else {
            failures.push(format!("row without a valid decision: {row}"));
            continue;
        };
        let got = decide(&Event::from_value(event));
        if got.decision() != want {
            failures.push(format!(
                "{}: want {}, got {} ({:?})",
                row.get("input").unwrap_or(&row["prompt"]),
                want.as_str(),
                got.decision().as_str(),
                got.reason
            ));
        }
    }
    (rows, failures)
}
