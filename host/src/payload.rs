//! Turning stdin bytes into a classified event: a known event, an unknown one, or a parse
//! error, never a panic and never nothing.
//!
//! **Architecture Invariant:** routing and recording use the same parsed value (serde_json
//! keeps the last of duplicate keys, as JavaScript's `JSON.parse` does), so the host never
//! decides on one `hook_event_name` and records another.

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::events::{self, EventSpec};
use crate::input::RawInput;

/// What the store calls each kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    EventUnknownType,
    ParseError,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::EventUnknownType => "event_unknown_type",
            Kind::ParseError => "parse_error",
        }
    }
}

/// A classified payload.
#[derive(Debug)]
pub enum Payload {
    /// A known event, complete: plugins may run. `verbatim`: the input bytes are exactly the
    /// JSON that was parsed (no BOM stripped, no surrogate repaired), so plugins can get them as is.
    Event { value: Value, spec: &'static EventSpec, verbatim: bool },
    /// A JSON object whose `hook_event_name` is missing or not one we know.
    Unknown { value: Value, reason: String },
    /// Input past the size cap: the top-level fields that arrived complete.
    Truncated { value: Value, spec: Option<&'static EventSpec>, incomplete_field: Option<String> },
    /// Not a JSON object with a string `hook_event_name`.
    Invalid { reason: String },
}

impl Payload {
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Event { .. } => Kind::Event,
            Payload::Truncated { spec: Some(_), .. } => Kind::Event,
            Payload::Unknown { .. } | Payload::Truncated { spec: None, .. } => Kind::EventUnknownType,
            Payload::Invalid { .. } => Kind::ParseError,
        }
    }

    /// The parsed object, when there is one.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Payload::Event { value, .. } | Payload::Unknown { value, .. } | Payload::Truncated { value, .. } => Some(value),
            Payload::Invalid { .. } => None,
        }
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.value().and_then(|v| v.get(key)).and_then(Value::as_str)
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Classifies raw stdin. `input.bytes` holds at most the cap; `input.truncated` says more came.
pub fn classify(input: &RawInput) -> Payload {
    let bytes = input.bytes.strip_prefix(UTF8_BOM).unwrap_or(&input.bytes);
    if input.truncated {
        return classify_truncated(bytes);
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Payload::Invalid { reason: "input is UTF-16; Claude Code sends UTF-8 JSON".into() };
    }
    if bytes.trim_ascii().is_empty() {
        return Payload::Invalid { reason: "empty input: expected one JSON object".into() };
    }
    let verbatim = bytes.len() == input.bytes.len();
    let (value, verbatim) = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => (v, verbatim),
        Err(first) => match fix_lone_surrogates(bytes).map(|fixed| serde_json::from_slice::<Value>(&fixed)) {
            Some(Ok(v)) => (v, false),
            _ => return Payload::Invalid { reason: format!("input is not valid JSON: {first}") },
        },
    };
    classify_value(value, verbatim)
}

fn classify_value(value: Value, verbatim: bool) -> Payload {
    let Value::Object(map) = &value else {
        return Payload::Invalid { reason: format!("input root is {}, not an object", json_type(&value)) };
    };
    match map.get("hook_event_name") {
        Some(Value::String(name)) => match events::lookup(name) {
            Some(spec) => Payload::Event { value, spec, verbatim },
            None => Payload::Unknown { reason: format!("unknown hook_event_name {:?}", truncate_chars(name, 80)), value },
        },
        Some(other) => Payload::Invalid { reason: format!("hook_event_name is {}, not a string", json_type(other)) },
        None => Payload::Unknown { value, reason: "no hook_event_name field".into() },
    }
}

fn classify_truncated(bytes: &[u8]) -> Payload {
    let mut fields = Map::new();
    let mut pending_key = None;
    let complete = read_partial_object(bytes, &mut fields, &mut pending_key);
    if fields.is_empty() && !complete {
        return Payload::Invalid { reason: "input exceeds the size cap and its first field is incomplete".into() };
    }
    let spec = fields.get("hook_event_name").and_then(Value::as_str).and_then(events::lookup);
    Payload::Truncated { value: Value::Object(fields), spec, incomplete_field: pending_key }
}

