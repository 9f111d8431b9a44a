//! Merging plugin outcomes into the one answer Claude Code reads.
//!
//! The merge follows how Claude Code merges parallel hooks (PROTOCOL.md §3, §6.9): the most
//! restrictive decision wins (deny > defer > ask > allow), `additionalContext` is concatenated
//! in plugin order, `continue: false` wins over everything, and two plugins rewriting
//! `updatedInput` is a conflict in which neither rewrite is applied. The output shape is the
//! event's own (§5.2). JSON is emitted only with exit 0; exit 2 comes with stderr and an empty
//! stdout, and only for events that cannot express "block" in JSON.
//!
//! **Architecture Invariant:** the host never answers "allow" on a plugin's behalf: no plugin
//! opinion means empty stdout and exit 0, so Claude Code's own permission flow decides.

use chronicle_plugin_api::{Decision, Outcome};
use serde_json::{json, Map, Value};

use crate::events::{BlockStyle, EventSpec};

/// One plugin's opinion, ready to merge.
#[derive(Debug, Clone)]
pub struct Opinion {
    pub plugin: String,
    pub outcome: Outcome,
}

/// What the host tells Claude Code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub exit_code: i32,
    /// One JSON object, or nothing.
    pub stdout: Option<String>,
    /// The blocking reason with exit 2.
    pub stderr: Option<String>,
    /// The decision the answer expresses (`none` when it expresses none).
    pub decision: Decision,
    /// Things the merge dropped or could not reconcile, for the record.
    pub notes: Vec<String>,
}

impl Answer {
    pub fn nothing() -> Answer {
        Answer { exit_code: 0, stdout: None, stderr: None, decision: Decision::None, notes: Vec::new() }
    }
}

/// Permission modes in which a hook's `ask` is put to nobody: `bypassPermissions` approves it
/// silently (anthropics/claude-code issue 77212), `dontAsk` refuses whatever would prompt, and
/// under `auto` a classifier, not a person, decides (an ask was reported to have no blocking
/// effect there). PROTOCOL.md §15.
pub const UNATTENDED_MODES: &[&str] = &["bypassPermissions", "dontAsk", "auto"];

/// Where nobody can be asked (`permission_mode` in [`UNATTENDED_MODES`]), turns every `ask`
/// opinion on a PreToolUse-style event into a `deny` whose reason says what would have been
/// asked and why nobody was. Returns one note per converted opinion, for the record.
pub fn deny_unattended_asks(spec: &EventSpec, permission_mode: Option<&str>, opinions: &mut [Opinion]) -> Vec<String> {
    let Some(mode) = permission_mode.filter(|m| UNATTENDED_MODES.contains(m)) else { return Vec::new() };
    if spec.block != BlockStyle::PermissionDecision {
        return Vec::new();
    }
    let mut notes = Vec::new();
    for o in opinions.iter_mut().filter(|o| o.outcome.decision() == Decision::Ask) {
        let asked = o.outcome.reason.as_deref().unwrap_or("(no reason given)");
        o.outcome.decision = Some(Decision::Deny);
        o.outcome.reason = Some(format!(
            "{asked} [chronicle: denied because nobody can be asked under permission mode {mode}; ask the user to run this themselves, or set [hook] unattended_ask = \"ask\"]"
        ));
        // An ask's rewrite of the input is not carried into a deny.
        o.outcome.updated_input = None;
        notes.push(format!("ask from {} turned into deny: permission_mode {mode} asks nobody", o.plugin));
    }
    notes
}

/// Severity for the most-restrictive-wins merge; Block and Deny are the same refusal.
fn severity(d: Decision) -> u8 {
    match d {
        Decision::None => 0,
        Decision::Allow => 1,
        Decision::Ask => 2,
        Decision::Defer => 3,
        Decision::Deny | Decision::Block => 4,
    }
}

fn cap(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((i, _)) => format!("{}… [truncated by chronicle]", &text[..i]),
    }
}

