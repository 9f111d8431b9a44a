//! `bash-guard`: denies destructive or exfiltrating Bash commands before they run, and asks
//! before force-pushes to protected branches. A command that reads, copies or encodes a secret
//! store (`cat ~/.aws/credentials`, `cp ~/.ssh/id_ed25519 /tmp/`, `base64 < ~/.netrc`) is denied
//! by the same list file-guard applies to the file tools (`chronicle_secrets::files`). A command it has no opinion on gets no opinion
//! (never "allow": that would bypass Claude Code's own permission prompts).
//!
//! It refuses code nobody can read before it runs (a download or decoded text run as a program:
//! `curl … | sh`, `base64 -d | bash`, `bash -c "$(curl …)"`, `source <(curl …)`; see
//! [`unseen`]), but not data piped into an interpreter running a program of its own
//! (`curl … | python3 -m json.tool`).
//!
//! A Python, Perl, Ruby or Node one-liner is judged by the shell commands it amounts to
//! (`python3 -c "os.system('rm -rf /')"` as `rm -rf /`; see [`oneliner`]).
//!
//! It asks before a command changes system files (`chronicle_secrets::system`) and before one
//! acts on the whole machine: stopping it, deleting every cron job or container volumes; and
//! refuses `kill -1` (see [`machine`]).
//!
//! It looks inside `;`, `&&`, `||`, pipes, `$(…)`, backticks and `bash -c '…'`, and past
//! `sudo`, `env`, leading `VAR=` assignments and similar wrappers. It fails closed: if the
//! guard itself faults, the host denies the command rather than letting it through unchecked.
//!
//! Config (`[plugins.bash-guard]`): `allowed_paths` (directories where recursive deletes are
//! fine besides the project; shared temporary directories such as /tmp are not), `protected_branches` (default `["main", "master"]`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod machine;
pub mod oneliner;
pub mod rules;
pub mod shell;
pub mod unseen;

use std::time::Duration;

use chronicle_plugin_api::{export_plugin, Event, Manifest, Outcome, Plugin};

pub struct BashGuard {
    allowed_paths: Vec<String>,
    protected_branches: Vec<String>,
    /// Chronicle's own files, where this process's environment puts them (it does not change
    /// under a running host): found once, not at every call.
    chronicle: Vec<String>,
}

impl BashGuard {
    pub fn with_defaults() -> BashGuard {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        BashGuard {
            allowed_paths: Vec::new(),
            protected_branches: vec!["main".into(), "master".into()],
            chronicle: chronicle_secrets::control::chronicle_paths(|k| std::env::var(k).ok(), &home),
        }
    }

    /// The decision for one event (also used by in-process tests).
    pub fn decide(&self, event: &Event) -> Outcome {
        let Some(command) = event.tool_input_str("command") else { return Outcome::none() };
        let cwd = event.cwd().unwrap_or("/");
        let project = std::env::var("CLAUDE_PROJECT_DIR").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| cwd.to_owned());
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let ctx = rules::Context {
            cwd,
            project: &project,
            home: &home,
            allowed_paths: &self.allowed_paths,
            protected_branches: &self.protected_branches,
            chronicle: &self.chronicle,
        };
        match rules::check(command, &ctx) {
            Some(rules::Verdict::Deny(reason)) => Outcome::deny(format!("bash-guard: {reason}")),
            Some(rules::Verdict::Ask(reason)) => Outcome::ask(format!("bash-guard: {reason}")),
            None => Outcome::none(),
        }
    }
}

impl Plugin for BashGuard {
    fn manifest() -> Manifest {
        Manifest::new("bash-guard", env!("CARGO_PKG_VERSION"))
            .events(&["PreToolUse"])
            .tool_matcher("Bash")
            .timeout(Duration::from_millis(500))
            .fail_closed()
            // Only reads (the event, its config, the project's files): safe on several threads at once.
            .concurrent_calls()
            // The verdict depends only on the command and where it runs (the host adds the
            // project directory to every key).
            .cacheable(Duration::from_secs(24 * 3600), &["/tool_input/command", "/cwd"])
    }

    fn init(config: &serde_json::Value) -> Result<Self, String> {
        let mut g = BashGuard::with_defaults();
        if let Some(p) = chronicle_plugin_api::config::string_list(config, "allowed_paths")? {
            g.allowed_paths = p;
        }
        if let Some(b) = chronicle_plugin_api::config::string_list(config, "protected_branches")? {
            g.protected_branches = b;
        }
        Ok(g)
    }

    fn handle(&self, event: &Event) -> Outcome {
        self.decide(event)
    }
}

export_plugin!(BashGuard);

/// A command line split at its spaces (no quoting), for the rules' unit tests.
#[cfg(test)]
pub(crate) fn words(line: &str) -> Vec<String> {
    line.split(' ').map(str::to_owned).collect()
}

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
        let g = BashGuard::with_defaults();
        let (rows, failures) =
            chronicle_plugin_api::testing::run_table(TABLE, "bash-guard", "/home/dev/code/acme-billing", |e| g.decide(e));
        assert!(rows > 50, "{rows} rows");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn allowed_paths_from_config() {
        std::env::set_var("HOME", "/home/dev");
        let g = BashGuard::init(&json!({"allowed_paths": ["/scratch"]})).unwrap();
        let e = Event::from_value(
            json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "cwd": "/home/dev/p", "tool_input": {"command": "rm -rf /scratch/x"}}),
        );
        assert_eq!(g.decide(&e).decision(), Decision::None);
        assert!(BashGuard::init(&json!({"allowed_paths": "nope"})).is_err());
    }
}
