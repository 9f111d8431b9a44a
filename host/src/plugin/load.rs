//! `dlopen` one plugin file and find out what it is.
//!
//! Each file is loaded on its own with `RawLibrary` + `lib_header_from_raw_library`:
//! `RootModule::load_from_file` caches the first module it loads and silently returns it for
//! every later file. abi_stable's incompatibility reports run to several kilobytes; they are
//! condensed here to one line naming the plugin, the versions and what to do.

use std::path::Path;

use abi_stable::library::{lib_header_from_raw_library, LibraryError, RawLibrary, RootModule};
use abi_stable::std_types::RStr;
use chronicle_plugin_api::abi::PluginModuleRef;
use chronicle_plugin_api::{Manifest, Outcome};

use super::{cabi, validate_manifest, Built, CallResult, Fault, LoadedPlugin, PluginInfo};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Refused(String),
}

pub(super) enum Backend {
    Abi(PluginModuleRef),
    C(cabi::CPlugin),
}

impl Backend {
    pub(super) fn init(&self, config_json: &str) -> Result<(), String> {
        match self {
            Backend::Abi(m) => {
                let err = (m.init())(RStr::from_str(config_json));
                if err.is_empty() {
                    Ok(())
                } else {
                    Err(err.into_string())
                }
            }
            Backend::C(c) => c.init(config_json),
        }
    }

    pub(super) fn call(&self, event_json: &str) -> CallResult {
        match self {
            Backend::Abi(m) => {
                let raw = (m.handle())(RStr::from_str(event_json));
                let outcome = Outcome::from_raw(&raw).map_err(Fault::Garbage)?;
                match &outcome.error {
                    Some(e) if e.starts_with("panicked") => Err(Fault::Panicked(e.clone())),
                    Some(e) => Err(Fault::Error(e.clone())),
                    None => Ok(outcome),
                }
            }
            Backend::C(c) => c.call(event_json),
        }
    }
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// One line for an abi_stable load failure.
fn condense(path: &Path, err: &LibraryError) -> String {
    let file = file_label(path);
    let host = PluginModuleRef::VERSION_STRINGS.version;
    match err {
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "{file} was built against chronicle-plugin-api {actual_version}, this host needs {expected_version}-compatible: rebuild it against chronicle-plugin-api {host}"
        ),
        LibraryError::AbiInstability(_) => format!(
            "{file} has a plugin ABI layout that does not match chronicle-plugin-api {host} (built against an incompatible plugin-api): rebuild it against chronicle-plugin-api {host}"
        ),
        LibraryError::InvalidAbiHeader(h) => format!(
            "{file} was built with an incompatible abi_stable (header {}.{}): rebuild it against chronicle-plugin-api {host}",
            h.abi_major, h.abi_minor
        ),
        LibraryError::RootModule { err, .. } => {
            let msg = err.to_string();
            format!("{file}: its root module failed to initialise: {}", msg.lines().next().unwrap_or(""))
        }
        other => {
            let msg = other.to_string();
            format!("{file}: {}", msg.lines().next().unwrap_or("").trim())
        }
    }
}

fn first_line(s: &str) -> String {
    let line = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    crate::payload::truncate_chars(line, 300).to_owned()
}

/// Whether [`load_with`] compares an abi_stable plugin's root-module layout with the one this
/// host expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Compare them: abi_stable walks every type the root module reaches (70-135 µs per plugin
    /// here, on the path of a process that handles one event).
    Check,
    /// This very file passed this very host build's comparison before (the plugin index says
    /// so, naming [`layout_checker`]): only the version is checked (8-10 µs).
    CheckedBefore,
}

/// The host build an index entry names when it says a file's layout was checked: the version
/// with its commit, and the plugin ABI's version. None for a build that cannot tell itself
/// apart from another (no commit known): it checks every time.
pub fn layout_checker() -> Option<&'static str> {
    static CHECKER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    CHECKER
        .get_or_init(|| {
            (!crate::VERSION.contains("commit unknown"))
                .then(|| format!("{} abi {}", crate::VERSION, chronicle_plugin_api::abi::ABI_VERSION))
        })
        .as_deref()
}

/// Loads `path` and reads its manifest, checking its layout. The library stays mapped for the
/// life of the process (unloading Rust code with thread-locals or leaked statics is a known
/// crash source).
pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
    load_with(path, Layout::Check)
}

