//! Reusing plugin outcomes: an in-process tier (quick_cache) and a persistent tier in the store,
//! so that the next `chronicle hook` process — a new process per event — still gets the hit.
//!
//! A plugin opts in through its manifest: a TTL and the parts of the event its outcome depends
//! on. Entries starting with `/` are JSON pointers into the event; entries `mtime:<path>` name a
//! file (relative to the event's `cwd`) whose size and modification time join the key, so a
//! cached answer about a git repository is invalidated the moment `.git/HEAD` changes.
//! The key is a SHA-256 over the plugin's name and version, the file it was loaded from (path,
//! device, inode, size, mtime), its effective configuration, the event name, the project
//! directory and those values: a collision cannot be crafted to reuse a guard's verdict, and an
//! edited `[plugins.NAME]` table or a replaced library reaches the very next event in both
//! directions (an outcome computed under another configuration is never reused).

use std::path::Path;

use chronicle_plugin_api::{Decision, Outcome};
use quick_cache::sync::Cache as QuickCache;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Entries the in-process tier holds.
pub const L1_CAPACITY: usize = 4096;

/// Entries the persistent tier keeps.
pub const L2_CAPACITY: usize = 10_000;

/// Shards of each in-process map. quick_cache's default (4 × the CPUs) asks
/// `available_parallelism`, which reads the process's cgroup files: ~35 µs of every in-process
/// event, for maps a resident host's few serving threads share.
const SHARDS: usize = 16;

fn sharded<V: Clone>(items: usize) -> QuickCache<String, V> {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(items)
        .weight_capacity(items as u64)
        .shards(SHARDS)
        .build()
        .unwrap_or_else(|e| unreachable!("every option is set: {e:?}"));
    QuickCache::with_options(options, Default::default(), Default::default(), Default::default())
}

/// The in-process tier: plugin outcomes, and host-side facts (project context) as text.
pub struct Cache {
    l1: QuickCache<String, (Outcome, i64)>,
    facts: QuickCache<String, String>,
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache { l1: sharded(L1_CAPACITY), facts: sharded(256) }
    }

    /// A live entry, or None (expired entries are dropped).
    pub fn get(&self, key: &str, now_ns: i64) -> Option<Outcome> {
        match self.l1.get(key) {
            Some((o, expires)) if expires > now_ns => Some(o),
            Some(_) => {
                self.l1.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: String, outcome: Outcome, expires_at_ns: i64) {
        self.l1.insert(key, (outcome, expires_at_ns));
    }

    /// A host-side fact (keys embed their source's stamp, so they never go stale).
    pub fn fact(&self, key: &str) -> Option<String> {
        self.facts.get(key)
    }

    pub fn put_fact(&self, key: String, value: String) {
        self.facts.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.l1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.l1.len() == 0
    }
}

/// Everything an outcome was computed by, apart from the event: the plugin as declared, as
/// found on disk and as configured. The caller describes the plugin; the cache knows no plugin.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The manifest's cache key: JSON pointers and `mtime:` entries.
    pub key: &'a [String],
    /// The file's identity (path, device, inode, size, mtime), as text.
    pub file: &'a str,
    /// The plugin's effective configuration, as JSON text.
    pub config: &'a str,
}

