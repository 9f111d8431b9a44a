//! `chronicle doctor`: one line per check, with the fix for each failure. Exit 1 if any fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chronicle::config::Config;
use chronicle::events::EVENTS;
use chronicle::store::Store;

use super::table::use_color;

#[derive(PartialEq)]
enum Status {
    Ok,
    Warn,
    Fail,
}

struct Report {
    lines: Vec<String>,
    failed: bool,
}

impl Report {
    fn add(&mut self, status: Status, check: &str, detail: impl Into<String>) {
        let (word, color) = match status {
            Status::Ok => ("ok  ", "32"),
            Status::Warn => ("warn", "33"),
            Status::Fail => ("FAIL", "31"),
        };
        if status == Status::Fail {
            self.failed = true;
        }
        let word = if use_color() { format!("\x1b[{color}m{word}\x1b[0m") } else { word.to_owned() };
        self.lines.push(format!("{word}  {check}: {}", detail.into()));
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// What the installed plugins need from the registration: the events they can answer and the
/// events they name.
struct Needs {
    answerable: std::collections::BTreeSet<String>,
    named: std::collections::BTreeSet<String>,
}

fn check_settings(r: &mut Report, label: &str, path: &Path, needs: &Needs) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(_) => {
            r.add(
                Status::Warn,
                label,
                format!(
                    "{} does not exist; run `chronicle install{}`",
                    path.display(),
                    if label.contains("project") { " --project" } else { "" }
                ),
            );
            return;
        }
    };
    let v = match chronicle::settings::parse(&text, &path.display().to_string()) {
        Ok(v) => v,
        Err(e) => {
            r.add(Status::Fail, label, e.to_string());
            return;
        }
    };
    let install_again = format!("run `chronicle install{}` again", if label.contains("project") { " --project" } else { "" });
    let plan = chronicle::settings::plan(&needs.answerable, &needs.named);
    let mut wired = Vec::new();
    let mut missing_binary = Vec::new();
    let mut unwaited = Vec::new();
    for spec in EVENTS {
        let handlers = v["hooks"][spec.name].as_array().into_iter().flatten().filter_map(|g| g["hooks"].as_array()).flatten();
        for h in handlers.filter(|h| chronicle::settings::is_ours(h)) {
            wired.push(spec.name);
            if h["async"] == true && needs.answerable.contains(spec.name) {
                unwaited.push(spec.name);
            }
            let cmd = h["command"].as_str().unwrap_or("");
            let cmd = cmd.split_whitespace().next().unwrap_or("");
            let exists = if cmd.contains('/') { Path::new(cmd).is_file() } else { on_path(cmd).is_some() };
            if !exists {
                missing_binary.push(cmd.to_owned());
            }
        }
    }
    missing_binary.sort();
    missing_binary.dedup();
    unwaited.dedup();
    let replacing: Vec<&str> = plan.skipped.iter().map(|(e, _)| *e).filter(|e| wired.contains(e)).collect();
    let expected: Vec<&str> = plan.regs.iter().map(|r| r.event.name).collect();
    if !missing_binary.is_empty() {
        r.add(
            Status::Fail,
            label,
            format!(
                "registered command {} does not exist (Claude Code would exit 127 and the guards would be silently off); {install_again}",
                missing_binary.join(", ")
            ),
        );
    } else if wired.is_empty() {
        r.add(Status::Warn, label, format!("{}: no chronicle hooks registered; run `chronicle install`", path.display()));
    } else if !unwaited.is_empty() {
        r.add(
            Status::Fail,
            label,
            format!("{} registered with \"async\": true although an installed plugin can answer (Claude Code does not wait for its deny); {install_again}", unwaited.join(", ")),
        );
    } else if !replacing.is_empty() {
        r.add(
            Status::Fail,
            label,
            format!("{} registered, but no plugin implements it: the hook replaces Claude Code's own handling (`claude --worktree` fails); {install_again}", replacing.join(", ")),
        );
    } else if expected.iter().any(|e| !wired.contains(e)) {
        let missing: Vec<&str> = expected.iter().copied().filter(|n| !wired.contains(n)).collect();
        let status = if missing.iter().any(|m| needs.answerable.contains(*m)) { Status::Fail } else { Status::Warn };
        r.add(
            status,
            label,
            format!(
                "{} of {} events wired; missing {}; {install_again}",
                expected.len() - missing.len(),
                expected.len(),
                missing.join(", ")
            ),
        );
    } else {
        r.add(
            Status::Ok,
            label,
            format!("{}: all {} events wired ({} left out on purpose)", path.display(), expected.len(), plan.skipped.len()),
        );
    }
}