/// [`load`], with the layout comparison as `layout` says.
pub fn load_with(path: &Path, layout: Layout) -> Result<LoadedPlugin, LoadError> {
    // The dynamic loader maps what the headers promise: a file cut short (caught mid-copy)
    // would be mapped past its end and kill the process with SIGBUS on first touch.
    complete_elf(path).map_err(|why| LoadError::Refused(format!("{}: {why}", file_label(path))))?;
    let raw = RawLibrary::load_at(path)
        .map_err(|e| LoadError::Refused(format!("{}: not a loadable library: {}", file_label(path), first_line(&open_error_text(&e)))))?;
    // SAFETY: the header is only used while the library stays loaded, which is forever (below).
    let loaded = match unsafe { lib_header_from_raw_library(&raw) } {
        Ok(header) => {
            let module = match layout {
                Layout::Check => header.init_root_module::<PluginModuleRef>(),
                // SAFETY: this file passed this host build's layout check before (see `Layout`).
                Layout::CheckedBefore => unsafe { header.init_root_module_with_unchecked_layout::<PluginModuleRef>() },
            }
            .map_err(|e| LoadError::Refused(condense(path, &e)))?;
            let manifest = Manifest::from_raw(&(module.manifest())())
                .map_err(|e| LoadError::Refused(format!("{}: bad manifest: {e}", file_label(path))))?;
            validate_manifest(&manifest, Built::Rust).map_err(LoadError::Refused)?;
            LoadedPlugin {
                path: path.to_owned(),
                info: PluginInfo::from_manifest(&manifest, "abi_stable"),
                backend: Backend::Abi(module),
                layout_checked: layout == Layout::Check,
                initialised: Default::default(),
                turn: Default::default(),
                calls: Default::default(),
            }
        }
        Err(LibraryError::GetSymbolError { .. }) => match cabi::CPlugin::find(&raw) {
            Ok(Some(c)) => {
                let manifest = c.manifest().map_err(|e| LoadError::Refused(format!("{}: bad C manifest: {e}", file_label(path))))?;
                validate_manifest(&manifest, Built::C).map_err(LoadError::Refused)?;
                LoadedPlugin {
                    path: path.to_owned(),
                    info: PluginInfo::from_manifest(&manifest, "c"),
                    backend: Backend::C(c),
                    layout_checked: false,
                    initialised: Default::default(),
                    turn: Default::default(),
                    calls: Default::default(),
                }
            }
            Err(missing) => return Err(LoadError::Refused(format!("{}: {missing}", file_label(path)))),
            Ok(None) => {
                return Err(LoadError::Refused(format!(
                    "{}: not a Chronicle plugin (no abi_stable root module and no chronicle_plugin_manifest symbol); build it with chronicle-plugin-api's export_plugin! or plugin-api/include/chronicle_plugin.h",
                    file_label(path)
                )))
            }
        },
        Err(e) => return Err(LoadError::Refused(condense(path, &e))),
    };
    std::mem::forget(raw);
    Ok(loaded)
}

/// One program header of an ELF file: its type and where its file bytes end.
pub struct Segment {
    pub kind: u32,
    pub file_end: u64,
}

/// ELF program header types read here.
pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;

/// The program headers of a 64-bit ELF file, after checking that the program and section
/// header tables fit inside it; with the file's size.
pub fn elf_segments(path: &Path) -> Result<(Vec<Segment>, u64), String> {
    use std::io::{Read, Seek};
    let size = std::fs::metadata(path).map_err(|e| format!("cannot stat: {e}"))?.len();
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let n = f.read(&mut head).map_err(|e| format!("cannot read: {e}"))?;
    if n < 64 || head[..4] != *b"\x7fELF" {
        return Err(format!("not an ELF shared object ({size} bytes); a plugin is a .{} built as a cdylib", super::LIBRARY_EXTENSION));
    }
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return Err("not an ELF shared object (unknown byte order)".into()),
    };
    if head[4] != 2 {
        return Err("a 32-bit ELF file; this host loads 64-bit plugins".into());
    }
    let u16_at = |b: &[u8], at: usize| {
        let v = [b[at], b[at + 1]];
        u64::from(if little { u16::from_le_bytes(v) } else { u16::from_be_bytes(v) })
    };
    let u32_at = |b: &[u8], at: usize| {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let u64_at = |b: &[u8], at: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        if little {
            u64::from_le_bytes(v)
        } else {
            u64::from_be_bytes(v)
        }
    };
    let (phoff, shoff) = (u64_at(&head, 32), u64_at(&head, 40));
    let (phentsize, phnum, shentsize, shnum) = (u16_at(&head, 54), u16_at(&head, 56), u16_at(&head, 58), u16_at(&head, 60));
    let ph_end = phoff.saturating_add(phentsize.saturating_mul(phnum));
    if ph_end > size {
        return Err(cut(size, "program headers", ph_end));
    }
    let sh_end = shoff.saturating_add(shentsize.saturating_mul(shnum));
    if sh_end > size {
        return Err(cut(size, "section headers", sh_end));
    }
    if phentsize < 56 {
        return Err("not an ELF shared object (bad program header size)".into());
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    f.seek(std::io::SeekFrom::Start(phoff))
        .and_then(|_| f.read_exact(&mut table))
        .map_err(|e| format!("cannot read its program headers: {e}"))?;
    let segments = table
        .chunks_exact(phentsize as usize)
        .map(|ph| Segment { kind: u32_at(ph, 0), file_end: u64_at(ph, 8).saturating_add(u64_at(ph, 32)) });
    Ok((segments.collect(), size))
}

fn cut(size: u64, what: &str, end: u64) -> String {
    format!("incomplete file: its {what} end at byte {end} but the file has {size} (still being copied? install plugins with `chronicle plugins install`)")
}

/// Checks that `path` is an ELF shared object whose headers fit inside the file: every loadable
/// segment's file bytes, the program headers and the section headers. Not a full validation
/// (the loader does that); what the loader would otherwise discover by faulting.
pub fn complete_elf(path: &Path) -> Result<(), String> {
    let (segments, size) = elf_segments(path)?;
    match segments.iter().find(|s| s.kind == PT_LOAD && s.file_end > size) {
        Some(s) => Err(cut(size, "loadable segments", s.file_end)),
        None => Ok(()),
    }
}

fn open_error_text(e: &LibraryError) -> String {
    match e {
        // dlerror() repeats the path; the caller already names the file.
        LibraryError::OpenError { err, path } => {
            let text = err.to_string();
            let p = format!("{}: ", path.display());
            match text.find(&p) {
                Some(i) => text[i + p.len()..].to_owned(),
                None => text,
            }
        }
        other => other.to_string(),
    }
}
