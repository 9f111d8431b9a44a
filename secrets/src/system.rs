//! Where the system's own files live: no project's to change. file-guard refuses the file
//! tools' writes there, and bash-guard asks before a shell command's (`> /etc/hosts`, `tee`,
//! `truncate`, `cp` into `/usr/bin`; setting up a container can be the task, and the user can
//! say so), with the same exceptions, so the shell is no quiet way around the file tools.
//!
//! Paths are judged lexically, after the caller has normalised them, like [`crate::files`].

use crate::files::is_within;

/// Top-level directories whose files belong to the system (on Linux, macOS, and Windows as
/// Git Bash spells it).
pub const SYSTEM_DIRS: &[&str] = &[
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
    // macOS: `/etc` and `/var` are links to these.
    "/private/etc",
    "/private/var",
    "/c/Windows",
    "/c/Program Files",
];

/// Places inside those that are anyone's to write: the shared temporary directory, and the
/// devices and descriptors a command's output is sent to.
const SCRATCH: &[&str] =
    &["/var/tmp", "/private/var/tmp", "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd", "/dev/shm", "/proc/self/fd"];

/// Whether writing the normalised `path` changes the system. `home` is the user's home
/// directory: root's is `/root`, a home and not the system's. `projects` are the project's
/// directories: one under a system directory (`/opt/app`, `/var/www/site`, `/root/proj`) is
/// the project's to change, but a project that is a system directory, or holds one (`/`), is
/// no licence to change the system.
pub fn changes_system(path: &str, home: &str, projects: &[String]) -> bool {
    let home = home.trim_end_matches('/');
    let system = |dir: &str| SYSTEM_DIRS.iter().any(|s| is_within(dir, s) && *s != home);
    let holds_system = |dir: &str| SYSTEM_DIRS.iter().any(|s| is_within(s, dir));
    if !system(path) || SCRATCH.iter().any(|s| is_within(path, s)) {
        return false;
    }
    !projects.iter().any(|p| is_within(path, p) && !holds_system(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_files_outside_a_project_of_their_own_are_the_systems() {
        let projects = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let changes = |path: &str, home: &str, p: &[&str]| changes_system(path, home, &projects(p));
        for path in ["/etc/hosts", "/usr/bin/env", "/var/lib/dpkg/status", "/root/.bashrc", "/dev/sda1", "/sys/kernel/x"] {
            assert!(changes(path, "/home/dev", &["/home/dev/p"]), "{path}");
        }
        for path in ["/dev/null", "/dev/fd/2", "/var/tmp/x", "/tmp/x", "/home/dev/p/x", "/proc/self/fd/1"] {
            assert!(!changes(path, "/home/dev", &["/home/dev/p"]), "{path}");
        }
        assert!(!changes("/root/.bashrc", "/root", &["/root/p"]), "root's home is a home");
        assert!(!changes("/opt/app/main.py", "/home/dev", &["/opt/app"]));
        assert!(changes("/opt/other/x", "/home/dev", &["/opt/app"]));
        assert!(changes("/etc/hosts", "/home/dev", &["/etc"]), "a project that is a system directory");
        assert!(changes("/usr/bin/x", "/home/dev", &["/"]), "a project that holds them all");
    }
}
