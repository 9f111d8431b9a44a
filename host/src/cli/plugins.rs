//! `chronicle plugins list` and `chronicle plugins check`.

use std::path::Path;
use std::process::ExitCode;

use chronicle::config::Config;
use chronicle::plugin;
use serde_json::json;

use super::table::Table;

/// One plugin file as `plugins list` reports it.
fn describe(path: &Path, refused: Option<&str>) -> serde_json::Value {
    if let Some(reason) = refused {
        return json!({"path": path, "status": "refused", "reason": reason});
    }
    match plugin::load(path) {
        Ok(p) => json!({
            "path": path,
            "status": "ok",
            "name": p.info.name,
            "version": p.info.version,
            "abi": p.info.abi,
            "abi_version": p.info.abi_version,
            "events": p.info.events,
            "tool_matcher": p.info.tool_matcher,
            "timeout_ms": p.info.timeout_ms,
            "failure_policy": p.info.failure_policy,
            "cache_ttl_ms": p.info.cache_ttl_ms,
        }),
        Err(e) => json!({"path": path, "status": "refused", "reason": e.to_string()}),
    }
}

pub fn list(config: &Config, json_out: bool) -> anyhow::Result<ExitCode> {
    // Plugins may print while loading; keep our own stdout clean for the listing.
    let output = chronicle::output::Output::divert().ok();
    let (candidates, refusals) = plugin::discover(&config.plugin_dirs);
    let mut all: Vec<serde_json::Value> = Vec::new();
    for c in &candidates {
        all.push(describe(&c.path, None));
    }
    for r in &refusals {
        all.push(describe(&r.path, Some(&r.reason)));
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
        ]);
        for v in &all {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            let events = v["events"].as_array().map(|e| e.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(",")).unwrap_or_default();
            let detail = if s("status") == "ok" { s("path") } else { format!("{}: {}", s("path"), s("reason")) };
            t.row(vec![s("name"), s("version"), s("abi"), events, s("status"), detail]);
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

pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let output = chronicle::output::Output::divert().ok();
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
        match plugin::load(file) {
            Ok(p) => Ok(format!(
                "{} loads: {} {} ({} ABI {}), events {}, matcher {}, timeout {}, fail-{}",
                file.display(),
                p.info.name,
                p.info.version,
                p.info.abi,
                p.info.abi_version,
                p.info.events.join(","),
                p.info.tool_matcher.as_deref().unwrap_or("*"),
                p.info.timeout_ms.map_or("host default".to_owned(), |t| format!("{t} ms")),
                p.info.failure_policy
            )),
            Err(e) => Err(e.to_string()),
        }
    };
    let (text, code) = match verdict {
        Ok(msg) => (format!("ok: {msg}\n"), ExitCode::SUCCESS),
        Err(reason) => (format!("refused: {reason}\n"), ExitCode::from(1)),
    };
    match output {
        Some(o) => o.write_answer(text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(code)
}