/// The team sync's last outcome, from the status file its pushes leave (doctor does not connect).
fn sync_check(r: &mut Report, config: &Config) {
    if config.sync_url().is_none() {
        return;
    }
    use chronicle::team::background;
    let status = background::read_status(&config.data_dir);
    let through = status.as_ref().and_then(|s| s.pushed_through).unwrap_or(0);
    let waiting = Store::open_existing(&config.db_path)
        .and_then(|s| s.export_backlog([through, i64::MAX, i64::MAX, i64::MAX, i64::MAX]))
        .map_or_else(|_| "?".to_owned(), |b| b[0].to_string());
    match status {
        None => r.add(
            Status::Warn,
            "team sync",
            format!(
                "[sync] url is set but nothing has been pushed yet ({waiting} events wait); the resident host pushes every {} s, or run `chronicle sync`",
                config.file.sync.interval_s
            ),
        ),
        Some(s) if s.ok => r.add(
            Status::Ok,
            "team sync",
            format!("last push {} to {} as {:?} ({}); {waiting} events wait", s.at, s.target, s.machine, s.by),
        ),
        Some(s) => r.add(
            Status::Warn,
            "team sync",
            format!(
                "last push {} failed: {}; {waiting} events wait (nothing is lost; they go with the next push that succeeds)",
                s.at,
                s.error.unwrap_or_default()
            ),
        ),
    }
}

