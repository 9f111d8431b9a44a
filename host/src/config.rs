//! Where things live and how the host behaves: defaults, the TOML config file, and the
//! environment variables that override both.
//!
//! Resolution order for every setting: built-in default < config file < environment.
//! `CHRONICLE_HOME` moves every default (config, database, plugins, logs) under one directory;
//! otherwise the XDG directories are used. This module reads the environment and the config file
//! but never opens the database or a plugin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where in the data directory host processes keep their in-flight markers
/// (`chronicle::plugin::inflight`); the client looks there after a host it ran has ended.
pub const INFLIGHT_DIR: &str = "inflight";

/// Environment variables the host reads (documented in README.md).
pub mod env {
    pub const HOME: &str = "CHRONICLE_HOME";
    pub const CONFIG: &str = "CHRONICLE_CONFIG";
    pub const DB: &str = "CHRONICLE_DB";
    pub const PLUGIN_PATH: &str = "CHRONICLE_PLUGIN_PATH";
    pub const LOG: &str = "CHRONICLE_LOG";
    pub const PROJECT_DIR: &str = "CLAUDE_PROJECT_DIR";
    pub const RESIDENT: &str = "CHRONICLE_RESIDENT";
    pub const RESIDENT_IDLE: &str = "CHRONICLE_RESIDENT_IDLE_S";
    /// The team database (`[sync] url`).
    pub const SYNC_URL: &str = "CHRONICLE_SYNC_URL";
    /// This machine's name in the team database (`[sync] machine`).
    pub const MACHINE: &str = "CHRONICLE_MACHINE";
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no home directory found; set CHRONICLE_HOME")]
    NoHome,
}

/// Performance thresholds; a breach is recorded as a violation (seed defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    pub hook_execution_ms: f64,
    pub security_validation_ms: f64,
    pub cache_operation_ms: f64,
    pub database_operation_ms: f64,
    /// In MiB (the name is the original's): per plugin call, its peak heap; per event, how far
    /// the host's peak RSS rose once the event's plugins were loaded.
    pub memory_growth_mb: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            hook_execution_ms: 100.0,
            security_validation_ms: 5.0,
            cache_operation_ms: 1.0,
            database_operation_ms: 50.0,
            memory_growth_mb: 5.0,
        }
    }
}

/// The `[hook]` section: limits of one invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookSettings {
    /// Bytes of stdin kept; the rest is drained and the event recorded truncated.
    pub max_input_bytes: usize,
    /// How long to wait for stdin to reach EOF.
    pub read_timeout_ms: u64,
    /// Per-plugin deadline when the plugin does not declare one.
    pub plugin_timeout_ms: u64,
    /// Total time all plugins of one event may take (SessionEnd gets at most 1000 ms: Claude
    /// Code gives all SessionEnd hooks 1.5 s together).
    pub dispatch_budget_ms: u64,
    /// Characters kept in `additionalContext`, `systemMessage` and reasons (Claude Code caps at 10,000).
    pub max_text_chars: usize,
    /// Hand events to a resident host (`chronicle serve`, started on demand) instead of loading
    /// plugins and the database in every hook process.
    pub resident: bool,
    /// Seconds a resident host waits for its next event before exiting.
    pub resident_idle_s: u64,
    /// What a merged `ask` becomes where nobody can be asked (`permission_mode`
    /// `bypassPermissions`, `dontAsk` or `auto`): `deny` (default) or `ask` (passed through).
    pub unattended_ask: UnattendedAsk,
    /// A plugin that timed out on this many calls in a row is suspended (0: never).
    pub suspend_after_timeouts: u32,
    /// How long a suspension lasts (or until the plugin's file changes).
    pub suspend_s: u64,
}

/// What a guard's `ask` becomes in a permission mode in which no person is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnattendedAsk {
    /// The ask is answered `deny`, its reason saying what would have been asked.
    Deny,
    /// The ask is passed to Claude Code as it is (which may approve it silently).
    Ask,
}

impl UnattendedAsk {
    pub fn as_str(self) -> &'static str {
        match self {
            UnattendedAsk::Deny => "deny",
            UnattendedAsk::Ask => "ask",
        }
    }
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            max_input_bytes: 10 * 1024 * 1024,
            read_timeout_ms: 2000,
            plugin_timeout_ms: 1000,
            dispatch_budget_ms: 5000,
            max_text_chars: 9_500,
            resident: true,
            resident_idle_s: 1800,
            unattended_ask: UnattendedAsk::Deny,
            suspend_after_timeouts: 3,
            suspend_s: 600,
        }
    }
}

