//! Where a path really leads. The file tools follow symbolic links, so a guard that judged only
//! the spelling would let `notes.txt` (a link to `~/.ssh/id_ed25519`, made by any program the
//! model ran) be read, or a link to Chronicle's configuration be written. This walks the path
//! one component at a time, following each link the way the kernel does, and stops at the
//! first component that does not exist (a file about to be created): the rest is kept as
//! written. A dangling link is followed too, since writing through it creates its target.

use std::path::{Component, Path, PathBuf};

/// Links followed before giving up (the kernel's own limit): a loop cannot be opened anyway.
const MAX_LINKS: usize = 40;

/// The absolute path `path` (already absolute) leads to, following symbolic links; `None`
/// when the links loop or nest deeper than the kernel would follow.
pub fn resolve(path: &str) -> Option<String> {
    let mut real = PathBuf::from("/");
    // Components still to walk, last first.
    let mut rest: Vec<PathBuf> = components_reversed(Path::new(path));
    let mut followed = 0;
    let mut exists = true;
    while let Some(part) = rest.pop() {
        if part.as_os_str() == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&part);
        // Below a component that does not exist nothing can be a link: keep the spelling.
        let link = exists.then(|| std::fs::symlink_metadata(&next)).and_then(|m| match m {
            Ok(m) if m.file_type().is_symlink() => std::fs::read_link(&next).ok(),
            Ok(_) => None,
            Err(_) => {
                exists = false;
                None
            }
        });
        match link {
            Some(target) => {
                followed += 1;
                if followed > MAX_LINKS {
                    return None;
                }
                if target.is_absolute() {
                    real = PathBuf::from("/");
                }
                rest.extend(components_reversed(&target));
            }
            None => real = next,
        }
    }
    Some(real.to_string_lossy().into_owned())
}

/// The normal and `..` components of `path`, last first (roots and `.` dropped).
fn components_reversed(path: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    parts.reverse();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_followed_wherever_they_are_in_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        std::fs::create_dir_all(d.join("secret/deep")).unwrap();
        std::fs::write(d.join("secret/key"), "k").unwrap();
        std::fs::create_dir(d.join("proj")).unwrap();
        symlink(d.join("secret/key"), d.join("proj/notes.txt")).unwrap();
        symlink("../secret", d.join("proj/shared")).unwrap();
        symlink("shared/deep/../key", d.join("proj/chain")).unwrap();
        symlink(d.join("secret/new-file"), d.join("proj/dangling")).unwrap();
        symlink("loop", d.join("proj/loop")).unwrap();

        let r = |p: &str| resolve(&s(&d.join(p)));
        assert_eq!(r("proj/notes.txt"), Some(s(&d.join("secret/key"))), "a link to a file");
        assert_eq!(r("proj/shared/key"), Some(s(&d.join("secret/key"))), "a link to a directory, relative");
        assert_eq!(r("proj/shared/not-yet/x.txt"), Some(s(&d.join("secret/not-yet/x.txt"))), "a file to be created through a link");
        assert_eq!(r("proj/chain"), Some(s(&d.join("secret/key"))), "a link through a link, `..` taken physically");
        assert_eq!(r("proj/dangling"), Some(s(&d.join("secret/new-file"))), "a dangling link leads where a write would go");
        assert_eq!(r("proj/shared/../elsewhere.txt"), Some(s(&d.join("elsewhere.txt"))), "`..` after a link climbs from its target");
        assert_eq!(r("proj/loop"), None);
        assert_eq!(r("proj/plain.txt"), Some(s(&d.join("proj/plain.txt"))), "no link: the path as written");
        assert_eq!(resolve("/"), Some("/".to_owned()));
    }
}
