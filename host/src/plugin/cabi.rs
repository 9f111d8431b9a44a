//! The plain C plugin ABI (`plugin-api/include/chronicle_plugin.h`), for plugins written in C,
//! C++ or Zig. Manifest and outcome travel as JSON text; the plugin allocates the outcome and
//! the host hands it back to `chronicle_plugin_free`.

use std::ffi::{c_char, c_int, CStr};
use std::time::Duration;

use abi_stable::library::RawLibrary;
use chronicle_plugin_api::{CachePolicy, Decision, FailurePolicy, Manifest, Outcome};
use serde::Deserialize;

use super::{CallResult, Fault};

type ManifestFn = unsafe extern "C" fn() -> *const c_char;
type InitFn = unsafe extern "C" fn(*const c_char, usize) -> c_int;
type HandleFn = unsafe extern "C" fn(*const c_char, usize) -> *mut c_char;
type FreeFn = unsafe extern "C" fn(*mut c_char);

pub(super) struct CPlugin {
    manifest: ManifestFn,
    init: Option<InitFn>,
    handle: HandleFn,
    free: FreeFn,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CManifest {
    name: String,
    version: String,
    abi_version: u32,
    events: Vec<String>,
    #[serde(default)]
    tool_matcher: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    failure_policy: Option<String>,
    #[serde(default)]
    cache_ttl_ms: Option<u64>,
    #[serde(default)]
    cache_key: Vec<String>,
    /// `handle` may run on several threads at once (see `Manifest::concurrent_calls`).
    #[serde(default)]
    concurrent_calls: bool,
    /// No opinion on events without one of these words (see `Manifest::only_if_text_contains`).
    #[serde(default)]
    only_if_text_contains: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct COutcome {
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    additional_context: Option<String>,
    #[serde(default)]
    system_message: Option<String>,
    #[serde(default)]
    updated_input: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl CPlugin {
    /// The C entry points, if the library has a manifest: Ok(None) without one (not a C
    /// plugin), Err naming what is missing when it has the manifest but not the rest.
    pub(super) fn find(raw: &RawLibrary) -> Result<Option<CPlugin>, String> {
        // SAFETY: the symbol types are those declared in chronicle_plugin.h; a library that
        // exports these names with other signatures is outside what any check could catch.
        unsafe {
            let Ok(manifest) = raw.get::<ManifestFn>(b"chronicle_plugin_manifest\0").map(|s| *s) else { return Ok(None) };
            let handle = raw.get::<HandleFn>(b"chronicle_plugin_handle\0").ok().map(|s| *s);
            let free = raw.get::<FreeFn>(b"chronicle_plugin_free\0").ok().map(|s| *s);
            let init = raw.get::<InitFn>(b"chronicle_plugin_init\0").ok().map(|s| *s);
            match (handle, free) {
                (Some(handle), Some(free)) => Ok(Some(CPlugin { manifest, init, handle, free })),
                (h, f) => {
                    let missing: Vec<&str> = [("chronicle_plugin_handle", h.is_none()), ("chronicle_plugin_free", f.is_none())]
                        .into_iter()
                        .filter(|(_, m)| *m)
                        .map(|(n, _)| n)
                        .collect();
                    Err(format!(
                        "exports chronicle_plugin_manifest but not {} (chronicle_plugin.h: manifest, handle and free are all required)",
                        missing.join(" nor ")
                    ))
                }
            }
        }
    }

    pub(super) fn manifest(&self) -> Result<Manifest, String> {
        // SAFETY: the function returns a NUL-terminated static string (per the header) or NULL.
        let text = unsafe {
            let p = (self.manifest)();
            if p.is_null() {
                return Err("chronicle_plugin_manifest returned NULL".into());
            }
            CStr::from_ptr(p).to_string_lossy().into_owned()
        };
        parse_manifest(&text)
    }

    pub(super) fn init(&self, config_json: &str) -> Result<(), String> {
        let Some(init) = self.init else { return Ok(()) };
        let c = std::ffi::CString::new(config_json).map_err(|_| "config contains a NUL byte".to_owned())?;
        // SAFETY: a NUL-terminated buffer and its length, valid for the call.
        match unsafe { init(c.as_ptr(), config_json.len()) } {
            0 => Ok(()),
            code => Err(format!("chronicle_plugin_init returned {code}")),
        }
    }

    pub(super) fn call(&self, event_json: &str) -> CallResult {
        let c = std::ffi::CString::new(event_json).map_err(|_| Fault::Error("event contains a NUL byte".into()))?;
        // SAFETY: as above; the returned pointer is either NULL or a NUL-terminated string that
        // we must return to `free` exactly once.
        let text = unsafe {
            let p = (self.handle)(c.as_ptr(), event_json.len());
            if p.is_null() {
                return Ok(Outcome::none());
            }
            let text = CStr::from_ptr(p).to_string_lossy().into_owned();
            (self.free)(p);
            text
        };
        if text.trim().is_empty() {
            return Ok(Outcome::none());
        }
        let o: COutcome = serde_json::from_str(&text).map_err(|e| Fault::Garbage(format!("outcome is not valid JSON: {e}")))?;
        if let Some(e) = o.error {
            return Err(Fault::Error(e));
        }
        let decision = match o.decision.as_deref() {
            None => None,
            Some(d) => match Decision::parse(d) {
                Some(Decision::None) => None,
                Some(d) => Some(d),
                None => return Err(Fault::Garbage(format!("unknown decision {d:?}"))),
            },
        };
        Ok(Outcome {
            decision,
            reason: o.reason,
            additional_context: o.additional_context,
            system_message: o.system_message,
            updated_input: o.updated_input.map(serde_json::Value::Object),
            stop: o.stop_reason,
            error: None,
            stats: Default::default(),
        })
    }
}

/// Reads a C plugin's manifest JSON.
fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let c: CManifest = serde_json::from_str(text).map_err(|e| format!("manifest JSON: {e}"))?;
    let failure_policy = match c.failure_policy.as_deref() {
        None | Some("open") => FailurePolicy::Open,
        Some("closed") => FailurePolicy::Closed,
        Some(other) => return Err(format!("failure_policy {other:?} is neither \"open\" nor \"closed\"")),
    };
    Ok(Manifest {
        name: c.name,
        version: c.version,
        abi_version: c.abi_version,
        events: c.events,
        tool_matcher: c.tool_matcher.filter(|m| !m.is_empty()),
        timeout: c.timeout_ms.filter(|t| *t > 0).map(Duration::from_millis),
        failure_policy,
        cache: c.cache_ttl_ms.filter(|t| *t > 0).map(|t| CachePolicy { ttl: Duration::from_millis(t), key: c.cache_key }),
        extensions: extensions(c.concurrent_calls, c.only_if_text_contains),
    })
}

/// The C manifest's optional keys in the Rust manifest's terms.
fn extensions(concurrent_calls: bool, only_if_text_contains: Option<Vec<String>>) -> Option<serde_json::Value> {
    let mut ext = serde_json::Map::new();
    if concurrent_calls {
        ext.insert(Manifest::CONCURRENT_CALLS.into(), true.into());
    }
    if let Some(words) = only_if_text_contains {
        ext.insert(Manifest::ONLY_IF_TEXT_CONTAINS.into(), words.into());
    }
    (!ext.is_empty()).then_some(serde_json::Value::Object(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c_manifest_may_allow_concurrent_calls_and_rejects_unknown_keys() {
        let base = r#""name":"c","version":"1","abi_version":1,"events":["Stop"]"#;
        assert!(!parse_manifest(&format!("{{{base}}}")).unwrap().allows_concurrent_calls());
        assert!(parse_manifest(&format!("{{{base},\"concurrent_calls\":true}}")).unwrap().allows_concurrent_calls());
        assert!(!parse_manifest(&format!("{{{base},\"concurrent_calls\":false}}")).unwrap().allows_concurrent_calls());
        let typo = parse_manifest(&format!("{{{base},\"concurent_calls\":true}}")).unwrap_err();
        assert!(typo.contains("concurent_calls"), "{typo}");
        let both = parse_manifest(&format!("{{{base},\"concurrent_calls\":true,\"only_if_text_contains\":[\"sk-\"]}}")).unwrap();
        assert!(both.allows_concurrent_calls());
        assert_eq!(both.text_triggers(), Some(vec!["sk-".to_owned()]));
        assert_eq!(parse_manifest(&format!("{{{base}}}")).unwrap().text_triggers(), None);
    }
}
