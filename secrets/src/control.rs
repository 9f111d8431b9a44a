//! Files that decide whether the guards run at all: Claude Code's settings (where the hook is
//! registered, and where `disableAllHooks` would switch every hook off), Chronicle's own files
//! (its plugins, configuration, database and binaries) and the project's Chronicle plugins, and
//! hooks and other programs that git runs later, outside any guard (`.git/hooks/`,
//! `.git/config`). A model free to change them can switch its guards off without anyone noticing.
//!
//! Paths are judged lexically, after the caller has normalised them (absolute, no `..`, `~`
//! expanded), like [`crate::files`].

/// What a change to a control file needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// The user's confirmation: Claude Code's settings and hook scripts, git hooks. Editing
    /// them is ordinary work too; under an unattended permission mode the host turns the ask
    /// into a denial.
    Ask(String),
    /// Refusal: Chronicle's plugins, configuration, records and binaries.
    Deny(String),
}

/// Chronicle's directories and configuration file as the host finds them (`$CHRONICLE_HOME`,
/// else the XDG config and data directories; `$CHRONICLE_CONFIG`), read through `env`.
pub fn chronicle_paths(env: impl Fn(&str) -> Option<String>, home: &str) -> Vec<String> {
    let set = |k: &str| env(k).filter(|v| v.starts_with('/'));
    let mut paths = Vec::new();
    match set("CHRONICLE_HOME") {
        Some(dir) => paths.push(dir),
        None if home.starts_with('/') => {
            let home = home.trim_end_matches('/');
            paths.push(format!("{}/chronicle", set("XDG_CONFIG_HOME").unwrap_or_else(|| format!("{home}/.config"))));
            paths.push(format!("{}/chronicle", set("XDG_DATA_HOME").unwrap_or_else(|| format!("{home}/.local/share"))));
        }
        None => {}
    }
    paths.extend(set("CHRONICLE_CONFIG"));
    paths.iter().map(|p| p.trim_end_matches('/').to_owned()).filter(|p| !p.is_empty()).collect()
}

/// What changing the normalised `path` needs, if it is a control file; `chronicle` from
/// [`chronicle_paths`].
pub fn control_file(path: &str, chronicle: &[String]) -> Option<Control> {
    if let Some(dir) = chronicle.iter().find(|d| is_within(path, d)) {
        return Some(Control::Deny(format!(
            "`{path}` is Chronicle's own (under `{dir}`: its plugins, configuration, records or binaries), and changing it could switch the guards off"
        )));
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    let in_claude_dir = path.strip_suffix(base).is_some_and(|parent| parent.ends_with("/.claude/"));
    if (in_claude_dir && matches!(base, "settings.json" | "settings.local.json"))
        || path.contains("/.claude/hooks/")
        || is_within(path, "/etc/claude-code")
        || is_within(path, "/Library/Application Support/ClaudeCode")
    {
        return Some(Control::Ask(format!(
            "`{path}` is Claude Code's settings or hooks, where the guards are registered (a change could switch them off)"
        )));
    }
    if path.contains("/.claude/chronicle/") || path.ends_with("/.claude/chronicle") {
        return Some(Control::Ask(format!(
            "`{path}` is the project's Chronicle plugin directory: a library there runs inside every hook, before any guard"
        )));
    }
    if path.contains("/.git/hooks/") {
        return Some(Control::Ask(format!("`{path}` is a git hook: git runs it later on its own, outside any guard")));
    }
    if path.ends_with("/.git/config")
        || path.ends_with("/.git/config.worktree")
        || path.ends_with("/.gitconfig")
        || path.ends_with("/.config/git/config")
    {
        return Some(Control::Ask(format!(
            "`{path}` is a git configuration, which can name programs git runs later on its own (`core.hooksPath`, `core.fsmonitor`, filters), outside any guard"
        )));
    }
    None
}

fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    !dir.is_empty() && (path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chronicle_lives_where_the_host_looks() {
        let env =
            |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(chronicle_paths(env(&[]), "/home/dev"), ["/home/dev/.config/chronicle", "/home/dev/.local/share/chronicle"]);
        assert_eq!(
            chronicle_paths(env(&[("CHRONICLE_HOME", "/srv/ch/"), ("CHRONICLE_CONFIG", "/etc/ch.toml")]), "/home/dev"),
            ["/srv/ch", "/etc/ch.toml"]
        );
        assert_eq!(
            chronicle_paths(env(&[("XDG_DATA_HOME", "/d"), ("XDG_CONFIG_HOME", "relative")]), "/home/dev"),
            ["/home/dev/.config/chronicle", "/d/chronicle"]
        );
    }

    #[test]
    fn control_files_are_known_and_their_neighbours_are_not() {
        let chronicle = chronicle_paths(|_| None, "/home/dev");
        let judge = |p: &str| control_file(p, &chronicle);
        for p in [
            "/home/dev/.local/share/chronicle/plugins/libchronicle_bash_guard.so",
            "/home/dev/.local/share/chronicle",
            "/home/dev/.config/chronicle/config.toml",
        ] {
            assert!(matches!(judge(p), Some(Control::Deny(_))), "{p}");
        }
        for p in [
            "/home/dev/.claude/settings.json",
            "/home/dev/code/app/.claude/settings.local.json",
            "/home/dev/code/app/.claude/hooks/check.sh",
            "/etc/claude-code/managed-settings.json",
            "/home/dev/code/app/.git/hooks/pre-commit",
            "/home/dev/code/app/.git/config",
            "/home/dev/.gitconfig",
            "/home/dev/code/app/.claude/chronicle/plugins/libteam.so",
            "/home/dev/code/app/.claude/chronicle",
        ] {
            assert!(matches!(judge(p), Some(Control::Ask(_))), "{p}");
        }
        for p in [
            "/home/dev/code/app/settings.json",
            "/home/dev/code/app/.claude/agents/reviewer.md",
            "/home/dev/code/chronicle-notes/a.md",
            "/home/dev/.local/share/chronicler",
            "/home/dev/code/app/.git/description",
            "/home/dev/code/app/docs/.git/config.md",
            "/home/dev/code/app/.claude/chronicle-notes.md",
        ] {
            assert_eq!(judge(p), None, "{p}");
        }
    }
}
