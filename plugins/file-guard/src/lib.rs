//! `file-guard`: keeps Claude's file tools away from credentials and system files.
//!
//! On PreToolUse for Read, Write, Edit, MultiEdit, NotebookEdit, Glob and Grep it normalises
//! the path first (`..`, `~`, `$HOME`, duplicate slashes, Windows backslashes and drive
//! letters), then:
//! - denies any access to secret stores (`.env` and `.env.*` except templates such as
//!   `.env.example`, `~/.ssh/*`, private keys, `~/.aws/credentials`, `/etc/shadow`, ...);
//! - denies paths that use `..` to climb out of the project;
//! - denies writes to Chronicle's own files (plugins, configuration, database, binaries) and
//!   asks before writes to Claude Code's settings and hooks and to git hooks: where the guards
//!   could be switched off (`chronicle_secrets::control`);
//! - denies writes to system directories;
//! - asks before writes outside the project directory (`CLAUDE_PROJECT_DIR`, else `cwd`).
//!
//! Everything else gets no opinion. It fails closed: a fault in the guard denies the call.
//! Config (`[plugins.file-guard]`): `allowed_write_paths` (writes there need no confirmation),
//! `extra_secret_names` (more file names to treat as secret stores).

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::time::Duration;

use chronicle_plugin_api::config::string_list;
use chronicle_plugin_api::paths::{escapes, is_within, normalize};
use chronicle_plugin_api::{export_plugin, Event, Manifest, Outcome, Plugin};
use chronicle_secrets::control::{chronicle_paths, control_file, Control};

pub struct FileGuard {
    allowed_write_paths: Vec<String>,
    extra_secret_names: Vec<String>,
    /// Chronicle's own files, where this process's environment puts them: found once.
    chronicle: Vec<String>,
}

const SYSTEM_DIRS: &[&str] = &[
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/boot",
    "/lib",
    "/lib32",
    "/lib64",
    "/sys",
    "/proc",
    "/dev",
    "/var",
    "/opt",
    "/root",
    "/System",
    "/Library",
    "/c/Windows",
    "/c/Program Files",
];

impl FileGuard {
    pub fn with_defaults() -> FileGuard {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        FileGuard {
            allowed_write_paths: Vec::new(),
            extra_secret_names: Vec::new(),
            chronicle: chronicle_paths(|k| std::env::var(k).ok(), &home),
        }
    }

    /// Why `path` is a secret store, if it is (the list bash-guard applies too).
    fn secret(&self, path: &str, home: &str) -> Option<String> {
        chronicle_secrets::files::secret_store(path, home, &self.extra_secret_names)
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

        for key in keys {
            let Some(raw) = event.tool_input_str(key) else { continue };
            let path = normalize(raw, cwd, &home);
            if let Some(why) = self.secret(&path, &home) {
                return Outcome::deny(format!(
                    "file-guard: {tool} of `{raw}` refused: {why}. Ask the user for the specific value you need instead"
                ));
            }
            if escapes(raw, cwd, &home, &project) {
                return Outcome::deny(format!(
                    "file-guard: `{raw}` climbs out of the project with `..` (it resolves to `{path}`); use a path inside {project}"
                ));
            }
            if writes {
                let control = control_file(&path, &self.chronicle);
                if let Some(Control::Deny(why)) = &control {
                    return Outcome::deny(format!("file-guard: {tool} refused: {why}"));
                }
                let system = SYSTEM_DIRS.iter().any(|d| is_within(&path, d)) && !is_within(&path, "/var/tmp") && path != "/dev/null";
                if system {
                    return Outcome::deny(format!(
                        "file-guard: {tool} to the system path `{path}` refused; system files are not the project's to change"
                    ));
                }
                if let Some(Control::Ask(why)) = control {
                    return Outcome::ask(format!("file-guard: {tool} needs your confirmation: {why}"));
                }
                let allowed = is_within(&path, &project)
                    || is_within(&path, "/tmp")
                    || self.allowed_write_paths.iter().any(|a| is_within(&path, &normalize(a, cwd, &home)));
                if !allowed {
                    return Outcome::ask(format!("file-guard: {tool} to `{path}` is outside the project ({project}); confirm"));
                }
            }
        }
        Outcome::none()
    }
}

impl Plugin for FileGuard {
    fn manifest() -> Manifest {
        Manifest::new("file-guard", env!("CARGO_PKG_VERSION"))
            .events(&["PreToolUse"])
            .tool_matcher("Read|Write|Edit|MultiEdit|NotebookEdit|Glob|Grep")
            .timeout(Duration::from_millis(500))
            .fail_closed()
            // Only reads (the event, its config, the project's files): safe on several threads at once.
            .concurrent_calls()
            .cacheable(
                Duration::from_secs(24 * 3600),
                &[
                    "/tool_name",
                    "/cwd",
                    "/tool_input/file_path",
                    "/tool_input/notebook_path",
                    "/tool_input/path",
                    "/tool_input/pattern",
                    "/tool_input/glob",
                ],
            )
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
    use chronicle_plugin_api::Decision;
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
    fn glob_patterns_for_env_files_are_refused() {
        std::env::set_var("HOME", "/home/dev");
        let e = Event::from_value(
            json!({"hook_event_name": "PreToolUse", "tool_name": "Glob", "cwd": "/p", "tool_input": {"pattern": "**/.env*"}}),
        );
        assert_eq!(FileGuard::with_defaults().decide(&e).decision(), Decision::Deny);
    }
}
