//! `chronicle install` / `chronicle uninstall`: wire `chronicle hook` into Claude Code's
//! settings (merging, with a backup, idempotently) and put the built-in plugins in the user
//! plugin directory.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chronicle::config::Config;
use chronicle::events::{BlockStyle, EVENTS};
use chronicle::plugin::index::IndexEntry;
use chronicle::plugin::Candidate;
use chronicle::settings;

use super::demo::{builtin_plugin_source, lib_file, BUILTIN_LIBS};

/// Which settings file to change (see [`settings_path`]).
pub struct Target {
    pub project: bool,
    pub settings: Option<PathBuf>,
}

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

/// Backups of one settings file kept; older ones are removed.
const BACKUPS_KEPT: usize = 5;

/// Writes `text` over the settings file at `path` the way its owner would want: through a
/// symlink (the link stays a link), keeping the file's mode, refusing a read-only file, after a
/// timestamped backup no more readable than the original; only the last [`BACKUPS_KEPT`]
/// backups are kept.
fn write_with_backup(path: &Path, old: &str, text: &str) -> anyhow::Result<Option<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    // A symlinked settings file (dotfiles repositories do this) is written where it points.
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => path.canonicalize().with_context(|| format!("{} is a dangling symlink", path.display()))?,
        _ => path.to_path_buf(),
    };
    let mode = match std::fs::metadata(&target) {
        Ok(m) => {
            let mode = m.permissions().mode() & 0o7777;
            if mode & 0o200 == 0 {
                bail!(
                    "{} is read-only (mode {mode:o}); nothing was written. Make it writable (`chmod u+w`) or pass --settings",
                    path.display()
                );
            }
            Some(mode)
        }
        Err(_) => None,
    };
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file_name = target.file_name().and_then(|n| n.to_str()).unwrap_or("settings.json").to_owned();
    let backup = match mode {
        Some(mode) => {
            let stamp = chronicle::store::read::rfc3339(chronicle::clock::unix_ns()).replace([':', '.'], "-");
            let b = target.with_file_name(format!("{file_name}.chronicle-backup-{stamp}"));
            atomic_write(&b, old.as_bytes(), Some(mode)).with_context(|| format!("cannot write the backup {}", b.display()))?;
            prune_backups(&target, &file_name);
            Some(b)
        }
        None => None,
    };
    atomic_write(&target, text.as_bytes(), Some(mode.unwrap_or(0o644)))?;
    Ok(backup)
}

