//! The Chronicle plugin API: the one crate a plugin author depends on.
//!
//! A plugin is a `cdylib` that implements [`Plugin`] and calls [`export_plugin!`]. The host
//! loads it with `dlopen`, checks its layout and [`abi::ABI_VERSION`], and calls it for every
//! hook event it subscribes to. The event travels as JSON text and the answer as an [`Outcome`],
//! so Claude Code's schema can grow without touching the binary interface.
//!
//! ```
//! use chronicle_plugin_api::{export_plugin, Event, Manifest, Outcome, Plugin};
//!
//! struct NoForcePush;
//!
//! impl Plugin for NoForcePush {
//!     fn manifest() -> Manifest {
//!         Manifest::new("no-force-push", env!("CARGO_PKG_VERSION"))
//!             .events(&["PreToolUse"])
//!             .tool_matcher("Bash")
//!     }
//!     fn init(_config: &serde_json::Value) -> Result<Self, String> {
//!         Ok(NoForcePush)
//!     }
//!     fn handle(&self, event: &Event) -> Outcome {
//!         match event.tool_input_str("command") {
//!             Some(cmd) if cmd.contains("push --force") => Outcome::ask("force-push: confirm first"),
//!             _ => Outcome::none(),
//!         }
//!     }
//! }
//!
//! export_plugin!(NoForcePush);
//! ```
//!
//! This crate does no I/O and knows nothing about the host's store or CLI.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod abi;
pub mod alloc;
pub mod config;
mod event;
#[doc(hidden)]
pub mod glue;
mod outcome;
pub mod paths;
pub mod testing;

pub use event::Event;
pub use outcome::{CachePolicy, Decision, FailurePolicy, Manifest, Outcome};
pub use serde_json;

/// A directory of this plugin's own, for state that must outlive a process: counters, learned
/// allow-lists, a small database. It is `<chronicle data dir>/plugin-data/<plugin name>/`, the
/// same for every process that runs the plugin (hook processes, resident hosts), private to the
/// user (created with mode 0700 on the first call). Several processes may run the plugin at
/// once (Claude Code runs hooks in parallel): write with a lock or write-then-rename.
///
/// `None` before `init` (call it from `init` or `handle`), under a host older than this API
/// (1.1), and in unit tests that do not go through a host.
pub fn data_dir() -> Option<&'static std::path::Path> {
    static CREATED: std::sync::Once = std::sync::Once::new();
    let dir = glue::DATA_DIR.get()?;
    CREATED.call_once(|| {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    });
    Some(dir.as_path())
}

/// What every plugin implements.
pub trait Plugin: Sized + Send + Sync + 'static {
    /// Identity, subscriptions and policies. Called once per load; keep it cheap and pure.
    fn manifest() -> Manifest;

    /// Builds the plugin from its section of the host config (`null` when there is none).
    /// An error disables the plugin for this invocation and is recorded by the host.
    fn init(config: &serde_json::Value) -> Result<Self, String>;

    /// Decides on one event. Panics are caught and reported as errors; they never reach the host.
    fn handle(&self, event: &Event) -> Outcome;
}

/// Exports a [`Plugin`] as the root module of this cdylib.
///
/// `export_plugin!(MyPlugin)` also installs [`alloc::CountingAllocator`] as the global allocator
/// so the host can record per-call memory. A crate with its own `#[global_allocator]` writes
/// `export_plugin!(MyPlugin, allocator = none)` and reports no memory figures.
///
/// The plugin crate must depend on `abi_stable` directly (the exported static names it).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!($plugin, allocator = none);
        #[global_allocator]
        static __CHRONICLE_COUNTING_ALLOCATOR: $crate::alloc::CountingAllocator = $crate::alloc::CountingAllocator::new();
    };
    ($plugin:ty, allocator = none) => {
        #[::abi_stable::export_root_module]
        pub fn __chronicle_root_module() -> $crate::abi::PluginModuleRef {
            $crate::glue::module::<$plugin>()
        }
    };
}
