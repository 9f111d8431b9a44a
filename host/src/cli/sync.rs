//! `chronicle sync`: push this machine's rows to the team database, now.

use std::io::IsTerminal;
use std::process::ExitCode;

use chronicle::config::Config;
use chronicle::team::{background, push, SyncError, Target};

/// The team database a command means: `--url`, else `CHRONICLE_SYNC_URL`, else `[sync] url`.
pub fn target(config: &Config, url: Option<&str>) -> anyhow::Result<Target> {
    let url = match url.map(str::to_owned).or_else(|| config.sync_url()) {
        Some(u) => u,
        None => anyhow::bail!("no team database: set [sync] url in config.toml, CHRONICLE_SYNC_URL, or pass --url"),
    };
    let s = &config.file.sync;
    Ok(Target::new(&url, s.sslmode.as_deref(), s.ca_file.as_deref())?)
}

pub fn run(config: &Config, url: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let target = target(config, url)?;
    let machine = config.machine();
    let started = std::time::Instant::now();
    let fail = |e: SyncError| {
        eprintln!("chronicle sync: {e}");
        Ok(ExitCode::from(1))
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} pushed {pos} events, {len} to go ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let result = push::push(&config.db_path, &target, &machine, |done, left| {
        if let Some(bar) = &bar {
            bar.set_position(done.events);
            bar.set_length(left.max(0) as u64);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    background::write_status(&config.data_dir, &background::status(&target, &machine, "sync", &result, &config.data_dir));
    let pushed = match result {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let secs = started.elapsed().as_secs_f64();
    if json {
        let v = serde_json::json!({ "machine": machine, "target": target.shown, "pushed": pushed, "seconds": secs });
        super::show::out(&format!("{v}\n"))?;
    } else if pushed.batches == 0 {
        super::show::out(&format!("{} is up to date for machine {machine:?}: nothing to push\n", target.shown))?;
    } else {
        super::show::out(&format!(
            "pushed {} events, {} sessions, {} plugin calls, {} faults, {} violations, {} metrics, {} tool calls \
             to {} as machine {machine:?} in {secs:.1} s\n",
            pushed.events,
            pushed.sessions,
            pushed.plugin_calls,
            pushed.faults,
            pushed.violations,
            pushed.metrics,
            pushed.tool_durations,
            target.shown
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
