//! A throwaway PostgreSQL cluster for the team-sync tests: `initdb` and `pg_ctl` in a temporary
//! directory, listening on a free loopback port, stopped when dropped. No mocks.
//!
//! initdb refuses to run as root, so as root the cluster belongs to `nobody` (`runuser`).
//! The binaries come from `CHRONICLE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`
//! (Debian's layout; `scripts/test.sh` installs the package when it is missing).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The superuser's password in every test cluster.
pub const PASSWORD: &str = "t3am-s3cret";
pub const USER: &str = "chronicle";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_nobody: bool,
    stopped: bool,
}

/// Where the server binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHRONICLE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).expect(
        "PostgreSQL server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): scripts/test.sh installs Debian's \
         postgresql package, or set CHRONICLE_PG_BIN",
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Cluster {
    /// A new cluster with superuser `chronicle` (password [`PASSWORD`], scram-sha-256) and TCP
    /// on 127.0.0.1. `settings` are extra `-c name=value` server settings.
    pub fn start(settings: &[&str]) -> Cluster {
        let bin = bin_dir();
        let as_nobody = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new().prefix("chronicle-pg-").tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pw"), PASSWORD).expect("password file");
        if as_nobody {
            chown_nobody(dir.path());
            chown_nobody(&dir.path().join("pw"));
        }
        let mut c = Cluster { dir, bin, port: free_port(), as_nobody, stopped: false };
        let data = c.data();
        let pw = c.dir.path().join("pw");
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-U",
                USER,
                "--pwfile",
                pw.to_str().expect("utf-8 path"),
                "-A",
                "scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        c.start_server(settings);
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory a test may put files in that the server can read (TLS keys).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn chown_for_server(&self, path: &Path) {
        if self.as_nobody {
            chown_nobody(path);
        }
    }

    fn start_server(&mut self, settings: &[&str]) {
        // The free port may be taken between our probe and the server's bind (tests run in
        // parallel): another port then.
        for _ in 0..5 {
            if self.try_start_server(settings) {
                return;
            }
            let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            if !log.contains("could not bind") && !log.contains("already in use") {
                break;
            }
            self.port = free_port();
        }
        panic!("PostgreSQL did not start; its log:\n{}", std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default());
    }

    fn try_start_server(&mut self, settings: &[&str]) -> bool {
        let mut opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        for s in settings {
            opts.push_str(&format!(" -c {s}"));
        }
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let _ = std::fs::remove_file(&log);
        self.try_run(
            "pg_ctl",
            &["-D", data.to_str().expect("utf-8"), "-l", log.to_str().expect("utf-8"), "-o", &opts, "-w", "-t", "60", "start"],
        )
    }

    /// Stops the server (fast shutdown) and starts it again with the same data.
    pub fn restart(&mut self, settings: &[&str]) {
        self.stop();
        self.stopped = false;
        self.start_server(settings);
    }

    pub fn stop(&mut self) {
        if !self.stopped {
            let data = self.data();
            self.try_run("pg_ctl", &["-D", data.to_str().expect("utf-8"), "-m", "fast", "-w", "stop"]);
            self.stopped = true;
        }
    }

    /// `postgresql://chronicle:<password>@127.0.0.1:<port>/<db>?sslmode=disable`
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://{USER}:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// The same without the password.
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgresql://{USER}@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// Runs SQL through `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, "-d", db])
            .args(["-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
    }

    fn command(&self, tool: &str) -> Command {
        if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        }
    }

    fn try_run(&self, tool: &str, args: &[&str]) -> bool {
        let out = self.command(tool).args(args).current_dir(self.dir.path()).output().expect("PostgreSQL tool runs");
        if !out.status.success() {
            eprintln!("{tool} {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        out.status.success()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        assert!(self.try_run(tool, args), "{tool} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.stopped {
            let data = self.data();
            let _ = self.command("pg_ctl").args(["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"]).output();
        }
    }
}

fn chown_nobody(path: &Path) {
    let status = Command::new("chown").args(["nobody:nogroup"]).arg(path).status().expect("chown runs");
    assert!(status.success(), "chown nobody {}", path.display());
}
