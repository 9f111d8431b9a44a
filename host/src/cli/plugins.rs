//! `chronicle plugins list`, `check` and `install`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chronicle::config::Config;
use chronicle::plugin;
use chronicle::store::read::FaultInfo;
use serde_json::json;

use super::table::Table;

/// What a probe learned of a plugin file.
pub struct Probed {
    pub info: plugin::PluginInfo,
    /// Its layout passed this build's comparison (an abi_stable plugin; see `plugin::Layout`).
    pub layout_checked: bool,
}

/// Loads `path` in a child process (`chronicle-host plugins probe FILE`) and returns its
/// manifest: a library whose loading crashes (a constructor that segfaults) costs the child,
/// never the command that asked.
pub fn probe(path: &Path) -> Result<Probed, String> {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find chronicle-host: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(["plugins", "probe"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run chronicle-host to load it: {e}"))?;
    if let Some(signal) = out.status.signal() {
        return Err(format!(
            "{}: loading it killed the process with {} ({signal}); remove the file or replace it with a fixed build",
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            plugin::inflight::signal_name(signal)
        ));
    }
    match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        Ok(v) if v.get("info").is_some() => Ok(Probed {
            info: serde_json::from_value(v["info"].clone()).map_err(|e| format!("bad probe answer: {e}"))?,
            layout_checked: v["layout_checked"].as_bool().unwrap_or(false),
        }),
        Ok(v) => Err(v["error"].as_str().unwrap_or("the probe said nothing").to_owned()),
        Err(_) => Err(format!("loading it ended the process (status {})", out.status)),
    }
}

/// `plugins probe FILE` (internal): loads FILE here and prints its manifest or why it does not
/// load, as one JSON object.
pub fn probe_here(file: &Path) -> anyhow::Result<ExitCode> {
    let output = chronicle::output::Output::divert().ok();
    let answer = match plugin::load(file) {
        Ok(p) => json!({"info": p.info, "layout_checked": p.layout_checked}),
        Err(e) => json!({"error": e.to_string()}),
    };
    let text = format!("{answer}\n");
    match output {
        Some(o) => o.write_answer(text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The last recorded fault of each plugin file (empty when there is no database yet).
pub fn last_faults(config: &Config) -> HashMap<String, FaultInfo> {
    chronicle::store::Store::open_existing(&config.db_path).and_then(|s| s.last_faults()).unwrap_or_default()
}

/// One line about a fault: kind, message, when.
pub fn fault_line(f: &FaultInfo) -> String {
    format!("{} at {}: {}", f.kind, f.at.as_deref().unwrap_or("?"), f.message)
}

/// One plugin file as `plugins list` reports it, with its last recorded fault. A quarantined
/// or suspended plugin is reported from the index, not loaded (loading may be what crashes).
fn describe(
    path: &Path,
    refused: Option<&str>,
    faults: &HashMap<String, FaultInfo>,
    index: &HashMap<String, plugin::index::IndexEntry>,
) -> serde_json::Value {
    let entry = plugin::Candidate::stat(path).and_then(|c| plugin::index::fresh(index, &c));
    let benched = entry.and_then(|e| e.benched(chronicle::clock::unix_ns()));
    let mut v = match (benched, refused) {
        (Some(fault), None) => {
            let info = entry.and_then(|e| e.info.as_ref());
            json!({"path": path, "status": fault.kind(), "reason": fault.message(), "name": info.map(|i| &i.name), "version": info.map(|i| &i.version),
                   "abi": info.map(|i| &i.abi), "events": info.map(|i| &i.events), "failure_policy": info.map(|i| &i.failure_policy)})
        }
        _ => describe_file(path, refused),
    };
    v["last_fault"] = faults.get(&path.to_string_lossy().into_owned()).map_or(serde_json::Value::Null, |f| json!(f));
    v
}

fn describe_file(path: &Path, refused: Option<&str>) -> serde_json::Value {
    if let Some(reason) = refused {
        return json!({"path": path, "status": "refused", "reason": reason});
    }
    match probe(path).map(|p| p.info) {
        Ok(info) => json!({
            "path": path,
            "status": "ok",
            "name": info.name,
            "version": info.version,
            "abi": info.abi,
            "abi_version": info.abi_version,
            "events": info.events,
            "tool_matcher": info.tool_matcher,
            "timeout_ms": info.timeout_ms,
            "failure_policy": info.failure_policy,
            "cache_ttl_ms": info.cache_ttl_ms,
        }),
        Err(reason) => json!({"path": path, "status": "refused", "reason": reason}),
    }
}

pub fn list(config: &Config, json_out: bool) -> anyhow::Result<ExitCode> {
    // Plugins may print while loading; keep our own stdout clean for the listing.
    let output = chronicle::output::Output::divert().ok();
    let (candidates, refusals) = plugin::discover(&config.plugin_dirs);
    let faults = last_faults(config);
    let index = plugin::index::load(&plugin::index::path(&config.data_dir));
    let mut all: Vec<serde_json::Value> = Vec::new();
    for c in &candidates {
        all.push(describe(&c.path, None, &faults, &index));
    }
    for r in &refusals {
        all.push(describe(&r.path, Some(&r.reason), &faults, &index));
    }
    let text = if json_out {
        let mut s = String::new();
        for v in &all {
            s.push_str(&v.to_string());
            s.push('\n');
        }
        s
    } else {
        let mut t = Table::new(&[
            ("NAME", 20, false),
            ("VERSION", 10, false),
            ("ABI", 12, false),
            ("EVENTS", 40, false),
            ("STATUS", 8, false),
            ("PATH / REASON", 200, false),
            ("LAST FAULT", 200, false),
        ]);
        for v in &all {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            let events =
                v["events"].as_array().map(|e| e.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(",")).unwrap_or_default();
            let detail = if s("status") == "ok" { s("path") } else { format!("{}: {}", s("path"), s("reason")) };
            let fault = serde_json::from_value::<FaultInfo>(v["last_fault"].clone()).map(|f| fault_line(&f)).unwrap_or_default();
            t.row(vec![s("name"), s("version"), s("abi"), events, s("status"), detail, fault]);
        }
        let dirs: Vec<String> = config.plugin_dirs.iter().map(|d| d.display().to_string()).collect();
        format!("plugin path: {}\n{}", dirs.join(":"), t.render())
    };
    match output {
        Some(o) => o.write_answer(text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    let output = chronicle::output::Output::divert().ok();
    // `plugins check libx.so`: a bare name is a file in the current directory.
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let file = absolute.as_path();
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let (candidates, refusals) = plugin::discover(std::slice::from_ref(&dir));
    let verdict = if !file.exists() {
        Err(format!("{} does not exist", file.display()))
    } else if !plugin::is_library(file) {
        Err(format!("{} does not end in .{}: the host only considers such files", file.display(), plugin::LIBRARY_EXTENSION))
    } else if let Some(r) = refusals.iter().find(|r| r.path == file) {
        Err(r.reason.clone())
    } else if !candidates.iter().any(|c| c.path == file) {
        Err("not found in its directory listing".to_owned())
    } else {
        probe(file).map(|p| p.info).map(|info| {
            format!(
                "{} loads: {} {} ({} ABI {}), events {}, matcher {}, timeout {}, fail-{}",
                file.display(),
                info.name,
                info.version,
                info.abi,
                info.abi_version,
                info.events.join(","),
                info.tool_matcher.as_deref().unwrap_or("*"),
                info.timeout_ms.map_or("host default".to_owned(), |t| format!("{t} ms")),
                info.failure_policy
            )
        })
    };
    let (mut text, code) = match verdict {
        Ok(msg) => (format!("ok: {msg}\n"), ExitCode::SUCCESS),
        Err(reason) => (format!("refused: {reason}\n"), ExitCode::from(1)),
    };
    if let Some(f) = last_faults(config).get(&file.to_string_lossy().into_owned()) {
        text.push_str(&format!("last fault: {}\n", fault_line(f)));
    }
    match output {
        Some(o) => o.write_answer(text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(code)
}

/// `plugins install FILE`: checks that the file loads, copies it into the user plugin
/// directory by write-then-rename (a running host never maps a half-copied file), then
/// registers the hooks again so that every event it can answer is one Claude Code waits for.
pub fn install(config: &Config, file: &Path, target: super::install::Target) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let info = match probe(file).map(|p| p.info) {
        Ok(info) => info,
        Err(e) => {
            eprintln!("chronicle: {} is not a loadable plugin: {e}; nothing was installed", file.display());
            return Ok(ExitCode::from(1));
        }
    };
    let dest_dir = config.user_plugin_dir();
    chronicle::private::create_private_dir(&dest_dir)?;
    let name = file.file_name().context("the plugin file has no name")?;
    let dest: PathBuf = dest_dir.join(name);
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    super::install::atomic_write(&dest, &bytes, Some(0o644))?;
    super::show::out(&format!("installed plugin {} {} as {}\n", info.name, info.version, dest.display()))?;
    super::install::install(config, target.project, target.settings, false, true)
}
