//! `chronicle install` / `chronicle uninstall`: wire `chronicle hook` into Claude Code's
//! settings (merging, with a backup, idempotently) and put the built-in plugins in the user
//! plugin directory.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chronicle::config::Config;
use chronicle::events::{EVENTS, BlockStyle};
use chronicle::settings::{self, Registration};

use super::demo::{builtin_plugin_source, lib_file, BUILTIN_LIBS};

/// Which settings file: `--settings`, else the project's or the user's.
pub fn settings_path(project: bool, explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    if project {
        let dir = std::env::var_os("CLAUDE_PROJECT_DIR").map(PathBuf::from).map_or_else(std::env::current_dir, Ok)?;
        return Ok(dir.join(".claude").join("settings.json"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set: pass --settings")?;
    Ok(PathBuf::from(home).join(".claude").join("settings.json"))
}

fn read_settings(path: &Path) -> anyhow::Result<(String, serde_json::Value)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value = settings::parse(&text, &path.display().to_string())?;
    Ok((text, value))
}

/// Writes `text` to `path` atomically; the old file (if any) is first copied to a timestamped backup.
fn write_with_backup(path: &Path, old: &str, text: &str) -> anyhow::Result<Option<PathBuf>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let backup = if path.exists() {
        let stamp = chronicle::store::read::rfc3339(chronicle::clock::unix_ns()).replace([':', '.'], "-");
        let b = path.with_file_name(format!("{}.chronicle-backup-{stamp}", path.file_name().and_then(|n| n.to_str()).unwrap_or("settings.json")));
        std::fs::write(&b, old).with_context(|| format!("cannot write the backup {}", b.display()))?;
        Some(b)
    } else {
        None
    };
    atomic_write(path, text.as_bytes(), None)?;
    Ok(backup)
}

/// Write-then-rename: a reader (or a running Claude Code, or a process that has the old
/// plugin mapped) never sees a half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: Option<u32>) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("file"), std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if let Some(m) = mode {
        opts.mode(m);
    }
    let mut f = opts.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Events some installed plugin can answer (it subscribes, and the event takes an answer).
fn answerable_events(config: &Config) -> BTreeSet<String> {
    let quiet = chronicle::output::Output::divert().ok();
    let (candidates, _) = chronicle::plugin::discover(&config.plugin_dirs);
    let mut events = BTreeSet::new();
    for c in candidates {
        if let Ok(p) = chronicle::plugin::load(&c.path) {
            for spec in EVENTS {
                if p.info.subscribes_to(spec.name) && (spec.block != BlockStyle::Never || spec.context) {
                    events.insert(spec.name.to_owned());
                }
            }
        }
    }
    if let Some(q) = quiet {
        q.restore();
    }
    events
}

fn install_plugins(config: &Config, dry_run: bool, out: &mut String) -> anyhow::Result<()> {
    let Some(source) = builtin_plugin_source(config) else {
        bail!("the built-in plugins are not next to this binary: build them with `cargo build --release --workspace` first");
    };
    let dest = config.user_plugin_dir();
    if source == dest {
        out.push_str(&format!("built-in plugins: already in {}\n", dest.display()));
        return Ok(());
    }
    if !dry_run {
        chronicle::store::create_private_dir(&dest)?;
    }
    for lib in BUILTIN_LIBS {
        let from = source.join(lib_file(lib));
        let to = dest.join(lib_file(lib));
        let new = std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
        if std::fs::read(&to).is_ok_and(|old| old == new) {
            continue;
        }
        if !dry_run {
            // Never overwrite a library in place: a running hook may have it mapped.
            atomic_write(&to, &new, Some(0o644))?;
        }
        out.push_str(&format!("{} plugin {}\n", if dry_run { "would install" } else { "installed" }, to.display()));
    }
    Ok(())
}

pub fn install(config: &Config, project: bool, explicit: Option<PathBuf>, dry_run: bool, no_plugins: bool) -> anyhow::Result<ExitCode> {
    let path = settings_path(project, explicit)?;
    let (old_text, old) = read_settings(&path)?;
    let mut out = String::new();
    if !no_plugins {
        install_plugins(config, dry_run, &mut out)?;
    }
    // Claude Code runs the small client; it needs chronicle-host beside it.
    let exe = chronicle::resident::sibling(chronicle::resident::CLIENT_BIN);
    let exe = exe.canonicalize().with_context(|| format!("{} is missing: install `chronicle` and `chronicle-host` side by side", exe.display()))?;
    let answerable = answerable_events(config);
    let regs: Vec<Registration> = EVENTS
        .iter()
        .map(|spec| Registration {
            event: spec,
            is_async: !answerable.contains(spec.name),
            timeout_secs: if spec.name == "SessionEnd" { 2 } else { 30 },
        })
        .collect();
    let new = settings::install(&old, &exe.to_string_lossy(), &regs, &path.display().to_string())?;
    let new_text = settings::render(&new);
    let asyncs: Vec<&str> = regs.iter().filter(|r| r.is_async).map(|r| r.event.name).collect();
    if new == old {
        out.push_str(&format!("{}: already up to date ({} events)\n", path.display(), regs.len()));
    } else if dry_run {
        out.push_str(&settings::diff(&old_text, &new_text, &path.display().to_string()));
    } else {
        let backup = write_with_backup(&path, &old_text, &new_text)?;
        out.push_str(&format!("registered `{} hook` for {} events in {}\n", exe.display(), regs.len(), path.display()));
        if let Some(b) = backup {
            out.push_str(&format!("backup of the previous file: {}\n", b.display()));
        }
    }
    out.push_str(&format!(
        "{} events are registered with \"async\": true because no installed plugin can answer them (Claude Code will not wait): {}\n",
        asyncs.len(),
        asyncs.join(", ")
    ));
    super::show::out(&out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(project: bool, explicit: Option<PathBuf>, dry_run: bool) -> anyhow::Result<ExitCode> {
    let path = settings_path(project, explicit)?;
    if !path.exists() {
        super::show::out(&format!("{}: nothing to remove (no such file)\n", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let (old_text, old) = read_settings(&path)?;
    let new = settings::uninstall(&old);
    let out = if new == old {
        format!("{}: no chronicle hooks registered\n", path.display())
    } else if dry_run {
        settings::diff(&old_text, &settings::render(&new), &path.display().to_string())
    } else {
        let backup = write_with_backup(&path, &old_text, &settings::render(&new))?;
        format!(
            "removed chronicle's hooks from {}{}\n(the plugins and the database are left in place)\n",
            path.display(),
            backup.map(|b| format!("; backup: {}", b.display())).unwrap_or_default()
        )
    };
    super::show::out(&out)?;
    Ok(ExitCode::SUCCESS)
}
