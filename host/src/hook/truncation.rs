//! Events cut at `hook.max_input_bytes`: which plugins can still decide on what arrived.
//!
//! A plugin says what it reads through its cache key (JSON pointers). When all of that arrived
//! whole, it is called on the partial event; otherwise its failure policy answers for it
//! (fail-closed guards deny: "too large to check"). See README, "Guards at the boundary".

use serde_json::Value;

use crate::{payload, plugin};

/// An event cut at `hook.max_input_bytes`: what arrived is known, the rest is not.
pub(super) struct Truncation<'a> {
    /// The top-level field the cut fell in (its members that arrived whole are in the value).
    pub(super) incomplete_field: Option<&'a str>,
    pub(super) total_bytes: u64,
    pub(super) cap: usize,
}

impl Truncation<'_> {
    pub(super) fn visible(&self, top: &Value, pointer: &str) -> bool {
        payload::visible_in_truncated(top, self.incomplete_field, pointer)
    }

    /// What `info` reads that did not arrive, or None when everything it reads did. A plugin
    /// says what it reads through its cache key (JSON pointers); one that declares none could
    /// read anything.
    pub(super) fn unseen(&self, top: &Value, info: &plugin::PluginInfo, tool_event: bool) -> Option<String> {
        let size = format!("the event is {} bytes, over hook.max_input_bytes ({})", self.total_bytes, self.cap);
        let cut = self.incomplete_field.map(|f| format!(" and was cut inside `{f}`")).unwrap_or_default();
        let pointers: Vec<&str> = info.cache_key.iter().map(String::as_str).filter(|k| k.starts_with('/')).collect();
        if pointers.is_empty() {
            return Some(format!("{size}{cut}; the plugin declares no cache key, so what it reads is unknown"));
        }
        let tool = tool_event.then_some("/tool_name");
        let missing: Vec<&str> = tool.into_iter().chain(pointers).filter(|p| !self.visible(top, p)).collect();
        (!missing.is_empty()).then(|| format!("{size}{cut}; {} did not arrive whole", missing.join(", ")))
    }
}
