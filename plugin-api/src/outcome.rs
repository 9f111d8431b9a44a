//! Author-facing types: what a plugin declares ([`Manifest`]) and answers ([`Outcome`]), and
//! their conversion to and from the frozen ABI types.

use std::time::Duration;

use abi_stable::std_types::RString;
use serde_json::Value;

use crate::abi::{self, CallStats, RawManifest, RawOutcome};

/// A plugin's opinion on an event. The host merges opinions most-restrictive-first:
/// `Deny`/`Block` > `Defer` > `Ask` > `Allow` > `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decision {
    /// No opinion: Claude Code's own permission flow decides. The right answer almost always.
    None,
    /// Approve a tool call without asking. Bypasses Claude Code's prompts: use sparingly.
    Allow,
    /// Ask the user to confirm a tool call.
    Ask,
    /// Defer a tool call (non-interactive `-p` mode only).
    Defer,
    /// Refuse the one tool call (PreToolUse) or permission request.
    Deny,
    /// Block the event: prompt erased (UserPromptSubmit), Claude keeps going (Stop), ...
    Block,
}

impl Decision {
    pub fn code(self) -> u8 {
        match self {
            Decision::None => abi::decision::NONE,
            Decision::Allow => abi::decision::ALLOW,
            Decision::Deny => abi::decision::DENY,
            Decision::Ask => abi::decision::ASK,
            Decision::Defer => abi::decision::DEFER,
            Decision::Block => abi::decision::BLOCK,
        }
    }

    pub fn from_code(code: u8) -> Option<Decision> {
        Some(match code {
            abi::decision::NONE => Decision::None,
            abi::decision::ALLOW => Decision::Allow,
            abi::decision::DENY => Decision::Deny,
            abi::decision::ASK => Decision::Ask,
            abi::decision::DEFER => Decision::Defer,
            abi::decision::BLOCK => Decision::Block,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::None => "none",
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Defer => "defer",
            Decision::Deny => "deny",
            Decision::Block => "block",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Some(match s {
            "none" | "" => Decision::None,
            "allow" => Decision::Allow,
            "ask" => Decision::Ask,
            "defer" => Decision::Defer,
            "deny" => Decision::Deny,
            "block" => Decision::Block,
            _ => return None,
        })
    }
}

/// What the host does when a plugin panics, times out or answers garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The fault is recorded and the plugin counts as having no opinion.
    Open,
    /// The fault is recorded and, on events that can be blocked, the host denies/blocks.
    Closed,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Open => "open",
            FailurePolicy::Closed => "closed",
        }
    }
}

/// Outcome reuse: the host caches the outcome under the plugin's name and version plus the
/// values at `key` (JSON pointers), for `ttl`. Fields not named (ids, timestamps) do not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub key: Vec<String>,
}

/// Identity, subscriptions and policies of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub abi_version: u32,
    pub events: Vec<String>,
    pub tool_matcher: Option<String>,
    pub timeout: Option<Duration>,
    pub failure_policy: FailurePolicy,
    pub cache: Option<CachePolicy>,
    /// Capability data added after ABI 1.0 (a JSON object), passed through untouched.
    pub extensions: Option<Value>,
}