fn joined<'a>(parts: impl Iterator<Item = &'a str>, sep: &str) -> Option<String> {
    let parts: Vec<&str> = parts.filter(|s| !s.trim().is_empty()).collect();
    (!parts.is_empty()).then(|| parts.join(sep))
}

/// Merges `opinions` (in plugin order) into the answer for an event described by `spec`.
/// `stop_hook_active` is the payload's flag (only a JSON `true` counts).
pub fn merge(spec: &EventSpec, stop_hook_active: bool, opinions: &[Opinion], max_chars: usize) -> Answer {
    let mut notes = Vec::new();
    let outcomes: Vec<&Outcome> = opinions.iter().map(|o| &o.outcome).collect();

    let winner = outcomes.iter().map(|o| o.decision()).max_by_key(|d| severity(*d)).unwrap_or(Decision::None);
    let mut decision = winner;
    let mut reason = joined(
        outcomes
            .iter()
            .filter(|o| severity(o.decision()) == severity(winner) && winner != Decision::None)
            .filter_map(|o| o.reason.as_deref()),
        "\n",
    );

    if spec.is_stop() && stop_hook_active && severity(decision) == 4 {
        notes.push(format!("{} block dropped: stop_hook_active is true (blocking again would loop)", spec.name));
        decision = Decision::None;
        reason = None;
    }

    let context = joined(outcomes.iter().filter_map(|o| o.additional_context.as_deref()), "\n\n");
    let system_message = joined(outcomes.iter().filter_map(|o| o.system_message.as_deref()), "\n");
    let stop_reason = outcomes.iter().find_map(|o| o.stop.as_deref());

    let rewrites: Vec<&Opinion> = opinions.iter().filter(|o| o.outcome.updated_input.is_some()).collect();
    let mut updated_input = None;
    if rewrites.len() > 1 {
        let names: Vec<&str> = rewrites.iter().map(|o| o.plugin.as_str()).collect();
        notes.push(format!("updatedInput conflict between {}: neither applied", names.join(", ")));
    } else if let Some(o) = rewrites.first() {
        if matches!(decision, Decision::Allow | Decision::Ask) && spec.block == BlockStyle::PermissionDecision {
            updated_input = o.outcome.updated_input.clone();
        } else {
            notes.push(format!("updatedInput from {} dropped: it needs a PreToolUse allow or ask", o.plugin));
        }
    }

    let mut top = Map::new();
    let mut specific = Map::new();
    let mut exit_code = 0;
    let mut stderr = None;
    let mut expressed = Decision::None;
    let reason_text = reason.as_deref().map(|r| cap(r, max_chars));

    if decision != Decision::None {
        match spec.block {
            BlockStyle::PermissionDecision => {
                let d = if decision == Decision::Block { Decision::Deny } else { decision };
                specific.insert("permissionDecision".into(), json!(d.as_str()));
                if let Some(r) = &reason_text {
                    specific.insert("permissionDecisionReason".into(), json!(r));
                }
                if let Some(input) = updated_input {
                    specific.insert("updatedInput".into(), input);
                }
                expressed = d;
            }
            BlockStyle::PermissionBehavior => match decision {
                Decision::Allow => {
                    specific.insert("decision".into(), json!({"behavior": "allow"}));
                    expressed = Decision::Allow;
                }
                Decision::Deny | Decision::Block => {
                    let mut d = Map::new();
                    d.insert("behavior".into(), json!("deny"));
                    if let Some(r) = &reason_text {
                        d.insert("message".into(), json!(r));
                    }
                    specific.insert("decision".into(), Value::Object(d));
                    expressed = Decision::Deny;
                }
                other => notes.push(format!("{} has no {} answer; left to Claude Code", spec.name, other.as_str())),
            },
            BlockStyle::DecisionBlock if severity(decision) == 4 => {
                top.insert("decision".into(), json!("block"));
                top.insert("reason".into(), json!(reason_text.clone().unwrap_or_else(|| "blocked by a chronicle plugin".into())));
                expressed = Decision::Block;
            }
            BlockStyle::ExitCode if severity(decision) == 4 => {
                exit_code = 2;
                stderr = Some(reason_text.clone().unwrap_or_else(|| "blocked by a chronicle plugin".into()));
                expressed = Decision::Block;
            }
            _ => notes.push(format!("{} cannot express {}; dropped", spec.name, decision.as_str())),
        }
    }

    if let Some(ctx) = &context {
        if spec.context {
            specific.insert("additionalContext".into(), json!(cap(ctx, max_chars)));
        } else {
            notes.push(format!("{} does not accept additionalContext; dropped", spec.name));
        }
    }
    if let Some(msg) = &system_message {
        top.insert("systemMessage".into(), json!(cap(msg, max_chars)));
    }
    if let Some(r) = stop_reason {
        top.insert("continue".into(), json!(false));
        top.insert("stopReason".into(), json!(cap(r, max_chars)));
    }

    if exit_code == 2 {
        if !top.is_empty() || !specific.is_empty() {
            notes.push("exit 2 answers carry no JSON; other fields dropped".into());
        }
        return Answer { exit_code, stdout: None, stderr, decision: expressed, notes };
    }
    if !specific.is_empty() {
        let mut hso = Map::new();
        hso.insert("hookEventName".into(), json!(spec.name));
        hso.extend(specific);
        top.insert("hookSpecificOutput".into(), Value::Object(hso));
    }
    let stdout = (!top.is_empty()).then(|| Value::Object(top).to_string());
    Answer { exit_code: 0, stdout, stderr: None, decision: expressed, notes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::lookup;

    fn op(plugin: &str, o: Outcome) -> Opinion {
        Opinion { plugin: plugin.into(), outcome: o }
    }

    fn spec(name: &str) -> &'static EventSpec {
        lookup(name).unwrap()
    }

    fn stdout(a: &Answer) -> Value {
        serde_json::from_str(a.stdout.as_deref().unwrap()).unwrap()
    }

    /// The client's answer when no host can run (`failsafe::deny`) is what a host answers for
    /// a fail-closed plugin that did not run (`hook::plugins::fail_closed`'s opinion).
    #[test]
    fn the_clients_fail_closed_answer_is_the_hosts() {
        for spec in crate::events::EVENTS.iter().filter(|s| s.can_block()) {
            let denied = if spec.name == "PreToolUse" || spec.name == "PermissionRequest" { Outcome::deny("r") } else { Outcome::block("r") };
            let a = merge(spec, false, &[op("g", denied)], 100);
            assert_eq!(crate::failsafe::deny(spec, "r"), (a.exit_code, a.stdout.clone(), a.stderr.clone()), "{}", spec.name);
        }
    }

    #[test]
    fn no_opinion_means_empty_stdout_and_exit_0() {
        let a = merge(spec("PreToolUse"), false, &[op("a", Outcome::none())], 100);
        assert_eq!(a, Answer::nothing());
    }

    #[test]
    fn deny_beats_ask_beats_allow_and_only_the_winners_reasons_count() {
        let a = merge(
            spec("PreToolUse"),
            false,
            &[op("a", Outcome::allow("fine")), op("b", Outcome::deny("rm -rf /")), op("c", Outcome::ask("hmm"))],
            100,
        );
        let v = stdout(&a);
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
        assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
        assert_eq!(v["hookSpecificOutput"]["permissionDecisionReason"], "rm -rf /");
        assert!(v.get("continue").is_none(), "a deny must not stop the whole agent");
    }

    #[test]
    fn defer_beats_ask() {
        let a = merge(spec("PreToolUse"), false, &[op("a", Outcome::ask("x")), op("b", Outcome::defer("y"))], 100);
        assert_eq!(stdout(&a)["hookSpecificOutput"]["permissionDecision"], "defer");
    }

    #[test]
    fn block_on_prompt_submit_uses_top_level_decision() {
        let a = merge(spec("UserPromptSubmit"), false, &[op("s", Outcome::block("secret in prompt"))], 100);
        let v = stdout(&a);
        assert_eq!(v["decision"], "block");
        assert_eq!(v["reason"], "secret in prompt");
        assert_eq!(a.exit_code, 0);
    }

    #[test]
    fn stop_hook_active_is_never_blocked_again() {
        let a = merge(spec("Stop"), true, &[op("s", Outcome::block("keep going"))], 100);
        assert_eq!(a.stdout, None);
        assert_eq!(a.decision, Decision::None);
        let a = merge(spec("Stop"), false, &[op("s", Outcome::block("keep going"))], 100);
        assert_eq!(stdout(&a)["decision"], "block");
    }

    #[test]
    fn context_is_concatenated_in_plugin_order_where_accepted() {
        let a = merge(
            spec("SessionStart"),
            false,
            &[op("a", Outcome::none().with_context("one")), op("b", Outcome::none().with_context("two"))],
            100,
        );
        assert_eq!(stdout(&a)["hookSpecificOutput"]["additionalContext"], "one\n\ntwo");
        let a = merge(spec("Notification"), false, &[op("a", Outcome::none().with_context("x"))], 100);
        assert_eq!(a.stdout, None);
        assert_eq!(a.notes.len(), 1);
    }

    #[test]
    fn two_rewrites_conflict_and_neither_applies() {
        let a = merge(
            spec("PreToolUse"),
            false,
            &[
                op("a", Outcome::allow("x").with_updated_input(json!({"command": "a"}))),
                op("b", Outcome::allow("y").with_updated_input(json!({"command": "b"}))),
            ],
            100,
        );
        assert!(stdout(&a)["hookSpecificOutput"].get("updatedInput").is_none());
        assert!(a.notes[0].contains("conflict"));
        let a = merge(spec("PreToolUse"), false, &[op("a", Outcome::ask("x").with_updated_input(json!({"command": "a"})))], 100);
        assert_eq!(stdout(&a)["hookSpecificOutput"]["updatedInput"]["command"], "a");
    }

    #[test]
    fn continue_false_wins() {
        let a = merge(spec("PostToolUse"), false, &[op("a", Outcome::stop("budget exhausted"))], 100);
        let v = stdout(&a);
        assert_eq!(v["continue"], false);
        assert_eq!(v["stopReason"], "budget exhausted");
    }

    #[test]
    fn exit_code_events_block_with_exit_2_and_no_stdout() {
        let a = merge(spec("TaskCompleted"), false, &[op("a", Outcome::block("tests fail"))], 100);
        assert_eq!((a.exit_code, a.stdout.as_deref(), a.stderr.as_deref()), (2, None, Some("tests fail")));
    }

    #[test]
    fn events_that_cannot_block_drop_the_decision() {
        let a = merge(spec("Notification"), false, &[op("a", Outcome::deny("no"))], 100);
        assert_eq!(a.stdout, None);
        assert_eq!(a.exit_code, 0);
    }

    #[test]
    fn text_fields_are_capped_on_char_boundaries() {
        let long = "é".repeat(50);
        let a = merge(spec("PreToolUse"), false, &[op("a", Outcome::deny(long))], 10);
        let r = stdout(&a)["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().to_owned();
        assert!(r.starts_with(&"é".repeat(10)));
        assert!(r.chars().count() < 50);
    }

    #[test]
    fn permission_request_uses_behavior() {
        let a = merge(spec("PermissionRequest"), false, &[op("a", Outcome::deny("nope"))], 100);
        let v = stdout(&a);
        assert_eq!(v["hookSpecificOutput"]["decision"]["behavior"], "deny");
        assert_eq!(v["hookSpecificOutput"]["decision"]["message"], "nope");
    }
}
