//! The `chronicle` command line (everything but the `hook` fast path's argument handling).
//!
//! Exit codes: 0 success; 1 a check failed (`plugins check`, `doctor`) or a regression was found
//! (`regress`); 2 usage or data error; 3 a stored-baseline comparison was inconclusive
//! (`regress compare`: the machine's state moved, see chronicle-regress `Settings::steady_pct`).

mod bench;
mod config;
mod demo;
mod doctor;
pub mod hook;
mod install;
mod plugins;
mod replay;
mod scaffold;
mod show;
mod source;
mod stats;
mod sync;
pub mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use chronicle::config::Config;

#[derive(Parser)]
#[command(name = "chronicle", version = chronicle::VERSION, about = "A fast hook host for Claude Code", long_about = None)]
#[command(max_term_width = 80)]
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
    #[command(display_order = 100)]
    ///
    /// Example: echo '{"hook_event_name":"Stop","session_id":"s"}' | chronicle hook
    Hook,
    #[command(display_order = 101)]
    /// Run the resident host for this configuration (`chronicle hook` starts it on demand;
    /// it exits after `hook.resident_idle_s` without events). Returns at once if one is running.
    Serve,
    /// List recorded events (the newest 50 unless told otherwise).
    ///
    /// The table fits 80 columns: local times (TZ), the first 8 characters of session ids,
    /// FLAGS R (redacted) and T (truncated); --wide shows everything.
    ///
    /// Example: chronicle events --session 6f1c2a9e --decision deny --since 2h
    Events {
        /// Only this session (any unique prefix of its id)
        #[arg(long)]
        session: Option<String>,
        /// Only the newest N
        #[arg(long, default_value_t = 50, conflicts_with = "all")]
        limit: usize,
        /// Every matching event, however many
        #[arg(long)]
        all: bool,
        /// Only events newer than this (30s, 10m, 2h, 7d)
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only events with this decision (deny, ask, block, context, none, ...)
        #[arg(long)]
        decision: Option<String>,
        /// Only events of this tool (Bash, Write, ...)
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// Full UTC times, session ids and cells (the table fits 80 columns otherwise)
        #[arg(long)]
        wide: bool,
        /// One JSON object per line: kind, hook_event_name, tool_name, session_id, redacted, truncated, payload, ...
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: source::SourceArgs,
    },
    /// List recorded sessions.
    ///
    /// The table fits 80 columns (short ids, local times, ~ for the home directory); --wide
    /// shows everything.
    ///
    /// Example: chronicle sessions --json
    Sessions {
        /// One JSON object per line: session_id, first_seen, last_seen, ended_at, end_reason, cwd, git_branch, event_count
        #[arg(long)]
        json: bool,
        /// Full ids, UTC times and paths
        #[arg(long)]
        wide: bool,
        #[command(flatten)]
        source: source::SourceArgs,
    },
    /// Inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// The metrics report: per-operation timings, violations, cache, plugins, events.
    ///
    /// Operations: hook.total (the whole hook, from the start of the process Claude Code started
    /// to the database write; the rest are parts of it), hook.read (stdin), hook.parse,
    /// hook.redact, hook.discover (listing plugin files), hook.index (their manifests),
    /// hook.load (loading plugins), cache.lookup, hook.dispatch (calling plugins), hook.merge
    /// (combining their answers), hook.git (the branch), store.wait (the database opening),
    /// store.insert and store.commit (writing the event), resident.receive (the resident host
    /// reading the event), plugin.NAME (one plugin's call). Memory in MiB.
    ///
    /// Example: chronicle stats --since 2h --json
    Stats {
        /// JSON in the documented shape (performance_stats, cache_stats, thresholds, plugins, events, memory)
        #[arg(long)]
        json: bool,
        /// Only events newer than this (30s, 10m, 2h, 7d)
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Only this session (any unique prefix of its id)
        #[arg(long)]
        session: Option<String>,
        #[command(flatten)]
        source: source::SourceArgs,
    },
    /// Register `chronicle hook` for every event in Claude Code's settings (merging, with a
    /// backup; running it twice changes nothing) and install the built-in plugins.
    ///
    /// Example: chronicle install --dry-run
    Install {
        #[command(flatten)]
        target: SettingsTarget,
        /// Leave the plugin directory alone
        #[arg(long)]
        no_plugins: bool,
    },
    /// Remove chronicle's own hooks from Claude Code's settings (nothing else).
    ///
    /// Example: chronicle uninstall --project
    Uninstall {
        #[command(flatten)]
        target: SettingsTarget,
    },
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Events kept in the spool because the database could not be written.
    #[command(subcommand)]
    Spool(SpoolCommand),
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
    /// Print a shell completion script.
    ///
    /// Example: chronicle completions bash > ~/.local/share/bash-completion/completions/chronicle
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these very definitions.
    ///
    /// Example: chronicle man > ~/.local/share/man/man1/chronicle.1
    Man,
    /// Check the installation: binary, settings wiring, plugins, database, config (exit 1 on failure).
    ///
    /// Example: chronicle doctor
    Doctor,
    /// Measure whole-process `chronicle hook` per event type (with the built-in plugins), a
    /// `cat` reference on the same events, and the calibration workload, interleaved.
    ///
    /// Example: chronicle bench --runs 100 --out samples.json
    ///
    /// With --session or --concurrency: a whole session's events in order, by N clients at
    /// once, against `cat` at the same concurrency: latency ratios and throughput.
    ///
    /// Example: chronicle bench --session --concurrency 4
    Bench {
        /// Rounds: each runs every scenario once (default 100); with --session, each client
        /// replays the session once (default 5)
        #[arg(long)]
        runs: Option<usize>,
        /// Replay this session (JSON lines, one hook event each; default: the bundled one)
        #[arg(long, value_name = "FILE", num_args = 0..=1)]
        session: Option<Option<PathBuf>>,
        /// Clients at once, each replaying the session (implies --session)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: Option<u16>,
        /// With --session: make every Bash command new in every round and client (a comment is
        /// appended), so no plugin outcome comes from the cache
        #[arg(long)]
        distinct: bool,
        /// With --session: leave out the events of this tool (repeatable), e.g. `--skip-tool
        /// Write` for issue #21's session row, whose large Write events have a row of their own
        #[arg(long, value_name = "TOOL")]
        skip_tool: Vec<String>,
        /// Write the samples here (JSON, or CSV with --csv)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write --out as CSV (one row per sample) instead of JSON
        #[arg(long, requires = "out")]
        csv: bool,
        /// Benchmark this chronicle binary instead of this one
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// Also install the plugins in this directory for the benchmark
        #[arg(long, value_name = "DIR")]
        extra_plugins: Option<PathBuf>,
    },
    /// The performance-regression gate (exit 0 no regression, 1 regression, 2 usage or data error,
    /// 3 inconclusive: a stored baseline from a machine in another state).
    #[command(subcommand)]
    Regress(RegressCommand),
    /// Write one self-contained HTML report (no network): latency per event type and plugin,
    /// a session timeline, decisions, violations, cache hit ratio over time.
    ///
    /// Example: chronicle report --html report.html --since 7d
    Report {
        /// Write the page here
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
        /// Only this session (any unique prefix of its id)
        #[arg(long)]
        session: Option<String>,
        /// Only events newer than this (30s, 10m, 2h, 7d)
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        #[command(flatten)]
        source: source::SourceArgs,
    },
    /// Push every recorded row not yet pushed to the team's PostgreSQL database ([sync] url).
    ///
    /// Idempotent and resumable: killed and run again, each row arrives once. Exit 0 when
    /// everything is pushed, 1 with a one-line reason (server down, authentication, TLS).
    ///
    /// Example: chronicle sync --url postgresql://me@db.example/team?sslmode=verify-full
    Sync {
        /// The team database (default: $CHRONICLE_SYNC_URL, else [sync] url)
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// One JSON object: machine, target (password masked), pushed (rows per table), seconds
        #[arg(long)]
        json: bool,
    },
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