impl Manifest {
    pub fn new(name: &str, version: &str) -> Manifest {
        Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            abi_version: abi::ABI_VERSION,
            events: Vec::new(),
            tool_matcher: None,
            timeout: None,
            failure_policy: FailurePolicy::Open,
            cache: None,
            extensions: None,
        }
    }

    /// Hook event names to receive (`"*"` for all).
    pub fn events(mut self, events: &[&str]) -> Manifest {
        self.events = events.iter().map(|e| (*e).to_owned()).collect();
        self
    }

    /// Claude Code matcher on `tool_name`: exact (`Bash`), list (`Edit|Write`) or regex (`mcp__.*`).
    pub fn tool_matcher(mut self, matcher: &str) -> Manifest {
        self.tool_matcher = Some(matcher.to_owned());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Manifest {
        self.timeout = Some(timeout);
        self
    }

    pub fn fail_closed(mut self) -> Manifest {
        self.failure_policy = FailurePolicy::Closed;
        self
    }

    pub fn cacheable(mut self, ttl: Duration, key: &[&str]) -> Manifest {
        self.cache = Some(CachePolicy { ttl, key: key.iter().map(|k| (*k).to_owned()).collect() });
        self
    }

    /// The manifest extension (plugin-api 1.2) that lets a host call `handle` from several
    /// threads at once (see [`Manifest::concurrent_calls`]).
    pub const CONCURRENT_CALLS: &'static str = "concurrent_calls";

    /// Says `handle` may run on several threads at the same time: a host serving events in
    /// parallel then calls it without waiting for the previous call to return. Without it a
    /// host never overlaps two calls of this plugin. Only for plugins whose `handle` is
    /// thread-safe in every sense (no `RefCell`-style tricks behind `unsafe impl Sync`, no
    /// shared files written without a lock). Memory figures of calls that overlapped another
    /// call of the same plugin are not recorded: the counting allocator cannot tell them apart.
    pub fn concurrent_calls(mut self) -> Manifest {
        let mut ext = self.extensions.take().filter(Value::is_object).unwrap_or_else(|| Value::Object(Default::default()));
        ext[Self::CONCURRENT_CALLS] = Value::Bool(true);
        self.extensions = Some(ext);
        self
    }

    /// The manifest extension (plugin-api 1.4) naming the text without which the plugin has
    /// nothing to say (see [`Manifest::only_if_text_contains`]).
    pub const ONLY_IF_TEXT_CONTAINS: &'static str = "only_if_text_contains";

    /// Promises that `handle` answers [`Outcome::none`] on every event whose JSON text (as
    /// the plugin receives it) contains none of `words`, ASCII case ignored. A host may then
    /// neither load nor call the plugin for such an event, and records no call, as for an
    /// event it does not subscribe to: a plugin that looks for rare words (credential
    /// prefixes, say) is not even loaded into a short-lived hook process whose event lacks
    /// them. Keep the promise exact: any word that could lead to another answer must be in
    /// the list (including JSON escapes such as `\u` when the plugin decodes strings). An
    /// empty word matches every event.
    pub fn only_if_text_contains(mut self, words: &[&str]) -> Manifest {
        let mut ext = self.extensions.take().filter(Value::is_object).unwrap_or_else(|| Value::Object(Default::default()));
        ext[Self::ONLY_IF_TEXT_CONTAINS] = Value::Array(words.iter().map(|w| Value::String((*w).to_owned())).collect());
        self.extensions = Some(ext);
        self
    }

    /// The words of [`Manifest::only_if_text_contains`], if the manifest says it (and says it
    /// as a list of strings: anything else reads as no promise).
    pub fn text_triggers(&self) -> Option<Vec<String>> {
        let list = self.extensions.as_ref()?.get(Self::ONLY_IF_TEXT_CONTAINS)?.as_array()?;
        list.iter().map(|w| w.as_str().map(str::to_owned)).collect()
    }

    /// Whether the manifest says [`Manifest::concurrent_calls`].
    pub fn allows_concurrent_calls(&self) -> bool {
        self.extensions.as_ref().and_then(|e| e.get(Self::CONCURRENT_CALLS)).and_then(Value::as_bool) == Some(true)
    }

    pub fn to_raw(&self) -> RawManifest {
        RawManifest {
            name: self.name.as_str().into(),
            version: self.version.as_str().into(),
            abi_version: self.abi_version,
            events: self.events.iter().map(|e| RString::from(e.as_str())).collect(),
            tool_matcher: self.tool_matcher.as_deref().unwrap_or("").into(),
            timeout_ms: self.timeout.map_or(0, |t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
            failure_policy: match self.failure_policy {
                FailurePolicy::Open => abi::failure_policy::OPEN,
                FailurePolicy::Closed => abi::failure_policy::CLOSED,
            },
            cache_ttl_ms: self.cache.as_ref().map_or(0, |c| u64::try_from(c.ttl.as_millis()).unwrap_or(u64::MAX)),
            cache_key: self.cache.as_ref().map(|c| c.key.iter().map(|k| RString::from(k.as_str())).collect()).unwrap_or_default(),
            extensions: self.extensions.as_ref().map(|v| v.to_string()).unwrap_or_default().into(),
        }
    }

    /// Reads a manifest back from the ABI form. Unknown policy codes are an error.
    pub fn from_raw(raw: &RawManifest) -> Result<Manifest, String> {
        let failure_policy = match raw.failure_policy {
            abi::failure_policy::OPEN => FailurePolicy::Open,
            abi::failure_policy::CLOSED => FailurePolicy::Closed,
            other => return Err(format!("unknown failure policy code {other}")),
        };
        let extensions = if raw.extensions.is_empty() {
            None
        } else {
            Some(serde_json::from_str(&raw.extensions).map_err(|e| format!("manifest extensions are not JSON: {e}"))?)
        };
        Ok(Manifest {
            name: raw.name.to_string(),
            version: raw.version.to_string(),
            abi_version: raw.abi_version,
            events: raw.events.iter().map(|e| e.to_string()).collect(),
            tool_matcher: Some(raw.tool_matcher.to_string()).filter(|m| !m.is_empty()),
            timeout: Some(raw.timeout_ms).filter(|t| *t > 0).map(|t| Duration::from_millis(u64::from(t))),
            failure_policy,
            cache: Some(raw.cache_ttl_ms)
                .filter(|t| *t > 0)
                .map(|ttl| CachePolicy { ttl: Duration::from_millis(ttl), key: raw.cache_key.iter().map(|k| k.to_string()).collect() }),
            extensions,
        })
    }
}

/// A plugin's answer for one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub decision: Option<Decision>,
    pub reason: Option<String>,
    pub additional_context: Option<String>,
    pub system_message: Option<String>,
    pub updated_input: Option<Value>,
    /// `Some(reason)` stops Claude entirely (`continue: false` + `stopReason`).
    pub stop: Option<String>,
    /// The plugin failed; the host applies its failure policy.
    pub error: Option<String>,
    pub stats: CallStats,
}