/// The cache key for `subject` on an event: `top` holds its top-level scalars, `pointed` gives
/// the JSON text of what a JSON pointer names in it (None: nothing).
pub fn key_for(subject: &Subject, top: &Value, pointed: impl Fn(&str) -> Option<String>) -> String {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(subject.name.as_bytes());
    part(subject.version.as_bytes());
    part(subject.file.as_bytes());
    part(subject.config.as_bytes());
    part(top.get("hook_event_name").and_then(Value::as_str).unwrap_or("").as_bytes());
    part(std::env::var(crate::config::env::PROJECT_DIR).unwrap_or_default().as_bytes());
    let cwd = top.get("cwd").and_then(Value::as_str).unwrap_or("");
    for k in subject.key {
        part(k.as_bytes());
        if let Some(rel) = k.strip_prefix("mtime:") {
            let meta = std::fs::metadata(Path::new(cwd).join(rel));
            let stamp = match meta {
                Ok(m) => {
                    use std::os::unix::fs::MetadataExt;
                    format!("{}:{}.{}", m.len(), m.mtime(), m.mtime_nsec())
                }
                Err(_) => "absent".to_owned(),
            };
            part(stamp.as_bytes());
        } else {
            match pointed(k) {
                Some(text) => part(text.as_bytes()),
                None => part(b"\x00absent"),
            }
        }
    }
    let digest = h.finalize();
    format!("{}:{}", subject.name, digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[derive(Serialize, Deserialize)]
struct Stored {
    decision: String,
    reason: Option<String>,
    additional_context: Option<String>,
    system_message: Option<String>,
    updated_input: Option<Value>,
    stop: Option<String>,
}

/// An outcome as JSON text for the persistent tier.
pub fn encode(o: &Outcome) -> String {
    serde_json::to_string(&Stored {
        decision: o.decision().as_str().into(),
        reason: o.reason.clone(),
        additional_context: o.additional_context.clone(),
        system_message: o.system_message.clone(),
        updated_input: o.updated_input.clone(),
        stop: o.stop.clone(),
    })
    .unwrap_or_default()
}

/// Reads an outcome back; anything malformed is a miss.
pub fn decode(text: &str) -> Option<Outcome> {
    let s: Stored = serde_json::from_str(text).ok()?;
    Some(Outcome {
        decision: Decision::parse(&s.decision).filter(|d| *d != Decision::None),
        reason: s.reason,
        additional_context: s.additional_context,
        system_message: s.system_message,
        updated_input: s.updated_input,
        stop: s.stop,
        error: None,
        stats: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(subject: &Subject, event: &Value) -> String {
        key_for(subject, event, |pointer| event.pointer(pointer).map(Value::to_string))
    }

    fn subject<'a>(key: &'a [String], config: &'a str, file: &'a str) -> Subject<'a> {
        Subject { name: "p", version: "1", key, file, config }
    }

    #[test]
    fn keys_ignore_fields_not_named_and_see_the_ones_named() {
        let k = vec!["/tool_input/command".to_owned()];
        let p = subject(&k, "null", "f");
        let a = json!({"hook_event_name": "PreToolUse", "tool_use_id": "1", "tool_input": {"command": "ls"}});
        let b = json!({"hook_event_name": "PreToolUse", "tool_use_id": "2", "tool_input": {"command": "ls"}});
        let c = json!({"hook_event_name": "PreToolUse", "tool_use_id": "1", "tool_input": {"command": "rm"}});
        assert_eq!(key(&p, &a), key(&p, &b));
        assert_ne!(key(&p, &a), key(&p, &c));
    }

    #[test]
    fn keys_change_with_the_plugins_config_and_file_and_come_back_with_them() {
        let k = vec!["/tool_input/command".to_owned()];
        let e = json!({"hook_event_name": "PreToolUse", "tool_input": {"command": "git push --force origin release-7"}});
        let before = key(&subject(&k, r#"{"protected_branches":["main"]}"#, "f:1"), &e);
        let edited = key(&subject(&k, r#"{"protected_branches":["main","release-7"]}"#, "f:1"), &e);
        let replaced = key(&subject(&k, r#"{"protected_branches":["main"]}"#, "f:2"), &e);
        assert_ne!(before, edited);
        assert_ne!(before, replaced);
        assert_eq!(before, key(&subject(&k, r#"{"protected_branches":["main"]}"#, "f:1"), &e));
    }

    #[test]
    fn mtime_keys_change_when_the_file_changes() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("HEAD"), "ref: refs/heads/a\n").unwrap();
        let k = vec!["mtime:HEAD".to_owned()];
        let p = subject(&k, "null", "f");
        let e = json!({"hook_event_name": "SessionStart", "cwd": t.path()});
        let before = key(&p, &e);
        std::fs::write(t.path().join("HEAD"), "ref: refs/heads/bb\n").unwrap();
        assert_ne!(before, key(&p, &e));
    }

    #[test]
    fn l1_expires_entries_and_round_trips_outcomes() {
        let c = Cache::new();
        let o = Outcome::deny("no").with_context("ctx");
        c.put("k".into(), o.clone(), 100);
        assert_eq!(c.get("k", 50), Some(o.clone()));
        assert_eq!(c.get("k", 150), None);
        assert_eq!(decode(&encode(&o)), Some(o));
    }
}
