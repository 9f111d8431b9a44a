//! Where credentials live on disk: the one list of secret stores that every guard applies,
//! whether a file is named to a file tool (`file-guard`) or to a shell command that reads,
//! copies or encodes it (`bash-guard`).
//!
//! Paths are judged lexically, after the caller has normalised them (absolute, no `..`, `~`
//! expanded): nothing here touches the filesystem.

/// Directories whose every file holds credentials (under any home directory).
const SECRET_DIRS: &[&str] = &["/.ssh", "/.gnupg", "/.aws", "/.kube", "/.docker", "/.config/gh", "/.password-store"];

/// System files that hold credentials.
const SECRET_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/master.passwd",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_ecdsa_key",
];

/// File names that hold credentials wherever they are.
const SECRET_NAMES: &[&str] = &[
    "id_rsa",
    "id_ed25519",
    "id_ecdsa",
    "id_dsa",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    "credentials.json",
    "secrets.json",
    ".git-credentials",
];

/// Suffixes of private keys and keystores.
const KEY_SUFFIXES: &[&str] = &[".pem", ".key", ".p12", ".pfx", ".keystore"];

/// The directories under `home` whose every file holds credentials (for a guard that looks
/// for other names of a file: a hard link into them).
pub fn secret_dirs(home: &str) -> Vec<String> {
    let home = home.trim_end_matches('/');
    SECRET_DIRS.iter().map(|d| format!("{home}{d}")).collect()
}

/// Why a search of every file under the normalised directory `dir`, hidden ones included,
/// reaches secret stores, if it does: `dir` holds the home directory (its `~/.ssh`, `~/.aws`,
/// `~/.netrc`…), one of the credential directories under it (`~/.config` holds `~/.config/gh`),
/// or a system credential file (`/etc`). Lexical, like the rest: `.env` files a project may
/// hold anywhere are not looked for.
pub fn reaches_secret_stores(dir: &str, home: &str) -> Option<String> {
    let home = home.trim_end_matches('/');
    if !home.is_empty() && is_within(home, dir) {
        return Some("it holds the home directory and its credential stores (`~/.ssh`, `~/.aws`, `~/.netrc`…)".into());
    }
    if let Some(d) = SECRET_DIRS.iter().find(|d| is_within(&format!("{home}{d}"), dir)) {
        return Some(format!("it holds `~{d}`, whose files hold credentials"));
    }
    if let Some(f) = SECRET_FILES.iter().find(|f| is_within(f, dir)) {
        return Some(format!("it holds `{f}`, which holds system credentials"));
    }
    None
}

/// `.env.<suffix>` files that are templates, not secrets.
fn is_env_template(base: &str) -> bool {
    [".example", ".sample", ".template", ".dist", ".defaults", ".schema"].iter().any(|s| base.ends_with(s))
}

/// `path` is `dir` or lies below it (lexically); every path lies below `/`.
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Why the normalised `path` is a secret store, if it is. `home` is the user's home directory;
/// `extra_names` are more file names to treat as secret stores (a guard's configuration).
pub fn secret_store(path: &str, home: &str, extra_names: &[String]) -> Option<String> {
    let base = path.rsplit('/').next().unwrap_or(path);
    if base == ".env" || (base.starts_with(".env.") && !is_env_template(base)) {
        return Some(format!("`{base}` files hold environment secrets (templates such as `.env.example` are fine)"));
    }
    if SECRET_NAMES.contains(&base) || extra_names.iter().any(|n| n == base) {
        return Some(format!("`{base}` holds credentials"));
    }
    if KEY_SUFFIXES.iter().any(|s| base.ends_with(s)) {
        return Some(format!("`{base}` looks like a private key or keystore"));
    }
    if path.starts_with("/proc/") && path.ends_with("/environ") {
        return Some(format!("`{path}` is a process's environment, where tokens and keys are passed"));
    }
    if SECRET_FILES.contains(&path) || path.starts_with("/etc/sudoers.d/") {
        return Some(format!("`{path}` holds system credentials"));
    }
    for d in SECRET_DIRS {
        // Under any home (`/home/x/.ssh`, `/c/Users/x/.ssh`) or the configured one. Spelled
        // without building `{d}/` and `{home}{d}`: guards ask this of every path operand of
        // every command, and those two strings were most of a bash-guard call's allocations.
        let under_any = path.match_indices(d).any(|(at, _)| path[at + d.len()..].starts_with('/'));
        let under_home = path.strip_prefix(home).is_some_and(|rest| is_within(rest, d));
        if under_any || path.ends_with(d) || under_home {
            if *d == "/.aws" && !(base == "credentials" || base == "config" || path.ends_with("/.aws")) {
                continue;
            }
            return Some(format!("files under `~{d}` hold credentials"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_that_hold_a_secret_store_are_known() {
        let reaches = |d: &str| reaches_secret_stores(d, "/home/dev").is_some();
        for d in ["/", "/home", "/home/dev", "/home/dev/.config", "/home/dev/.ssh", "/etc", "/etc/ssh"] {
            assert!(reaches(d), "{d}");
        }
        for d in ["/home/dev/code/acme", "/home/dev/.config/nvim", "/tmp", "/usr/share", "/home/other"] {
            assert!(!reaches(d), "{d}");
        }
    }

    #[test]
    fn the_usual_stores_are_secret_and_templates_are_not() {
        let secret = |p: &str| secret_store(p, "/home/dev", &[]).is_some();
        for p in [
            "/home/dev/.aws/credentials",
            "/home/dev/.ssh/id_rsa",
            "/p/.env",
            "/p/.env.local",
            "/home/dev/.netrc",
            "/etc/shadow",
            "/p/server.pem",
            "/proc/self/environ",
            "/proc/1234/task/1235/environ",
        ] {
            assert!(secret(p), "{p}");
        }
        for p in
            ["/p/.env.example", "/p/src/main.rs", "/home/dev/.aws/cli/cache", "/home/dev/.sshrc", "/proc/self/status", "/p/proc/x/environ"]
        {
            assert!(!secret(p), "{p}");
        }
        assert!(secret_store("/p/vault.txt", "/home/dev", &["vault.txt".to_owned()]).is_some());
    }
}
