//! Redacting secrets from a payload before it is stored, keeping its JSON structure.
//!
//! Detection lives in the `chronicle-secrets` crate (shared with the secret-guard plugin);
//! this module walks the parsed payload and applies it to every string, plus any extra
//! patterns from the config file.

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value;

/// Redaction with the built-in rules and the config's extra patterns.
#[derive(Debug, Default)]
pub struct Redactor {
    extra: Vec<Regex>,
}

impl Redactor {
    /// Compiles the extra patterns; an invalid one is reported with its index, not its text
    /// (a pattern may itself contain part of a secret).
    pub fn new(extra_patterns: &[String]) -> Result<Redactor, String> {
        let extra = extra_patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Regex::new(p).map_err(|_| format!("redact_patterns[{i}] is not a valid regular expression")))
            .collect::<Result<_, _>>()?;
        Ok(Redactor { extra })
    }

    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut out = chronicle_secrets::redact(s);
        for re in &self.extra {
            if re.is_match(&out) {
                out = Cow::Owned(re.replace_all(&out, "[REDACTED:pattern]").into_owned());
            }
        }
        out
    }

    /// True when no string (or key) inside this JSON text can need redaction, judged on the
    /// text as written: no trigger word occurs in it, no escape could spell one (`\uXXXX`,
    /// `\/`; a trigger has no other escapable character), and no extra pattern is configured
    /// (arbitrary regexes cannot be judged on escaped text). False means: build and check.
    pub fn raw_json_clean(&self, raw: &str) -> bool {
        !raw.contains("\\u") && !raw.contains("\\/") && self.plain_json_clean(raw)
    }

    /// [`Redactor::raw_json_clean`] for JSON text already known to hold no `\u` or `\/`
    /// escape (its validation saw none): only the trigger words are left to look for.
    pub fn plain_json_clean(&self, raw: &str) -> bool {
        self.extra.is_empty() && !chronicle_secrets::mentions_trigger(raw)
    }

    /// Whether deferred fields of `text` are clean, judged on their JSON text
    /// ([`Redactor::raw_json_clean`]), with each long string searched once however often it
    /// repeats: a Write's content is in `tool_input` and again in `tool_response`, and
    /// comparing costs a fraction of searching. (No trigger word holds a quote, so a string's
    /// contents and the text around it can be searched apart.)
    pub fn deferred_clean(&self, text: &str, fields: &[crate::payload::Deferred]) -> bool {
        let mut clean_long: Vec<&str> = Vec::new();
        fields.iter().all(|d| {
            let Some(raw) = text.get(d.range.clone()) else { return false };
            if !d.plain {
                return self.raw_json_clean(raw);
            }
            let mut pos = d.range.start;
            for s in &d.long_strings {
                let (Some(gap), Some(body)) = (text.get(pos..s.start), text.get(s.clone())) else { return false };
                if !self.plain_json_clean(gap) {
                    return false;
                }
                if !clean_long.contains(&body) {
                    if !self.plain_json_clean(body) {
                        return false;
                    }
                    clean_long.push(body);
                }
                pos = s.end;
            }
            text.get(pos..d.range.end).is_some_and(|rest| self.plain_json_clean(rest))
        })
    }

    /// True when any string (or key) in `v` would be redacted. Lets the caller skip copying
    /// the payload in the common case of nothing to redact.
    pub fn needed(&self, v: &Value) -> bool {
        self.needed_in(v, &mut Vec::new())
    }

    /// `clean`: long strings already scanned and found clean. Claude Code repeats large texts
    /// within one event (a Write's content is in `tool_input` and again in `tool_response`);
    /// comparing costs a fraction of scanning.
    fn needed_in<'v>(&self, v: &'v Value, clean: &mut Vec<&'v str>) -> bool {
        match v {
            Value::String(s) if s.len() >= crate::rawjson::LONG_STRING => {
                if clean.iter().any(|c| c == s) {
                    return false;
                }
                let needed = matches!(self.text(s), Cow::Owned(_));
                if !needed {
                    clean.push(s);
                }
                needed
            }
            Value::String(s) => matches!(self.text(s), Cow::Owned(_)),
            Value::Array(items) => items.iter().any(|i| self.needed_in(i, clean)),
            Value::Object(map) => map.iter().any(|(k, val)| matches!(self.text(k), Cow::Owned(_)) || self.needed_in(val, clean)),
            _ => false,
        }
    }

    /// Redacts every string (and object key) in place; true when anything changed.
    pub fn value(&self, v: &mut Value) -> bool {
        match v {
            Value::String(s) => match self.text(s) {
                Cow::Borrowed(_) => false,
                Cow::Owned(r) => {
                    *s = r;
                    true
                }
            },
            Value::Array(items) => items.iter_mut().fold(false, |changed, item| self.value(item) | changed),
            Value::Object(map) => {
                let mut changed = false;
                let keys_to_fix: Vec<String> = map.keys().filter(|k| matches!(self.text(k), Cow::Owned(_))).cloned().collect();
                for k in keys_to_fix {
                    if let Some(val) = map.remove(&k) {
                        map.insert(self.text(&k).into_owned(), val);
                        changed = true;
                    }
                }
                for val in map.values_mut() {
                    changed |= self.value(val);
                }
                changed
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deferred_fields_are_judged_with_repeated_long_strings_searched_once() {
        use crate::payload::{classify, Payload};
        let r = Redactor::new(&[]).unwrap();
        let judge = |input: &str, response: &str| {
            let text = format!(r#"{{"hook_event_name":"PostToolUse","tool_input":{input},"tool_response":{response}}}"#);
            let raw = crate::input::RawInput { total_bytes: text.len() as u64, bytes: text.clone().into_bytes(), ..Default::default() };
            let Payload::Event { deferred, .. } = classify(&raw) else { panic!("not an event") };
            assert_eq!(deferred.len(), 2);
            assert!(deferred.iter().all(|d| d.long_strings.len() == 1));
            r.deferred_clean(&text, &deferred)
        };
        let body = "line \\\"quoted\\\"\\n".repeat(2000);
        let dirty = format!("{body}AKIAIOSFODNN7EXAMPLE");
        let field = |key: &str, s: &str| format!(r#"{{"{key}":"{s}","n":1}}"#);
        assert!(judge(&field("content", &body), &field("content", &body)), "the same clean text twice");
        assert!(!judge(&field("content", &body), &field("content", &dirty)), "a different second string is searched");
        assert!(!judge(&field("content", &dirty), &field("content", &dirty)), "the first copy is searched");
        assert!(!judge(&field("content", &body), &field("token", &body)), "text around the strings is searched");
    }

    #[test]
    fn redacts_inside_nested_structure_and_keeps_it() {
        let r = Redactor::new(&[]).unwrap();
        let mut v = json!({"tool_input": {"command": "export K=AKIAIOSFODNN7EXAMPLE", "n": 3}, "list": ["ghp_abcdefghijklmnopqrstuvwxyz0123456789"]});
        assert!(r.value(&mut v));
        assert_eq!(v["tool_input"]["command"], "export K=[REDACTED:aws-access-key-id]");
        assert_eq!(v["tool_input"]["n"], 3);
        assert_eq!(v["list"][0], "[REDACTED:github-token]");
    }

    #[test]
    fn a_repeated_long_text_is_judged_once_and_alike() {
        let r = Redactor::new(&[]).unwrap();
        let long = "plain code line\n".repeat(400);
        assert!(!r.needed(&json!({"tool_input": {"content": long}, "tool_response": {"content": long}})));
        let secret = format!("{long}export K=AKIAIOSFODNN7EXAMPLE");
        assert!(r.needed(&json!({"tool_input": {"content": long}, "tool_response": {"content": secret}})));
        assert!(r.needed(&json!({"a": secret, "b": secret})));
    }

    #[test]
    fn raw_json_is_cleared_only_when_no_escape_or_trigger_could_hide_a_secret() {
        let r = Redactor::new(&[]).unwrap();
        assert!(r.raw_json_clean(r#"{"content":"line one\nsays \"hi\"","n":1}"#));
        assert!(!r.raw_json_clean(r#"{"content":"export K=AKIAIOSFODNN7EXAMPLE"}"#));
        assert!(!r.raw_json_clean(r#"{"content":"token is here"}"#));
        // `\u0070assword=` and `postgres:\/\/u:pw@h` spell triggers only once decoded.
        assert!(!r.raw_json_clean(r#"{"content":"\u0070assword=hunter2-NOT-REAL"}"#));
        assert!(!r.raw_json_clean(r#"{"content":"postgres:\/\/u:pw1234@h\/db"}"#));
        let extra = Redactor::new(&["ACME-[0-9]{6}".into()]).unwrap();
        assert!(!extra.raw_json_clean(r#"{"content":"plain"}"#));
    }

    #[test]
    fn extra_patterns_apply_and_bad_ones_do_not_echo_themselves() {
        let r = Redactor::new(&["ACME-[0-9]{6}".into()]).unwrap();
        assert_eq!(r.text("id ACME-123456"), "id [REDACTED:pattern]");
        let err = Redactor::new(&["(unclosed-secret".into()]).unwrap_err();
        assert!(!err.contains("unclosed-secret"));
    }
}
