//! `secret-guard`: notices live-looking credentials in what Claude is about to send or run.
//!
//! - PreToolUse: asks the user to confirm a tool call whose input carries a credential
//!   (a key in a command line ends up in shell history, logs and the transcript).
//! - UserPromptSubmit: blocks the prompt with a reason saying what was found and how to resend
//!   it; the prompt is erased before Claude sees it.
//!
//! Detection is shared with the host's redaction (`chronicle-secrets`): every rule is anchored
//! on a vendor prefix, a key block or a `password=`-style label, so git SHAs, UUIDs and base64
//! test data are not flagged. Reasons name the kind of credential, never its value.
//! It fails open: a fault here must not block every prompt; the host still redacts what it stores.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::time::Duration;

use chronicle_plugin_api::{export_plugin, Event, Manifest, Outcome, Plugin};

pub struct SecretGuard;

fn kinds_in(value: &serde_json::Value) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    walk(value, &mut kinds);
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

fn walk(v: &serde_json::Value, kinds: &mut Vec<&'static str>) {
    match v {
        serde_json::Value::String(s) => kinds.extend(chronicle_secrets::kinds(s)),
        serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, kinds)),
        serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, kinds)),
        _ => {}
    }
}

/// The event's JSON text spells every character as itself and holds no trigger word: then no
/// string in it holds a credential, and the event need not be parsed (a 241 KB Write's tree
/// cost this plugin more than its search).
fn plainly_without_trigger(text: &str) -> bool {
    !text.contains("\\u") && !text.contains("\\/") && !chronicle_secrets::mentions_trigger(text)
}

/// What [`plainly_without_trigger`] looks for, as the manifest's promise (plugin-api 1.4): a
/// host does not even load this plugin for an event whose text holds none of these.
fn text_triggers() -> Vec<&'static str> {
    ["\\u", "\\/"].into_iter().chain(chronicle_secrets::trigger_words()).collect()
}

impl SecretGuard {
    pub fn decide(&self, event: &Event) -> Outcome {
        match event.hook_event_name() {
            "UserPromptSubmit" => {
                let Some(prompt) = event.str_field("prompt") else { return Outcome::none() };
                let kinds = chronicle_secrets::kinds(prompt);
                if kinds.is_empty() {
                    return Outcome::none();
                }
                Outcome::block(format!(
                    "secret-guard: your prompt contains what looks like a live credential ({}). It was not sent. Remove it, or refer to it by an environment variable name, and send the prompt again.",
                    kinds.join(", ")
                ))
            }
            "PreToolUse" => {
                let Some(input) = event.tool_input() else { return Outcome::none() };
                let kinds = kinds_in(input);
                if kinds.is_empty() {
                    return Outcome::none();
                }
                Outcome::ask(format!(
                    "secret-guard: this {} call carries what looks like a live credential ({}); it would land in logs and the transcript. Confirm, or use an environment variable instead.",
                    event.tool_name().unwrap_or("tool"),
                    kinds.join(", ")
                ))
            }
            _ => Outcome::none(),
        }
    }
}

impl Plugin for SecretGuard {
    fn manifest() -> Manifest {
        Manifest::new("secret-guard", env!("CARGO_PKG_VERSION"))
            .events(&["PreToolUse", "UserPromptSubmit"])
            .timeout(Duration::from_millis(500))
            // Only reads (the event, its config, the project's files): safe on several threads at once.
            .concurrent_calls()
            .only_if_text_contains(&text_triggers())
    }

    fn init(_config: &serde_json::Value) -> Result<Self, String> {
        Ok(SecretGuard)
    }

    fn handle(&self, event: &Event) -> Outcome {
        if event.text().is_some_and(plainly_without_trigger) {
            return Outcome::none();
        }
        self.decide(event)
    }
}

