//! Path normalisation for guard plugins: policy must match the path the tool will touch, not
//! the spelling it was given. Purely lexical (never touches the filesystem, never resolves
//! symlinks): `~` and `$HOME` expand, Windows backslashes and drive letters become `/`-paths,
//! relative paths join the working directory, `.`/`..`/`//` collapse.

/// The normalised absolute form of `raw` as seen from `cwd`, with `home` for `~`.
pub fn normalize(raw: &str, cwd: &str, home: &str) -> String {
    let p = absolute(raw, cwd, home);
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `raw` as an absolute path seen from `cwd`, with `home` for `~`, its `..` kept: for a guard
/// that follows symbolic links, where `link/..` is the parent of the link's target.
pub fn absolute(raw: &str, cwd: &str, home: &str) -> String {
    let mut p = raw.trim().replace('\\', "/");
    // "C:/Users/x" -> "/c/Users/x" (drive letters as a top-level directory).
    let bytes = p.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        p = format!("/{}{}", (bytes[0] as char).to_ascii_lowercase(), &p[2..]);
    }
    for prefix in ["${HOME}", "$HOME"] {
        if p == prefix || p.starts_with(&format!("{prefix}/")) {
            p = format!("{home}{}", &p[prefix.len()..]);
        }
    }
    if p == "~" || p.starts_with("~/") {
        p = format!("{home}{}", &p[1..]);
    }
    if !p.starts_with('/') {
        p = format!("{cwd}/{p}");
    }
    p
}

/// True when `path` is `dir` or inside it (both normalised).
pub fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.starts_with(&format!("{dir}/"))
}

/// True when `raw` uses `..` to climb out of `base` (after normalisation).
pub fn escapes(raw: &str, cwd: &str, home: &str, base: &str) -> bool {
    raw.replace('\\', "/").split('/').any(|s| s == "..") && !is_within(&normalize(raw, cwd, home), base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_every_spelling() {
        let n = |s| normalize(s, "/p/proj", "/home/u");
        assert_eq!(n("../../etc/passwd"), "/etc/passwd");
        assert_eq!(n("/p/proj/src/../../../etc/shadow"), "/etc/shadow");
        assert_eq!(n("~/.ssh/id_rsa"), "/home/u/.ssh/id_rsa");
        assert_eq!(n("$HOME/.aws/credentials"), "/home/u/.aws/credentials");
        assert_eq!(n("//etc///passwd"), "/etc/passwd");
        assert_eq!(n("C:\\Users\\me\\.ssh\\id_rsa"), "/c/Users/me/.ssh/id_rsa");
        assert_eq!(n("src/./main.rs"), "/p/proj/src/main.rs");
        assert_eq!(n("/../.."), "/");
        assert_eq!(absolute("~/a/../b", "/p", "/home/u"), "/home/u/a/../b");
        assert_eq!(absolute("src/../x", "/p/proj", "/h"), "/p/proj/src/../x");
    }

    #[test]
    fn within_and_escapes() {
        assert!(is_within("/p/proj/a", "/p/proj"));
        assert!(is_within("/p/proj", "/p/proj/"));
        assert!(!is_within("/p/project2", "/p/proj"));
        assert!(escapes("../x", "/p/proj", "/h", "/p/proj"));
        assert!(!escapes("a/../b", "/p/proj", "/h", "/p/proj"));
        assert!(!escapes("/etc/passwd", "/p/proj", "/h", "/p/proj"));
    }
}
