//! The event a plugin receives: Claude Code's hook payload, parsed on first need, once per call.

use std::sync::OnceLock;

use serde_json::Value;

/// One hook event. Field names are Claude Code's (snake_case); see the host's PROTOCOL notes.
///
/// The JSON text the host sent is parsed the first time a field is read (plugin-api 1.3): a
/// plugin that can decide from the text alone ([`Event::text`]) never pays for building a large
/// event's tree (a 241 KB Write).
#[derive(Debug)]
pub struct Event {
    /// The JSON text as the host sent it; `None` for an event built from a value.
    text: Option<Box<str>>,
    value: OnceLock<Value>,
    /// Why the text did not parse, once it was tried (the glue turns it into the call's error).
    invalid: OnceLock<String>,
}

impl Event {
    /// Takes event JSON text; it is parsed on first need. The host only sends objects with a
    /// string `hook_event_name`; text that does not start like an object is refused here, and
    /// text that then fails to parse reads as an empty object and fails the call (see
    /// [`Event::invalid`]).
    pub fn parse(text: &str) -> Result<Event, String> {
        if !text.trim_start().starts_with('{') {
            return Err("event is not a JSON object".into());
        }
        Ok(Event { text: Some(text.into()), value: OnceLock::new(), invalid: OnceLock::new() })
    }

    /// Wraps an already parsed payload (for tests and in-process use).
    pub fn from_value(value: Value) -> Event {
        Event { text: None, value: OnceLock::from(value), invalid: OnceLock::new() }
    }

    /// The JSON text the host sent, exactly (plugin-api 1.3); `None` for an event built with
    /// [`Event::from_value`]. For searches that can rule something out without the tree: a word
    /// absent from the text is absent from every string in it, unless the text spells some
    /// character as an escape (`\uXXXX`, `\/`; the others stand for quotes, backslashes and
    /// control characters).
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// Why the event's text is not a JSON object, once a field was read and it failed to parse.
    pub fn invalid(&self) -> Option<&str> {
        self.invalid.get().map(String::as_str)
    }

    /// The whole payload.
    pub fn json(&self) -> &Value {
        self.value.get_or_init(|| match serde_json::from_str::<Value>(self.text.as_deref().unwrap_or("{}")) {
            Ok(value @ Value::Object(_)) => value,
            Ok(_) => {
                let _ = self.invalid.set("event is not a JSON object".into());
                Value::Object(Default::default())
            }
            Err(e) => {
                let _ = self.invalid.set(format!("event is not valid JSON: {e}"));
                Value::Object(Default::default())
            }
        })
    }

    /// A top-level field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.json().get(key)
    }

    /// A top-level string field; `None` when absent or not a string (never coerced).
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.json().get(key).and_then(Value::as_str)
    }

    pub fn hook_event_name(&self) -> &str {
        self.str_field("hook_event_name").unwrap_or("")
    }

    pub fn session_id(&self) -> Option<&str> {
        self.str_field("session_id")
    }

    pub fn cwd(&self) -> Option<&str> {
        self.str_field("cwd")
    }

    pub fn tool_name(&self) -> Option<&str> {
        self.str_field("tool_name")
    }

    pub fn tool_input(&self) -> Option<&Value> {
        self.json().get("tool_input")
    }

    /// A string field of `tool_input` (`command`, `file_path`, ...).
    pub fn tool_input_str(&self, key: &str) -> Option<&str> {
        self.tool_input().and_then(|input| input.get(key)).and_then(Value::as_str)
    }

    /// True only for a JSON `true`: the string `"false"` is not coerced either way.
    pub fn stop_hook_active(&self) -> bool {
        self.json().get("stop_hook_active").and_then(Value::as_bool) == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_and_parsed_on_first_need() {
        let text = r#" {"hook_event_name":"Stop","stop_hook_active":true}"#;
        let e = Event::parse(text).unwrap();
        assert_eq!(e.text(), Some(text));
        assert!(e.value.get().is_none(), "parsed before anything was read");
        assert_eq!(e.hook_event_name(), "Stop");
        assert!(e.stop_hook_active());
        assert!(e.invalid().is_none());
        assert_eq!(Event::from_value(serde_json::json!({"a": 1})).text(), None);
    }

    #[test]
    fn text_that_is_not_an_object_is_refused_now_or_on_first_read() {
        assert!(Event::parse("[1]").is_err());
        assert!(Event::parse("  \"x\"").is_err());
        let broken = Event::parse(r#"{"hook_event_name": "Stop""#).unwrap();
        assert_eq!(broken.hook_event_name(), "");
        assert!(broken.invalid().unwrap().starts_with("event is not valid JSON"), "{:?}", broken.invalid());
    }
}
