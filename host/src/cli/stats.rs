//! `chronicle stats`: the metrics report, as a table or as JSON.

use std::process::ExitCode;

use anyhow::Context;
use chronicle::config::Config;
use chronicle::store::stats::{parse_duration_ns, Stats, Window};
use chronicle::store::Store;

use super::source::SourceArgs;
use super::table::{bold, Table};
use chronicle::team::read::MachineStats;

pub fn window(since: Option<&str>, session: Option<String>) -> anyhow::Result<Window> {
    let since_ns = match since {
        Some(s) => {
            let d = parse_duration_ns(s).with_context(|| format!("--since {s:?}: use a number and a unit, e.g. 30m, 2h, 7d"))?;
            Some(chronicle::clock::unix_ns() - d)
        }
        None => None,
    };
    Ok(Window { since_ns, session })
}

pub fn run(config: &Config, json: bool, since: Option<&str>, session: Option<String>, source: &SourceArgs) -> anyhow::Result<ExitCode> {
    if let Some(mut team) = super::source::team(config, source)? {
        let session = super::show::resolve_team_session(&mut team, session)?;
        let stats = team.stats(&window(since, session)?, &config.file.thresholds)?;
        if json {
            super::show::out(&format!("{}\n", serde_json::to_string_pretty(&stats)?))?;
        } else {
            super::show::out(&format!("{}{}", render(&stats.stats), render_machines(&stats.machines)))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open_existing(&config.db_path)?;
    let session = super::show::resolve_session(&store, session)?;
    let stats = store.stats(&window(since, session)?, &config.file.thresholds)?;
    if json {
        super::show::out(&format!("{}\n", serde_json::to_string_pretty(&stats)?))?;
    } else {
        super::show::out(&render(&stats))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The team view's per-machine table.
fn render_machines(machines: &std::collections::BTreeMap<String, MachineStats>) -> String {
    let mut t = Table::new(&[
        ("MACHINE", 16, false),
        ("EVENTS", 7, true),
        ("SESSIONS", 8, true),
        ("P50 TOTAL", 10, true),
        ("P95 TOTAL", 10, true),
        ("VIOLATIONS", 10, true),
        ("DECISIONS", 30, false),
    ]);
    for (name, m) in machines {
        let decisions = m.decisions.iter().filter(|(d, _)| *d != "none").map(|(d, n)| format!("{d}:{n}")).collect::<Vec<_>>().join(" ");
        t.row(vec![
            name.clone(),
            m.events.to_string(),
            m.sessions.to_string(),
            ms(m.hook_total.p50_ms),
            ms(m.hook_total.p95_ms),
            m.violations.to_string(),
            decisions,
        ]);
    }
    format!("\n{}\n{}", bold("Machines"), t.render())
}

pub fn report(
    config: &Config,
    file: &std::path::Path,
    since: Option<&str>,
    session: Option<String>,
    source: &SourceArgs,
) -> anyhow::Result<ExitCode> {
    let page = match super::source::team(config, source)? {
        Some(mut team) => {
            let session = super::show::resolve_team_session(&mut team, session)?;
            let w = window(since, session)?;
            let stats = team.stats(&w, &config.file.thresholds)?;
            let scope = match &source.machine {
                Some(m) => format!("machine {m}"),
                None => format!("{} machines", stats.machines.len()),
            };
            let title = match &w.session {
                Some(s) => format!("Chronicle team report: session {s} ({scope})"),
                None => format!("Chronicle team report ({scope})"),
            };
            chronicle::report::html(&mut team, &stats.stats, &w, &title).map_err(|e| anyhow::anyhow!(e))?
        }
        None => {
            let mut store = Store::open_existing(&config.db_path)?;
            let session = super::show::resolve_session(&store, session)?;
            let w = window(since, session)?;
            let stats = store.stats(&w, &config.file.thresholds)?;
            let title = match &w.session {
                Some(s) => format!("Chronicle report: session {s}"),
                None => "Chronicle report".to_owned(),
            };
            chronicle::report::html(&mut store, &stats, &w, &title).map_err(|e| anyhow::anyhow!(e))?
        }
    };
    std::fs::write(file, page).with_context(|| format!("cannot write {}", file.display()))?;
    super::show::out(&format!("wrote {}\n", file.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.2} ms")
    } else {
        // Microseconds are whole: "80 µs", not "80.0 µs".
        format!("{:.0} µs", v * 1000.0)
    }
}

/// A violation's value or limit in its metric's unit.
fn in_unit(metric: &str, v: f64) -> String {
    if metric.starts_with("memory") {
        format!("{v:.2} MiB")
    } else {
        ms(v)
    }
}

/// The human-readable report.
pub fn render(s: &Stats) -> String {
    let mut out = String::new();
    let p = &s.performance_stats;
    out.push_str(&format!("{}  {} measurements, {} threshold violations\n\n", bold("Operations"), p.total_operations, p.violations));
    let mut t = Table::new(&[
        ("OPERATION", 36, false),
        ("COUNT", 7, true),
        ("AVG", 10, true),
        ("P50", 10, true),
        ("P95", 10, true),
        ("P99", 10, true),
        ("MAX", 10, true),
    ]);
    // The whole hook first: the stages below are parts of it.
    let ordered = p
        .operations
        .iter()
        .filter(|(n, _)| n.as_str() == "hook.total")
        .chain(p.operations.iter().filter(|(n, _)| n.as_str() != "hook.total"));
    for (name, o) in ordered {
        let name = if name == "hook.total" { name.clone() } else { format!("  {name}") };
        t.row(vec![name, o.count.to_string(), ms(o.avg_ms), ms(o.p50_ms), ms(o.p95_ms), ms(o.p99_ms), ms(o.max_ms)]);
    }
    out.push_str(&t.render());

    out.push_str(&format!("\n{}\n", bold("Plugins")));
    let mut t = Table::new(&[
        ("PLUGIN", 24, false),
        ("CALLS", 7, true),
        ("CACHED", 7, true),
        ("P50", 10, true),
        ("P95", 10, true),
        ("PEAK HEAP", 10, true),
        ("DECISIONS", 40, false),
        ("FAULTS", 30, false),
    ]);
    for (name, pl) in &s.plugins {
        let decisions = pl.decisions.iter().filter(|(d, _)| *d != "none").map(|(d, n)| format!("{d}:{n}")).collect::<Vec<_>>().join(" ");
        let faults = pl.faults.iter().map(|(d, n)| format!("{d}:{n}")).collect::<Vec<_>>().join(" ");
        t.row(vec![
            name.clone(),
            pl.calls.to_string(),
            pl.cached.to_string(),
            ms(pl.time.p50_ms),
            ms(pl.time.p95_ms),
            format!("{} KiB", pl.max_peak_live_bytes / 1024),
            decisions,
            faults,
        ]);
    }
    out.push_str(&t.render());

    out.push_str(&format!("\n{}\n", bold("Events")));
    let mut t =
        Table::new(&[("EVENT", 28, false), ("COUNT", 7, true), ("P50 TOTAL", 10, true), ("P95 TOTAL", 10, true), ("DECISIONS", 40, false)]);
    for (name, e) in &s.events {
        let decisions = e.decisions.iter().filter(|(d, _)| *d != "none").map(|(d, n)| format!("{d}:{n}")).collect::<Vec<_>>().join(" ");
        t.row(vec![name.clone(), e.count.to_string(), ms(e.total_time.p50_ms), ms(e.total_time.p95_ms), decisions]);
    }
    out.push_str(&t.render());

    let c = &s.cache_stats;
    out.push_str(&format!(
        "\n{}  hit ratio {:.1}% ({} hits, {} misses), {} of {} entries\n",
        bold("Cache"),
        c.hit_ratio * 100.0,
        c.hits,
        c.misses,
        c.size,
        c.max_size
    ));
    let resident = &s.memory.resident_peak_rss_mb;
    let resident = if resident.count > 0 { format!(" (resident host: max {:.1} MiB)", resident.max_ms) } else { String::new() };
    out.push_str(&format!(
        "{}  peak RSS p50 {:.1} MiB, max {:.1} MiB{resident}\n",
        bold("Memory"),
        s.memory.peak_rss_mb.p50_ms,
        s.memory.peak_rss_mb.max_ms
    ));
    let th = &s.thresholds;
    out.push_str(&format!(
        "{}  hook {} ms, security/validation {} ms, cache {} ms,\n            database {} ms, memory growth {} MiB\n",
        bold("Thresholds"),
        th.hook_execution_ms,
        th.security_validation_ms,
        th.cache_operation_ms,
        th.database_operation_ms,
        th.memory_growth_mb
    ));
    if !p.recent_violations.is_empty() {
        out.push_str(&format!("\n{}\n", bold("Recent violations")));
        let mut t = Table::new(&[
            ("EVENT", 7, true),
            ("AT", 23, false),
            ("METRIC", 20, false),
            ("SUBJECT", 20, false),
            ("VALUE", 10, true),
            ("LIMIT", 10, true),
        ]);
        for v in &p.recent_violations {
            t.row(vec![
                v.event_id.to_string(),
                v.at.clone(),
                v.metric.clone(),
                v.subject.clone(),
                in_unit(&v.metric, v.value),
                in_unit(&v.metric, v.threshold),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}