impl Outcome {
    /// No opinion: Claude Code's own flow decides.
    pub fn none() -> Outcome {
        Outcome::default()
    }

    fn decided(decision: Decision, reason: impl Into<String>) -> Outcome {
        Outcome { decision: Some(decision), reason: Some(reason.into()), ..Outcome::default() }
    }

    pub fn allow(reason: impl Into<String>) -> Outcome {
        Outcome::decided(Decision::Allow, reason)
    }

    pub fn ask(reason: impl Into<String>) -> Outcome {
        Outcome::decided(Decision::Ask, reason)
    }

    pub fn deny(reason: impl Into<String>) -> Outcome {
        Outcome::decided(Decision::Deny, reason)
    }

    pub fn defer(reason: impl Into<String>) -> Outcome {
        Outcome::decided(Decision::Defer, reason)
    }

    pub fn block(reason: impl Into<String>) -> Outcome {
        Outcome::decided(Decision::Block, reason)
    }

    /// Stop Claude entirely. Prefer `deny` for one tool call: this halts the whole agent.
    pub fn stop(reason: impl Into<String>) -> Outcome {
        Outcome { stop: Some(reason.into()), ..Outcome::default() }
    }

    pub fn error(message: impl Into<String>) -> Outcome {
        Outcome { error: Some(message.into()), ..Outcome::default() }
    }

    /// Context for Claude (SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, ...).
    pub fn with_context(mut self, text: impl Into<String>) -> Outcome {
        self.additional_context = Some(text.into());
        self
    }

    /// A warning shown to the user.
    pub fn with_system_message(mut self, text: impl Into<String>) -> Outcome {
        self.system_message = Some(text.into());
        self
    }

    /// Replace the tool input (PreToolUse, with `allow` or `ask`).
    pub fn with_updated_input(mut self, input: Value) -> Outcome {
        self.updated_input = Some(input);
        self
    }

    pub fn decision(&self) -> Decision {
        self.decision.unwrap_or(Decision::None)
    }

    pub fn to_raw(&self) -> RawOutcome {
        fn text(s: &Option<String>) -> RString {
            s.as_deref().unwrap_or("").into()
        }
        RawOutcome {
            decision: self.decision().code(),
            reason: text(&self.reason),
            additional_context: text(&self.additional_context),
            system_message: text(&self.system_message),
            updated_input: self.updated_input.as_ref().map(|v| v.to_string()).unwrap_or_default().into(),
            stop: self.stop.is_some(),
            stop_reason: text(&self.stop),
            error: text(&self.error),
            extensions: RString::new(),
            stats: self.stats,
        }
    }

