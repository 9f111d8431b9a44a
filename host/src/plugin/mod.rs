//! Finding, vetting and loading plugins.
//!
//! A plugin is a shared library in one of the plugin directories. Discovery lists candidate
//! files in a stable order and refuses, with a reason, any that another user could have written
//! (the way ssh treats its keys). Loading `dlopen`s a file and reads its manifest, trying the
//! abi_stable root module first and the plain C symbols second. The manifest index lets the
//! host skip `dlopen` for plugins that cannot subscribe to the current event.
//!
//! **Architecture Invariant:** a built-in plugin and a stranger's drop-in take exactly the same
//! path through this module; nothing here knows a plugin by name.

mod cabi;
pub mod index;
pub mod inflight;
mod load;
pub mod matcher;
pub mod triggers;
pub mod watch;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chronicle_plugin_api::{FailurePolicy, Manifest, Outcome};
use serde::{Deserialize, Serialize};

pub use load::{elf_segments, layout_checker, load, load_with, Layout, LoadError, Segment, PT_INTERP, PT_LOAD};
use matcher::Matcher;

/// The platform's shared-library extension.
pub const LIBRARY_EXTENSION: &str = std::env::consts::DLL_EXTENSION;

/// A file found in a plugin directory, with what identifies its current content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

impl Candidate {
    fn from_metadata(path: PathBuf, m: &fs::Metadata) -> Candidate {
        Candidate { size: m.len(), mtime_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()), inode: m.ino(), path }
    }

    /// What identifies this content of this file, as text (for cache keys).
    pub fn identity(&self) -> String {
        format!("{}\0{}:{}:{}", self.path.display(), self.inode, self.size, self.mtime_ns)
    }

    /// The file's identity now, if it still exists.
    pub fn stat(path: &Path) -> Option<Candidate> {
        fs::metadata(path).ok().map(|m| Candidate::from_metadata(path.to_owned(), &m))
    }
}

/// A file that will not be loaded, and why (one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub path: PathBuf,
    pub name: Option<String>,
    pub reason: String,
}

/// Every plugin file in `dirs` (in directory order, then by file name), split into candidates
/// and refusals. Missing directories are skipped silently: they are optional.
pub fn discover(dirs: &[PathBuf]) -> (Vec<Candidate>, Vec<Refusal>) {
    let mut candidates = Vec::new();
    let mut refusals = Vec::new();
    for dir in dirs {
        let Ok(meta) = fs::metadata(dir) else { continue };
        let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => {
                entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == LIBRARY_EXTENSION)).collect()
            }
            Err(e) => {
                refusals.push(Refusal { path: dir.clone(), name: None, reason: format!("cannot list plugin directory: {e}") });
                continue;
            }
        };
        files.sort();
        let dir_problem = unsafe_owner_or_mode(&meta).map(|p| format!("plugin directory {} {p}", dir.display()));
        let fix = if crate::private::is_shared_dir(&meta) {
            "move the plugins to a directory only you can write".to_owned()
        } else {
            format!("fix with `chmod go-w {}`", dir.display())
        };
        for path in files {
            if let Some(problem) = &dir_problem {
                refusals.push(Refusal { path, name: None, reason: format!("{problem}; {fix}") });
                continue;
            }
            match fs::metadata(&path) {
                Ok(m) if !m.is_file() => refusals.push(Refusal { path, name: None, reason: "not a regular file".into() }),
                Ok(m) => match unsafe_owner_or_mode(&m) {
                    Some(problem) => {
                        let reason = format!("plugin file {problem}; fix with `chmod go-w {}`", path.display());
                        refusals.push(Refusal { path, name: None, reason });
                    }
                    None => candidates.push(Candidate::from_metadata(path, &m)),
                },
                Err(e) => refusals.push(Refusal { path, name: None, reason: format!("cannot stat: {e}") }),
            }
        }
    }
    (candidates, refusals)
}

/// Why another user could change this file or directory, if they could.
fn unsafe_owner_or_mode(meta: &fs::Metadata) -> Option<String> {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!("is owned by uid {}, not by you (uid {me}) or root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!("is group- or world-writable (mode {:o})", meta.mode() & 0o7777));
    }
    None
}

