//! Project facts the host records with a session, read from files rather than by running
//! `git` (a subprocess costs milliseconds; reading `.git/HEAD` costs microseconds).

use std::path::{Path, PathBuf};

/// The git directory for a working tree at or above `start` (following a worktree's
/// `.git` file to its real git dir).
pub fn git_dir(start: &Path) -> Option<PathBuf> {
    for dir in start.ancestors().take(64) {
        let dot_git = dir.join(".git");
        let meta = match std::fs::metadata(&dot_git) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            return Some(dot_git);
        }
        // A worktree or submodule: ".git" is a file saying "gitdir: <path>".
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
        let target = Path::new(target);
        return Some(if target.is_absolute() { target.to_owned() } else { dir.join(target) });
    }
    None
}

/// The checked-out branch, or `HEAD@<short sha>` when detached. None outside a repository.
pub fn git_branch(cwd: &Path) -> Option<String> {
    branch_from_head(&std::fs::read_to_string(git_dir(cwd)?.join("HEAD")).ok()?)
}

/// The file the branch is read from, and a stamp (size, mtime) that changes when it does:
/// the cache key of the host's project context.
pub fn head_stamp(cwd: &Path) -> Option<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let head = git_dir(cwd)?.join("HEAD");
    let m = std::fs::metadata(&head).ok()?;
    let stamp = format!("{}:{}.{}", m.len(), m.mtime(), m.mtime_nsec());
    Some((head, stamp))
}

/// Parses the contents of a HEAD file.
pub fn branch_from_head(head: &str) -> Option<String> {
    let head = head.trim();
    match head.strip_prefix("ref:") {
        Some(r) => Some(r.trim().trim_start_matches("refs/heads/").to_owned()),
        None if head.len() >= 7 && head.bytes().all(|b| b.is_ascii_hexdigit()) => Some(format!("HEAD@{}", &head[..7])),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_branch_detached_head_and_worktree_files() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("src/deep")).unwrap();
        std::fs::write(repo.join(".git/HEAD"), "ref: refs/heads/feature/x\n").unwrap();
        assert_eq!(git_branch(&repo.join("src/deep")).as_deref(), Some("feature/x"));

        std::fs::write(repo.join(".git/HEAD"), "3f786850e387550fdab836ed7e6dc881de23001b\n").unwrap();
        assert_eq!(git_branch(&repo).as_deref(), Some("HEAD@3f78685"));

        let wt = t.path().join("wt");
        std::fs::create_dir_all(repo.join(".git/worktrees/wt")).unwrap();
        std::fs::write(repo.join(".git/worktrees/wt/HEAD"), "ref: refs/heads/wt-branch\n").unwrap();
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}\n", repo.join(".git/worktrees/wt").display())).unwrap();
        assert_eq!(git_branch(&wt).as_deref(), Some("wt-branch"));

        assert_eq!(git_branch(Path::new("/nonexistent/dir")), None);
    }
}