    /// Reads an outcome back from the ABI form; garbage (unknown decision code, updated input
    /// that is not a JSON object) is an error naming what was wrong.
    pub fn from_raw(raw: &RawOutcome) -> Result<Outcome, String> {
        fn text(s: &RString) -> Option<String> {
            Some(s.to_string()).filter(|s| !s.is_empty())
        }
        let decision = Decision::from_code(raw.decision).ok_or_else(|| format!("unknown decision code {}", raw.decision))?;
        let updated_input = if raw.updated_input.is_empty() {
            None
        } else {
            let v: Value = serde_json::from_str(&raw.updated_input).map_err(|e| format!("updated input is not JSON: {e}"))?;
            if !v.is_object() {
                return Err("updated input is not a JSON object".into());
            }
            Some(v)
        };
        Ok(Outcome {
            decision: Some(decision).filter(|d| *d != Decision::None),
            reason: text(&raw.reason),
            additional_context: text(&raw.additional_context),
            system_message: text(&raw.system_message),
            updated_input,
            stop: raw.stop.then(|| raw.stop_reason.to_string()),
            error: text(&raw.error),
            stats: raw.stats,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_round_trips_through_the_abi() {
        let o = Outcome::ask("confirm").with_context("ctx").with_updated_input(serde_json::json!({"command": "ls"}));
        assert_eq!(Outcome::from_raw(&o.to_raw()), Ok(o));
        let stop = Outcome::stop("budget");
        assert_eq!(Outcome::from_raw(&stop.to_raw()), Ok(stop));
    }

    #[test]
    fn garbage_outcomes_are_errors() {
        let raw = RawOutcome { decision: 77, ..RawOutcome::default() };
        assert!(Outcome::from_raw(&raw).unwrap_err().contains("77"));
        let raw = RawOutcome { updated_input: "[1]".into(), ..RawOutcome::default() };
        assert!(Outcome::from_raw(&raw).is_err());
    }

    #[test]
    fn manifest_round_trips_through_the_abi() {
        let m = Manifest::new("x", "1.2.3")
            .events(&["PreToolUse"])
            .tool_matcher("Bash|Write")
            .timeout(Duration::from_millis(20))
            .fail_closed()
            .cacheable(Duration::from_secs(60), &["/tool_input/command"]);
        assert_eq!(Manifest::from_raw(&m.to_raw()), Ok(m));
    }

    #[test]
    fn concurrent_calls_travel_in_the_extensions_and_keep_the_rest() {
        let plain = Manifest::new("p", "1");
        assert!(!plain.allows_concurrent_calls());
        let mut m = Manifest::new("p", "1");
        m.extensions = Some(serde_json::json!({"other": 7}));
        let m = m.concurrent_calls();
        let back = Manifest::from_raw(&m.to_raw()).unwrap();
        assert!(back.allows_concurrent_calls());
        assert_eq!(back.extensions.unwrap()["other"], 7);
    }

    #[test]
    fn text_triggers_travel_in_the_extensions_and_only_a_list_of_strings_counts() {
        assert_eq!(Manifest::new("p", "1").text_triggers(), None);
        let m = Manifest::new("p", "1").concurrent_calls().only_if_text_contains(&["sk-", "\\u"]);
        let back = Manifest::from_raw(&m.to_raw()).unwrap();
        assert_eq!(back.text_triggers(), Some(vec!["sk-".to_owned(), "\\u".to_owned()]));
        assert!(back.allows_concurrent_calls());
        let mut odd = Manifest::new("p", "1");
        odd.extensions = Some(serde_json::json!({"only_if_text_contains": ["a", 1]}));
        assert_eq!(odd.text_triggers(), None, "a list with a non-string is no promise");
        odd.extensions = Some(serde_json::json!({"only_if_text_contains": "a"}));
        assert_eq!(odd.text_triggers(), None);
    }

    #[test]
    fn decisions_order_most_restrictive_last() {
        assert!(Decision::Deny > Decision::Defer);
        assert!(Decision::Defer > Decision::Ask);
        assert!(Decision::Ask > Decision::Allow);
        assert!(Decision::Allow > Decision::None);
    }
}