pub fn run(config_result: Result<Config, String>) -> anyhow::Result<ExitCode> {
    let mut r = Report { lines: Vec::new(), failed: false };
    let config = match config_result {
        Ok(c) => {
            r.add(
                Status::Ok,
                "config",
                c.config_file.as_ref().map_or("no config file; defaults in use".to_owned(), |p| format!("{} is valid", p.display())),
            );
            c
        }
        Err(e) => {
            r.add(Status::Fail, "config", format!("{e}; fix the file (unknown keys are errors), or see `chronicle config show`"));
            Config::without_file().map_err(|e| anyhow::anyhow!("{e}"))?
        }
    };

    let exe = std::env::current_exe().ok();
    match on_path("chronicle") {
        Some(p) => r.add(Status::Ok, "binary", format!("`chronicle` on PATH is {}", p.display())),
        None => r.add(
            Status::Warn,
            "binary",
            format!(
                "`chronicle` is not on PATH (fine when settings use an absolute path, as `chronicle install` writes); this binary is {}",
                exe.as_ref().map(|e| e.display().to_string()).unwrap_or_default()
            ),
        ),
    }

    let super::install::Subscriptions { answerable, named, .. } = super::install::plugin_subscriptions(&config, &[]);
    let needs = Needs { answerable, named };
    if let Ok(user) = super::install::settings_path(false, None) {
        check_settings(&mut r, "user settings", &user, &needs);
    }
    if let Ok(project) = super::install::settings_path(true, None) {
        if project.exists() {
            check_settings(&mut r, "project settings", &project, &needs);
        }
    }

    client_check(&mut r, &config);

    let quiet = chronicle::output::Output::divert().ok();
    for dir in &config.plugin_dirs {
        if !dir.exists() {
            r.add(Status::Ok, "plugin directory", format!("{} (absent: optional)", dir.display()));
        }
    }
    let (candidates, refusals) = chronicle::plugin::discover(&config.plugin_dirs);
    for refusal in &refusals {
        r.add(Status::Fail, "plugin", format!("{}: {}", refusal.path.display(), refusal.reason));
    }
    let index = chronicle::plugin::index::load(&chronicle::plugin::index::path(&config.data_dir));
    let now = chronicle::clock::unix_ns();
    for c in &candidates {
        // Quarantined or suspended: reported, not loaded (loading may be what crashed a host).
        if let Some(fault) = chronicle::plugin::index::benched(&index, c, now) {
            let fix = "replace the file with a fixed build (that lifts it), or remove it";
            r.add(Status::Warn, "plugin", format!("{} is {}: {}; {fix}", c.path.display(), fault.kind(), fault.message()));
            continue;
        }
        match super::plugins::probe(&c.path) {
            Ok(super::plugins::Probed { info, .. }) => r.add(
                Status::Ok,
                "plugin",
                format!("{} {} loads from {} ({})", info.name, info.version, c.path.display(), info.events.join(",")),
            ),
            Err(e) => r.add(Status::Fail, "plugin", format!("{e}; see `chronicle plugins check {}`", c.path.display())),
        }
    }
    // Faults of the last day: the only place they showed before was the faults table.
    let day_ago = chronicle::store::read::rfc3339(chronicle::clock::unix_ns() - 86_400 * 1_000_000_000);
    let mut recent: Vec<_> =
        super::plugins::last_faults(&config).into_values().filter(|f| f.at.as_deref().is_some_and(|at| at > day_ago.as_str())).collect();
    recent.sort_by(|a, b| a.path.cmp(&b.path));
    for f in &recent {
        let who = f.plugin.clone().or_else(|| f.path.clone()).unwrap_or_default();
        r.add(Status::Warn, "plugin fault", format!("{who}: {}; see `chronicle events --json` (faults)", super::plugins::fault_line(f)));
    }
    if candidates.is_empty() && refusals.is_empty() {
        r.add(
            Status::Warn,
            "plugins",
            "no plugins found: events are recorded but nothing is guarded; `chronicle install` puts the built-ins in place",
        );
    }

    if let Some(q) = quiet {
        q.restore();
    }
    if config.data_dir.exists() {
        match chronicle::private::check_ours(&config.data_dir) {
            Ok(()) => r.add(Status::Ok, "data directory", format!("{} is yours and private", config.data_dir.display())),
            Err(e) => r.add(Status::Fail, "data directory", e.to_string()),
        }
    }
    match Store::open(&config.db_path) {
        Ok(store) => match store.integrity_check() {
            Ok(s) if s == "ok" => {
                r.add(Status::Ok, "database", format!("{} is writable and passes integrity_check", config.db_path.display()));
                page_size_check(&mut r, &config.db_path, store.page_size());
            }
            Ok(s) => {
                r.add(Status::Fail, "database", format!("integrity_check: {s}; move the file aside and let chronicle create a new one"))
            }
            Err(e) => r.add(Status::Fail, "database", e.to_string()),
        },
        Err(e) => r.add(Status::Fail, "database", format!("{e}; check the directory's permissions or set CHRONICLE_DB")),
    }
    resident_check(&mut r, &config);
    sync_check(&mut r, &config);
    match chronicle::spool::waiting(&config.data_dir) {
        0 => r.add(Status::Ok, "spool", "no events waiting outside the database"),
        n => r.add(
            Status::Warn,
            "spool",
            format!(
                "{n} event(s) could not be written to the database and wait in {} or {}; the next recorded event ingests them, or run `chronicle spool ingest`",
                chronicle::spool::path(&config.data_dir).display(),
                chronicle::spool::fallback_path(&config.data_dir).display()
            ),
        ),
    }

    let mut text = r.lines.join("\n");
    text.push('\n');
    super::show::out(&text)?;
    Ok(if r.failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A database made by a version that used larger pages logs that much more per event (each
/// event's commit writes every page it touches whole): it works, but converting it pays.
fn page_size_check(r: &mut Report, db: &Path, page_size: i64) {
    use chronicle::store::PAGE_SIZE;
    if page_size > PAGE_SIZE {
        r.add(
            Status::Warn,
            "database pages",
            format!(
                "{} has {} KiB pages: every event writes {}× the log that {} KiB pages would. Convert it while no session runs (the resident host exits `hook.resident_idle_s` after the last event; until then the conversion fails with \"database is locked\" and changes nothing): sqlite3 {} \"PRAGMA page_size={PAGE_SIZE}; PRAGMA journal_mode=DELETE; VACUUM; PRAGMA journal_mode=WAL\"",
                db.display(),
                page_size / 1024,
                page_size / PAGE_SIZE,
                PAGE_SIZE / 1024,
                db.display()
            ),
        );
    }
}

/// Both binaries in place, and whether a resident host serves this configuration.
/// The client the settings register: the copy `install` owns, the fast (static) build, and the
/// same version as this binary.
fn client_check(r: &mut Report, config: &Config) {
    let mut commands: Vec<PathBuf> = Vec::new();
    for project in [false, true] {
        let Ok(path) = super::install::settings_path(project, None) else { continue };
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let Ok(v) = chronicle::settings::parse(&text, &path.display().to_string()) else { continue };
        for group in v["hooks"].as_object().into_iter().flat_map(|h| h.values()).filter_map(|g| g.as_array()).flatten() {
            for h in group["hooks"].as_array().into_iter().flatten().filter(|h| chronicle::settings::is_ours(h)) {
                let cmd = PathBuf::from(h["command"].as_str().unwrap_or("").split_whitespace().next().unwrap_or(""));
                if cmd.is_file() && !commands.contains(&cmd) {
                    commands.push(cmd);
                }
            }
        }
    }
    let owned = super::install::bin_dir(&config.data_dir);
    for cmd in commands {
        let mut problems = Vec::new();
        if cmd.parent() != Some(owned.as_path()) {
            problems.push(format!(
                "it is not the copy `chronicle install` keeps in {} (a `cargo clean` or a rebuild changes it under running sessions)",
                owned.display()
            ));
        }
        if dynamically_linked(&cmd) {
            problems.push("it is dynamically linked: every event pays ~0.25 ms for the loader (build with `cargo build --release` on Linux/glibc, which links it statically)".to_owned());
        }
        let version_of = |bin: &Path| {
            std::process::Command::new(bin).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let ours = format!("chronicle {}", chronicle::VERSION);
        match version_of(&cmd).as_deref() {
            Some(v) if v == ours => {}
            Some(v) => problems.push(format!(
                "it is {} while this binary is {ours}; run `chronicle install` from the build you mean to use",
                if v.is_empty() { "unrunnable" } else { v }
            )),
            None => problems.push("it does not run".to_owned()),
        }
        // The host beside it must be the same build: the two speak a private protocol.
        let host = cmd.with_file_name(chronicle::resident::HOST_BIN);
        match version_of(&host) {
            Some(v) if v == ours => {}
            Some(v) => problems.push(format!(
                "the {} beside it is {}",
                chronicle::resident::HOST_BIN,
                if v.is_empty() { "unrunnable" } else { &v }
            )),
            None => problems.push(format!("there is no runnable {} beside it", chronicle::resident::HOST_BIN)),
        }
        if problems.is_empty() {
            r.add(Status::Ok, "client", format!("{} ({ours}, static)", cmd.display()));
        } else {
            r.add(Status::Warn, "client", format!("{}: {}; run `chronicle install`", cmd.display(), problems.join("; ")));
        }
    }
}

/// Whether an ELF executable asks for a dynamic loader (has a PT_INTERP program header).
fn dynamically_linked(path: &Path) -> bool {
    use chronicle::plugin::{elf_segments, PT_INTERP};
    elf_segments(path).is_ok_and(|(segments, _)| segments.iter().any(|s| s.kind == PT_INTERP))
}

fn resident_check(r: &mut Report, config: &Config) {
    use chronicle::resident::{self, Endpoint, CLIENT_BIN, HOST_BIN};
    for bin in [CLIENT_BIN, HOST_BIN] {
        let path = resident::sibling(bin);
        if !path.is_file() {
            r.add(
                Status::Fail,
                "binary",
                format!("{} is missing: `chronicle` and `chronicle-host` must be installed side by side", path.display()),
            );
        }
    }
    match Endpoint::for_config(config) {
        Ok(e) => match (e.unsafe_dir(), e.connect()) {
            (Some(why), _) => {
                r.add(Status::Warn, "resident host", format!("not used: {why}; every event is handled by a short-lived process"))
            }
            (None, Ok(_)) => r.add(Status::Ok, "resident host", format!("listening at {}", e.socket.display())),
            (None, Err(_)) => r.add(Status::Ok, "resident host", "not running; the next event starts one"),
        },
        Err(resident::ResidentError::Disabled) => r.add(
            Status::Warn,
            "resident host",
            "disabled (CHRONICLE_RESIDENT or hook.resident): every event pays for loading plugins and opening the database",
        ),
        Err(e) => r.add(Status::Warn, "resident host", format!("not usable: {e}; events are handled in process")),
    }
}
