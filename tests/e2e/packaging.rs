//! What a user installs: binaries `install` owns (not the build tree), upgrades while events
//! flow, the version, and the release tarball.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chronicle_e2e::{bash_event, elf_segments, needed_libraries, plugin_lib, query_db, set_mode, target_dir, PT_INTERP};

/// A user with a HOME of their own (no CHRONICLE_HOME: every default comes from HOME).
struct User {
    _dir: tempfile::TempDir,
    home: PathBuf,
}

impl Drop for User {
    fn drop(&mut self) {
        chronicle_e2e::stop_processes_under(&self.home);
    }
}

impl User {
    fn new() -> User {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        set_mode(&home, 0o700);
        std::fs::create_dir(home.join("run")).unwrap();
        set_mode(&home.join("run"), 0o700);
        User { _dir: dir, home }
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CHRONICLE_") || k.starts_with("CLAUDE") || k.starts_with("XDG_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", &self.home).env("XDG_RUNTIME_DIR", self.home.join("run"));
        c
    }

    fn run(&self, program: &Path, args: &[&str]) -> (i32, String, String) {
        let out = self.command(program).args(args).stdin(Stdio::null()).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The client the user settings register (every event has the same one).
    fn registered(&self) -> PathBuf {
        let text = std::fs::read_to_string(self.home.join(".claude/settings.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        PathBuf::from(v["hooks"]["PreToolUse"][0]["hooks"][0]["command"].as_str().unwrap())
    }

    /// Runs the registered hook command as Claude Code would.
    fn hook(&self, stdin: &[u8]) -> (i32, String) {
        let mut child = self.command(&self.registered()).arg("hook").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn data_dir(&self) -> PathBuf {
        self.home.join(".local/share/chronicle")
    }

    fn count(&self, sql: &str) -> i64 {
        query_db(&self.data_dir().join("chronicle.db"), sql)[0][0].parse().unwrap()
    }
}

/// A copy of the build (binaries and built-in plugins) in a directory of its own, as a checkout's
/// `target/release` would be. `tag` makes its binaries differ from another copy's bytes.
fn build_tree(dir: &Path, tag: &str) -> PathBuf {
    let tree = dir.join(format!("build-{tag}"));
    std::fs::create_dir_all(&tree).unwrap();
    for (b, from) in [("chronicle", chronicle_e2e::chronicle_bin()), ("chronicle-host", target_dir().join("chronicle-host"))] {
        let mut bytes = std::fs::read(from).unwrap();
        // Bytes past the end of an ELF file change its identity, not what it does.
        bytes.extend_from_slice(tag.as_bytes());
        std::fs::write(tree.join(b), bytes).unwrap();
        set_mode(&tree.join(b), 0o755);
    }
    for lib in ["chronicle_bash_guard", "chronicle_file_guard", "chronicle_secret_guard", "chronicle_session_context"] {
        let src = plugin_lib(lib);
        std::fs::copy(&src, tree.join(src.file_name().unwrap())).unwrap();
    }
    tree
}

#[test]
fn installed_hooks_survive_the_build_tree_being_removed() {
    let user = User::new();
    let scratch = tempfile::tempdir().unwrap();
    let tree = build_tree(scratch.path(), "a");
    let (code, out, err) = user.run(&tree.join("chronicle"), &["install"]);
    assert_eq!(code, 0, "{out}{err}");
    let owned = user.data_dir().join("bin");
    assert_eq!(user.registered(), owned.join("chronicle"), "install registers its own copy: {out}");
    assert!(owned.join("chronicle-host").is_file());

    // `cargo clean`: the build tree is gone; the guards are not.
    std::fs::remove_dir_all(&tree).unwrap();
    let (code, stdout) = user.hook(&bash_event("rm -rf ~"));
    assert_eq!(code, 0);
    assert!(stdout.contains("\"permissionDecision\":\"deny\""), "{stdout}");
    assert_eq!(user.count("SELECT count(*) FROM events WHERE decision = 'deny'"), 1);

    // doctor names the client it checked; uninstall removes the copy.
    let (_, doctor, _) = user.run(&owned.join("chronicle"), &["doctor"]);
    assert!(doctor.contains(&format!("{}", owned.join("chronicle").display())), "{doctor}");
    let (code, out, err) = user.run(&owned.join("chronicle"), &["uninstall"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!owned.exists(), "uninstall removes the binaries it installed: {out}");
}

#[test]
fn doctor_says_when_the_registered_client_is_another_build() {
    let user = User::new();
    let scratch = tempfile::tempdir().unwrap();
    let tree = build_tree(scratch.path(), "a");
    assert_eq!(user.run(&tree.join("chronicle"), &["install"]).0, 0);
    // A build of another version registered by hand, as an old install would have left it.
    let other = scratch.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("chronicle"), "#!/bin/sh\necho chronicle 0.0.1 '(commit 000000000000)'\n").unwrap();
    set_mode(&other.join("chronicle"), 0o755);
    let settings = user.home.join(".claude/settings.json");
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace(&*user.registered().to_string_lossy(), &other.join("chronicle").to_string_lossy());
    std::fs::write(&settings, text).unwrap();
    let (_, doctor, _) = user.run(&tree.join("chronicle"), &["doctor"]);
    let line = doctor.lines().find(|l| l.contains("client")).unwrap_or_default().to_owned();
    assert!(line.contains("0.0.1") && line.contains("not the copy"), "{doctor}");
}

/// An ordinary `cargo build` (this test's own build) gives the fast client on Linux/glibc: no
/// dynamic loader to run at every event.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_client_of_a_plain_cargo_build_is_static() {
    let (_, segments) = elf_segments(&target_dir().join("chronicle"));
    let interp = segments.iter().any(|s| s.0 == PT_INTERP);
    assert!(!interp, "the client asks for a dynamic loader (PT_INTERP): every event pays for it");
}

/// Loading libgcc_s.so.1 runs its `cpuid`-heavy constructor (~0.15 ms a start in a VM): the host
/// and the built-in plugins take the unwinder from the static archive instead (host/build.rs,
/// plugins/build.rs), and still ask for the C library (the reader is not blind).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_host_and_the_built_in_plugins_do_not_load_libgcc_s() {
    let dir = target_dir();
    let mut files = vec![dir.join("chronicle-host")];
    files.extend(["bash_guard", "file_guard", "secret_guard", "session_context"].map(|p| plugin_lib(&format!("chronicle_{p}"))));
    for file in files {
        let needed = needed_libraries(&file);
        assert!(needed.iter().any(|l| l.starts_with("libc.so")), "{}: {needed:?}", file.display());
        assert!(!needed.iter().any(|l| l.starts_with("libgcc_s")), "{} loads the shared unwinder: {needed:?}", file.display());
    }
    // A plugin built as a stranger would build it (a fixture) asks for it, and loads (other tests).
    assert!(needed_libraries(&plugin_lib("fixture_panic")).iter().any(|l| l.starts_with("libgcc_s")));
}

/// `chronicle-host` parses events and loads plugins: it is position-independent, so ASLR places
/// its code (README, "Building"). Only the client, which parses nothing, is at a fixed address.
#[cfg(target_os = "linux")]
#[test]
fn the_host_is_position_independent() {
    let bytes = std::fs::read(target_dir().join("chronicle-host")).unwrap();
    assert_eq!(&bytes[..6], &[0x7f, b'E', b'L', b'F', 2, 1], "a 64-bit little-endian ELF file");
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert_eq!(e_type, 3, "chronicle-host is not position-independent (ELF type {e_type}, not ET_DYN): its code has a fixed address");
}

#[test]
fn version_names_the_commit() {
    let user = User::new();
    let (code, out, _) = user.run(&chronicle_e2e::chronicle_bin(), &["--version"]);
    assert_eq!(code, 0);
    let commit = out.trim().trim_end_matches(')').rsplit(' ').next().unwrap_or_default().to_owned();
    assert!(out.starts_with("chronicle 0.") && out.contains("(commit "), "{out}");
    assert!(commit == "unknown" || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{out}");
}

/// `install` of a newer build while a session's events flow: no event lost or doubled.
#[test]
fn installing_a_newer_build_during_traffic_loses_nothing() {
    let user = Arc::new(User::new());
    let scratch = tempfile::tempdir().unwrap();
    let (old, new) = (build_tree(scratch.path(), "old"), build_tree(scratch.path(), "new"));
    assert_eq!(user.run(&old.join("chronicle"), &["install"]).0, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (user, stop) = (Arc::clone(&user), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (code, stdout) = user.hook(&bash_event(&format!("echo upgrade-c{c}-e{sent}")));
                    assert_eq!(code, 0, "{stdout}");
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(200));
        let tree = if i % 2 == 0 { &new } else { &old };
        let (code, out, err) = user.run(&tree.join("chronicle"), &["install"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    stop.store(true, Ordering::SeqCst);
    let sent: i64 = clients.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(sent >= 10, "{sent}");
    assert_eq!(user.count("SELECT count(*) FROM events"), sent, "every event once across 6 installs");
    assert_eq!(user.count("SELECT count(*) FROM (SELECT 1 FROM events GROUP BY payload HAVING count(*) > 1)"), 0);
}

/// The release tarball, unpacked into a clean HOME: install from it, delete it, events still
/// answered and recorded.
#[test]
fn the_release_tarball_installs_and_runs_an_event() {
    let root = target_dir().parent().unwrap().parent().unwrap().to_path_buf();
    // The build the tests run on (`cargo build --workspace`), packaged as a release would be.
    let profile = target_dir().file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new(root.join("scripts/package.sh")).env("PACKAGE_PROFILE", profile).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tarball = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap());
    let tarball = if tarball.is_absolute() { tarball } else { root.join(tarball) };
    let check = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && sha256sum -c --quiet {}.sha256",
            tarball.parent().unwrap().display(),
            tarball.file_name().unwrap().to_string_lossy()
        ))
        .status()
        .unwrap();
    assert!(check.success(), "the checksum matches");

    let user = User::new();
    let unpack = tempfile::tempdir().unwrap();
    assert!(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(unpack.path()).status().unwrap().success());
    let top = std::fs::read_dir(unpack.path()).unwrap().next().unwrap().unwrap().path();
    for want in [
        "bin/chronicle",
        "bin/chronicle-host",
        "include/chronicle_plugin.h",
        "share/man/man1/chronicle.1",
        "share/bash-completion/completions/chronicle",
        "share/zsh/site-functions/_chronicle",
        "share/fish/vendor_completions.d/chronicle.fish",
        "share/chronicle/plugin-api/Cargo.toml",
        "share/chronicle/plugin-api/src/lib.rs",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
    ] {
        assert!(top.join(want).is_file(), "{want} in the tarball");
    }
    let man = std::fs::read_to_string(top.join("share/man/man1/chronicle.1")).unwrap();
    assert!(man.starts_with(".ie") || man.contains(".TH chronicle"), "a roff page: {}", &man[..man.len().min(200)]);
    assert!(man.contains("install") && man.contains("doctor"), "the page lists the commands");
    let bash = std::fs::read_to_string(top.join("share/bash-completion/completions/chronicle")).unwrap();
    assert!(bash.contains("complete -F") && bash.contains("doctor"), "a bash completion for the commands");
    // A plugin author with only the tarball: the scaffold builds against its API copy.
    let scaffold = unpack.path().join("my-plugin");
    let (code, out, err) = user.run(&top.join("bin/chronicle"), &["new-plugin", "my-plugin", "--path", scaffold.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let manifest = std::fs::read_to_string(scaffold.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("share/chronicle/plugin-api"), "{manifest}");
    let (code, out, err) = user.run(&top.join("bin/chronicle"), &["install"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("installed plugin"), "the packaged plugins are installed: {out}");
    std::fs::remove_dir_all(&top).unwrap();
    let (code, stdout) = user.hook(&bash_event("rm -rf /"));
    assert_eq!(code, 0);
    assert!(stdout.contains("\"permissionDecision\":\"deny\""), "{stdout}");
    assert_eq!(user.count("SELECT count(*) FROM events"), 1);
}

/// A database written by a newer Chronicle: this build refuses it, and doctor says what to do.
#[test]
fn doctor_refuses_a_database_from_a_newer_chronicle_with_the_fix() {
    let env = chronicle_e2e::Env::new();
    env.hook(&bash_event("ls"));
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    conn.pragma_update(None, "user_version", version + 1).unwrap();
    drop(conn);
    let doctor = env.run(&["doctor"]);
    let line = doctor.stdout.lines().find(|l| l.contains("database")).unwrap_or_default().to_owned();
    assert!(line.contains("newer than this chronicle") && line.contains("upgrade chronicle"), "{}", doctor.stdout);
    assert_ne!(doctor.code, 0);
}

/// Client and host are one build (they speak a private protocol): doctor names a host of
/// another version beside the registered client.
#[test]
fn doctor_says_when_the_host_beside_the_client_is_another_build() {
    let user = User::new();
    let scratch = tempfile::tempdir().unwrap();
    let tree = build_tree(scratch.path(), "a");
    assert_eq!(user.run(&tree.join("chronicle"), &["install"]).0, 0);
    let host = user.data_dir().join("bin/chronicle-host");
    std::fs::remove_file(&host).unwrap();
    std::fs::write(&host, "#!/bin/sh\necho chronicle 9.9.9 '(commit 999999999999)'\n").unwrap();
    set_mode(&host, 0o755);
    let (_, doctor, _) = user.run(&tree.join("chronicle"), &["doctor"]);
    let line = doctor.lines().find(|l| l.contains("client")).unwrap_or_default().to_owned();
    assert!(line.contains("chronicle-host beside it is chronicle 9.9.9"), "{doctor}");
}

/// A registered client that needs the dynamic loader (a plain build on a machine without glibc's
/// static archives) works but is slower: doctor says so.
#[test]
fn doctor_says_when_the_registered_client_is_dynamically_linked() {
    let user = User::new();
    let scratch = tempfile::tempdir().unwrap();
    let tree = build_tree(scratch.path(), "a");
    assert_eq!(user.run(&tree.join("chronicle"), &["install"]).0, 0);
    // chronicle-host is a dynamically linked build of the same version that answers --version.
    let client = user.data_dir().join("bin/chronicle");
    std::fs::remove_file(&client).unwrap();
    std::fs::copy(user.data_dir().join("bin/chronicle-host"), &client).unwrap();
    let (_, doctor, _) = user.run(&tree.join("chronicle"), &["doctor"]);
    let line = doctor.lines().find(|l| l.contains("client")).unwrap_or_default().to_owned();
    assert!(line.contains("dynamically linked"), "{doctor}");
    assert!(!line.contains("not the copy"), "{doctor}");
}

/// The end-to-end tests run the client the release ships: `scripts/test.sh` names the musl build
/// (glibc's start costs a client ~0.7 ms of CPU in a virtual machine), and CI insists on it.
#[cfg(target_os = "linux")]
#[test]
fn the_tests_run_the_client_the_release_ships() {
    let named = std::env::var_os("CHRONICLE_E2E_CLIENT");
    assert!(named.is_some() || std::env::var_os("CI").is_none(), "CI runs the tests without the musl client");
    if named.is_some() {
        let bytes = std::fs::read(chronicle_e2e::chronicle_bin()).unwrap();
        let glibc = bytes.windows(14).any(|w| w == b"GLIBC_TUNABLES");
        assert!(!glibc, "CHRONICLE_E2E_CLIENT names a glibc build, not the musl one");
    }
}
