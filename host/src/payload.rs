//! Turning stdin bytes into a classified event: a known event, an unknown one, or a parse
//! error, never a panic and never nothing.
//!
//! **Architecture Invariant:** routing and recording use the same parsed value (serde_json
//! keeps the last of duplicate keys, as JavaScript's `JSON.parse` does), so the host never
//! decides on one `hook_event_name` and records another.

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
    /// `deferred`: large top-level objects and arrays that were validated but left out of
    /// `value` (see [`DEFER_BYTES`]); [`full_value`] builds the whole tree.
    Event { value: Value, spec: &'static EventSpec, verbatim: bool, deferred: Vec<Deferred> },
    /// A JSON object whose `hook_event_name` is missing or not one we know.
    Unknown { value: Value, reason: String },
    /// Input past the size cap: the top-level fields that arrived complete, and under
    /// `incomplete_field` (the field that was cut), when it is an object, its members that
    /// arrived complete (see [`visible_in_truncated`]).
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

/// In an input at least this long, top-level objects and arrays whose JSON text is at least
/// this long are validated but not built into a tree until something needs them (a plugin's
/// cache key, redaction, a repaired input): a tool's large output or a written file's content
/// then costs a scan instead of a copy into freshly allocated strings (482 KB Write event:
/// 0.62 -> 0.3 ms). Routing and the recorded columns only read top-level scalars.
pub const DEFER_BYTES: usize = 16 * 1024;

/// A top-level field left out of an event's value: its key and where its JSON text lies in
/// the input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub key: String,
    pub range: std::ops::Range<usize>,
    /// Its text has no `\uXXXX` or `\/` escape: every character is written as itself (what
    /// a trigger-word search on the raw text needs).
    pub plain: bool,
    /// The contents of its long strings, in order (see [`crate::rawjson::LONG_STRING`]).
    pub long_strings: Vec<std::ops::Range<usize>>,
}

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
    if verbatim && bytes.len() >= DEFER_BYTES {
        if let Some((value, deferred)) = parse_deferring(bytes) {
            if let event @ Payload::Event { .. } = classify_value(value, true, deferred) {
                return event;
            }
            // Not a known event: such inputs are recorded whole, so build the whole tree.
        }
    }
    let (value, verbatim) = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => (v, verbatim),
        Err(first) => match fix_lone_surrogates(bytes).map(|fixed| serde_json::from_slice::<Value>(&fixed)) {
            Some(Ok(v)) => (v, false),
            _ => return Payload::Invalid { reason: format!("input is not valid JSON: {first}") },
        },
    };
    classify_value(value, verbatim, Vec::new())
}

/// The whole tree of an event whose large fields were deferred (the input parsed cleanly once
/// already, so `None` only if it somehow does not now).
pub fn full_value(input: &RawInput) -> Option<Value> {
    serde_json::from_slice(&input.bytes).ok()
}

