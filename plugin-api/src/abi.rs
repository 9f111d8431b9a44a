//! The frozen binary interface between the host and a Rust plugin.
//!
//! Everything in this module crosses a `dlopen` boundary between two separately compiled
//! Rust programs, so every type is `#[repr(C)]` and checked by `abi_stable` at load time.
//! **Architecture Invariant:** these types only ever grow by appending fields *after*
//! `#[sabi(last_prefix_field)]` in [`PluginModule`]; nothing is reordered, retyped or removed.
//! New behaviour travels in the JSON payloads (`extensions`) instead, so the layout that a 1.0
//! plugin was checked against stays valid for every 1.x host.

use abi_stable::{
    library::RootModule,
    sabi_types::VersionStrings,
    std_types::{RStr, RString, RVec},
    StableAbi,
};

/// The plugin ABI generation. A host refuses a plugin whose `abi_version` differs.
pub const ABI_VERSION: u32 = 1;

/// Decision codes as they cross the boundary (a plain `u8` so new codes never change layout).
pub mod decision {
    pub const NONE: u8 = 0;
    pub const ALLOW: u8 = 1;
    pub const DENY: u8 = 2;
    pub const ASK: u8 = 3;
    pub const DEFER: u8 = 4;
    pub const BLOCK: u8 = 5;
}

/// Failure-policy codes as they cross the boundary.
pub mod failure_policy {
    /// A fault (panic, timeout, garbage) counts as "no opinion".
    pub const OPEN: u8 = 0;
    /// A fault counts as a deny/block on events that can be blocked.
    pub const CLOSED: u8 = 1;
}

/// What a plugin says about itself. Read once per load, or from the host's manifest index.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct RawManifest {
    pub name: RString,
    pub version: RString,
    /// Must equal [`ABI_VERSION`] of the host.
    pub abi_version: u32,
    /// Hook event names (`PreToolUse`, ...) the plugin wants; `*` means every event.
    pub events: RVec<RString>,
    /// Claude Code matcher syntax on `tool_name`; empty means every tool.
    pub tool_matcher: RString,
    /// Per-call deadline; 0 lets the host choose.
    pub timeout_ms: u32,
    /// One of [`failure_policy`].
    pub failure_policy: u8,
    /// How long an outcome may be reused; 0 means not cacheable.
    pub cache_ttl_ms: u64,
    /// JSON pointers (`/tool_input/command`) naming the parts of the event the outcome depends on.
    pub cache_key: RVec<RString>,
    /// A JSON object (or empty) for capability data added after 1.0.
    pub extensions: RString,
}

/// Memory use inside one call, as seen by the plugin's counting allocator.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// False when the plugin runs without the counting allocator: the other fields are zero.
    pub counted: bool,
    pub allocations: u64,
    pub bytes_allocated: u64,
    /// Highest live heap bytes during the call, above what was live when it started.
    pub peak_live_bytes: u64,
}

/// What a plugin answers for one event.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default)]
pub struct RawOutcome {
    /// One of [`decision`].
    pub decision: u8,
    pub reason: RString,
    pub additional_context: RString,
    pub system_message: RString,
    /// A JSON object replacing the tool input, or empty.
    pub updated_input: RString,
    /// Stop Claude entirely (`continue: false`).
    pub stop: bool,
    pub stop_reason: RString,
    /// Non-empty when the plugin failed; the host then applies the failure policy.
    pub error: RString,
    /// A JSON object (or empty) for outcome data added after 1.0.
    pub extensions: RString,
    pub stats: CallStats,
}

/// The root module every Rust plugin exports through [`export_plugin!`](crate::export_plugin).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef, prefix_fields = PluginModulePrefix)))]
#[sabi(missing_field(option))]
pub struct PluginModule {
    pub manifest: extern "C" fn() -> RawManifest,
    /// Receives the plugin's config section as JSON text; returns an error message or empty.
    pub init: extern "C" fn(config: RStr<'_>) -> RString,
    /// Event JSON text in, outcome out. Never unwinds.
    #[sabi(last_prefix_field)]
    pub handle: extern "C" fn(event: RStr<'_>) -> RawOutcome,
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "chronicle_plugin";
    const NAME: &'static str = "chronicle_plugin";
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}
