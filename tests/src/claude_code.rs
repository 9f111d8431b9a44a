//! The real Claude Code client, for the end-to-end suite that judges the hook contract: the
//! pinned npm release (`tests/claude-code.version`) installed by `scripts/claude-code.sh` into
//! `target/claude-code`, run as `claude -p` in a throwaway HOME where `chronicle install`
//! registered the hooks, against [`crate::fake_api::FakeApi`] on loopback.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_api::{FakeApi, Turn};

/// The pinned version (the file `scripts/claude-code.sh` installs from).
pub fn pinned_version() -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("claude-code.version");
    std::fs::read_to_string(&file).expect("tests/claude-code.version").trim().to_owned()
}

/// Where `scripts/claude-code.sh` installs the client.
fn install_dir() -> PathBuf {
    crate::target_dir().parent().expect("target/").join("claude-code")
}

/// The client to run, or None (with a message on stderr) when the install script could not
/// reach the npm registry. Missing for any other reason is a failure, not a skip.
pub fn client() -> Option<PathBuf> {
    if let Some(own) = std::env::var_os("CHRONICLE_CLAUDE_BIN") {
        return Some(PathBuf::from(own));
    }
    let dir = install_dir();
    let bin = dir.join("node_modules/.bin/claude");
    if bin.exists() {
        // The suite judges the pinned release, not whatever an older run left here.
        static CHECKED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let version = CHECKED.get_or_init(|| {
            let out = Command::new(&bin).arg("--version").output().expect("claude --version");
            String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned()
        });
        assert_eq!(*version, pinned_version(), "{} is not the pinned release: run scripts/claude-code.sh", bin.display());
        return Some(bin);
    }
    if let Ok(why) = std::fs::read_to_string(dir.join("unreachable")) {
        eprintln!("SKIPPED: the real Claude Code client is not installed: {}", why.trim());
        return None;
    }
    panic!("{} is missing: run scripts/claude-code.sh (scripts/test.sh does)", bin.display());
}

/// One throwaway user with Chronicle installed and a git project to work in.
pub struct Session {
    _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub api: FakeApi,
    claude: PathBuf,
    debug_logs: std::cell::Cell<usize>,
}

/// What one `claude -p` run did.
#[derive(Debug)]
pub struct ClaudeRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Claude Code's own debug log for the run (`--debug-file`).
    pub debug_log: String,
    pub elapsed: Duration,
}

impl Session {
    /// A session whose model follows `script`; None when the client is unavailable (see
    /// [`client`]). `config` is Chronicle's config.toml, if any.
    pub fn new(script: Vec<Turn>, config: Option<&str>) -> Option<Session> {
        let claude = client()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let project = dir.path().join("project");
        for d in [&home, &project, &home.join("run")] {
            std::fs::create_dir_all(d).expect("mkdir");
            crate::set_mode(d, 0o700);
        }
        let s = Session { _dir: dir, home, project, api: FakeApi::start(script), claude, debug_logs: std::cell::Cell::new(0) };
        s.git(&["init", "-q", "-b", "main"]);
        std::fs::write(s.project.join("README.md"), "a project\n").expect("write");
        s.git(&["add", "."]);
        s.git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "start"]);
        if let Some(c) = config {
            let dir = s.home.join(".config/chronicle");
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join("config.toml"), c).expect("write config");
        }
        let out = s.chronicle(&["install"]).output().expect("chronicle install");
        assert!(out.status.success(), "install: {}", String::from_utf8_lossy(&out.stderr));
        Some(s)
    }

    fn env(&self, c: &mut Command) {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("CHRONICLE_") || k.starts_with("CLAUDE") || k.starts_with("ANTHROPIC_") || k.starts_with("XDG_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", &self.home).env("XDG_RUNTIME_DIR", self.home.join("run")).env("NO_COLOR", "1");
    }

    /// `chronicle ARGS` as this user.
    pub fn chronicle(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::chronicle_bin());
        self.env(&mut c);
        c.args(args).current_dir(&self.project);
        c
    }

    pub fn git(&self, args: &[&str]) {
        let ok = Command::new("git").args(args).current_dir(&self.project).env("HOME", &self.home).status().expect("git").success();
        assert!(ok, "git {args:?}");
    }

    /// `claude -p PROMPT --permission-mode MODE EXTRA…` against the fake API.
    pub fn claude(&self, prompt: &str, mode: &str, extra: &[&str]) -> ClaudeRun {
        let n = self.debug_logs.get();
        self.debug_logs.set(n + 1);
        let debug_file = self.home.join(format!("claude-debug-{n}.log"));
        let mut c = Command::new(&self.claude);
        self.env(&mut c);
        c.args(["-p", prompt, "--permission-mode", mode, "--debug-file"])
            .arg(&debug_file)
            .args(extra)
            .current_dir(&self.project)
            .env("ANTHROPIC_BASE_URL", self.api.base_url())
            .env("ANTHROPIC_API_KEY", "sk-ant-fake-key-for-tests")
            // As root, Claude Code refuses bypassPermissions outside a sandbox; this is one.
            .env("IS_SANDBOX", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = c.spawn().expect("spawn claude");
        let read = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let stdout = read(Box::new(child.stdout.take().expect("stdout")));
        let stderr = read(Box::new(child.stderr.take().expect("stderr")));
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for claude") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                break child.wait().expect("wait for claude");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = std::process::Output {
            status,
            stdout: stdout.join().unwrap_or_default().into_bytes(),
            stderr: stderr.join().unwrap_or_default().into_bytes(),
        };
        ClaudeRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            debug_log: std::fs::read_to_string(&debug_file).unwrap_or_default(),
            elapsed: started.elapsed(),
        }
    }

    /// Chronicle's data directory for this user (the XDG default under HOME).
    pub fn data_dir(&self) -> PathBuf {
        self.home.join(".local/share/chronicle")
    }

    /// Rows of a query on this user's database, every column as text.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        crate::query_db(&self.data_dir().join("chronicle.db"), sql)
    }

    /// Waits until `sql` (a count) reaches `want`: async hooks finish after `claude` exits.
    pub fn wait_count(&self, sql: &str, want: i64, limit: Duration) -> i64 {
        let deadline = Instant::now() + limit;
        loop {
            let n = self.query(sql).first().and_then(|r| r[0].parse().ok()).unwrap_or(0);
            if n >= want || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The settings `chronicle install` wrote.
    pub fn settings(&self) -> Value {
        let text = std::fs::read_to_string(self.home.join(".claude/settings.json")).expect("settings.json");
        serde_json::from_str(&text).expect("settings JSON")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.project.join(rel)
    }

    pub fn home_path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }
}

/// The lines of Claude Code's debug log that say a hook went wrong.
pub fn hook_trouble(debug_log: &str) -> Vec<&str> {
    debug_log
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            (l.contains("hook") && (l.contains("cancelled") || l.contains("error") || l.contains("failed") || l.contains("timed out")))
                && !l.contains("hook_registered")
        })
        .collect()
}
