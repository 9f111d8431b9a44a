//! The event a plugin receives: Claude Code's hook payload, parsed once per call.

use serde_json::Value;

/// One hook event. Field names are Claude Code's (snake_case); see the host's PROTOCOL notes.
#[derive(Debug)]
pub struct Event {
    value: Value,
}

impl Event {
    /// Parses event JSON text. The host only sends objects with a string `hook_event_name`.
    pub fn parse(text: &str) -> Result<Event, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("event is not valid JSON: {e}"))?;
        if !value.is_object() {
            return Err("event is not a JSON object".into());
        }
        Ok(Event { value })
    }

    /// Wraps an already parsed payload (for tests and in-process use).
    pub fn from_value(value: Value) -> Event {
        Event { value }
    }

    /// The whole payload.
    pub fn json(&self) -> &Value {
        &self.value
    }

    /// A top-level field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.value.get(key)
    }

    /// A top-level string field; `None` when absent or not a string (never coerced).
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
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
        self.value.get("tool_input")
    }

    /// A string field of `tool_input` (`command`, `file_path`, ...).
    pub fn tool_input_str(&self, key: &str) -> Option<&str> {
        self.tool_input().and_then(|input| input.get(key)).and_then(Value::as_str)
    }

    /// True only for a JSON `true`: the string `"false"` is not coerced either way.
    pub fn stop_hook_active(&self) -> bool {
        self.value.get("stop_hook_active").and_then(Value::as_bool) == Some(true)
    }
}
