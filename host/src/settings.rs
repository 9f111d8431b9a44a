//! Claude Code's `settings.json`: registering `chronicle hook` for every event without
//! disturbing anything else, and removing exactly what was registered.
//!
//! **Architecture Invariant:** entries Chronicle does not own keep their values and their
//! order; a handler is Chronicle's when its command's file name is `chronicle` and its first
//! argument is `hook` (exec form), or its command line is `… chronicle hook` (shell form).

use serde_json::{json, Map, Value};

use crate::events::EventSpec;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}:{line}:{column}: not valid JSON ({message}); fix it or pass another file with --settings (nothing was written)")]
    Malformed { path: String, line: usize, column: usize, message: String },
    #[error("{path}: {what} is not a JSON object; fix it by hand (nothing was written)")]
    Shape { path: String, what: String },
}

/// Parses settings text (empty text is an empty object).
pub fn parse(text: &str, path: &str) -> Result<Value, SettingsError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| SettingsError::Malformed {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message: e.to_string().split(" at line").next().unwrap_or("").to_owned(),
    })?;
    if !v.is_object() {
        return Err(SettingsError::Shape { path: path.to_owned(), what: "the top level".into() });
    }
    Ok(v)
}

/// Serialises settings the way Claude Code writes them (two-space indent, trailing newline).
pub fn render(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// `new` written as a change of `old_text`: only the top-level `"hooks"` member is rewritten
/// (in the file's own indentation), everything else keeps its bytes: other keys' order,
/// spacing and number spellings. Falls back to [`render`] when the text cannot be followed.
pub fn render_edit(old_text: &str, new: &Value) -> String {
    splice_hooks(old_text, new).unwrap_or_else(|| render(new))
}

/// The members of the top-level object: (key, where the key starts, where its value starts and
/// ends).
fn top_members(bytes: &[u8]) -> Option<Vec<(String, usize, usize, usize)>> {
    use crate::rawjson::{skip_ws, string_end, value_end, Seen, SERDE_DEPTH};
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(bytes, i + 1);
    let mut members = Vec::new();
    if bytes.get(i) == Some(&b'}') {
        return Some(members);
    }
    loop {
        let key_end = string_end(bytes, i, &mut Seen::default())?;
        let key: String = serde_json::from_slice(&bytes[i..key_end]).ok()?;
        let colon = skip_ws(bytes, key_end);
        if bytes.get(colon) != Some(&b':') {
            return None;
        }
        let at = skip_ws(bytes, colon + 1);
        let end = value_end(bytes, at, SERDE_DEPTH - 1, &mut Seen::default())?;
        members.push((key, i, at, end));
        i = skip_ws(bytes, end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(bytes, i + 1),
            Some(b'}') => return Some(members),
            _ => return None,
        }
    }
}

fn splice_hooks(old_text: &str, new: &Value) -> Option<String> {
    let bytes = old_text.as_bytes();
    let members = top_members(bytes)?;
    if members.is_empty() {
        return None;
    }
    // The file's indentation unit: the white space before its first member.
    let line_start = old_text[..members[0].1].rfind('\n').map_or(0, |n| n + 1);
    let unit = &old_text[line_start..members[0].1];
    if unit.is_empty() || !unit.chars().all(|c| c == ' ' || c == '\t') {
        return None;
    }
    let nested = |v: &Value| -> Option<String> {
        let mut buf = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes()));
        serde::Serialize::serialize(v, &mut ser).ok()?;
        Some(String::from_utf8(buf).ok()?.replace('\n', &format!("\n{unit}")))
    };
    let old_hooks = members.iter().position(|m| m.0 == "hooks");
    let text = match (old_hooks, new.get("hooks")) {
        (Some(i), Some(hooks)) => format!("{}{}{}", &old_text[..members[i].2], nested(hooks)?, &old_text[members[i].3..]),
        (Some(i), None) => {
            // Drop the member with the comma that joined it to its neighbour.
            let (from, to) = match (i.checked_sub(1), members.get(i + 1)) {
                (Some(prev), _) => (members[prev].3, members[i].3),
                (None, Some(next)) => (members[i].1, next.1),
                (None, None) => return None,
            };
            format!("{}{}", &old_text[..from], &old_text[to..])
        }
        (None, Some(hooks)) => {
            let last = members[members.len() - 1].3;
            format!("{},\n{unit}\"hooks\": {}{}", &old_text[..last], nested(hooks)?, &old_text[last..])
        }
        (None, None) => old_text.to_owned(),
    };
    // Never write what does not mean exactly `new`.
    (serde_json::from_str::<Value>(&text).ok()? == *new).then_some(text)
}

/// True when a handler object is one of ours.
pub fn is_ours(handler: &Value) -> bool {
    let Some(cmd) = handler.get("command").and_then(Value::as_str) else { return false };
    let file_name = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    match handler.get("args").and_then(Value::as_array) {
        Some(args) => file_name(cmd) == "chronicle" && args.first().and_then(Value::as_str) == Some("hook"),
        None => {
            let mut words = cmd.split_whitespace();
            let first = words.next().map(file_name);
            first.as_deref() == Some("chronicle") && words.next() == Some("hook")
        }
    }
}