/// Which settings file `install`/`uninstall` edit.
#[derive(clap::Args)]
struct SettingsTarget {
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
}

#[derive(clap::Args)]
struct GateArgs {
    /// JSON: {"regressed", "inconclusive", "calibration_change_pct", "scenarios": [{"name", "change_pct", "ci_low_pct",
    /// "ci_high_pct", "p_value", "verdict"}]}
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// A Markdown table for CI job summaries
    #[arg(long)]
    markdown: bool,
    /// Family-wise significance level (Holm across scenarios)
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Changes below this many percent are "unchanged" (default 3 paired, 25 unpaired)
    #[arg(long, value_name = "PCT")]
    noise_band: Option<f64>,
    /// Also write the distributions of baseline and candidate per scenario as an HTML/SVG plot
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

impl GateArgs {
    fn settings(&self) -> chronicle_regress::Settings {
        chronicle_regress::Settings { alpha: self.alpha, noise_band_pct: self.noise_band, ..Default::default() }
    }
    fn style(&self) -> bench::Style {
        if self.json {
            bench::Style::Json
        } else if self.markdown {
            bench::Style::Markdown
        } else {
            bench::Style::Table
        }
    }
}

#[derive(Subcommand)]
enum RegressCommand {
    /// Run two builds alternately over the same events and decide on the paired samples.
    ///
    /// Example: chronicle regress ab --baseline-bin old/chronicle --candidate-bin target/release/chronicle --runs 100
    Ab {
        /// The baseline build's client (default: this build's)
        #[arg(long, value_name = "PATH")]
        baseline_bin: Option<PathBuf>,
        /// The candidate build's client (default: this build's)
        #[arg(long, value_name = "PATH")]
        candidate_bin: Option<PathBuf>,
        /// Rounds (each runs every scenario once on each build, alternating)
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// Plugins installed for the baseline only (a plugin's old build)
        #[arg(long, value_name = "DIR")]
        baseline_plugins: Option<PathBuf>,
        /// Plugins installed for the candidate only (a plugin's new build, or one to measure the cost of)
        #[arg(long, value_name = "DIR")]
        candidate_plugins: Option<PathBuf>,
        /// The events to replay, as JSON lines (one hook event per line, like
        /// tests/corpus/session.jsonl), instead of the built-in scenarios
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Leave the built-in plugins out of both sides: only the plugins given are measured
        #[arg(long)]
        no_builtins: bool,
        /// Decide only on scenarios starting with this prefix (repeatable), e.g. hook. (the
        /// samples written with --out keep every scenario)
        #[arg(long, value_name = "PREFIX")]
        scenario: Vec<String>,
        /// Also write the samples, paired by `iteration`: the baseline's to FILE.baseline.json,
        /// the candidate's to FILE.candidate.json (re-analyse with `regress compare`)
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        gate: GateArgs,
    },
    /// Store a sample file as a named baseline.
    ///
    /// Example: chronicle regress save main --from samples.json
    Save {
        /// The baseline's name (stored under the data directory's baselines/)
        name: String,
        /// The samples to store (what `bench --out` or `regress ab --out` wrote)
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Compare a candidate sample file against a baseline (a name or a file), calibrated.
    ///
    /// Example: chronicle regress compare --baseline main --candidate samples.json --markdown
    Compare {
        /// A baseline stored with `regress save`, or a sample file
        #[arg(long, value_name = "NAME|FILE")]
        baseline: String,
        /// The new samples (`bench --out`)
        #[arg(long, value_name = "FILE")]
        candidate: PathBuf,
        /// Only scenarios starting with this prefix (repeatable), e.g. hook.
        #[arg(long, value_name = "PREFIX")]
        scenario: Vec<String>,
        #[command(flatten)]
        gate: GateArgs,
    },
}

#[derive(Subcommand)]
enum SpoolCommand {
    /// Record every spooled event in the database (once each, by invocation id); exit 1 if some
    /// still cannot be recorded (they stay in the spool). Hook processes do this by themselves
    /// after an event they could record.
    ///
    /// Example: chronicle spool ingest
    Ingest,
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
        /// One JSON object per plugin file: path, loads, name, version, events, last_fault, ...
        #[arg(long)]
        json: bool,
    },
    /// Explain whether and why a file would load as a plugin (exit 1 when it would not).
    ///
    /// Example: chronicle plugins check ~/.local/share/chronicle/plugins/libmy_plugin.so
    Check {
        /// The library (.so): a path, or a bare name in the current directory
        file: PathBuf,
    },
    /// Load FILE in this process and print its manifest as JSON (what `list`, `check`, `doctor`
    /// and `install` run in a child, so that a crashing library costs only the child).
    #[command(hide = true)]
    Probe { file: PathBuf },
    /// Install a plugin file: check that it loads, copy it into the user plugin directory
    /// (write-then-rename), and register the hooks again so that Claude Code waits for every
    /// event it can answer.
    ///
    /// Example: chronicle plugins install target/release/libmy_plugin.so
    Install {
        /// The plugin library (.so) to check and copy in
        file: PathBuf,
        /// The project's settings ($CLAUDE_PROJECT_DIR or the current directory, .claude/settings.json)
        #[arg(long)]
        project: bool,
        /// Another settings file
        #[arg(long, value_name = "PATH")]
        settings: Option<PathBuf>,
    },
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
        hook::run(hook::Mode::Standalone);
    }
    match cli.command {
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "chronicle", &mut text);
            show::out(&String::from_utf8_lossy(&text))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            let mut text = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut text)?;
            show::out(&String::from_utf8_lossy(&text))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if matches!(cli.command, Command::Doctor) {
        let config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string());
        return doctor::run(config);
    }
    if let Command::Uninstall { target } = cli.command {
        // Even with a broken config file: where the binaries are comes from the environment then.
        let data_dir = Config::load(cli.config.as_deref()).map(|c| c.data_dir).or_else(|_| Config::data_dir_from_env()).ok();
        return install::uninstall(data_dir.as_deref(), target.project, target.settings, target.dry_run);
    }
    let config = load_config(cli.config.as_deref())?;
    if let Command::Serve = cli.command {
        let idle = chronicle::resident::idle_limit(&config);
        let log_file = config.file.log.file.clone().unwrap_or_else(|| chronicle::logging::default_file(&config.data_dir));
        chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::File(&log_file));
        chronicle::resident::serve(config, idle).context("the resident host stopped")?;
        // Plugin threads abandoned on a hang must not keep the process alive.
        std::process::exit(0);
    }
    match &config.file.log.file {
        Some(f) => chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::File(f)),
        None => chronicle::logging::init(&config.file.log.level, chronicle::logging::Destination::Stderr),
    }
    match cli.command {
        Command::Hook | Command::Serve => unreachable!("handled above"),
        Command::Events { session, limit, all, since, decision, tool, wide, json, source } => {
            let limit = (!all).then_some(limit);
            show::events(&config, show::EventsQuery { session, limit, since, decision, tool, json, wide }, &source)
        }
        Command::Sessions { json, wide, source } => show::sessions(&config, json, wide, &source),
        Command::Plugins(PluginsCommand::List { json }) => plugins::list(&config, json),
        Command::Plugins(PluginsCommand::Check { file }) => plugins::check(&config, &file),
        Command::Plugins(PluginsCommand::Probe { file }) => plugins::probe_here(&file),
        Command::Plugins(PluginsCommand::Install { file, project, settings }) => {
            plugins::install(&config, &file, install::Target { project, settings })
        }
        Command::Stats { json, since, session, source } => stats::run(&config, json, since.as_deref(), session, &source),
        Command::Report { html, session, since, source } => stats::report(&config, &html, since.as_deref(), session, &source),
        Command::Demo { db, keep } => demo::run(&config, db, keep),
        Command::Sync { url, json } => sync::run(&config, url.as_deref(), json),
        Command::Install { target, no_plugins } => install::install(&config, target.project, target.settings, target.dry_run, no_plugins),
        Command::Config(ConfigCommand::Show) => config::show(&config),
        Command::Spool(SpoolCommand::Ingest) => {
            let spool = chronicle::spool::path(&config.data_dir);
            let data_dir = config.data_dir.clone();
            let mut host = chronicle::hook::Host::new(config);
            let recorded = host.ingest_spool(true);
            let left = chronicle::spool::waiting(&data_dir);
            show::out(&format!("ingested {recorded} event(s) from {}; {left} left\n", spool.display()))?;
            Ok(if left == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::NewPlugin { name, path, api_path } => scaffold::run(&name, path, api_path, &config.user_plugin_dir()),
        Command::Bench { runs, session, concurrency, distinct, skip_tool, out, csv, binary, extra_plugins } => {
            if session.is_some() || concurrency.is_some() || distinct || !skip_tool.is_empty() {
                anyhow::ensure!(out.is_none(), "--out is for the per-scenario benchmark, not --session");
                let session = session.flatten();
                let o = replay::ReplayOptions {
                    session,
                    concurrency: usize::from(concurrency.unwrap_or(1)),
                    rounds: runs.unwrap_or(5),
                    binary,
                    extra_plugins,
                    distinct,
                    skip_tools: skip_tool,
                };
                show::out(&replay::run(&config, &o)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            bench::bench(&config, bench::BenchOptions { runs: runs.unwrap_or(100), out, csv, binary, extra_plugins, quiet: false })
        }
        Command::Regress(RegressCommand::Ab {
            baseline_bin,
            candidate_bin,
            runs,
            baseline_plugins,
            candidate_plugins,
            events,
            no_builtins,
            scenario,
            out,
            gate,
        }) => {
            let this_build = || chronicle::resident::sibling(chronicle::resident::CLIENT_BIN);
            let (old, new) = (baseline_bin.unwrap_or_else(this_build), candidate_bin.unwrap_or_else(this_build));
            let o = bench::AbOptions {
                runs,
                baseline_plugins: baseline_plugins.as_deref(),
                candidate_plugins: candidate_plugins.as_deref(),
                events: events.as_deref(),
                builtins: !no_builtins,
                scenarios: &scenario,
                out: out.as_deref(),
                html: gate.html.as_deref(),
            };
            bench::ab(&config, &old, &new, &o, &gate.settings(), gate.style())
        }
        Command::Regress(RegressCommand::Save { name, from }) => bench::save(&config, &name, &from),
        Command::Regress(RegressCommand::Compare { baseline, candidate, scenario, gate }) => {
            bench::compare_cmd(&config, &baseline, &candidate, &gate.settings(), gate.style(), &scenario, gate.html.as_deref())
        }
        Command::Doctor | Command::Uninstall { .. } | Command::Completions { .. } | Command::Man => unreachable!("handled above"),
    }
}