/// A manifest in the host's terms, as kept in the manifest index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub abi: String,
    pub abi_version: u32,
    pub events: Vec<String>,
    pub tool_matcher: Option<String>,
    pub timeout_ms: Option<u64>,
    pub failure_policy: String,
    pub cache_ttl_ms: Option<u64>,
    pub cache_key: Vec<String>,
    /// Its glue unwraps the init envelope, so it gets a data directory (plugin-api ≥ 1.1).
    #[serde(default)]
    pub init_context: bool,
    /// The manifest allows calls from several threads at once (plugin-api 1.2); otherwise a
    /// host serving events in parallel takes turns on this plugin.
    #[serde(default)]
    pub concurrent_calls: bool,
    /// The manifest's promise of no opinion on events whose text holds none of these words
    /// (plugin-api 1.4): such an event neither loads nor calls the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_triggers: Option<Vec<String>>,
}

impl PluginInfo {
    pub fn from_manifest(m: &Manifest, abi: &str) -> PluginInfo {
        PluginInfo {
            name: m.name.clone(),
            version: m.version.clone(),
            abi: abi.to_owned(),
            abi_version: m.abi_version,
            events: m.events.clone(),
            tool_matcher: m.tool_matcher.clone(),
            timeout_ms: m.timeout.map(|t| t.as_millis() as u64),
            failure_policy: m.failure_policy.as_str().to_owned(),
            cache_ttl_ms: m.cache.as_ref().map(|c| c.ttl.as_millis() as u64),
            cache_key: m.cache.as_ref().map(|c| c.key.clone()).unwrap_or_default(),
            init_context: m
                .extensions
                .as_ref()
                .and_then(|e| e.get(chronicle_plugin_api::glue::INIT_CONTEXT))
                .and_then(serde_json::Value::as_u64)
                .is_some_and(|v| v >= 1),
            concurrent_calls: m.allows_concurrent_calls(),
            text_triggers: m.text_triggers(),
        }
    }

    pub fn failure_policy(&self) -> FailurePolicy {
        if self.failure_policy == "closed" {
            FailurePolicy::Closed
        } else {
            FailurePolicy::Open
        }
    }

    pub fn subscribes_to(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event || e == "*")
    }

    /// Whether this plugin wants `event` (and, on tool events, `tool_name`).
    pub fn wants(&self, event: &str, tool_event: bool, tool_name: Option<&str>) -> Result<bool, String> {
        if !self.subscribes_to(event) {
            return Ok(false);
        }
        if !tool_event {
            return Ok(true);
        }
        Ok(Matcher::parse(self.tool_matcher.as_deref())?.matches(tool_name))
    }

    /// Whether the plugin may have something to say on an event with this JSON text: false
    /// only when its manifest promised silence without one of its words and none occurs.
    pub fn triggered_by(&self, text: &str) -> bool {
        self.text_triggers.as_deref().is_none_or(|words| triggers::mentions_any(text, words))
    }

    pub fn timeout(&self, default: Duration) -> Duration {
        self.timeout_ms.map_or(default, Duration::from_millis)
    }
}

/// Why a plugin call produced no usable outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    InitFailed(String),
    Error(String),
    Panicked(String),
    TimedOut(Duration),
    Garbage(String),
    /// Not called: the event was cut at the size cap before what the plugin reads.
    TooLarge(String),
    /// Not loaded: it killed a host process; until its file changes.
    Quarantined(String),
    /// Not called: it timed out too often in a row.
    Suspended(String),
    /// Not called: a plugin whose manifest is known (the plugin index) failed to load this time.
    LoadFailed(String),
}

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::InitFailed(_) => "init_error",
            Fault::Error(_) => "error",
            Fault::Panicked(_) => "panic",
            Fault::TimedOut(_) => "timeout",
            Fault::Garbage(_) => "garbage",
            Fault::TooLarge(_) => "too_large",
            Fault::Quarantined(_) => "quarantined",
            Fault::Suspended(_) => "suspended",
            Fault::LoadFailed(_) => "load_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Fault::InitFailed(m)
            | Fault::Error(m)
            | Fault::Panicked(m)
            | Fault::Garbage(m)
            | Fault::TooLarge(m)
            | Fault::Quarantined(m)
            | Fault::Suspended(m)
            | Fault::LoadFailed(m) => m.clone(),
            Fault::TimedOut(d) => format!("no answer within {} ms; abandoned", d.as_millis()),
        }
    }
}

/// What a loaded plugin's call returned.
pub type CallResult = Result<Outcome, Fault>;