/// Events whose command hook replaces what Claude Code does by itself, so that merely
/// registering one changes its behaviour (PROTOCOL.md §16): a WorktreeCreate hook must create
/// the worktree and print its path (`claude --worktree` fails otherwise), and WorktreeRemove
/// pairs with it. Registered only when a plugin names the event in its manifest.
pub const REPLACES_BUILTIN: &[&str] = &["WorktreeCreate", "WorktreeRemove"];

/// Events registered without `async` even when no plugin answers them, because `async` would not
/// be true of them (measured with Claude Code 2.1.332, tests/e2e/claude_code.rs):
/// MessageDisplay is waited for all the same; Stop, StopFailure and SessionEnd come as a `-p`
/// session ends, when Claude Code SIGTERMs the async hooks still running and reports each as
/// `cancelled` in its log; PostToolBatch comes just before the model's last answer, and was
/// cancelled the same way when that answer came at once (a loaded machine, the real-client
/// suite's scripted API). Chronicle's hook finishes its handover anyway (see
/// `chronicle::shutdown`), but a hook that returns in ~1 ms costs nothing to wait for.
pub const NEVER_ASYNC: &[&str] = &["MessageDisplay", "PostToolBatch", "Stop", "StopFailure", "SessionEnd"];

/// What `install` registers, and what it leaves out and why.
#[derive(Debug, Clone)]
pub struct Plan {
    pub regs: Vec<Registration>,
    pub skipped: Vec<(&'static str, &'static str)>,
}

/// The registrations for the installed plugins: every event, except those in
/// [`REPLACES_BUILTIN`] that no plugin names (`named`); `async` where no plugin can answer
/// (`answerable`), so Claude Code does not wait for a mere recording, except [`NEVER_ASYNC`].
pub fn plan(answerable: &std::collections::BTreeSet<String>, named: &std::collections::BTreeSet<String>) -> Plan {
    let mut regs = Vec::new();
    let mut skipped = Vec::new();
    for spec in crate::events::EVENTS {
        if REPLACES_BUILTIN.contains(&spec.name) && !named.contains(spec.name) {
            skipped.push((spec.name, "its hook replaces Claude Code's own handling (no plugin implements it)"));
            continue;
        }
        regs.push(Registration {
            event: spec,
            is_async: !answerable.contains(spec.name) && !NEVER_ASYNC.contains(&spec.name),
            timeout_secs: if spec.name == "SessionEnd" { 2 } else { 30 },
        });
    }
    Plan { regs, skipped }
}

/// What to register for one event.
#[derive(Debug, Clone)]
pub struct Registration {
    pub event: &'static EventSpec,
    /// No installed plugin can answer it: Claude Code need not wait.
    pub is_async: bool,
    pub timeout_secs: u64,
}

fn has_matcher(spec: &EventSpec) -> bool {
    spec.tool_event
        || matches!(
            spec.name,
            "SessionStart"
                | "Setup"
                | "SessionEnd"
                | "Notification"
                | "SubagentStart"
                | "SubagentStop"
                | "PreCompact"
                | "PostCompact"
                | "ConfigChange"
                | "StopFailure"
                | "InstructionsLoaded"
                | "UserPromptExpansion"
                | "Elicitation"
                | "ElicitationResult"
                | "DirectoryAdded"
        )
}

fn handler(command: &str, r: &Registration) -> Value {
    let mut h = json!({"type": "command", "command": command, "args": ["hook"], "timeout": r.timeout_secs});
    if r.is_async {
        h["async"] = json!(true);
    }
    h
}

/// Adds or updates our handler for every registration. Returns the new settings.
pub fn install(settings: &Value, command: &str, regs: &[Registration], path: &str) -> Result<Value, SettingsError> {
    let mut out = settings.clone();
    let root = out.as_object_mut().ok_or_else(|| SettingsError::Shape { path: path.into(), what: "the top level".into() })?;
    let hooks = root.entry("hooks").or_insert_with(|| Value::Object(Map::new()));
    let hooks = hooks.as_object_mut().ok_or_else(|| SettingsError::Shape { path: path.into(), what: "\"hooks\"".into() })?;
    for r in regs {
        let wanted = handler(command, r);
        let groups = hooks.entry(r.event.name).or_insert_with(|| Value::Array(Vec::new()));
        let Some(groups) = groups.as_array_mut() else {
            return Err(SettingsError::Shape { path: path.into(), what: format!("hooks.{} (expected a list)", r.event.name) });
        };
        // Update our existing handler in place if there is one (keeps its position).
        let mut found = false;
        for g in groups.iter_mut() {
            if let Some(hs) = g.get_mut("hooks").and_then(Value::as_array_mut) {
                for h in hs.iter_mut().filter(|h| is_ours(h)) {
                    if !found {
                        if *h != wanted {
                            *h = wanted.clone();
                        }
                        found = true;
                    }
                }
            }
        }
        if !found {
            let mut group = Map::new();
            if has_matcher(r.event) {
                group.insert("matcher".into(), json!("*"));
            }
            group.insert("hooks".into(), json!([wanted]));
            groups.push(Value::Object(group));
        }
    }
    Ok(out)
}

