//! Diagnostics through `tracing`, never to stdout: in hook mode stdout is Claude Code's.
//!
//! The level comes from `CHRONICLE_LOG` (or the config's `[log] level`, default `warn`); the
//! destination is the config's `[log] file` (appended), else stderr.

use std::path::Path;

use tracing::level_filters::LevelFilter;

fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => return None,
    })
}

/// Installs the global subscriber. Safe to call once; later calls do nothing.
pub fn init(config_level: &str, file: Option<&Path>) {
    let level = std::env::var(crate::config::env::LOG)
        .ok()
        .and_then(|l| parse_level(&l))
        .or_else(|| parse_level(config_level))
        .unwrap_or(LevelFilter::WARN);
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    let opened = file.and_then(|p| {
        if let Some(dir) = p.parent() {
            let _ = crate::store::create_private_dir(dir);
        }
        std::fs::OpenOptions::new().create(true).append(true).open(p).ok()
    });
    let _ = match opened {
        Some(f) => builder.with_ansi(false).with_writer(std::sync::Mutex::new(f)).try_init(),
        None => builder.with_ansi(false).with_writer(std::io::stderr).try_init(),
    };
}
