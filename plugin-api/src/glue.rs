//! Plugin-side glue behind `export_plugin!`: builds the root module from a [`Plugin`] type and
//! makes sure nothing unwinds across the boundary.
//!
//! A panic crossing `extern "C"` aborts the host, and each cdylib carries its own std, so the
//! host cannot catch a plugin's panic. Everything is therefore caught here, inside the plugin.
//! A quiet panic hook replaces the default one: with `RUST_BACKTRACE=1` inherited from the user,
//! the default hook captures a backtrace (~100 ms) for every caught panic.

use std::any::Any;
use std::cell::RefCell;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RStr, RString};

use crate::abi::{PluginModule, PluginModuleRef, RawManifest, RawOutcome};
use crate::{alloc, Event, Outcome, Plugin};

static INSTANCE: OnceLock<Result<Box<dyn Any + Send + Sync>, String>> = OnceLock::new();
/// This plugin's data directory, when the host gave one (see [`crate::data_dir`]).
pub(crate) static DATA_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// The manifest extension saying this plugin understands [`INIT_ENVELOPE`].
pub const INIT_CONTEXT: &str = "init_context";
/// The key that marks what `init` receives as an envelope from a host that knows
/// [`INIT_CONTEXT`]: `{"chronicle_init": 1, "config": <the section>, "data_dir": "..."}`. An older
/// host sends the section itself.
pub const INIT_ENVELOPE: &str = "chronicle_init";
static QUIET_HOOK: Once = Once::new();

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_quiet_panic_hook() {
    QUIET_HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let message = payload_text(info.payload());
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panicked{location}: {message}")));
        }));
    });
}

fn payload_text(payload: &dyn Any) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_panic_hook();
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // A plugin's `print!` sits in this cdylib's own stdout buffer; flush it now, while the host
    // still points fd 1 away from Claude Code, rather than at some later exit.
    let _ = std::io::stdout().flush();
    result.map_err(|payload| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| format!("panicked: {}", payload_text(&*payload))))
}

fn instance<P: Plugin>(config: &str) -> Result<&'static P, String> {
    let stored = INSTANCE.get_or_init(|| {
        let mut config: serde_json::Value = if config.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(config).map_err(|e| format!("plugin config is not JSON: {e}"))?
        };
        if config.get(INIT_ENVELOPE).is_some() {
            if let Some(dir) = config.get("data_dir").and_then(|d| d.as_str()) {
                let _ = DATA_DIR.set(dir.into());
            }
            config = config.get_mut("config").map(serde_json::Value::take).unwrap_or_default();
        }
        match caught(|| P::init(&config)) {
            Ok(Ok(p)) => Ok(Box::new(p) as Box<dyn Any + Send + Sync>),
            Ok(Err(e)) => Err(format!("init failed: {e}")),
            Err(panic) => Err(format!("init {panic}")),
        }
    });
    match stored {
        Ok(any) => any.downcast_ref::<P>().ok_or_else(|| "plugin instance has the wrong type".to_owned()),
        Err(e) => Err(e.clone()),
    }
}

extern "C" fn manifest<P: Plugin>() -> RawManifest {
    let with_context = || {
        let mut m = P::manifest();
        // Tell the host this glue unwraps the init envelope (and so offers a data directory).
        let mut ext = m.extensions.take().filter(serde_json::Value::is_object).unwrap_or_else(|| serde_json::json!({}));
        ext[INIT_CONTEXT] = serde_json::json!(1);
        m.extensions = Some(ext);
        m.to_raw()
    };
    match caught(with_context) {
        Ok(m) => m,
        // An empty name makes the host refuse the plugin with this reason.
        Err(panic) => RawManifest {
            name: RString::new(),
            version: RString::new(),
            abi_version: 0,
            events: Default::default(),
            tool_matcher: RString::new(),
            timeout_ms: 0,
            failure_policy: 0,
            cache_ttl_ms: 0,
            cache_key: Default::default(),
            extensions: format!("{{\"manifest_error\":{}}}", serde_json::Value::String(panic)).into(),
        },
    }
}

extern "C" fn init<P: Plugin>(config: RStr<'_>) -> RString {
    match instance::<P>(config.as_str()) {
        Ok(_) => RString::new(),
        Err(e) => e.into(),
    }
}

extern "C" fn handle<P: Plugin>(event: RStr<'_>) -> RawOutcome {
    let outcome = match instance::<P>("") {
        Err(e) => Outcome::error(e),
        Ok(plugin) => {
            let start = alloc::start();
            let result = caught(|| match Event::parse(event.as_str()) {
                Ok(event) => {
                    let outcome = plugin.handle(&event);
                    // A handler that read a field of text that was not JSON decided on nothing.
                    match event.invalid() {
                        Some(why) => Outcome::error(why.to_owned()),
                        None => outcome,
                    }
                }
                Err(e) => Outcome::error(e),
            });
            let stats = alloc::finish(start);
            let mut outcome = result.unwrap_or_else(Outcome::error);
            outcome.stats = stats;
            outcome
        }
    };
    caught(|| outcome.to_raw()).unwrap_or_else(|e| Outcome::error(e).to_raw())
}

/// The root module for plugin type `P`.
pub fn module<P: Plugin>() -> PluginModuleRef {
    PluginModule { manifest: manifest::<P>, init: init::<P>, handle: handle::<P> }.leak_into_prefix()
}