/// Removes every handler of ours, then any group or event list left empty by that.
pub fn uninstall(settings: &Value) -> Value {
    unregister_where(settings, |_| true)
}

/// Removes our handlers of `events` only (see [`uninstall`]).
pub fn unregister(settings: &Value, events: &[&str]) -> Value {
    unregister_where(settings, |e| events.contains(&e))
}

fn unregister_where(settings: &Value, wanted: impl Fn(&str) -> bool) -> Value {
    let mut out = settings.clone();
    let Some(hooks) = out.get_mut("hooks").and_then(Value::as_object_mut) else { return out };
    let mut emptied_events = Vec::new();
    for (event, groups) in hooks.iter_mut().filter(|(e, _)| wanted(e)) {
        let Some(groups) = groups.as_array_mut() else { continue };
        let before = groups.len();
        let mut touched = false;
        for g in groups.iter_mut() {
            if let Some(hs) = g.get_mut("hooks").and_then(Value::as_array_mut) {
                let n = hs.len();
                hs.retain(|h| !is_ours(h));
                touched |= hs.len() != n;
            }
        }
        if touched {
            groups.retain(|g| g.get("hooks").and_then(Value::as_array).is_none_or(|hs| !hs.is_empty()));
            if groups.is_empty() && before > 0 {
                emptied_events.push(event.clone());
            }
        }
    }
    for e in emptied_events {
        hooks.shift_remove(&e);
    }
    if hooks.is_empty() {
        if let Some(root) = out.as_object_mut() {
            root.shift_remove("hooks");
        }
    }
    out
}

/// A unified diff of two texts, for `--dry-run`.
pub fn diff(old: &str, new: &str, path: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(path, &format!("{path} (after)")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::lookup;

    fn regs() -> Vec<Registration> {
        vec![
            Registration { event: lookup("PreToolUse").unwrap(), is_async: false, timeout_secs: 10 },
            Registration { event: lookup("Notification").unwrap(), is_async: true, timeout_secs: 10 },
            Registration { event: lookup("Stop").unwrap(), is_async: false, timeout_secs: 10 },
        ]
    }

    const FOREIGN: &str = r#"{
  "model": "opus",
  "hooks": {
    "PreToolUse": [
      { "matcher": "Bash", "hooks": [ { "type": "command", "command": "/usr/local/bin/other-guard", "timeout": 5 } ] }
    ]
  },
  "permissions": { "allow": ["Bash(ls:*)"] }
}"#;

    #[test]
    fn install_keeps_foreign_entries_and_is_idempotent() {
        let s = parse(FOREIGN, "s").unwrap();
        let once = install(&s, "/opt/bin/chronicle", &regs(), "s").unwrap();
        let twice = install(&once, "/opt/bin/chronicle", &regs(), "s").unwrap();
        assert_eq!(once, twice);
        assert_eq!(once["model"], "opus");
        assert_eq!(once["permissions"], s["permissions"]);
        let pre = once["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre[0], s["hooks"]["PreToolUse"][0], "the foreign handler is untouched and first");
        assert_eq!(pre[1]["hooks"][0]["args"][0], "hook");
        assert_eq!(once["hooks"]["Notification"][0]["hooks"][0]["async"], true);
        assert!(once["hooks"]["Stop"][0].get("matcher").is_none());
        // Key order of the original is kept.
        let keys: Vec<&String> = once.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["model", "hooks", "permissions"]);
    }

    #[test]
    fn uninstall_removes_only_ours() {
        let s = parse(FOREIGN, "s").unwrap();
        let installed = install(&s, "/opt/bin/chronicle", &regs(), "s").unwrap();
        assert_eq!(uninstall(&installed), s);
        let bare = install(&parse("{}", "s").unwrap(), "chronicle", &regs(), "s").unwrap();
        assert_eq!(uninstall(&bare), json!({}));
    }

    #[test]
    fn recognises_shell_form_and_exec_form() {
        assert!(is_ours(&json!({"command": "chronicle", "args": ["hook"]})));
        assert!(is_ours(&json!({"command": "/home/u/.cargo/bin/chronicle hook"})));
        assert!(!is_ours(&json!({"command": "chronicle-other", "args": ["hook"]})));
        assert!(!is_ours(&json!({"command": "/bin/chronicle", "args": ["stats"]})));
    }

    #[test]
    fn malformed_settings_name_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n  \"b\": \n}", "settings.json").unwrap_err().to_string();
        assert!(e.starts_with("settings.json:4:1:"), "{e}");
    }
}