/// Collects the top-level fields of an object that arrive complete, stopping at the first
/// error. Returns true when the whole object parsed.
fn read_partial_object(bytes: &[u8], out: &mut Map<String, Value>, pending: &mut Option<String>) -> bool {
    struct Collect<'a> {
        out: &'a mut Map<String, Value>,
        pending: &'a mut Option<String>,
    }
    impl<'de> Visitor<'de> for Collect<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                *self.pending = Some(key.clone());
                let value: Value = map.next_value()?;
                *self.pending = None;
                self.out.insert(key, value);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(Collect { out, pending }).is_ok()
}

/// Replaces lone UTF-16 surrogate escapes (`"\ud800"`, legal JSON that Node emits for broken
/// strings but serde_json rejects) with `\ufffd`. `None` when there was nothing to fix.
fn fix_lone_surrogates(bytes: &[u8]) -> Option<Vec<u8>> {
    fn hex4(b: &[u8]) -> Option<u16> {
        let s = std::str::from_utf8(b.get(..4)?).ok()?;
        u16::from_str_radix(s, 16).ok()
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        if bytes[i + 1] != b'u' {
            out.extend_from_slice(&bytes[i..i + 2]);
            i += 2;
            continue;
        }
        let Some(unit) = hex4(&bytes[i + 2..]) else {
            out.push(bytes[i]);
            i += 1;
            continue;
        };
        let is_high = (0xD800..0xDC00).contains(&unit);
        let is_low = (0xDC00..0xE000).contains(&unit);
        let followed_by_low = bytes.get(i + 6..i + 8) == Some(b"\\u")
            && hex4(&bytes[i + 8..]).is_some_and(|u| (0xDC00..0xE000).contains(&u));
        if is_high && followed_by_low {
            out.extend_from_slice(&bytes[i..i + 12]);
            i += 12;
        } else if is_high || is_low {
            out.extend_from_slice(b"\\ufffd");
            changed = true;
            i += 6;
        } else {
            out.extend_from_slice(&bytes[i..i + 6]);
            i += 6;
        }
    }
    changed.then_some(out)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first `max` characters of `s` (on a char boundary).
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(bytes: &[u8]) -> RawInput {
        RawInput { bytes: bytes.to_vec(), total_bytes: bytes.len() as u64, ..RawInput::default() }
    }

    #[test]
    fn known_unknown_and_invalid() {
        assert_eq!(classify(&raw(br#"{"hook_event_name":"Stop"}"#)).kind(), Kind::Event);
        assert_eq!(classify(&raw(br#"{"hook_event_name":"stop"}"#)).kind(), Kind::EventUnknownType);
        assert_eq!(classify(&raw(br#"{"hookEventName":"Stop"}"#)).kind(), Kind::EventUnknownType);
        assert_eq!(classify(&raw(br#"{"hook_event_name":7}"#)).kind(), Kind::ParseError);
        assert_eq!(classify(&raw(br#"[{"hook_event_name":"Stop"}]"#)).kind(), Kind::ParseError);
        assert_eq!(classify(&raw(br#"{"hook_event_name":"Stop"} x"#)).kind(), Kind::ParseError);
        assert_eq!(classify(&raw(b"")).kind(), Kind::ParseError);
    }

    #[test]
    fn duplicate_keys_route_on_the_last_value() {
        let p = classify(&raw(br#"{"hook_event_name":"Stop","hook_event_name":"PreToolUse"}"#));
        assert_eq!(p.str_field("hook_event_name"), Some("PreToolUse"));
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let p = classify(&raw(br#"{"hook_event_name":"Stop","x":"a\ud800b","ok":"\ud83d\ude80","esc":"\\ud800"}"#));
        assert_eq!(p.kind(), Kind::Event);
        assert_eq!(p.str_field("x"), Some("a\u{fffd}b"));
        assert_eq!(p.str_field("ok"), Some("\u{1F680}"));
        assert_eq!(p.str_field("esc"), Some("\\ud800"));
    }

    #[test]
    fn truncated_input_keeps_the_complete_fields() {
        let mut input = raw(br#"{"session_id":"s","hook_event_name":"PreToolUse","tool_input":{"content":"aaaa"#);
        input.truncated = true;
        match classify(&input) {
            Payload::Truncated { value, spec, incomplete_field } => {
                assert_eq!(value["session_id"], "s");
                assert_eq!(spec.map(|s| s.name), Some("PreToolUse"));
                assert_eq!(incomplete_field.as_deref(), Some("tool_input"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncate_chars_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}
