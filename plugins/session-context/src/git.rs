//! Reading a git repository's state from its files: no `git` subprocess (milliseconds) on the
//! hot path. Handles worktrees (`.git` file + `commondir`), detached HEAD, loose and packed
//! refs, and index versions 2–4 for counting changed tracked files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A repository as seen from a working directory.
pub struct Repo {
    /// The working tree root.
    pub root: PathBuf,
    /// This worktree's git dir (HEAD, index).
    pub git_dir: PathBuf,
    /// Where refs live (differs from `git_dir` in a linked worktree).
    pub common_dir: PathBuf,
}

impl Repo {
    pub fn discover(start: &Path) -> Option<Repo> {
        for dir in start.ancestors().take(64) {
            let dot_git = dir.join(".git");
            let Ok(meta) = std::fs::metadata(&dot_git) else { continue };
            let git_dir = if meta.is_dir() {
                dot_git
            } else {
                let text = std::fs::read_to_string(&dot_git).ok()?;
                let target = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
                let t = Path::new(target);
                if t.is_absolute() {
                    t.to_owned()
                } else {
                    dir.join(t)
                }
            };
            let common_dir = match std::fs::read_to_string(git_dir.join("commondir")) {
                Ok(c) => {
                    let c = Path::new(c.trim());
                    if c.is_absolute() {
                        c.to_owned()
                    } else {
                        git_dir.join(c)
                    }
                }
                Err(_) => git_dir.clone(),
            };
            return Some(Repo { root: dir.to_owned(), git_dir, common_dir });
        }
        None
    }

    /// (branch, commit): branch is None when detached; commit None in a repo with no commits.
    pub fn head(&self) -> (Option<String>, Option<String>) {
        let Ok(head) = std::fs::read_to_string(self.git_dir.join("HEAD")) else { return (None, None) };
        let head = head.trim();
        match head.strip_prefix("ref:") {
            Some(r) => {
                let r = r.trim();
                (Some(r.trim_start_matches("refs/heads/").to_owned()), self.resolve(r))
            }
            None => (None, Some(head.to_owned()).filter(|h| h.len() >= 7)),
        }
    }

    fn resolve(&self, refname: &str) -> Option<String> {
        for dir in [&self.git_dir, &self.common_dir] {
            if let Ok(s) = std::fs::read_to_string(dir.join(refname)) {
                let s = s.trim();
                if let Some(r) = s.strip_prefix("ref:") {
                    return self.resolve(r.trim());
                }
                return Some(s.to_owned());
            }
        }
        let packed = std::fs::read_to_string(self.common_dir.join("packed-refs")).ok()?;
        packed.lines().filter(|l| !l.starts_with('#') && !l.starts_with('^')).find_map(|l| {
            let (sha, name) = l.split_once(' ')?;
            (name.trim() == refname).then(|| sha.to_owned())
        })
    }

    /// Tracked files whose size or mtime differ from the index, or that are gone.
    /// None when the index is unreadable or holds more than `limit` entries.
    pub fn changed_files(&self, limit: usize) -> Option<usize> {
        let data = std::fs::read(self.git_dir.join("index")).ok()?;
        let entries = parse_index(&data, limit)?;
        Some(
            entries
                .iter()
                .filter(|e| match std::fs::symlink_metadata(self.root.join(&e.path)) {
                    Ok(m) => m.len() as u32 != e.size || m.mtime() as u32 != e.mtime_s,
                    Err(_) => true,
                })
                .count(),
        )
    }
}

pub struct IndexEntry {
    pub path: String,
    pub mtime_s: u32,
    pub size: u32,
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a git index (versions 2, 3, 4).
pub fn parse_index(d: &[u8], limit: usize) -> Option<Vec<IndexEntry>> {
    if d.get(0..4)? != b"DIRC" {
        return None;
    }
    let version = be32(d, 4)?;
    let count = be32(d, 8)? as usize;
    if !(2..=4).contains(&version) || count > limit {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut pos = 12;
    let mut prev_path = String::new();
    for _ in 0..count {
        let start = pos;
        let mtime_s = be32(d, pos + 8)?;
        let size = be32(d, pos + 36)?;
        let flags = u16::from_be_bytes(d.get(pos + 60..pos + 62)?.try_into().ok()?);
        pos += 62;
        if version >= 3 && flags & 0x4000 != 0 {
            pos += 2;
        }
        let path = if version == 4 {
            // Prefix compression: a varint of bytes to drop from the previous path.
            let mut strip: usize = 0;
            loop {
                let b = *d.get(pos)?;
                pos += 1;
                strip = (strip << 7) | usize::from(b & 0x7f);
                if b & 0x80 == 0 {
                    break;
                }
                strip += 1;
            }
            let end = pos + d.get(pos..)?.iter().position(|&b| b == 0)?;
            let suffix = std::str::from_utf8(&d[pos..end]).ok()?;
            let keep = prev_path.len().checked_sub(strip)?;
            let p = format!("{}{}", &prev_path[..keep], suffix);
            pos = end + 1;
            p
        } else {
            let end = pos + d.get(pos..)?.iter().position(|&b| b == 0)?;
            let p = std::str::from_utf8(&d[pos..end]).ok()?.to_owned();
            // Entries are NUL-padded to a multiple of 8 bytes.
            let len = end - start + 1;
            pos = start + len.div_ceil(8) * 8;
            p
        };
        prev_path.clone_from(&path);
        out.push(IndexEntry { path, mtime_s, size });
    }
    Some(out)
}
