//! `session-context`: on SessionStart, tells Claude where it is: branch, short commit, how many
//! tracked files have uncommitted changes, and what kind of project this is. Everything is
//! read from the repository's files directly (no `git` subprocess), and works in worktrees,
//! with detached HEAD, packed refs, and outside any repository.
//!
//! Config (`[plugins.session-context]`): `max_index_entries` (default 50,000; larger indexes
//! skip the change count, which stats every tracked file).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod git;

use std::path::Path;
use std::time::Duration;

use chronicle_plugin_api::{export_plugin, Event, Manifest, Outcome, Plugin};

pub struct SessionContext {
    max_index_entries: usize,
}

/// Marker files → project type, checked in the project root.
const MARKERS: &[(&str, &str)] = &[
    ("Cargo.toml", "Rust"),
    ("pyproject.toml", "Python"),
    ("setup.py", "Python"),
    ("requirements.txt", "Python"),
    ("tsconfig.json", "TypeScript"),
    ("package.json", "Node.js"),
    ("go.mod", "Go"),
    ("pom.xml", "Java"),
    ("build.gradle", "Java/Kotlin"),
    ("build.gradle.kts", "Kotlin"),
    ("Gemfile", "Ruby"),
    ("composer.json", "PHP"),
    ("mix.exs", "Elixir"),
    ("CMakeLists.txt", "C/C++"),
    ("Package.swift", "Swift"),
    ("deno.json", "Deno"),
];

pub fn project_types(dir: &Path) -> Vec<&'static str> {
    let mut types: Vec<&'static str> = MARKERS.iter().filter(|(f, _)| dir.join(f).exists()).map(|(_, t)| *t).collect();
    types.dedup();
    types
}

impl SessionContext {
    pub fn describe(&self, cwd: &Path) -> String {
        let mut parts = Vec::new();
        let repo = git::Repo::discover(cwd);
        match &repo {
            Some(repo) => {
                let (branch, commit) = repo.head();
                let short = commit.as_deref().map(|c| c.chars().take(7).collect::<String>());
                parts.push(match (branch, short) {
                    (Some(b), Some(c)) => format!("Branch: {b} ({c})"),
                    (Some(b), None) => format!("Branch: {b} (no commits yet)"),
                    (None, Some(c)) => format!("Detached HEAD at {c}"),
                    (None, None) => "Git repository (HEAD unreadable)".to_owned(),
                });
                match repo.changed_files(self.max_index_entries) {
                    Some(0) => parts.push("working tree clean (tracked files)".to_owned()),
                    Some(1) => parts.push("1 tracked file with uncommitted changes".to_owned()),
                    Some(n) => parts.push(format!("{n} tracked files with uncommitted changes")),
                    None => {}
                }
            }
            None => parts.push("Not a git repository".to_owned()),
        }
        let root = repo.as_ref().map_or(cwd, |r| r.root.as_path());
        let types = project_types(root);
        if !types.is_empty() {
            parts.push(format!("{} project", types.join(" + ")));
        }
        parts.join(" | ")
    }
}

impl Plugin for SessionContext {
    fn manifest() -> Manifest {
        Manifest::new("session-context", env!("CARGO_PKG_VERSION"))
            .events(&["SessionStart"])
            .timeout(Duration::from_millis(1500))
            // Only reads the project's files: sessions starting at once need not wait in line.
            .concurrent_calls()
    }

    fn init(config: &serde_json::Value) -> Result<Self, String> {
        let max = match config.get("max_index_entries") {
            None => 50_000,
            Some(v) => v.as_u64().ok_or("max_index_entries must be a number")? as usize,
        };
        Ok(SessionContext { max_index_entries: max })
    }

    fn handle(&self, event: &Event) -> Outcome {
        let cwd = event.cwd().map(str::to_owned).or_else(|| std::env::var("CLAUDE_PROJECT_DIR").ok());
        match cwd {
            Some(cwd) => Outcome::none().with_context(self.describe(Path::new(&cwd))),
            None => Outcome::none(),
        }
    }
}

export_plugin!(SessionContext);

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    }

    fn sc() -> SessionContext {
        SessionContext { max_index_entries: 50_000 }
    }

    #[test]
    fn outside_a_repository() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("pyproject.toml"), "").unwrap();
        assert_eq!(sc().describe(t.path()), "Not a git repository | Python project");
    }

    /// Compares against real `git` (test-only: the plugin itself never runs it).
    #[test]
    fn branch_commit_changes_packed_refs_detached_and_worktrees() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("repo");
        std::fs::create_dir(&r).unwrap();
        git(&r, &["init", "-q", "-b", "main"]);
        assert!(sc().describe(&r).starts_with("Branch: main (no commits yet)"), "{}", sc().describe(&r));
        std::fs::write(r.join("Cargo.toml"), "[package]\n").unwrap();
        std::fs::write(r.join("a.txt"), "one\n").unwrap();
        git(&r, &["add", "."]);
        git(&r, &["commit", "-qm", "first"]);
        let sha = String::from_utf8(Command::new("git").args(["rev-parse", "--short=7", "HEAD"]).current_dir(&r).output().unwrap().stdout)
            .unwrap();
        let sha = sha.trim();
        assert_eq!(sc().describe(&r), format!("Branch: main ({sha}) | working tree clean (tracked files) | Rust project"));

        std::fs::write(r.join("a.txt"), "one two\n").unwrap();
        std::fs::remove_file(r.join("Cargo.toml")).unwrap();
        assert!(sc().describe(&r).contains("2 tracked files with uncommitted changes"), "{}", sc().describe(&r));
        git(&r, &["checkout", "-q", "--", "."]);

        git(&r, &["pack-refs", "--all"]);
        assert!(sc().describe(&r).starts_with(&format!("Branch: main ({sha})")));

        git(&r, &["checkout", "-q", "--detach"]);
        assert!(sc().describe(&r).starts_with(&format!("Detached HEAD at {sha}")));
        git(&r, &["checkout", "-q", "main"]);

        let wt = t.path().join("wt");
        git(&r, &["worktree", "add", "-q", "-b", "feature", wt.to_str().unwrap()]);
        assert!(sc().describe(&wt.join("")).starts_with(&format!("Branch: feature ({sha})")), "{}", sc().describe(&wt));
        // From a subdirectory, too.
        std::fs::create_dir_all(wt.join("sub/dir")).unwrap();
        assert!(sc().describe(&wt.join("sub/dir")).starts_with("Branch: feature"));
    }
}