/// Parses a top-level object, building only its small fields. `None` (parse the usual way)
/// when the input is not a clean object or repeats a key (which the usual parse resolves).
///
/// Values are delimited and validated by [`crate::rawjson`] (serde_json's grammar and nesting limit,
/// several times faster on long strings); small ones are then built by serde_json.
fn parse_deferring(bytes: &[u8]) -> Option<(Value, Vec<Deferred>)> {
    use crate::rawjson::{skip_ws, string_end, value_end, Seen, SERDE_DEPTH};
    // serde_json checks strings' UTF-8 as it reads them; the validator leaves it to us.
    std::str::from_utf8(bytes).ok()?;
    let mut fields = Map::new();
    let mut deferred: Vec<Deferred> = Vec::new();
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(bytes, i + 1);
    if bytes.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key_end = string_end(bytes, i, &mut Seen::default())?;
            let key: String = serde_json::from_slice(&bytes[i..key_end]).ok()?;
            if fields.contains_key(&key) || deferred.iter().any(|d| d.key == key) {
                return None;
            }
            i = skip_ws(bytes, key_end);
            if bytes.get(i) != Some(&b':') {
                return None;
            }
            let at = skip_ws(bytes, i + 1);
            // The top-level object has spent one level of serde_json's budget.
            let mut seen = Seen::default();
            let end = value_end(bytes, at, SERDE_DEPTH - 1, &mut seen)?;
            if matches!(bytes[at], b'{' | b'[') && end - at >= DEFER_BYTES {
                deferred.push(Deferred { key, range: at..end, plain: !seen.spelled_escape, long_strings: seen.long_strings });
            } else {
                // Small, or a scalar (a long prompt): built now; its nesting was checked in place.
                fields.insert(key, serde_json::from_slice(&bytes[at..end]).ok()?);
            }
            i = skip_ws(bytes, end);
            match bytes.get(i) {
                Some(b',') => i = skip_ws(bytes, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(bytes, i) == bytes.len()).then_some((Value::Object(fields), deferred))
}

fn classify_value(value: Value, verbatim: bool, deferred: Vec<Deferred>) -> Payload {
    let Value::Object(map) = &value else {
        return Payload::Invalid { reason: format!("input root is {}, not an object", json_type(&value)) };
    };
    match map.get("hook_event_name") {
        Some(Value::String(name)) => match events::lookup(name) {
            Some(spec) => Payload::Event { value, spec, verbatim, deferred },
            None => Payload::Unknown { reason: format!("unknown hook_event_name {:?}", truncate_chars(name, 80)), value },
        },
        Some(other) => Payload::Invalid { reason: format!("hook_event_name is {}, not a string", json_type(other)) },
        None => Payload::Unknown { value, reason: "no hook_event_name field".into() },
    }
}

fn classify_truncated(bytes: &[u8]) -> Payload {
    use crate::rawjson::{skip_ws, SERDE_DEPTH};
    let start = skip_ws(bytes, 0);
    if bytes.get(start) != Some(&b'{') {
        return Payload::Invalid { reason: "input exceeds the size cap and is not a JSON object".into() };
    }
    let mut fields = Map::new();
    // The top-level object has spent one level of serde_json's nesting budget.
    let incomplete_field = match read_members(bytes, start, SERDE_DEPTH - 1, &mut fields) {
        Members::Closed => None,
        Members::Cut { key, value_at } => {
            if fields.is_empty() {
                return Payload::Invalid { reason: "input exceeds the size cap and its first field is incomplete".into() };
            }
            // The complete members of a cut object (a tool_input whose content was padded) are
            // what guards may still see: a command that arrived whole is checked.
            if let (Some(key), Some(at)) = (&key, value_at) {
                if bytes[at] == b'{' {
                    let mut inner = Map::new();
                    read_members(bytes, at, SERDE_DEPTH - 2, &mut inner);
                    fields.insert(key.clone(), Value::Object(inner));
                }
            }
            key
        }
    };
    let spec = fields.get("hook_event_name").and_then(Value::as_str).and_then(events::lookup);
    Payload::Truncated { value: Value::Object(fields), spec, incomplete_field }
}

/// How reading the members of a possibly cut object ended.
enum Members {
    /// The object closed.
    Closed,
    /// Cut off (or unreadable) in the member named `key` (None: before a key was read), whose
    /// value starts at `value_at` when that much arrived.
    Cut { key: Option<String>, value_at: Option<usize> },
}

/// Reads the members of the object opening at `open` that arrived complete into `out`. A value
/// counts as complete only when the `,` or `}` after it arrived too: a number cut short is still
/// a number. `depth` is the nesting budget left for member values.
fn read_members(bytes: &[u8], open: usize, depth: u8, out: &mut Map<String, Value>) -> Members {
    use crate::rawjson::{skip_ws, string_end, value_end, Seen};
    let cut = |key: Option<String>, value_at: Option<usize>| Members::Cut { key, value_at };
    let mut i = skip_ws(bytes, open + 1);
    if bytes.get(i) == Some(&b'}') {
        return Members::Closed;
    }
    loop {
        let Some(key_end) = string_end(bytes, i, &mut Seen::default()) else { return cut(None, None) };
        let Ok(key) = serde_json::from_slice::<String>(&bytes[i..key_end]) else { return cut(None, None) };
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return cut(Some(key), None);
        }
        let at = skip_ws(bytes, i + 1);
        if at >= bytes.len() {
            return cut(Some(key), None);
        }
        let Some(end) = value_end(bytes, at, depth, &mut Seen::default()) else { return cut(Some(key), Some(at)) };
        let next = skip_ws(bytes, end);
        let (Some(&delimiter @ (b',' | b'}')), Ok(value)) = (bytes.get(next), serde_json::from_slice::<Value>(&bytes[at..end])) else {
            return cut(Some(key), Some(at));
        };
        out.insert(key, value);
        if delimiter == b'}' {
            return Members::Closed;
        }
        i = skip_ws(bytes, next + 1);
    }
}