/// Another thread is inside the plugin (see [`LoadedPlugin::try_turn`]).
#[derive(Debug)]
pub struct TurnTaken;

/// A plugin in memory, ready to call.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub info: PluginInfo,
    backend: load::Backend,
    /// An abi_stable plugin whose root-module layout this load compared with the host's (see
    /// [`Layout`]): its index entry may say so.
    pub layout_checked: bool,
    /// `init`'s answer: a plugin is initialised once per process (the resident host serves many
    /// events with one config, and C plugins are promised a single `init`).
    initialised: std::sync::OnceLock<Result<(), String>>,
    /// Held for the length of a call unless the manifest allows concurrent calls: threads of a
    /// resident host serving events at once take turns on this plugin.
    turn: std::sync::Mutex<()>,
    /// This plugin's calls, to tell one that overlapped another (its memory figures are then
    /// not this call's alone).
    pub calls: crate::overlap::Overlaps,
}

impl LoadedPlugin {
    /// Runs `init` with the plugin's config section, the first time only; later calls return
    /// the first answer.
    pub fn init(&self, config_json: &str) -> Result<(), String> {
        self.initialised.get_or_init(|| self.backend.init(config_json)).clone()
    }

    /// This thread's turn to call the plugin, if no other thread is inside it (`Err`: one is,
    /// see [`LoadedPlugin::wait_turn`]). Holds nothing when the manifest allows concurrent calls.
    pub fn try_turn(&self) -> Result<Option<std::sync::MutexGuard<'_, ()>>, TurnTaken> {
        use std::sync::TryLockError;
        if self.info.concurrent_calls {
            return Ok(None);
        }
        // Plugin calls do not unwind into the host, so a poisoned lock only means a panic in
        // the host's own code around a call: the turn is still free to take.
        match self.turn.try_lock() {
            Ok(turn) => Ok(Some(turn)),
            Err(TryLockError::Poisoned(p)) => Ok(Some(p.into_inner())),
            Err(TryLockError::WouldBlock) => Err(TurnTaken),
        }
    }

    /// Waits until no other thread is inside this plugin (forever, if that one hangs: the
    /// caller's deadline gives up on this thread then).
    pub fn wait_turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls the handler. Never unwinds (Rust plugins catch panics on their side).
    pub fn call(&self, event_json: &str) -> CallResult {
        self.backend.call(event_json)
    }

    /// Memory stats for C plugins, which have no counting allocator.
    pub fn counts_own_memory(&self) -> bool {
        matches!(self.backend, load::Backend::Abi(_))
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("path", &self.path).field("info", &self.info).finish()
    }
}

/// Checks a manifest the way the loader does; the reason names what to fix.
/// How a plugin was built, for advice that fits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// With chronicle-plugin-api (Rust, abi_stable).
    Rust,
    /// From `chronicle_plugin.h` (C, C++, Zig, ...).
    C,
}

pub fn validate_manifest(m: &Manifest, built: Built) -> Result<(), String> {
    if m.name.trim().is_empty() {
        return Err("plugin manifest has an empty name".into());
    }
    if m.abi_version != chronicle_plugin_api::abi::ABI_VERSION {
        let fix = match built {
            Built::Rust => format!("rebuild it against chronicle-plugin-api {}", api_version()),
            Built::C => format!(
                "build it from the chronicle_plugin.h of this version (CHRONICLE_PLUGIN_ABI_VERSION {}) and put that number in its manifest's \"abi_version\"",
                chronicle_plugin_api::abi::ABI_VERSION
            ),
        };
        return Err(format!(
            "plugin {} speaks plugin ABI {}, this host speaks {}: {fix}",
            m.name,
            m.abi_version,
            chronicle_plugin_api::abi::ABI_VERSION
        ));
    }
    if m.events.is_empty() {
        return Err(format!("plugin {} subscribes to no events", m.name));
    }
    Matcher::parse(m.tool_matcher.as_deref()).map(|_| ())
}

/// The plugin-api version this host was built with.
pub fn api_version() -> &'static str {
    use abi_stable::library::RootModule;
    chronicle_plugin_api::abi::PluginModuleRef::VERSION_STRINGS.version.as_str()
}

/// True when `path` names a file in one of the plugin directories' formats.
pub fn is_library(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == LIBRARY_EXTENSION)
}
