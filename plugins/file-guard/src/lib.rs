//! `file-guard`: keeps Claude's file tools away from credentials and system files.
//!
//! On PreToolUse for Read, Write, Edit, MultiEdit, NotebookEdit, Glob and Grep it normalises
//! the path first (`..`, `~`, `$HOME`, duplicate slashes, Windows backslashes and drive
//! letters), then judges both the path as written and where it leads through symbolic links
//! (the tools follow them; `links`), and a file with several names under its names in the
//! places it guards (hard links), keeping the stricter answer:
//! - denies any access to secret stores (`.env` and `.env.*` except templates such as
//!   `.env.example`, `~/.ssh/*`, private keys, `~/.aws/credentials`, `/etc/shadow`, ...);
//! - denies Grep showing file contents from a directory that holds secret stores (the home
//!   directory or above, `~/.config`, `/etc`) unless a `glob` or `type` picks the files;
//! - denies paths that use `..` to climb out of the project;
//! - denies writes to Chronicle's own files (plugins, configuration, database, binaries) and
//!   asks before writes to Claude Code's settings and hooks and to git hooks: where the guards
//!   could be switched off (`chronicle_secrets::control`);
//! - denies writes to system directories, outside a project that lies under one (`/opt/app`,
//!   `/var/www/site`, root's `/root/proj`);
//! - asks before writes outside the project directory (`CLAUDE_PROJECT_DIR`, else `cwd`).
//!
//! Everything else gets no opinion. It fails closed: a fault in the guard denies the call.
//! Config (`[plugins.file-guard]`): `allowed_write_paths` (writes there need no confirmation),
//! `extra_secret_names` (more file names to treat as secret stores).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod links;

use std::time::Duration;

use chronicle_plugin_api::config::string_list;
use chronicle_plugin_api::paths::{absolute, escapes, is_within, normalize};
use chronicle_plugin_api::{export_plugin, Decision, Event, Manifest, Outcome, Plugin};
use chronicle_secrets::control::{chronicle_paths, control_file, Control};
use chronicle_secrets::files::{secret_dirs, secret_store};

pub struct FileGuard {
    allowed_write_paths: Vec<String>,
    extra_secret_names: Vec<String>,
    /// Chronicle's own files, where this process's environment puts them: found once, as
    /// spelled and where their links lead.
    chronicle: Vec<String>,
    /// The shared temporary directory writes need no confirmation in, likewise.
    scratch: Vec<String>,
    /// Where a file with several names (hard links) is looked for under its other names: the
    /// home directory's secret stores, Chronicle's files, Claude Code's user settings.
    other_names_in: Vec<String>,
}

/// `paths`, each followed by where it leads if it is (or passes through) a link.
fn with_targets<S: AsRef<str>>(paths: &[S]) -> Vec<String> {
    let mut all: Vec<String> = paths.iter().map(|p| p.as_ref().to_owned()).collect();
    for p in paths {
        if let Some(real) = links::resolve(p.as_ref()).filter(|r| r != p.as_ref()) {
            all.push(real);
        }
    }
    all
}

/// Where an event's path is judged from: the project and the home directory, as spelled, or
/// where their links lead (for a path that reached its file through a link).
struct Roots {
    home: String,
    project: Vec<String>,
}

impl FileGuard {
    pub fn with_defaults() -> FileGuard {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let chronicle = with_targets(&chronicle_paths(|k| std::env::var(k).ok(), &home));
        let mut other_names_in = chronicle.clone();
        for home in with_targets(&[home.as_str()]) {
            other_names_in.extend(secret_dirs(&home));
            other_names_in.extend(["settings.json", "settings.local.json", "hooks"].map(|f| format!("{home}/.claude/{f}")));
        }
        FileGuard {
            allowed_write_paths: Vec::new(),
            extra_secret_names: Vec::new(),
            chronicle,
            scratch: with_targets(&["/tmp"]),
            other_names_in,
        }
    }