/// Whether a plugin reading `pointer` (a JSON pointer into the event) sees what the whole event
/// would have shown it, in an event cut at the size cap: the pointer resolves, or the top-level
/// field it names arrived whole (so its absence inside is real). A field never reached, or a
/// member of the cut field that did not arrive, is not visible.
pub fn visible_in_truncated(value: &Value, incomplete_field: Option<&str>, pointer: &str) -> bool {
    if value.pointer(pointer).is_some() {
        return true;
    }
    let Some(first) = pointer.strip_prefix('/').map(|p| p.split('/').next().unwrap_or("")) else { return false };
    let first = first.replace("~1", "/").replace("~0", "~");
    Some(first.as_str()) != incomplete_field && value.get(&first).is_some()
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
        let followed_by_low =
            bytes.get(i + 6..i + 8) == Some(b"\\u") && hex4(&bytes[i + 8..]).is_some_and(|u| (0xDC00..0xE000).contains(&u));
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
    fn large_fields_are_deferred_and_the_rest_is_the_same() {
        let content = "x\\n\\\"y".repeat(DEFER_BYTES / 4);
        let text = format!(
            r#"{{"session_id":"s","hook_event_name":"PostToolUse","tool_name":"Write","tool_input":{{"file_path":"/a","content":"{content}"}},"n":[1,2]}}"#
        );
        let input = raw(text.as_bytes());
        match classify(&input) {
            Payload::Event { value, verbatim: true, deferred, .. } => {
                assert_eq!(deferred.len(), 1);
                assert_eq!(deferred[0].key, "tool_input");
                assert!(deferred[0].plain, "\\n and \\\" write their characters as themselves");
                let field: Value = serde_json::from_str(&text[deferred[0].range.clone()]).unwrap();
                assert_eq!(field["file_path"], "/a");
                assert!(value.get("tool_input").is_none());
                assert_eq!(value["tool_name"], "Write");
                assert_eq!(value["n"], serde_json::json!([1, 2]));
                let mut whole = value.clone();
                whole.as_object_mut().unwrap().insert("tool_input".into(), field);
                let full = full_value(&input).unwrap();
                assert_eq!(full, whole);
            }
            other => panic!("{other:?}"),
        }
        // A repeated key, trailing garbage or a large unknown event: the usual parse decides.
        let dup = format!(r#"{{"hook_event_name":"Stop","tool_input":{{"c":"{content}"}},"tool_input":1}}"#);
        assert!(
            matches!(classify(&raw(dup.as_bytes())), Payload::Event { ref deferred, ref value, .. } if deferred.is_empty() && value["tool_input"] == 1)
        );
        let trailing = format!(r#"{{"hook_event_name":"Stop","tool_input":{{"c":"{content}"}}}} x"#);
        assert_eq!(classify(&raw(trailing.as_bytes())).kind(), Kind::ParseError);
        let unknown = format!(r#"{{"hook_event_name":"Nope","tool_input":{{"c":"{content}"}}}}"#);
        assert!(matches!(classify(&raw(unknown.as_bytes())), Payload::Unknown { ref value, .. } if value["tool_input"]["c"].is_string()));
        // Escapes that spell a character are reported for redaction to look at.
        for spelled in [r"\u0041", r"\/"] {
            let text = format!(r#"{{"hook_event_name":"Stop","tool_input":{{"c":"{content}{spelled}"}}}}"#);
            assert!(
                matches!(classify(&raw(text.as_bytes())), Payload::Event { ref deferred, .. } if deferred.len() == 1 && !deferred[0].plain),
                "{spelled}"
            );
        }
        // A lone surrogate in a large field: the usual parse repairs it (not deferred as is).
        let lone = format!(r#"{{"hook_event_name":"Stop","tool_input":{{"c":"{content}\ud800"}}}}"#);
        assert!(matches!(classify(&raw(lone.as_bytes())), Payload::Event { verbatim: false, ref deferred, .. } if deferred.is_empty()));
        // Small inputs and large strings are built as always.
        let string = format!(r#"{{"hook_event_name":"Stop","big":"{content}"}}"#);
        assert!(matches!(classify(&raw(string.as_bytes())), Payload::Event { ref deferred, .. } if deferred.is_empty()));
    }

    /// Deferring must accept exactly what the whole parse accepts — nesting depth included
    /// (serde_json's own skipping has no depth limit; [`crate::rawjson`] spends serde_json's
    /// budget as its parse would) — and what it leaves out must be the same tree.
    #[test]
    fn deferral_agrees_with_the_whole_parse() {
        let pad = "y".repeat(DEFER_BYTES);
        let mut inputs = Vec::new();
        for depth in [1, 60, 120, 124, 125, 126, 127, 128, 200, 100_000] {
            let nest = |open: &str, close: &str| format!("{}{}", open.repeat(depth), close.repeat(depth));
            inputs.push(format!(r#"{{"hook_event_name":"Stop","tool_input":{{"c":"{pad}","d":{}}}}}"#, nest("[", "]")));
            let objects = format!("{}1{}", "{\"k\":".repeat(depth), "}".repeat(depth));
            inputs.push(format!(r#"{{"hook_event_name":"Stop","tool_input":[{objects},"{pad}"]}}"#));
            inputs.push(format!(r#"{{"hook_event_name":"Stop","tool_input":["{pad}",{}]}}"#, nest("[", "]")));
            inputs.push(format!(r#"{{"hook_event_name":"Stop","small":{},"tool_input":["{pad}"]}}"#, nest("[", "]")));
        }
        // Layout variety: whitespace everywhere, escaped keys, empty containers, numbers, literals.
        inputs.push(format!(
            "{{ \"hook_event_name\" : \"Stop\" ,\n\t\"tool_input\"\r\n:\n{{ \"k\\\"ey\\\\\" : [ ] , \"e\":{{}}, \"n\" : -1.5e3 ,\"t\":true,\"f\":false,\"z\":null, \"a\" : [ 1 , [ {{ \"x\" : \"{pad}\" }} ] , \"s\" ] }} , \"last\" : 2 }}"
        ));
        // Top-level strings and scalars between deferred fields: a long prompt with escapes, numbers, literals.
        inputs.push(format!(
            r#"{{"prompt":"say \"{pad}\" \\","n":-0.5e-2,"tool_input":["{pad}"],"t":true,"hook_event_name":"Stop","z":null}}"#
        ));
        for text in &inputs {
            let input = raw(text.as_bytes());
            let whole = serde_json::from_slice::<Value>(text.as_bytes());
            let got = classify(&input);
            match (&whole, &got) {
                (Ok(tree), Payload::Event { value, deferred, .. }) => {
                    let mut rebuilt = value.as_object().unwrap().clone();
                    for d in deferred {
                        rebuilt.insert(d.key.clone(), serde_json::from_str(&text[d.range.clone()]).unwrap());
                    }
                    let mut expected = tree.as_object().unwrap().clone();
                    expected.sort_keys();
                    rebuilt.sort_keys();
                    assert_eq!(Value::Object(rebuilt), Value::Object(expected), "{}", &text[..text.len().min(120)]);
                }
                (Err(_), Payload::Invalid { .. }) => {}
                _ => panic!("whole parse {:?} but classify {:?} for {}", whole.is_ok(), got.kind(), &text[..text.len().min(120)]),
            }
        }
        let scalars = inputs.last().unwrap();
        assert!(
            matches!(classify(&raw(scalars.as_bytes())), Payload::Event { ref deferred, .. } if deferred.len() == 1),
            "scalars between fields keep the deferral"
        );
        assert!(inputs.iter().any(|t| serde_json::from_slice::<Value>(t.as_bytes()).is_err()), "some inputs are too deep");
        assert!(inputs.iter().any(|t| matches!(classify(&raw(t.as_bytes())), Payload::Event { ref deferred, .. } if !deferred.is_empty())));
    }

    /// Hostile variations of a large event: whatever deferral accepts, the whole parse accepts
    /// too, as the same tree. Mutations put JSON's significant bytes (quotes, backslashes,
    /// brackets, escapes, control characters, bytes of multi-byte characters) at random places,
    /// many of them inside the long strings the fast validator handles.
    #[test]
    fn mutated_large_events_are_never_accepted_wrongly() {
        let content = "say \\\"hi\\\"\\n\\t é \\u00e9 \\/ ok ".repeat(DEFER_BYTES / 24);
        let base = format!(
            r#"{{"session_id":"s","hook_event_name":"PostToolUse","tool_input":{{"content":"{content}","n":[1,-2.5e3,true,null]}},"tool_response":["{content}",{{"k":"v"}}],"x":"y"}}"#
        );
        let alphabet: &[&[u8]] = &[
            b"\"", b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\\u", b"\\ud800", b"\\udc00", b"\x01", b"\n", b" ", b"e", b"0", b"-",
            b"\xc3", b"\xa9", b"tru", b"1.", b"/",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut deferred_seen, mut rejected_seen) = (0, 0);
        for _ in 0..3000 {
            let mut bytes = base.clone().into_bytes();
            for _ in 0..1 + next(3) {
                let at = next(bytes.len());
                let piece = alphabet[next(alphabet.len())];
                match next(3) {
                    0 => drop(bytes.splice(at..at, piece.iter().copied())),
                    1 => drop(bytes.splice(at..(at + piece.len()).min(bytes.len()), piece.iter().copied())),
                    _ => drop(bytes.drain(at..(at + 1 + next(4)).min(bytes.len()))),
                }
            }
            let whole = serde_json::from_slice::<Value>(&bytes);
            match classify(&raw(&bytes)) {
                Payload::Event { value, deferred, verbatim: true, .. } if !deferred.is_empty() => {
                    deferred_seen += 1;
                    let Ok(Value::Object(expected)) = whole else {
                        panic!("deferral accepted what serde_json rejects: {}", String::from_utf8_lossy(&bytes))
                    };
                    let mut rebuilt = value.as_object().unwrap().clone();
                    for d in deferred {
                        rebuilt.insert(d.key.clone(), serde_json::from_slice(&bytes[d.range.clone()]).unwrap());
                    }
                    assert_eq!(rebuilt.len(), expected.len());
                    assert!(expected.iter().all(|(k, v)| rebuilt.get(k) == Some(v)), "a different tree");
                }
                Payload::Invalid { .. } => {
                    rejected_seen += 1;
                    assert!(whole.is_err(), "rejected what serde_json accepts: {}", String::from_utf8_lossy(&bytes));
                }
                _ => {}
            }
        }
        assert!(
            deferred_seen > 300 && rejected_seen > 300,
            "mutations should both keep and break the event: {deferred_seen} {rejected_seen}"
        );
    }

    #[test]
    fn large_strings_stay_whole() {
        let content = "x".repeat(DEFER_BYTES);
        let string = format!(r#"{{"hook_event_name":"Stop","big":"{content}"}}"#);
        assert!(matches!(classify(&raw(string.as_bytes())), Payload::Event { ref deferred, .. } if deferred.is_empty()));
    }

    #[test]
    fn truncate_chars_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
    }
}
