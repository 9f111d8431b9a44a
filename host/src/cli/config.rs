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
    out.push_str(&format!("redact_patterns = {} pattern(s)  # {}\n", f.redact_patterns.len(), src("", "redact_patterns")));

    let sections: [(&str, toml::Value); 3] = [
        ("hook", toml::Value::try_from(&f.hook)?),
        ("thresholds", toml::Value::try_from(&f.thresholds)?),
        ("log", toml::Value::try_from(&f.log)?),
    ];
    for (name, value) in sections {
        out.push_str(&format!("\n[{name}]\n"));
        if let Some(t) = value.as_table() {
            for (k, v) in t {
                out.push_str(&format!("{k} = {v}  # {}\n", src(name, k)));
            }
        }
        if name == "log" {
            let level_src = if std::env::var_os(env::LOG).is_some() { "env CHRONICLE_LOG overrides" } else { "" };
            if !level_src.is_empty() {
                out.push_str(&format!("# level: {level_src}\n"));
            }
        }
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