    /// The decision for one event (also used by in-process tests).
    pub fn decide(&self, event: &Event) -> Outcome {
        let tool = event.tool_name().unwrap_or("");
        let writes = matches!(tool, "Write" | "Edit" | "MultiEdit" | "NotebookEdit");
        let keys: &[&str] = match tool {
            "Read" | "Write" | "Edit" | "MultiEdit" => &["file_path"],
            "NotebookEdit" => &["notebook_path", "file_path"],
            "Glob" | "Grep" => &["path"],
            _ => return Outcome::none(),
        };
        let cwd = event.cwd().unwrap_or("/");
        let project = std::env::var("CLAUDE_PROJECT_DIR").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| cwd.to_owned());
        let project = normalize(&project, "/", "/");
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());

        // Glob/Grep also name files through their pattern or glob.
        if matches!(tool, "Glob" | "Grep") {
            for k in ["pattern", "glob"] {
                if let Some(g) = event.tool_input_str(k) {
                    let last = g.rsplit('/').next().unwrap_or(g);
                    if last == ".env" || last == ".env*" || last == ".env.*" || g.contains(".ssh/") {
                        return Outcome::deny(format!("file-guard: `{g}` would match secret files; search elsewhere"));
                    }
                }
            }
        }

        if tool == "Grep" {
            if let Some(refused) = grep_reaching_secrets(event, cwd, &home) {
                return refused;
            }
        }

        let spelled = Roots { home: home.clone(), project: vec![project.clone()] };
        for key in keys {
            let Some(raw) = event.tool_input_str(key) else { continue };
            let path = normalize(raw, cwd, &home);
            let named = format!("`{raw}`");
            let outcome = self.judge(tool, &named, &path, writes, cwd, &spelled);
            if outcome.decision() == Decision::Deny {
                return outcome;
            }
            if escapes(raw, cwd, &home, &project) {
                return Outcome::deny(format!(
                    "file-guard: `{raw}` climbs out of the project with `..` (it resolves to `{path}`); use a path inside {project}"
                ));
            }
            // The tools follow links: judge where this one leads too, and the file's other
            // names if it has several, from the project's and home's real places; keep the
            // stricter answer.
            let real_roots = || Roots { home: links::resolve(&home).unwrap_or(home.clone()), project: with_targets(&[project.as_str()]) };
            let real = links::resolve(&absolute(raw, cwd, &home));
            let outcome = match real.as_ref().filter(|real| **real != path) {
                Some(real) => {
                    let through = self.judge(tool, &format!("`{raw}` (a link to `{real}`)"), real, writes, cwd, &real_roots());
                    stricter(outcome, through)
                }
                None => outcome,
            };
            let outcome = match links::other_name(real.as_deref().unwrap_or(&path), &self.other_names_in) {
                Some(other) => {
                    let named = format!("`{raw}` (another name of `{other}`: a hard link)");
                    stricter(outcome, self.judge(tool, &named, &other, writes, cwd, &real_roots()))
                }
                None => outcome,
            };
            if outcome.decision() != Decision::None {
                return outcome;
            }
        }
        Outcome::none()
    }

    /// What `tool` may do with the normal absolute `path`, named `named` in reasons.
    fn judge(&self, tool: &str, named: &str, path: &str, writes: bool, cwd: &str, roots: &Roots) -> Outcome {
        let Roots { home, project } = roots;
        if let Some(why) = secret_store(path, home, &self.extra_secret_names) {
            return Outcome::deny(format!(
                "file-guard: {tool} of {named} refused: {why}. Ask the user for the specific value you need instead"
            ));
        }
        if !writes {
            return Outcome::none();
        }
        let within = |dirs: &[String]| dirs.iter().any(|d| is_within(path, d));
        let control = control_file(path, &self.chronicle);
        if let Some(Control::Deny(why)) = &control {
            return Outcome::deny(format!("file-guard: {tool} of {named} refused: {why}"));
        }
        // A project under a system directory (`/opt/app`, root's `/root/proj`) is the project's.
        if chronicle_secrets::system::changes_system(path, home, project) {
            return Outcome::deny(format!(
                "file-guard: {tool} to the system path {named} refused; system files are not the project's to change"
            ));
        }
        if let Some(Control::Ask(why)) = control {
            return Outcome::ask(format!("file-guard: {tool} of {named} needs your confirmation: {why}"));
        }
        let allowed = within(project)
            || within(&self.scratch)
            || self.allowed_write_paths.iter().any(|a| with_targets(&[normalize(a, cwd, home)]).iter().any(|a| is_within(path, a)));
        if !allowed {
            return Outcome::ask(format!("file-guard: {tool} to {named} is outside the project ({}); confirm", project[0]));
        }
        Outcome::none()
    }
}

