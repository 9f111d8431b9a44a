//! `chronicle config show`: the effective configuration and where each value came from.

use std::process::ExitCode;

use chronicle::config::{env, Config, FileConfig};

fn file_keys(config: &Config) -> toml::Table {
    config
        .config_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.parse::<toml::Table>().ok())
        .unwrap_or_default()
}

pub fn show(config: &Config) -> anyhow::Result<ExitCode> {
    let table = file_keys(config);
    let in_file = |section: &str, key: &str| -> bool {
        if section.is_empty() {
            table.contains_key(key)
        } else {
            table.get(section).and_then(|s| s.as_table()).is_some_and(|s| s.contains_key(key))
        }
    };
    let src = |section: &str, key: &str| if in_file(section, key) { "config file" } else { "default" };
    let mut out = String::new();
    out.push_str(&format!(
        "# config file: {}\n",
        config.config_file.as_ref().map_or_else(
            || format!("none ({} does not exist)", Config::default_config_path().map(|p| p.display().to_string()).unwrap_or_default()),
            |p| p.display().to_string()
        )
    ));
    out.push_str(&format!(
        "# data directory: {}{}\n\n",
        config.data_dir.display(),
        if config.home.is_some() { " (CHRONICLE_HOME)" } else { "" }
    ));

    let db_src = if std::env::var_os(env::DB).is_some() { "env CHRONICLE_DB" } else { src("", "database") };
    out.push_str(&format!("database = {:?}  # {db_src}\n", config.db_path.display().to_string()));
    let dirs_src = if std::env::var_os(env::PLUGIN_PATH).is_some() { "env CHRONICLE_PLUGIN_PATH" } else { src("", "plugin_dirs") };
    let dirs: Vec<String> = config.plugin_dirs.iter().map(|d| format!("{:?}", d.display().to_string())).collect();
    out.push_str(&format!("plugin_dirs = [{}]  # {dirs_src}\n", dirs.join(", ")));
    let f: &FileConfig = &config.file;
    out.push_str(&format!("disabled_plugins = {:?}  # {}\n", f.disabled_plugins, src("", "disabled_plugins")));
    out.push_str(&format!("redact_patterns = {}  # {}\n", toml::Value::try_from(&f.redact_patterns)?, src("", "redact_patterns")));

    let sections: [(&str, toml::Value); 3] = [
        ("hook", toml::Value::try_from(&f.hook)?),
        ("thresholds", toml::Value::try_from(&f.thresholds)?),
        ("log", toml::Value::try_from(&f.log)?),
    ];
    for (name, value) in sections {
        out.push_str(&format!("\n[{name}]\n"));
        if let Some(t) = value.as_table() {
            for (k, v) in t {
                match env_override(name, k, config) {
                    Some((value, var)) => out.push_str(&format!("{k} = {value}  # env {var} (config file or default: {v})\n")),
                    None => out.push_str(&format!("{k} = {v}  # {}\n", src(name, k))),
                }
            }
        }
    }
    // [sync]: unset keys are comments (TOML has no null); the URL's password is never shown.
    out.push_str("\n[sync]\n");
    match (std::env::var(env::SYNC_URL).ok().filter(|v| !v.is_empty()), &f.sync.url) {
        (Some(url), file) => out.push_str(&format!(
            "url = {:?}  # env CHRONICLE_SYNC_URL (password masked; config file or default: {})\n",
            chronicle::team::mask_url(&url),
            file.as_deref().map_or_else(|| "unset".to_owned(), chronicle::team::mask_url)
        )),
        (None, Some(url)) => out.push_str(&format!("url = {:?}  # config file (password masked)\n", chronicle::team::mask_url(url))),
        (None, None) => out.push_str("# url: unset, nothing is pushed (chronicle sync --url, or CHRONICLE_SYNC_URL)\n"),
    }
    let machine_src = if std::env::var(env::MACHINE).is_ok_and(|v| !v.is_empty()) {
        "env CHRONICLE_MACHINE"
    } else if f.sync.machine.is_some() {
        "config file"
    } else {
        "default: the host name"
    };
    out.push_str(&format!("machine = {:?}  # {machine_src}\n", config.machine()));
    out.push_str(&format!("interval_s = {}  # {}\n", f.sync.interval_s, src("sync", "interval_s")));
    out.push_str(&format!(
        "sslmode = {:?}  # {}\n",
        f.sync.sslmode.as_deref().unwrap_or("prefer"),
        if f.sync.sslmode.is_some() { "config file (an sslmode in the URL wins)" } else { "default (an sslmode in the URL wins)" }
    ));
    match &f.sync.ca_file {
        Some(p) => out.push_str(&format!("ca_file = {:?}  # config file\n", p.display().to_string())),
        None => out.push_str("# ca_file: unset (verify-ca/verify-full read ~/.postgresql/root.crt)\n"),
    }
    for (plugin, section) in &f.plugins {
        out.push_str(&format!(
            "\n[plugins.{plugin}]  # config file, passed to the plugin's init\n{}",
            toml::to_string(section).unwrap_or_default()
        ));
    }
    super::show::out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The value an environment variable gives `[section] key` in effect, if one does, and its name:
/// what the hook really uses, not what the file says.
fn env_override(section: &str, key: &str, config: &Config) -> Option<(toml::Value, &'static str)> {
    match (section, key) {
        ("hook", "resident") => chronicle::resident::enabled_by_env().map(|on| (toml::Value::Boolean(on), env::RESIDENT)),
        ("hook", "resident_idle_s") => {
            std::env::var_os(env::RESIDENT_IDLE)?;
            let secs = chronicle::resident::idle_limit(config).as_secs_f64();
            let value = if secs.fract() == 0.0 { toml::Value::Integer(secs as i64) } else { toml::Value::Float(secs) };
            Some((value, env::RESIDENT_IDLE))
        }
        ("log", "level") => std::env::var(env::LOG).ok().filter(|l| !l.is_empty()).map(|l| (toml::Value::String(l), env::LOG)),
        _ => None,
    }
}