export_plugin!(SecretGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use chronicle_plugin_api::Decision;
    use serde_json::json;

    fn bash(cmd: &str) -> Event {
        Event::from_value(json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": cmd}}))
    }

    fn prompt(p: &str) -> Event {
        Event::from_value(json!({"hook_event_name": "UserPromptSubmit", "prompt": p}))
    }

    #[test]
    fn asks_on_tool_input_and_blocks_prompts_without_echoing_the_secret() {
        let g = SecretGuard;
        let o = g.decide(&bash("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE aws s3 ls"));
        assert_eq!(o.decision(), Decision::Ask);
        assert!(!o.reason.as_deref().unwrap().contains("AKIAIOSFODNN7EXAMPLE"));
        let o = g.decide(&prompt("use token ghp_abcdefghijklmnopqrstuvwxyz0123456789 please"));
        assert_eq!(o.decision(), Decision::Block);
        assert!(o.reason.as_deref().unwrap().contains("github-token"));
    }

    /// The shared decision table (also run through the real binary by tests/e2e/guards.rs).
    #[test]
    fn decision_table() {
        let table = include_str!("../../../tests/corpus/guards.jsonl");
        let (rows, failures) = chronicle_plugin_api::testing::run_table(table, "secret-guard", "/p", |e| SecretGuard.decide(e));
        assert!(rows >= 5, "{rows} rows");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn no_false_positives_on_shas_uuids_or_base64() {
        let g = SecretGuard;
        for cmd in [
            "git show 3f786850e387550fdab836ed7e6dc881de23001b",
            "curl https://api.example.com/items/6f1c2a9e-3b7d-4c5e-9a21-0d8e4b7c1f33",
            "echo aGVsbG8gd29ybGQgdGhpcyBpcyBqdXN0IGJhc2U2NCB0ZXN0IGRhdGE= | base64 -d",
            "python -m pytest -q",
        ] {
            assert_eq!(g.decide(&bash(cmd)).decision(), Decision::None, "{cmd}");
        }
        assert_eq!(g.decide(&prompt("fix the bug in commit 3f786850e387550fdab836ed7e6dc881de23001b")).decision(), Decision::None);
    }

    /// Deciding from the text first changes no decision: every row of the decision table (as
    /// an event) and credentials spelled with escapes, which the text search cannot see, get
    /// what the parsed event gets.
    #[test]
    fn the_text_shortcut_decides_as_the_parsed_event() {
        let mut texts: Vec<String> = Vec::new();
        for line in include_str!("../../../tests/corpus/guards.jsonl").lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let event = match row["prompt"].as_str() {
                Some(p) => json!({"hook_event_name": "UserPromptSubmit", "cwd": "/p", "prompt": p}),
                None => json!({"hook_event_name": "PreToolUse", "cwd": "/p", "tool_name": row["tool"], "tool_input": row["input"]}),
            };
            texts.push(event.to_string());
        }
        texts.extend(
            [
                r#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"echo \u0041KIAIOSFODNN7EXAMPLE"}}"#,
                r#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"curl https:\/\/admin:hunter2hunter2@db.example.com\/x"}}"#,
                r#"{"hook_event_name":"UserPromptSubmit","prompt":"token gh\u0070_abcdefghijklmnopqrstuvwxyz0123456789"}"#,
                r#"{"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{"file_path":"/p/a","content":"line\nAKIAIOSFODNN7EXAMPLE\n"}}"#,
            ]
            .map(str::to_owned),
        );
        // The manifest's promise, read as a host reads it: no word of it in the text (ASCII case
        // ignored) means no opinion.
        let promised: Vec<String> = SecretGuard::manifest().text_triggers().expect("the manifest names its words");
        let mentions = |text: &str| {
            let text = text.to_ascii_lowercase();
            promised.iter().any(|w| text.contains(&w.to_ascii_lowercase()))
        };
        let (mut flagged, mut silent) = (0, 0);
        for text in &texts {
            let expected = SecretGuard.decide(&Event::from_value(serde_json::from_str(text).unwrap())).decision();
            assert_eq!(SecretGuard.handle(&Event::parse(text).unwrap()).decision(), expected, "{text}");
            flagged += usize::from(expected != Decision::None);
            if !mentions(text) {
                assert_eq!(expected, Decision::None, "the manifest promised silence on {text}");
                silent += 1;
            }
        }
        assert!(flagged >= 6, "only {flagged} events with a credential");
        assert!(silent >= 3, "only {silent} events without a promised word: the promise is not exercised");
        // No trigger in the text: answered without parsing it (this text would not parse).
        let unparsed = Event::parse(r#"{"hook_event_name":"PreToolUse","tool_input":{"command":"ls"#).unwrap();
        assert_eq!(SecretGuard.handle(&unparsed).decision(), Decision::None);
        assert!(unparsed.invalid().is_none(), "parsed");
    }
}