/// Grep showing file contents (`output_mode: "content"`) from a directory that holds secret
/// stores, every file in it: Claude Code's Grep searches hidden files, so `~/.ssh`, `~/.aws`
/// and `~/.netrc` would come back line by line. Listing files (the default mode) or counting
/// matches shows no contents; a `glob` or `type` that picks files by name narrows the search
/// to them (a glob naming secret files is refused before this).
fn grep_reaching_secrets(event: &Event, cwd: &str, home: &str) -> Option<Outcome> {
    if event.tool_input_str("output_mode") != Some("content") {
        return None;
    }
    let picks_files = |g: &str| !matches!(g.trim_start_matches("**/"), "" | "*" | "**" | ".*" | "*.*" | "*/**" | "**/*");
    if event.tool_input_str("glob").is_some_and(picks_files) || event.tool_input_str("type").is_some_and(|t| !t.is_empty()) {
        return None;
    }
    let raw = event.tool_input_str("path").filter(|p| !p.is_empty()).unwrap_or(cwd);
    let dir = normalize(raw, cwd, home);
    let why = chronicle_secrets::files::reaches_secret_stores(&dir, home)?;
    Some(Outcome::deny(format!(
        "file-guard: Grep of file contents under `{dir}` refused: {why}, and Grep searches hidden files. \
         Search a narrower directory, or pass a `glob` or `type` for the files you mean"
    )))
}

/// The answer that stops more: deny over ask over none (the first of equals).
fn stricter(a: Outcome, b: Outcome) -> Outcome {
    let rank = |o: &Outcome| match o.decision() {
        Decision::Deny => 2,
        Decision::Ask => 1,
        _ => 0,
    };
    if rank(&b) > rank(&a) {
        b
    } else {
        a
    }
}

impl Plugin for FileGuard {
    // Not cacheable: where a path leads depends on the links on disk at the time of the call
    // (a cached "no opinion" on `notes.txt` would outlive its becoming a link).
    fn manifest() -> Manifest {
        Manifest::new("file-guard", env!("CARGO_PKG_VERSION"))
            .events(&["PreToolUse"])
            .tool_matcher("Read|Write|Edit|MultiEdit|NotebookEdit|Glob|Grep")
            .timeout(Duration::from_millis(500))
            .fail_closed()
            // Only reads (the event, its config, the project's files): safe on several threads at once.
            .concurrent_calls()
    }

    fn init(config: &serde_json::Value) -> Result<Self, String> {
        Ok(FileGuard {
            allowed_write_paths: string_list(config, "allowed_write_paths")?.unwrap_or_default(),
            extra_secret_names: string_list(config, "extra_secret_names")?.unwrap_or_default(),
            ..FileGuard::with_defaults()
        })
    }

    fn handle(&self, event: &Event) -> Outcome {
        self.decide(event)
    }
}

