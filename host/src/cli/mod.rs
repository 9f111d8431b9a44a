//! The `chronicle` command line (everything but the `hook` fast path's argument handling).
//!
//! Exit codes: 0 success; 1 a check failed (`plugins check`, `doctor`) or a regression was found
//! (`regress`); 2 usage or data error.

mod config;
mod demo;
mod doctor;
pub mod hook;
mod install;
mod plugins;
mod scaffold;
mod show;
mod stats;
pub mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use chronicle::config::Config;

#[derive(Parser)]
#[command(name = "chronicle", version, about = "A fast hook host for Claude Code", long_about = None)]
#[command(after_help = "Claude Code runs `chronicle hook` for every hook event; see README.md.")]
pub struct Cli {
    /// Config file (default: $CHRONICLE_CONFIG, $CHRONICLE_HOME/config.toml or the XDG config dir)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Handle one hook event from stdin (what Claude Code runs).
    ///
    /// Example: echo '{"hook_event_name":"Stop","session_id":"s"}' | chronicle hook
    Hook,
    /// List recorded events.
    ///
    /// Example: chronicle events --session 6f1c2a9e --limit 20
    Events {
        /// Only this session
        #[arg(long)]
        session: Option<String>,
        /// Only the newest N
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per line: kind, hook_event_name, tool_name, session_id, redacted, truncated, payload, ...
        #[arg(long)]
        json: bool,
    },
    /// List recorded sessions.
    ///
    /// Example: chronicle sessions --json
    Sessions {
        #[arg(long)]
        json: bool,
    },
    /// Inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// The metrics report: per-operation timings, violations, cache, plugins, events.
    ///
    /// Example: chronicle stats --since 2h --json
    Stats {
        /// JSON in the documented shape (performance_stats, cache_stats, thresholds, plugins, events, memory)
        #[arg(long)]
        json: bool,
        /// Only events newer than this (30s, 10m, 2h, 7d)
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only this session
        #[arg(long)]
        session: Option<String>,
    },
    /// Register `chronicle hook` for every event in Claude Code's settings (merging, with a
    /// backup; running it twice changes nothing) and install the built-in plugins.
    ///
    /// Example: chronicle install --dry-run
    Install {
        /// The user's settings (~/.claude/settings.json; the default)
        #[arg(long, conflicts_with = "project")]
        user: bool,
        /// The project's settings ($CLAUDE_PROJECT_DIR or the current directory, .claude/settings.json)
        #[arg(long)]
        project: bool,
        /// Any settings file
        #[arg(long, value_name = "PATH")]
        settings: Option<PathBuf>,
        /// Print the diff instead of writing
        #[arg(long)]
        dry_run: bool,
        /// Leave the plugin directory alone
        #[arg(long)]
        no_plugins: bool,
    },
    /// Remove chronicle's own hooks from Claude Code's settings (nothing else).
    ///
    /// Example: chronicle uninstall --project
    Uninstall {
        #[arg(long, conflicts_with = "project")]
        user: bool,
        #[arg(long)]
        project: bool,
        #[arg(long, value_name = "PATH")]
        settings: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Scaffold a standalone plugin crate that builds a drop-in against chronicle-plugin-api.
    ///
    /// Example: chronicle new-plugin no-terraform-destroy --path ~/src/no-terraform-destroy
    NewPlugin {
        /// Plugin (and crate) name: lowercase letters, digits, '-' and '_'
        name: String,
        /// Directory to create (default: ./NAME)
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
        /// Use this plugin-api source directory instead of the one this binary was built from
        #[arg(long, value_name = "DIR")]
        api_path: Option<PathBuf>,
    },
    /// Check the installation: binary, settings wiring, plugins, database, config (exit 1 on failure).
    ///
    /// Example: chronicle doctor
    Doctor,
    /// Replay a bundled real-looking session through `chronicle hook` with the built-in plugins
    /// and show what was recorded and decided.
    ///
    /// Example: chronicle demo --keep
    Demo {
        /// Write the demo database here instead of a temporary directory (must not exist yet)
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Keep the temporary directory (database and plugins) to explore afterwards
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// The effective configuration and where each value comes from.
    ///
    /// Example: chronicle config show
    Show,
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin file found on the plugin path, and whether it loads.
    ///
    /// Example: chronicle plugins list --json
    List {
        #[arg(long)]
        json: bool,
    },
    /// Explain whether and why a file would load as a plugin (exit 1 when it would not).
    ///
    /// Example: chronicle plugins check ~/.local/share/chronicle/plugins/libmy_plugin.so
    Check { file: PathBuf },
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chronicle: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(explicit: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Config::load(explicit).context("cannot load the configuration (run `chronicle config show` to see where it comes from)")
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if matches!(cli.command, Command::Hook) {
        hook::run();
    }
    if matches!(cli.command, Command::Doctor) {
        let config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string());
        return doctor::run(config);
    }
    if let Command::Uninstall { project, settings, dry_run, .. } = cli.command {
        return install::uninstall(project, settings, dry_run);
    }
    let config = load_config(cli.config.as_deref())?;
    match &config.file.log.file {
        Some(f) => chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::File(f)),
        None => chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::Stderr),
    }
    match cli.command {
        Command::Hook => unreachable!("handled above"),
        Command::Events { session, limit, json } => show::events(&config, session, limit, json),
        Command::Sessions { json } => show::sessions(&config, json),
        Command::Plugins(PluginsCommand::List { json }) => plugins::list(&config, json),
        Command::Plugins(PluginsCommand::Check { file }) => plugins::check(&file),
        Command::Stats { json, since, session } => stats::run(&config, json, since.as_deref(), session),
        Command::Demo { db, keep } => demo::run(&config, db, keep),
        Command::Install { project, settings, dry_run, no_plugins, .. } => install::install(&config, project, settings, dry_run, no_plugins),
        Command::Config(ConfigCommand::Show) => config::show(&config),
        Command::NewPlugin { name, path, api_path } => scaffold::run(&name, path, api_path),
        Command::Doctor | Command::Uninstall { .. } => unreachable!("handled above"),
    }
}
