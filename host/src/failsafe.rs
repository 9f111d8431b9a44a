//! The answer when no `chronicle-host` can run at all.
//!
//! A client that cannot start the host (its binary missing or not executable past an upgrade's
//! patience, no process or memory left for it), or whose host dies at every attempt (a binary
//! half copied), keeps the raw event in the spool, and the event reaches no plugin. Answering nothing would switch off, unseen, every guard whose manifest
//! says it fails closed: it would have denied an event it could not judge. So the client reads
//! the plugin index the hosts keep (each file's manifest, without loading anything) and, when a
//! fail-closed plugin wants this event, denies it on that plugin's behalf in the shape the event
//! takes, as a host answers for a fail-closed plugin whose file does not load. Plugins that fail
//! open, and events no such plugin wants, are answered with nothing, as before.
//!
//! Without regular expressions (the client does not link them), a tool matcher that is a
//! pattern is taken to match: in this corner a guard denies too much rather than too little.

use std::path::Path;

use serde_json::{json, Value};

use crate::events::{self, BlockStyle, EventSpec};

/// The index file in the data directory (`chronicle::plugin::index`).
pub const INDEX_FILE: &str = "plugin-index.json";

/// What the client answers instead of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub exit_code: i32,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// The fail-closed plugins that wanted the event, by name.
    pub guards: Vec<String>,
}

/// The top-level fields of the event this needs; the rest is skipped unbuilt. A key given
/// twice counts by its last value, as in the host.
#[derive(Debug, Default, PartialEq)]
struct Top {
    hook_event_name: Option<String>,
    tool_name: Option<String>,
    stop_hook_active: bool,
}

/// Reads `input`'s top-level fields into a [`Top`] as far as they go.
struct TopReader<'a>(&'a mut Top);