export_plugin!(FileGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The shared decision table (also run through the real binary by tests/e2e/guards.rs).
    /// cwd = project = /home/dev/code/acme-billing, HOME = /home/dev.
    const TABLE: &str = include_str!("../../../tests/corpus/guards.jsonl");

    #[test]
    fn decision_table() {
        std::env::set_var("HOME", "/home/dev");
        std::env::remove_var("CLAUDE_PROJECT_DIR");
        let g = FileGuard::with_defaults();
        let (rows, failures) =
            chronicle_plugin_api::testing::run_table(TABLE, "file-guard", "/home/dev/code/acme-billing", |e| g.decide(e));
        assert!(rows > 25, "{rows} rows");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_project_under_a_system_directory_is_the_projects_to_change() {
        let guard = FileGuard::with_defaults();
        let decide = |cwd: &str, path: &str| {
            let e = Event::from_value(
                json!({"hook_event_name": "PreToolUse", "tool_name": "Write", "cwd": cwd, "tool_input": {"file_path": path}}),
            );
            guard.decide(&e)
        };
        for (cwd, path) in
            [("/opt/app", "/opt/app/main.py"), ("/var/www/site", "/var/www/site/index.php"), ("/root/proj", "/root/proj/x.rs")]
        {
            assert_eq!(decide(cwd, path).decision(), Decision::None, "{path} in the project {cwd}");
        }
        for (cwd, path) in [("/opt/app", "/opt/other/x"), ("/etc", "/etc/hosts"), ("/", "/usr/bin/x"), ("/var", "/var/lib/dpkg/status")] {
            let outcome = decide(cwd, path);
            assert_eq!(outcome.decision(), Decision::Deny, "{path} from {cwd}");
            assert!(outcome.reason.as_deref().unwrap_or("").contains("system path"), "{path}: {:?}", outcome.reason);
        }
    }

    #[test]
    fn glob_patterns_for_env_files_are_refused() {
        std::env::set_var("HOME", "/home/dev");
        let e = Event::from_value(
            json!({"hook_event_name": "PreToolUse", "tool_name": "Glob", "cwd": "/p", "tool_input": {"pattern": "**/.env*"}}),
        );
        assert_eq!(FileGuard::with_defaults().decide(&e).decision(), Decision::Deny);
    }

    #[test]
    fn a_path_is_judged_where_its_links_lead() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let at = |p: &str| d.join(p);
        for sub in ["home/.ssh", "chronicle/plugins", "proj/real-src", "elsewhere", "other/.claude"] {
            std::fs::create_dir_all(at(sub)).unwrap();
        }
        std::fs::write(at("home/.ssh/id_ed25519"), "key").unwrap();
        std::fs::write(at("chronicle/config.toml"), "").unwrap();
        symlink(at("home/.ssh/id_ed25519"), at("proj/notes.txt")).unwrap();
        symlink(at("chronicle/config.toml"), at("proj/cfg")).unwrap();
        symlink(at("chronicle/plugins/libnew.so"), at("proj/dangling")).unwrap();
        symlink(at("chronicle"), at("proj/tools")).unwrap();
        symlink("/etc/hosts", at("proj/hosts")).unwrap();
        symlink(at("elsewhere"), at("proj/out")).unwrap();
        symlink("real-src", at("proj/src")).unwrap();
        symlink(at("other/.claude"), at("proj/.claude-shared")).unwrap();
        symlink(at("proj"), at("proj-link")).unwrap();
        std::fs::hard_link(at("home/.ssh/id_ed25519"), at("proj/hard.txt")).unwrap();
        std::fs::hard_link(at("chronicle/config.toml"), at("proj/hard-config.txt")).unwrap();

        // /tmp is no scratch space here: the temporary directory stands in for the whole disk.
        let guard = FileGuard {
            chronicle: with_targets(&[at("chronicle").to_str().unwrap()]),
            scratch: Vec::new(),
            other_names_in: vec![at("chronicle").to_str().unwrap().to_owned(), at("home/.ssh").to_str().unwrap().to_owned()],
            ..FileGuard::with_defaults()
        };
        let decide = |tool: &str, cwd: &str, path: &str| {
            let e = Event::from_value(
                json!({"hook_event_name": "PreToolUse", "tool_name": tool, "cwd": cwd, "tool_input": {"file_path": path}}),
            );
            guard.decide(&e)
        };
        let proj = at("proj");
        let proj = proj.to_str().unwrap();
        let cases = [
            ("Read", "notes.txt", Decision::Deny, "a link to"),
            ("Read", "tools/config.toml", Decision::None, ""),
            ("Write", "cfg", Decision::Deny, "Chronicle"),
            ("Edit", "tools/config.toml", Decision::Deny, "Chronicle"),
            ("Write", "dangling", Decision::Deny, "libnew.so"),
            ("Write", "hosts", Decision::Deny, "system path"),
            ("Write", "out/x.txt", Decision::Ask, "outside the project"),
            ("Write", ".claude-shared/settings.json", Decision::Ask, "confirmation"),
            ("Write", "src/main.rs", Decision::None, ""),
            ("Write", "src/../real-src/lib.rs", Decision::None, ""),
            ("Write", "plain.txt", Decision::None, ""),
            ("Read", "hard.txt", Decision::Deny, "hard link"),
            ("Write", "hard-config.txt", Decision::Deny, "Chronicle"),
            ("Read", "hard-config.txt", Decision::None, ""),
        ];
        for (tool, path, want, reason) in cases {
            let got = decide(tool, proj, path);
            assert_eq!(got.decision(), want, "{tool} {path}: {:?}", got.reason);
            assert!(got.reason.as_deref().unwrap_or("").contains(reason), "{tool} {path}: {:?}", got.reason);
        }
        // A project reached through a link is still the project, where its files really are.
        let linked = at("proj-link");
        assert_eq!(decide("Write", linked.to_str().unwrap(), "src/main.rs").decision(), Decision::None);
        assert_eq!(decide("Write", linked.to_str().unwrap(), &format!("{proj}/plain.txt")).decision(), Decision::Ask, "spelled outside it");
    }
}