/// The `[log]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Log file; empty means stderr.
    pub file: Option<PathBuf>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: "warn".into(), file: None }
    }
}

/// The `[sync]` section: pushing this machine's rows to the team's PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// `postgresql://user@host:port/db?sslmode=...` (env `CHRONICLE_SYNC_URL` wins). The password
    /// may be in it, in `PGPASSWORD` or in `~/.pgpass`; it is never stored or shown.
    pub url: Option<String>,
    /// This machine's name in the team database (env `CHRONICLE_MACHINE` wins; default: the
    /// host name).
    pub machine: Option<String>,
    /// Seconds between the resident host's background pushes.
    pub interval_s: u64,
    /// `disable`, `prefer` (default), `require`, `verify-ca` or `verify-full`; an `sslmode` in
    /// the URL wins.
    pub sslmode: Option<String>,
    /// The CA certificates (PEM) that `verify-ca`/`verify-full` trust (an `sslrootcert` in the
    /// URL wins; default `~/.postgresql/root.crt`).
    pub ca_file: Option<PathBuf>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings { url: None, machine: None, interval_s: 30, sslmode: None, ca_file: None }
    }
}

/// The config file as written by a person (every key optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub database: Option<PathBuf>,
    pub plugin_dirs: Option<Vec<PathBuf>>,
    pub hook: HookSettings,
    pub thresholds: Thresholds,
    pub log: LogSettings,
    /// Extra redaction patterns (regular expressions) applied before storing.
    pub redact_patterns: Vec<String>,
    /// Plugins (by name) that are never loaded.
    pub disabled_plugins: Vec<String>,
    /// Per-plugin sections, passed as JSON to each plugin's `init`.
    pub plugins: BTreeMap<String, toml::Value>,
    pub sync: SyncSettings,
}

/// The effective configuration of one invocation.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub db_path: PathBuf,
    pub plugin_dirs: Vec<PathBuf>,
    pub file: FileConfig,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The kernel's host name (`unknown` if it has none).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let mut buf = [0u8; 256];
            // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
            let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
            (rc == 0).then(|| String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn home_dir() -> Option<PathBuf> {
    env_path("HOME")
}

fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    env_path(var).or_else(|| home_dir().map(|h| h.join(fallback)))
}

impl Config {
    /// The default config file location (`$CHRONICLE_HOME/config.toml` or the XDG config dir).
    pub fn default_config_path() -> Option<PathBuf> {
        if let Some(home) = env_path(env::HOME) {
            return Some(home.join("config.toml"));
        }
        xdg("XDG_CONFIG_HOME", ".config").map(|d| d.join("chronicle").join("config.toml"))
    }

