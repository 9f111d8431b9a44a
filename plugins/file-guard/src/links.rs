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

/// Entries looked at when searching for a file's other names: a bound on the cost of a call
/// (a password store can be large).
const MAX_ENTRIES: usize = 4096;
/// Directory levels searched below each place.
const MAX_DEPTH: usize = 4;

/// Another name of the regular file at `path`, if it has several (hard links) and one of them
/// lies in (or is) one of `places`. A hard link is the same file under a second name: reading
/// `notes.txt` made a link to `~/.ssh/id_ed25519` reads the key. Only the places a guard
/// cares about are searched, and only for a file with more than one name (most have one).
pub fn other_name(path: &str, places: &[String]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::metadata(path).ok().filter(|m| m.is_file() && m.nlink() > 1)?;
    let same = |m: &std::fs::Metadata| m.is_file() && m.dev() == file.dev() && m.ino() == file.ino();
    let mut seen = 0;
    // (directory or file, depth), walked without following links: a link is judged by `resolve`.
    let mut todo: Vec<(std::path::PathBuf, usize)> = places.iter().map(|p| (PathBuf::from(p), 0)).collect();
    while let Some((at, depth)) = todo.pop() {
        seen += 1;
        if seen > MAX_ENTRIES {
            return None;
        }
        let Ok(meta) = std::fs::symlink_metadata(&at) else { continue };
        if same(&meta) && at != Path::new(path) {
            return Some(at.to_string_lossy().into_owned());
        }
        if meta.is_dir() && depth < MAX_DEPTH {
            if let Ok(entries) = std::fs::read_dir(&at) {
                todo.extend(entries.filter_map(Result::ok).map(|e| (e.path(), depth + 1)));
            }
        }
    }
    None
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

    #[test]
    fn a_hard_link_is_found_among_the_places_searched() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        std::fs::create_dir_all(d.join("home/.gnupg/private-keys-v1.d")).unwrap();
        std::fs::create_dir(d.join("proj")).unwrap();
        let key = d.join("home/.gnupg/private-keys-v1.d/ABC.key");
        std::fs::write(&key, "k").unwrap();
        std::fs::hard_link(&key, d.join("proj/notes.txt")).unwrap();
        std::fs::write(d.join("proj/plain.txt"), "p").unwrap();
        std::fs::hard_link(d.join("proj/plain.txt"), d.join("proj/plain-too.txt")).unwrap();

        let places = vec![s(&d.join("home/.gnupg")), s(&d.join("home/.ssh"))];
        assert_eq!(other_name(&s(&d.join("proj/notes.txt")), &places), Some(s(&key)));
        assert_eq!(other_name(&s(&key), &places), None, "a file is not its own other name");
        assert_eq!(other_name(&s(&d.join("proj/plain.txt")), &places), None, "other names elsewhere are not searched for");
        assert_eq!(other_name(&s(&d.join("proj/missing.txt")), &places), None);
        assert_eq!(other_name(&s(&d.join("proj")), &places), None, "directories have several links of their own");
        let file_place = vec![s(&key)];
        assert_eq!(other_name(&s(&d.join("proj/notes.txt")), &file_place), Some(s(&key)), "a place can be a file");
    }
}
