//! `chronicle demo`: replays a bundled, realistic Claude Code session through `chronicle hook`
//! (one real process per event, exactly as Claude Code would run it) with the built-in plugins,
//! into a database of its own, then shows what was recorded and decided.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use chronicle::config::Config;
use chronicle::store::stats::{summarize, Window};
use chronicle::store::Store;

use super::table::{bold, decision, Table};

/// The session replayed by the demo (86 events: prompts, tool calls, subagents, compaction).
pub const SESSION: &str = include_str!("../../../tests/corpus/session.jsonl");

/// Built-in plugin library names.
pub const BUILTIN_LIBS: &[&str] = &["chronicle_bash_guard", "chronicle_file_guard", "chronicle_secret_guard", "chronicle_session_context"];

pub fn lib_file(name: &str) -> String {
    format!("{}{name}.{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_EXTENSION)
}

/// Where the built-in plugins are: this build's own (beside this executable, as `cargo build`
/// leaves them, or in `../lib/chronicle/plugins`, as the release tarball does), else the user's
/// plugin directory when `install` put them there. This build's first: installing a newer
/// build must copy its plugins, not find the old ones already installed.
pub fn builtin_plugin_source(config: &Config) -> Option<PathBuf> {
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let packaged = exe_dir.join("../lib/chronicle/plugins");
    [exe_dir, packaged, config.user_plugin_dir()].into_iter().find(|dir| BUILTIN_LIBS.iter().all(|l| dir.join(lib_file(l)).exists()))
}

fn copy_plugins(from: &Path, to: &Path) -> anyhow::Result<()> {
    chronicle::private::create_private_dir(to)?;
    for l in BUILTIN_LIBS {
        std::fs::copy(from.join(lib_file(l)), to.join(lib_file(l))).with_context(|| format!("copying {l}"))?;
    }
    Ok(())
}

pub fn run(config: &Config, db: Option<PathBuf>, keep: bool) -> anyhow::Result<ExitCode> {
    let Some(source) = builtin_plugin_source(config) else {
        bail!("the built-in plugins are neither installed nor built next to this binary: run `cargo build --release --workspace` or `chronicle install`");
    };
    // The demo's own home (data directory, plugin index, resident host, logs): nothing of the
    // user's installation is read or written, and its config file is an empty one.
    let work = tempfile::Builder::new().prefix("chronicle-demo-").permissions(std::fs::Permissions::from_mode(0o700)).tempdir()?;
    std::fs::write(work.path().join("config.toml"), "")?;
    let plugin_dir = work.path().join("plugins");
    copy_plugins(&source, &plugin_dir)?;
    let db = db.unwrap_or_else(|| work.path().join("chronicle.db"));
    if db.exists() {
        bail!("{} already exists: pass a new --db path (the demo never mixes its events into an existing database)", db.display());
    }
    // The hooks refuse a database in a directory others can write (they would spool the events
    // to the user's own data directory instead): say so before replaying anything.
    let parent = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    chronicle::private::check_ours(&parent).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow::anyhow!("cannot keep the demo database in {}: no such directory", parent.display()),
        _ => anyhow::anyhow!("cannot keep the demo database there: {e}"),
    })?;
    let exe = chronicle::resident::sibling(chronicle::resident::CLIENT_BIN);
    let lines: Vec<&str> = SESSION.lines().filter(|l| !l.trim().is_empty()).collect();

    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(lines.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("replaying {bar:40} {pos}/{len} events")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    // The user's CHRONICLE_* settings (a team database to push to, a data directory, ...) are
    // not the demo's.
    let users_settings: Vec<_> = std::env::vars_os().map(|(k, _)| k).filter(|k| k.to_string_lossy().starts_with("CHRONICLE_")).collect();
    let mut wall_ms = Vec::with_capacity(lines.len());
    for line in &lines {
        let started = Instant::now();
        let mut command = Command::new(&exe);
        for key in &users_settings {
            command.env_remove(key);
        }
        let mut child = command
            .arg("hook")
            .env("CHRONICLE_HOME", work.path())
            .env("CHRONICLE_DB", &db)
            .env("CHRONICLE_PLUGIN_PATH", &plugin_dir)
            // The demo's resident host leaves soon after the replay.
            .env("CHRONICLE_RESIDENT_IDLE_S", "2")
            .env_remove("CLAUDE_PROJECT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting `chronicle hook`")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(line.as_bytes())?;
        }
        child.wait()?;
        wall_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let store = Store::open_existing(&db)?;
    let stats = store.stats(&Window::default(), &config.file.thresholds)?;
    let mut out = String::new();
    let wall = summarize(wall_ms);
    out.push_str(&format!(
        "{} {} events replayed through `chronicle hook` with {} built-in plugins from {}\n",
        bold("Chronicle demo:"),
        lines.len(),
        BUILTIN_LIBS.len(),
        source.display()
    ));
    out.push_str(&format!(
        "whole process per event, as Claude Code waits for it: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (the Python original: ~370 ms)\n\n",
        wall.p50_ms, wall.p95_ms, wall.max_ms
    ));

    out.push_str(&format!("{}\n", bold("Events by type")));
    let mut t = Table::new(&[("EVENT", 24, false), ("COUNT", 6, true)]);
    let mut by_type: Vec<(&String, u64)> = stats.events.iter().map(|(k, v)| (k, v.count)).collect();
    by_type.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (k, n) in by_type {
        t.row(vec![k.clone(), n.to_string()]);
    }
    out.push_str(&t.render());

    out.push_str(&format!("\n{}\n", bold("Decisions taken, and why")));
    let decided = store
        .query_json("SELECT id, hook_event_name, tool_name, decision, answer FROM events WHERE decision <> 'none' ORDER BY id", &[])?;
    if decided.is_empty() {
        out.push_str("(none)\n");
    }
    for row in &decided {
        let answer: serde_json::Value = row["answer"].as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
        let reason = answer["hookSpecificOutput"]["permissionDecisionReason"].as_str().or(answer["reason"].as_str()).unwrap_or("");
        out.push_str(&format!(
            "  #{} {} {}: {} — {}\n",
            row["id"],
            row["hook_event_name"].as_str().unwrap_or(""),
            row["tool_name"].as_str().unwrap_or(""),
            decision(row["decision"].as_str().unwrap_or("")),
            reason
        ));
    }
    let context =
        store.query_json("SELECT answer FROM events WHERE hook_event_name = 'SessionStart' AND answer IS NOT NULL LIMIT 1", &[])?;
    if let Some(a) = context.first().and_then(|r| r["answer"].as_str()).and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()) {
        out.push_str(&format!("  SessionStart context: {}\n", a["hookSpecificOutput"]["additionalContext"].as_str().unwrap_or("")));
    }

    out.push_str(&format!("\n{}\n", bold("Slowest tool calls (PreToolUse → PostToolUse)")));
    let mut t = Table::new(&[("TOOL", 30, false), ("DURATION", 12, true), ("STATUS", 8, false)]);
    for r in store.query_json(
        "SELECT tool_name, duration_ms, status FROM tool_durations WHERE duration_ms IS NOT NULL ORDER BY duration_ms DESC LIMIT 5",
        &[],
    )? {
        t.row(vec![
            r["tool_name"].as_str().unwrap_or("").to_owned(),
            format!("{:.1} ms", r["duration_ms"].as_f64().unwrap_or(0.0)),
            r["status"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');
    out.push_str(&super::stats::render(&stats));

    if keep {
        let kept = work.keep();
        out.push_str(&format!(
            "\nKept: {}\nExplore it: CHRONICLE_DB={} chronicle events | chronicle stats | chronicle sessions\n",
            kept.display(),
            db.display()
        ));
    } else if db.starts_with(work.path()) {
        out.push_str("\n(the demo database was temporary; `chronicle demo --keep` or `--db FILE` keeps one to explore)\n");
    } else {
        out.push_str(&format!("\nDatabase: {}\n", db.display()));
    }
    super::show::out(&out)?;
    Ok(ExitCode::SUCCESS)
}