    /// Loads the effective config. `explicit` (from `--config`) wins over `CHRONICLE_CONFIG`,
    /// which wins over the default location; only an explicitly named file must exist.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let named = explicit.map(Path::to_path_buf).or_else(|| env_path(env::CONFIG));
        let must_exist = named.is_some();
        let path = named.or_else(Self::default_config_path);
        let (file, config_file) = match &path {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => (Self::parse(&text, p)?, Some(p.clone())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => (FileConfig::default(), None),
                Err(source) => return Err(ConfigError::Read { path: p.clone(), source }),
            },
            None => (FileConfig::default(), None),
        };
        Self::from_file(file, config_file)
    }

    /// Defaults and environment only, ignoring any config file.
    pub fn without_file() -> Result<Config, ConfigError> {
        Self::from_file(FileConfig::default(), None)
    }

    /// Defaults with every path under `dir` (no environment, no file).
    pub fn in_dir(dir: &Path) -> Config {
        Config {
            home: Some(dir.to_owned()),
            config_file: None,
            data_dir: dir.to_owned(),
            db_path: dir.join("chronicle.db"),
            plugin_dirs: vec![dir.join("plugins")],
            file: FileConfig::default(),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string().trim().to_owned() })
    }

    /// The data directory (`$CHRONICLE_HOME`, else the XDG data dir): from the environment only.
    pub fn data_dir_from_env() -> Result<PathBuf, ConfigError> {
        match env_path(env::HOME) {
            Some(h) => Ok(h),
            None => Ok(xdg("XDG_DATA_HOME", ".local/share").ok_or(ConfigError::NoHome)?.join("chronicle")),
        }
    }

    fn from_file(file: FileConfig, config_file: Option<PathBuf>) -> Result<Config, ConfigError> {
        let home = env_path(env::HOME);
        let data_dir = Self::data_dir_from_env()?;
        let db_path = env_path(env::DB).or_else(|| file.database.clone()).unwrap_or_else(|| data_dir.join("chronicle.db"));
        let plugin_dirs = match std::env::var_os(env::PLUGIN_PATH) {
            Some(list) => std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect(),
            None => match &file.plugin_dirs {
                Some(dirs) => dirs.clone(),
                None => {
                    let mut dirs = vec![data_dir.join("plugins")];
                    if let Some(project) = env_path(env::PROJECT_DIR) {
                        dirs.push(project.join(".claude").join("chronicle").join("plugins"));
                    }
                    dirs
                }
            },
        };
        Ok(Config { home, config_file, data_dir, db_path, plugin_dirs, file })
    }

    /// The user plugin directory (where `install` puts the built-in plugins).
    pub fn user_plugin_dir(&self) -> PathBuf {
        self.data_dir.join("plugins")
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.file.hook.read_timeout_ms)
    }

    /// The team database's URL: `CHRONICLE_SYNC_URL`, else `[sync] url`.
    pub fn sync_url(&self) -> Option<String> {
        std::env::var(env::SYNC_URL).ok().filter(|v| !v.is_empty()).or_else(|| self.file.sync.url.clone())
    }

    /// This machine's name in the team database: `CHRONICLE_MACHINE`, `[sync] machine`, else
    /// the host name.
    pub fn machine(&self) -> String {
        std::env::var(env::MACHINE).ok().filter(|v| !v.is_empty()).or_else(|| self.file.sync.machine.clone()).unwrap_or_else(host_name)
    }

    /// What a plugin's `init` receives: its section, wrapped with its data directory when its
    /// glue understands the envelope (`context`; plugin-api ≥ 1.1).
    #[cfg(feature = "host")]
    pub fn plugin_init_json(&self, plugin: &str, context: bool) -> String {
        let section = self.plugin_config_json(plugin);
        if !context {
            return section;
        }
        let dir = self.plugin_data_dir(plugin);
        format!(
            "{{\"{}\":1,\"config\":{section},\"data_dir\":{}}}",
            chronicle_plugin_api::glue::INIT_ENVELOPE,
            serde_json::Value::String(dir.to_string_lossy().into_owned())
        )
    }

    /// A plugin's own directory: `<data dir>/plugin-data/<name>` (a name's characters other
    /// than letters, digits, `-`, `_` and `.` become `_`, so no name leaves the folder).
    pub fn plugin_data_dir(&self, plugin: &str) -> PathBuf {
        let mut safe: String =
            plugin.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
        if safe.chars().all(|c| c == '.') {
            safe = safe.replace('.', "_");
        }
        self.data_dir.join("plugin-data").join(safe)
    }

    /// A plugin's config section as JSON text (`null` when absent).
    pub fn plugin_config_json(&self, plugin: &str) -> String {
        self.file.plugins.get(plugin).and_then(|v| serde_json::to_string(v).ok()).unwrap_or_else(|| "null".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_data_dirs_stay_inside_plugin_data() {
        let c = Config::in_dir(Path::new("/d"));
        assert_eq!(c.plugin_data_dir("bash-guard"), Path::new("/d/plugin-data/bash-guard"));
        assert_eq!(c.plugin_data_dir("../../etc"), Path::new("/d/plugin-data/.._.._etc"));
        assert_eq!(c.plugin_data_dir(".."), Path::new("/d/plugin-data/__"));
        assert_eq!(c.plugin_data_dir("a/b"), Path::new("/d/plugin-data/a_b"));
    }

    #[test]
    fn unknown_keys_are_reported() {
        let err = Config::parse("[hook]\nmax_input_byts = 5\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("max_input_byts"), "{err}");
    }

    #[test]
    fn sections_parse_with_defaults_for_the_rest() {
        let f = Config::parse("[hook]\nplugin_timeout_ms = 50\n[plugins.bash-guard]\nextra = [\"x\"]\n", Path::new("c.toml")).unwrap();
        assert_eq!(f.hook.plugin_timeout_ms, 50);
        assert_eq!(f.hook.max_input_bytes, 10 * 1024 * 1024);
        assert_eq!(f.thresholds.hook_execution_ms, 100.0);
        assert!(f.plugins.contains_key("bash-guard"));
    }
}