/// Removes all but the newest [`BACKUPS_KEPT`] backups of a settings file (their names sort by
/// time).
fn prune_backups(target: &Path, file_name: &str) {
    let Some(dir) = target.parent() else { return };
    let prefix = format!("{file_name}.chronicle-backup-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut backups: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)))
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(BACKUPS_KEPT);
    for old in &backups[..excess] {
        let _ = std::fs::remove_file(old);
    }
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
    if let Some(m) = mode {
        // The umask may have narrowed the mode asked for; the file gets exactly it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// What the installed plugins (and the built-ins `install` is about to copy, `extra`) subscribe
/// to: events some plugin can answer (it subscribes, and the event takes an answer), and
/// events some plugin names in its manifest (not through `*`).
pub fn plugin_subscriptions(config: &Config, extra: &[PathBuf]) -> Subscriptions {
    let (candidates, _) = chronicle::plugin::discover(&config.plugin_dirs);
    let mut found = Subscriptions::default();
    let files = candidates.into_iter().map(|c| (c.path.clone(), Some(c))).chain(extra.iter().map(|p| (p.clone(), None)));
    for (file, candidate) in files {
        if let Ok(probed) = super::plugins::probe(&file) {
            let info = &probed.info;
            for spec in EVENTS {
                if info.subscribes_to(spec.name) && answers(spec) {
                    found.answerable.insert(spec.name.to_owned());
                }
            }
            found.named.extend(info.events.iter().filter(|e| *e != "*").cloned());
            if let Some(c) = candidate {
                found.probed.push((c, probed));
            }
        }
    }
    found
}

/// What the installed plugins subscribe to (see [`plugin_subscriptions`]).
#[derive(Default)]
pub struct Subscriptions {
    /// Events some plugin can answer.
    pub answerable: BTreeSet<String>,
    /// Events some plugin names in its manifest.
    pub named: BTreeSet<String>,
    /// The installed plugin files that loaded, as found, with their manifests.
    pub probed: Vec<(Candidate, super::plugins::Probed)>,
}

/// Readies the configuration's first hook event: the database exists, and the plugin index
/// knows the manifest of every installed plugin that loaded in its probe. Without an index
/// entry, the first event loads every plugin to learn what it subscribes to (1.6 ms for the
/// four built-ins), and without a database it builds one. Entries the index already has for a
/// file as it is now are kept (they may say it is quarantined or suspended).
fn prepare_first_event(config: &Config, probed: &[(Candidate, super::plugins::Probed)], out: &mut String) {
    // Another user's data directory: nothing is created in it (the hook refuses it too).
    if config.data_dir.exists() && chronicle::private::check_ours(&config.data_dir).is_err() {
        return;
    }
    if !config.db_path.exists() {
        match chronicle::store::Store::open(&config.db_path) {
            Ok(_) => out.push_str(&format!("created the database {}\n", config.db_path.display())),
            Err(e) => out.push_str(&format!("the database could not be created yet ({e}); the first event tries again\n")),
        }
    }
    let index_file = chronicle::plugin::index::path(&config.data_dir);
    let known = chronicle::plugin::index::load(&index_file);
    let new: Vec<IndexEntry> = probed
        .iter()
        .filter(|(c, _)| chronicle::plugin::index::fresh(&known, c).is_none())
        // The probe ran this build: its layout check holds for the hooks it installs.
        .map(|(c, p)| IndexEntry::for_candidate(c, Some(p.info.clone()), None).with_layout_checked(p.layout_checked))
        .collect();
    if !new.is_empty() {
        if let Err(e) = chronicle::plugin::index::update(&index_file, &new) {
            out.push_str(&format!("cannot write the plugin index {} ({e}); the first event loads every plugin\n", index_file.display()));
        }
    }
}

/// Whether a hook's answer to this event can change anything (block, or add context).
pub fn answers(spec: &chronicle::events::EventSpec) -> bool {
    spec.block != BlockStyle::Never || spec.context
}

/// The built-in plugin files `install` copies (to count them before they are copied).
fn builtin_files(config: &Config) -> Vec<PathBuf> {
    builtin_plugin_source(config).map(|dir| BUILTIN_LIBS.iter().map(|lib| dir.join(lib_file(lib))).collect()).unwrap_or_default()
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
        chronicle::private::create_private_dir(&dest)?;
    }
    for lib in BUILTIN_LIBS {
        copy_in(&source.join(lib_file(lib)), &dest.join(lib_file(lib)), 0o644, dry_run, "plugin ", out)?;
    }
    Ok(())
}

/// Copies `from` to `to` unless it holds the same bytes, by write-then-rename: never in place,
/// since a running hook may have the old file mapped or be about to exec it. Says what it did.
fn copy_in(from: &Path, to: &Path, mode: u32, dry_run: bool, what: &str, out: &mut String) -> anyhow::Result<()> {
    let new = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    if std::fs::read(to).is_ok_and(|old| old == new) {
        return Ok(());
    }
    if !dry_run {
        atomic_write(to, &new, Some(mode))?;
    }
    out.push_str(&format!("{} {what}{}\n", if dry_run { "would install" } else { "installed" }, to.display()));
    Ok(())
}

/// Where `install` puts the binaries it registers: owned by Chronicle, not the build tree, so
/// that `cargo clean` or a rebuild never turns the guards off or swaps files under a session.
pub fn bin_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("bin")
}

/// Copies `chronicle` and `chronicle-host` from beside this binary into [`bin_dir`] (each by
/// write-then-rename: a running hook keeps the file it started from, a new one gets a complete
/// file) and returns the client to register.
fn install_binaries(config: &Config, dry_run: bool, out: &mut String) -> anyhow::Result<PathBuf> {
    use chronicle::resident::{sibling, CLIENT_BIN, HOST_BIN};
    let dest = bin_dir(&config.data_dir);
    let client = sibling(CLIENT_BIN);
    let source = client
        .canonicalize()
        .with_context(|| format!("{} is missing: install `chronicle` and `chronicle-host` side by side", client.display()))?;
    let source_dir = source.parent().map(Path::to_path_buf).unwrap_or_default();
    if dest.canonicalize().is_ok_and(|d| d == source_dir) {
        return Ok(source);
    }
    if !dry_run {
        chronicle::private::create_private_dir(&dest)?;
    }
    for name in [CLIENT_BIN, HOST_BIN] {
        copy_in(&source_dir.join(name), &dest.join(name), 0o755, dry_run, "", out)?;
    }
    Ok(dest.join(CLIENT_BIN))
}

pub fn install(config: &Config, project: bool, explicit: Option<PathBuf>, dry_run: bool, no_plugins: bool) -> anyhow::Result<ExitCode> {
    let path = settings_path(project, explicit)?;
    let (old_text, old) = read_settings(&path)?;
    let mut out = String::new();
    if !no_plugins {
        install_plugins(config, dry_run, &mut out)?;
    }
    // Claude Code runs the small client, from a copy Chronicle owns, with chronicle-host beside it.
    let exe = install_binaries(config, dry_run, &mut out)?;
    // The dry run must show what install writes: count the built-ins it is about to copy.
    let extra = if no_plugins || !dry_run { Vec::new() } else { builtin_files(config) };
    let Subscriptions { answerable, named, probed } = plugin_subscriptions(config, &extra);
    let plan = settings::plan(&answerable, &named);
    let new = settings::install(&old, &exe.to_string_lossy(), &plan.regs, &path.display().to_string())?;
    // Registrations of events no longer in the plan (a WorktreeCreate from an older install).
    let new = settings::unregister(&new, &plan.skipped.iter().map(|(e, _)| *e).collect::<Vec<_>>());
    let new_text = settings::render_edit(&old_text, &new);
    let asyncs: Vec<&str> = plan.regs.iter().filter(|r| r.is_async).map(|r| r.event.name).collect();
    if new == old {
        out.push_str(&format!("{}: already up to date ({} events)\n", path.display(), plan.regs.len()));
    } else if dry_run {
        out.push_str(&settings::diff(&old_text, &new_text, &path.display().to_string()));
    } else {
        let backup = write_with_backup(&path, &old_text, &new_text)?;
        out.push_str(&format!("registered `{} hook` for {} events in {}\n", exe.display(), plan.regs.len(), path.display()));
        if let Some(b) = backup {
            out.push_str(&format!("backup of the previous file: {}\n", b.display()));
        }
    }
    out.push_str(&format!(
        "{} events {} registered with \"async\": true because no installed plugin can answer them (Claude Code need not wait): {}\n",
        asyncs.len(),
        if dry_run { "would be" } else { "are" },
        asyncs.join(", ")
    ));
    let waited: Vec<&str> = plan.regs.iter().filter(|r| !r.is_async && !answerable.contains(r.event.name)).map(|r| r.event.name).collect();
    if !waited.is_empty() {
        out.push_str(&format!(
            "waited for although no plugin answers them: {} (Claude Code waits for MessageDisplay anyway, and cancels async hooks still running when a session ends)\n",
            waited.join(", ")
        ));
    }
    for (event, why) in &plan.skipped {
        out.push_str(&format!("not registered: {event}: {why}\n"));
    }
    if !dry_run {
        prepare_first_event(config, &probed, &mut out);
    }
    super::show::out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `data_dir`: where `install` put the binaries (None: the configuration cannot say).
pub fn uninstall(data_dir: Option<&Path>, project: bool, explicit: Option<PathBuf>, dry_run: bool) -> anyhow::Result<ExitCode> {
    let path = settings_path(project, explicit)?;
    let binaries = match data_dir {
        Some(d) => remove_binaries(d, &path, project, dry_run)?,
        None => String::new(),
    };
    if !path.exists() {
        super::show::out(&format!("{binaries}{}: nothing to remove (no such file)\n", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let (old_text, old) = read_settings(&path)?;
    let new = settings::uninstall(&old);
    let out = if new == old {
        format!("{}: no chronicle hooks registered\n", path.display())
    } else if dry_run {
        settings::diff(&old_text, &settings::render_edit(&old_text, &new), &path.display().to_string())
    } else {
        let backup = write_with_backup(&path, &old_text, &settings::render_edit(&old_text, &new))?;
        format!(
            "removed chronicle's hooks from {}{}\n(the plugins and the database are left in place)\n",
            path.display(),
            backup.map(|b| format!("; backup: {}", b.display())).unwrap_or_default()
        )
    };
    super::show::out(&format!("{binaries}{out}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Removes the binaries `install` copied, unless the other settings file (user or project) still
/// registers them. Says what it did.
fn remove_binaries(data_dir: &Path, path: &Path, project: bool, dry_run: bool) -> anyhow::Result<String> {
    use chronicle::resident::{CLIENT_BIN, HOST_BIN};
    let dir = bin_dir(data_dir);
    let client = dir.join(CLIENT_BIN);
    if !client.exists() {
        return Ok(String::new());
    }
    let other = settings_path(!project, None).ok().filter(|o| o != path);
    let still_used = other.and_then(|o| std::fs::read_to_string(o).ok()).is_some_and(|t| t.contains(&*client.to_string_lossy()));
    if still_used {
        return Ok(format!("kept {} (the {} settings still register it)\n", dir.display(), if project { "user" } else { "project" }));
    }
    if !dry_run {
        for name in [CLIENT_BIN, HOST_BIN] {
            let f = dir.join(name);
            if let Err(e) = std::fs::remove_file(&f) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e).with_context(|| format!("cannot remove {}", f.display()));
                }
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(format!("{} {}\n", if dry_run { "would remove" } else { "removed" }, dir.display()))
}