impl<'de> serde::de::Visitor<'de> for TopReader<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a hook event (a JSON object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "hook_event_name" => self.0.hook_event_name = map.next_value::<Value>()?.as_str().map(str::to_owned),
                "tool_name" => self.0.tool_name = map.next_value::<Value>()?.as_str().map(str::to_owned),
                "stop_hook_active" => self.0.stop_hook_active = map.next_value::<Value>()? == Value::Bool(true),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The event's [`Top`]: from a whole, valid JSON object only, or, for an input cut at the size
/// cap (`cut`), from the fields that arrived complete before the cut (Claude Code writes the
/// event's name and tool before its input), as a host reads a cut event.
fn read_top(input: &[u8], cut: bool) -> Option<Top> {
    let mut top = Top::default();
    let mut de = serde_json::Deserializer::from_slice(input);
    let whole = serde::Deserializer::deserialize_map(&mut de, TopReader(&mut top)).and_then(|()| de.end()).is_ok();
    (whole || cut).then_some(top)
}

/// The refusal for `input` (`cut`: at the size cap) when no host could run (`why`), if a
/// fail-closed plugin in the index of `data_dir` wants it and is not in `disabled` (the config's
/// `disabled_plugins`). None: the event is answered with nothing (input that is not an event,
/// an event that cannot be blocked, a Stop hook already active, no such plugin).
pub fn refusal(data_dir: &Path, disabled: &[String], input: &[u8], cut: bool, why: &str) -> Option<Refusal> {
    let top = read_top(input, cut)?;
    let spec = events::lookup(top.hook_event_name.as_deref()?)?;
    if !spec.can_block() || (spec.is_stop() && top.stop_hook_active) {
        return None;
    }
    let index: Vec<Value> = serde_json::from_slice(&std::fs::read(data_dir.join(INDEX_FILE)).ok()?).ok()?;
    let guards: Vec<String> = index
        .iter()
        .filter(|entry| entry["path"].as_str().is_some_and(|p| Path::new(p).exists()))
        .filter_map(|entry| Some(&entry["info"]).filter(|m| m.is_object()).or(Some(&entry["last_loaded"])).filter(|m| m.is_object()))
        .filter(|m| m["failure_policy"] == "closed")
        .filter(|m| m["events"].as_array().is_some_and(|e| e.iter().any(|e| *e == *spec.name)))
        .filter(|m| !spec.tool_event || may_match(m["tool_matcher"].as_str(), top.tool_name.as_deref()))
        .filter_map(|m| m["name"].as_str().map(str::to_owned))
        .filter(|name| !disabled.contains(name))
        .collect();
    if guards.is_empty() {
        return None;
    }
    let reason = format!(
        "chronicle: {} could not check this ({why}) and {} configured to fail closed; the event is kept. Reinstall chronicle (see `chronicle doctor`)",
        guards.join(", "),
        if guards.len() == 1 { "is" } else { "are" },
    );
    let (exit_code, stdout, stderr) = deny(spec, &reason);
    Some(Refusal { exit_code, stdout, stderr, guards })
}

/// A deny with `reason`, as `answer::merge` expresses one for `spec` (its tests hold the two
/// together): exit code, stdout, stderr.
pub fn deny(spec: &EventSpec, reason: &str) -> (i32, Option<String>, Option<String>) {
    let specific = |fields: Value| {
        let mut hso = json!({"hookEventName": spec.name});
        if let (Some(hso), Value::Object(fields)) = (hso.as_object_mut(), fields) {
            hso.extend(fields);
        }
        json!({"hookSpecificOutput": hso}).to_string()
    };
    match spec.block {
        BlockStyle::PermissionDecision => {
            (0, Some(specific(json!({"permissionDecision": "deny", "permissionDecisionReason": reason}))), None)
        }
        BlockStyle::PermissionBehavior => (0, Some(specific(json!({"decision": {"behavior": "deny", "message": reason}}))), None),
        BlockStyle::DecisionBlock => (0, Some(json!({"decision": "block", "reason": reason}).to_string()), None),
        BlockStyle::ExitCode => (2, None, Some(reason.to_owned())),
        BlockStyle::Never => (0, None, None),
    }
}

/// Claude Code's matcher semantics (`chronicle::plugin::matcher`, whose tests hold the two
/// together) without the regular expressions: a pattern may match.
pub(crate) fn may_match(matcher: Option<&str>, tool_name: Option<&str>) -> bool {
    let m = matcher.unwrap_or("").trim();
    if m.is_empty() || m == "*" {
        return true;
    }
    let simple = m.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ' | ',' | '|'));
    match tool_name {
        None => false,
        Some(_) if !simple => true,
        Some(t) => m.split(['|', ',']).map(str::trim).any(|n| n == t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(index: Value) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDEX_FILE), index.to_string()).unwrap();
        dir
    }

    /// An index entry for a plugin file that exists (this test's own binary stands in for it).
    fn entry(name: &str, events: &[&str], matcher: Option<&str>, policy: &str) -> Value {
        let path = std::env::current_exe().unwrap();
        json!({"path": path, "info": {"name": name, "events": events, "tool_matcher": matcher, "failure_policy": policy}})
    }

    fn bash(command: &str) -> Vec<u8> {
        json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}).to_string().into_bytes()
    }

    #[test]
    fn a_fail_closed_guard_that_wants_the_event_denies_it() {
        let dir =
            home(json!([entry("bash-guard", &["PreToolUse"], Some("Bash"), "closed"), entry("notes", &["PreToolUse"], None, "open")]));
        let r = refusal(dir.path(), &[], &bash("ls"), false, "cannot run chronicle-host: gone").unwrap();
        assert_eq!(r.guards, vec!["bash-guard"]);
        let out: Value = serde_json::from_str(r.stdout.as_deref().unwrap()).unwrap();
        assert_eq!(out["hookSpecificOutput"]["hookEventName"], "PreToolUse");
        assert_eq!(out["hookSpecificOutput"]["permissionDecision"], "deny");
        let reason = out["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap();
        assert!(reason.contains("bash-guard could not check this (cannot run chronicle-host: gone)"), "{reason}");
        assert_eq!((r.exit_code, r.stderr), (0, None));
    }

    #[test]
    fn nothing_is_denied_for_guards_that_do_not_want_the_event() {
        let dir =
            home(json!([entry("bash-guard", &["PreToolUse"], Some("Bash"), "closed"), entry("notes", &["PreToolUse"], None, "open")]));
        let read = json!({"hook_event_name": "PreToolUse", "tool_name": "Read"}).to_string();
        assert_eq!(refusal(dir.path(), &[], read.as_bytes(), false, "x"), None, "another tool");
        assert_eq!(refusal(dir.path(), &["bash-guard".into()], &bash("ls"), false, "x"), None, "disabled");
        let prompt = json!({"hook_event_name": "UserPromptSubmit", "prompt": "hi"}).to_string();
        assert_eq!(refusal(dir.path(), &[], prompt.as_bytes(), false, "x"), None, "another event");
        assert_eq!(refusal(dir.path(), &[], b"{not json", false, "x"), None, "not an event");
        let gone =
            home(json!([{"path": "/nonexistent/libx.so", "info": {"name": "x", "events": ["PreToolUse"], "failure_policy": "closed"}}]));
        assert_eq!(refusal(gone.path(), &[], &bash("ls"), false, "x"), None, "a plugin file that was removed");
        assert_eq!(refusal(tempfile::tempdir().unwrap().path(), &[], &bash("ls"), false, "x"), None, "no index");
    }

    #[test]
    fn a_file_that_does_not_load_answers_by_the_last_manifest_that_did() {
        let mut e = entry("bash-guard", &["PreToolUse"], Some("Bash"), "closed");
        e["last_loaded"] = e["info"].take();
        e["info"] = Value::Null;
        let dir = home(json!([e]));
        assert!(refusal(dir.path(), &[], &bash("ls"), false, "x").is_some());
    }

    #[test]
    fn stop_is_not_blocked_again_and_exit_code_events_get_exit_2() {
        let dir = home(json!([entry("keep-going", &["Stop", "TaskCompleted"], None, "closed")]));
        let stop = |active: bool| json!({"hook_event_name": "Stop", "stop_hook_active": active}).to_string().into_bytes();
        assert_eq!(refusal(dir.path(), &[], &stop(true), false, "x"), None);
        let r = refusal(dir.path(), &[], &stop(false), false, "x").unwrap();
        assert_eq!(serde_json::from_str::<Value>(r.stdout.as_deref().unwrap()).unwrap()["decision"], "block");
        let done = json!({"hook_event_name": "TaskCompleted"}).to_string();
        let r = refusal(dir.path(), &[], done.as_bytes(), false, "x").unwrap();
        assert_eq!((r.exit_code, r.stdout.is_none()), (2, true));
        assert!(r.stderr.unwrap().contains("keep-going"));
    }

    #[test]
    fn an_event_cut_at_the_cap_is_read_as_far_as_its_fields_arrived() {
        let whole = br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}"#;
        let cut = &whole[..whole.len() - 12];
        let top =
            |name: &str, tool: &str| Top { hook_event_name: Some(name.into()), tool_name: Some(tool.into()), stop_hook_active: false };
        assert_eq!(read_top(whole, false), Some(top("PreToolUse", "Bash")));
        assert_eq!(read_top(cut, true), Some(top("PreToolUse", "Bash")));
        assert_eq!(read_top(cut, false), None, "not cut by the cap: not an event, as for the host");
        assert_eq!(read_top(br#"{"hook_event_name":"A"} trailing"#, false), None);
        let twice = br#"{"hook_event_name":"Stop","hook_event_name":"PreToolUse","tool_name":"Bash"}"#;
        assert_eq!(read_top(twice, false), Some(top("PreToolUse", "Bash")), "the last value counts");
        let dir = home(json!([entry("bash-guard", &["PreToolUse"], Some("Bash"), "closed")]));
        assert!(refusal(dir.path(), &[], cut, true, "x").is_some());
        let cut_before_the_tool = &whole[..40];
        assert_eq!(refusal(dir.path(), &[], cut_before_the_tool, true, "x"), None, "the tool never arrived");
    }

    #[test]
    fn matchers_follow_claude_code_and_a_pattern_may_match() {
        assert!(may_match(None, Some("Bash")) && may_match(Some("*"), None));
        assert!(may_match(Some("Read|Write"), Some("Write")) && may_match(Some("Edit, Write"), Some("Edit")));
        assert!(!may_match(Some("Bash"), Some("bash")) && !may_match(Some("Bash"), None));
        assert!(may_match(Some("mcp__.*"), Some("Bash")), "a pattern is not evaluated here");
    }
}
