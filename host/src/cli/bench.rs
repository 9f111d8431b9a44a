//! `chronicle bench` and `chronicle regress`: whole-process measurements of `chronicle hook`
//! against a reference measured in the same run, and the regression gate built on them.
//!
//! Every number here is a whole process as Claude Code feels it: spawn, write the event to
//! stdin, wait for exit. Scenarios run interleaved in a shuffled order within each round, so
//! machine drift hits them alike.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use chronicle::config::Config;
use chronicle::store::stats::summarize;
use chronicle_regress::stats::Rng;
use chronicle_regress::{baseline, compare, Report, SampleSet, Settings, Verdict, CALIBRATION};

use super::demo::{builtin_plugin_source, lib_file, BUILTIN_LIBS, SESSION};
use super::table::{bold, Table};

/// The events each benchmark round sends: (scenario, payload).
pub fn bench_events() -> Vec<(String, String)> {
    let lines: Vec<&str> = SESSION.lines().filter(|l| !l.trim().is_empty()).collect();
    let find = |event: &str, tool: Option<&str>| {
        lines.iter().find(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["hook_event_name"] == event && tool.is_none_or(|t| v["tool_name"] == t)
        })
    };
    let mut out = Vec::new();
    for (name, event, tool) in [
        ("hook.PreToolUse.Bash", "PreToolUse", Some("Bash")),
        ("hook.PostToolUse.Read", "PostToolUse", Some("Read")),
        ("hook.SessionStart", "SessionStart", None),
        ("hook.UserPromptSubmit", "UserPromptSubmit", None),
    ] {
        if let Some(l) = find(event, tool) {
            out.push((name.to_owned(), (*l).to_owned()));
        }
    }
    if let Some(big) = lines.iter().filter(|l| l.contains("\"hook_event_name\":\"PostToolUse\"")).max_by_key(|l| l.len()) {
        out.push((format!("hook.PostToolUse.Write.{}KB", big.len() / 1000), (*big).to_owned()));
    }
    out
}

/// Spawns `program args` with `stdin`, waits, returns wall nanoseconds.
fn time_process(program: &Path, args: &[&str], envs: &[(&str, &Path)], stdin: &[u8]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // An explicit CHRONICLE_CONFIG is kept (to configure plugins under test); the rest would
    // point the benchmark at the user's own database or plugins.
    cmd.env_remove("CLAUDE_PROJECT_DIR").env_remove("CHRONICLE_DB").env_remove("CHRONICLE_PLUGIN_PATH");
    let mut child = cmd.spawn().with_context(|| format!("cannot run {}", program.display()))?;
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    child.wait()?;
    Ok(started.elapsed().as_nanos() as f64)
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let p = exe.with_file_name(name);
    if !p.exists() {
        bail!("{} is missing next to {}: build the workspace (`cargo build --release --workspace`)", name, exe.display());
    }
    Ok(p)
}

/// Which built-in plugins a bench home gets.
enum Builtins {
    /// None: only the plugins given are measured.
    Left,
    /// From this directory, else where `demo` finds them.
    From(Option<PathBuf>),
}

/// A private home with the built-in plugins and any extra plugin directory's libraries.
fn bench_home(config: &Config, builtins: Builtins, extra_plugins: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let home = tempfile::Builder::new().prefix("chronicle-bench-").tempdir()?;
    let plugins = home.path().join("plugins");
    chronicle::private::create_private_dir(&plugins)?;
    if let Builtins::From(dir) = builtins {
        let source = dir
            .or_else(|| builtin_plugin_source(config))
            .context("the built-in plugins are not built: `cargo build --release --workspace`")?;
        for l in BUILTIN_LIBS {
            std::fs::copy(source.join(lib_file(l)), plugins.join(lib_file(l)))?;
        }
    }
    if let Some(dir) = extra_plugins {
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let p = e?.path();
            if chronicle::plugin::is_library(&p) {
                if let Some(name) = p.file_name() {
                    std::fs::copy(&p, plugins.join(name))?;
                }
            }
        }
    }
    Ok(home)
}

/// A bench home with the built-in plugins (and any extra plugin directory's libraries).
pub fn bench_home_with_builtins(config: &Config, extra_plugins: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    bench_home(config, Builtins::From(None), extra_plugins)
}

fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

pub struct BenchOptions {
    pub runs: usize,
    pub out: Option<PathBuf>,
    pub csv: bool,
    pub binary: Option<PathBuf>,
    pub extra_plugins: Option<PathBuf>,
    pub quiet: bool,
}

/// Measures every scenario `runs` times, interleaved; returns the samples.
pub fn measure(config: &Config, o: &BenchOptions) -> anyhow::Result<SampleSet> {
    let chronicle = match &o.binary {
        Some(b) => b.clone(),
        None => sibling(chronicle::resident::CLIENT_BIN)?,
    };
    let cat = PathBuf::from("cat");
    let home = bench_home(config, Builtins::From(None), o.extra_plugins.as_deref())?;
    let events = bench_events();
    let warmup = 3;
    let bar = if o.quiet { None } else { progress((o.runs + warmup) as u64) };
    if let Some(b) = &bar {
        b.set_message("benchmarking");
    }
    let mut set = SampleSet::default();
    let mut rng = Rng::new(0x5eed);
    // Iterations pair samples measured adjacently; another run's rounds are not adjacent to
    // ours, so each run numbers its rounds from its own start time.
    let run_id = (chronicle::clock::unix_ns() / 1_000_000_000).max(0) as u64 * 100_000;
    for round in 0..o.runs + warmup {
        // (scenario, program, args, stdin) in a shuffled order.
        let mut jobs: Vec<(String, &Path, Vec<&str>, &str)> = Vec::new();
        for (name, payload) in &events {
            jobs.push((name.clone(), chronicle.as_path(), vec!["hook"], payload.as_str()));
            jobs.push((format!("reference.cat.{}", name.trim_start_matches("hook.")), cat.as_path(), vec![], payload.as_str()));
        }
        // The calibration workload: starting a process that reads the event, which is most of
        // what a hook costs now that a resident host does the rest (see regress/README.md).
        jobs.push((CALIBRATION.to_owned(), cat.as_path(), vec![], events[0].1.as_str()));
        for i in (1..jobs.len()).rev() {
            jobs.swap(i, rng.below(i + 1));
        }
        for (name, program, args, stdin) in &jobs {
            let ns = time_process(program, args, &[("CHRONICLE_HOME", home.path())], stdin.as_bytes())?;
            if round >= warmup {
                set.push(name, ns, Some(run_id + (round - warmup) as u64));
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Per-plugin call times, from the bench home's own database.
    if let Ok(store) = chronicle::store::Store::open_existing(&home.path().join("chronicle.db")) {
        for row in store.query_json("SELECT plugin, wall_ns FROM plugin_calls WHERE status = 'ok' ORDER BY id", &[])? {
            if let (Some(p), Some(ns)) = (row["plugin"].as_str(), row["wall_ns"].as_f64()) {
                set.push(&format!("plugin.{p}"), ns, None);
            }
        }
    }
    set.meta.insert("created_at".into(), serde_json::json!(chronicle::store::read::rfc3339(chronicle::clock::unix_ns())));
    set.meta.insert("runs".into(), serde_json::json!(o.runs));
    set.meta.insert("calibration".into(), serde_json::json!("cat fed the first event (process start + stdin)"));
    set.meta.insert("binary".into(), serde_json::json!(chronicle.display().to_string()));
    set.meta.insert("host".into(), serde_json::json!(std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim()));
    Ok(set)
}

/// The whole-process table: p50/p90/p99 per scenario and the ratio to `cat` on the same event.
pub fn summary_table(set: &SampleSet) -> String {
    let mut t = Table::new(&[
        ("SCENARIO", 34, false),
        ("N", 5, true),
        ("P50", 10, true),
        ("P90", 10, true),
        ("P99", 10, true),
        ("P50/CAT", 8, true),
        ("P99/CAT", 8, true),
    ]);
    let q = |v: &[f64], p: f64| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        chronicle::store::stats::percentile(&s, p)
    };
    for name in set.names() {
        if name.starts_with("reference.") {
            continue;
        }
        let v: Vec<f64> = set.values(name).unwrap_or_default().iter().map(|ns| ns / 1e6).collect();
        let reference = set
            .values(&format!("reference.cat.{}", name.trim_start_matches("hook.")))
            .map(|r| r.iter().map(|ns| ns / 1e6).collect::<Vec<f64>>());
        let (r50, r99) = match &reference {
            Some(r) if name.starts_with("hook.") => {
                (format!("{:.2}×", q(&v, 50.0) / q(r, 50.0)), format!("{:.2}×", q(&v, 99.0) / q(r, 99.0)))
            }
            _ => (String::new(), String::new()),
        };
        t.row(vec![
            name.to_owned(),
            v.len().to_string(),
            format!("{:.3} ms", q(&v, 50.0)),
            format!("{:.3} ms", q(&v, 90.0)),
            format!("{:.3} ms", q(&v, 99.0)),
            r50,
            r99,
        ]);
    }
    let cats: Vec<f64> = set
        .names()
        .filter(|n| n.starts_with("reference.cat."))
        .flat_map(|n| set.values(n).unwrap_or_default())
        .map(|ns| ns / 1e6)
        .collect();
    let c = summarize(cats);
    format!(
        "{}{}\nreference `cat` (same events, same spawn): p50 {:.3} ms, p99 {:.3} ms\n",
        bold("Whole process, as Claude Code waits for it\n"),
        t.render(),
        c.p50_ms,
        c.p99_ms
    )
}

pub fn bench(config: &Config, o: BenchOptions) -> anyhow::Result<ExitCode> {
    let set = measure(config, &o)?;
    if let Some(out) = &o.out {
        let text = if o.csv { set.to_csv() } else { set.to_json() };
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    }
    let mut text = summary_table(&set);
    if let Some(out) = &o.out {
        text.push_str(&format!("samples: {}\n", out.display()));
    }
    super::show::out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Output style of a comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Table,
    Json,
    Markdown,
}

pub fn render(report: &Report, style: Style) -> String {
    match style {
        Style::Json => format!("{}\n", serde_json::to_string_pretty(report).unwrap_or_default()),
        Style::Markdown => {
            let mut s = format!(
                "### Performance gate: {}\n\n| scenario | baseline | candidate | change | 99% CI | p | verdict |\n|---|---:|---:|---:|---|---:|---|\n",
                headline(report, "❌ regression", "⚠️ inconclusive", "✅ no regression")
            );
            for r in &report.scenarios {
                s.push_str(&format!(
                    "| `{}` | {:.3} ms | {:.3} ms | {:+.1} % | {:+.1} … {:+.1} % | {:.4} | {} |\n",
                    r.name,
                    r.baseline_median_ns / 1e6,
                    r.candidate_median_ns / 1e6,
                    r.change_pct,
                    r.ci_low_pct,
                    r.ci_high_pct,
                    r.p_value,
                    verdict_word(r.verdict)
                ));
            }
            s.push_str(&format!("\nalpha {} (Holm across scenarios), noise band {} %\n", report.alpha, report.noise_band_pct));
            if let Some(note) = inconclusive_note(report) {
                s.push_str(&format!("\n{note}\n"));
            }
            s
        }
        Style::Table => {
            let mut t = Table::new(&[
                ("SCENARIO", 34, false),
                ("BASELINE", 11, true),
                ("CANDIDATE", 11, true),
                ("CHANGE", 8, true),
                ("CI (99%)", 18, true),
                ("P", 8, true),
                ("VERDICT", 12, false),
            ]);
            for r in &report.scenarios {
                let v = verdict_word(r.verdict);
                let v = if r.verdict == Verdict::Regressed { super::table::decision("deny").replace("deny", v) } else { v.to_owned() };
                t.row(vec![
                    r.name.clone(),
                    format!("{:.3} ms", r.baseline_median_ns / 1e6),
                    format!("{:.3} ms", r.candidate_median_ns / 1e6),
                    format!("{:+.1} %", r.change_pct),
                    format!("{:+.1} … {:+.1} %", r.ci_low_pct, r.ci_high_pct),
                    format!("{:.4}", r.p_value),
                    v,
                ]);
            }
            let note = inconclusive_note(report).map(|n| format!("\n{n}")).unwrap_or_default();
            format!("{}{}{note}\n", t.render(), headline(report, "REGRESSION", "INCONCLUSIVE", "no regression"))
        }
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "regressed",
        Verdict::Improved => "improved",
        Verdict::Unchanged => "unchanged",
        Verdict::Insufficient => "insufficient",
        Verdict::Inconclusive => "inconclusive",
    }
}

fn headline<'a>(report: &Report, regressed: &'a str, inconclusive: &'a str, fine: &'a str) -> &'a str {
    if report.regressed {
        regressed
    } else if report.inconclusive {
        inconclusive
    } else {
        fine
    }
}

fn inconclusive_note(report: &Report) -> Option<String> {
    let moved = report.calibration_change_pct.filter(|_| report.inconclusive)?;
    Some(format!(
        "The calibration workload (cat) ran {moved:+.1} % against the baseline's run: the machine is in another state, and a \
         stored baseline cannot tell a slower build from a slower machine. Measure again, or compare builds interleaved \
         (chronicle regress ab)."
    ))
}

/// 0 no regression, 1 regression, 3 no regression found but inconclusive (2 is a usage or
/// data error, from `main`).
fn exit_for(report: &Report) -> ExitCode {
    if report.regressed {
        ExitCode::from(1)
    } else if report.inconclusive {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn baseline_dir(config: &Config) -> PathBuf {
    config.data_dir.join("baselines")
}

/// Keeps only scenarios whose names start with one of `prefixes` (all when empty).
fn filter(set: &SampleSet, prefixes: &[String]) -> SampleSet {
    if prefixes.is_empty() {
        return set.clone();
    }
    set.filtered(|name| name == CALIBRATION || prefixes.iter().any(|p| name.starts_with(p.as_str())))
}

pub fn save(config: &Config, name: &str, from: &Path) -> anyhow::Result<ExitCode> {
    let set = baseline::read(from)?;
    let path = baseline::save(name, &set, &baseline_dir(config))?;
    super::show::out(&format!("saved baseline {name} ({} samples) to {}\n", set.len(), path.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn write_plot(html: Option<&Path>, report: &Report, base: &SampleSet, cand: &SampleSet) -> anyhow::Result<()> {
    if let Some(file) = html {
        std::fs::write(file, chronicle::report::comparison_html(report, base, cand))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

pub fn compare_cmd(
    config: &Config,
    baseline_spec: &str,
    candidate: &Path,
    settings: &Settings,
    style: Style,
    scenarios: &[String],
    html: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let base = filter(&baseline::load(baseline_spec, &baseline_dir(config))?, scenarios);
    let cand = filter(&baseline::read(candidate)?, scenarios);
    let report = compare(&base, &cand, settings);
    if report.scenarios.is_empty() {
        bail!("the baseline and the candidate share no scenario");
    }
    write_plot(html, &report, &base, &cand)?;
    super::show::out(&render(&report, style))?;
    Ok(exit_for(&report))
}

/// The `n`-th successful call of each plugin recorded in a bench home: (plugin, n, wall ns).
fn plugin_calls(home: &Path) -> anyhow::Result<Vec<(String, u64, f64)>> {
    let Ok(store) = chronicle::store::Store::open_existing(&home.join("chronicle.db")) else { return Ok(Vec::new()) };
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for row in store.query_json("SELECT plugin, wall_ns FROM plugin_calls WHERE status = 'ok' ORDER BY id", &[])? {
        if let (Some(p), Some(ns)) = (row["plugin"].as_str(), row["wall_ns"].as_f64()) {
            let n = seen.entry(p.to_owned()).or_default();
            out.push((p.to_owned(), *n, ns));
            *n += 1;
        }
    }
    Ok(out)
}

/// Scenarios from a JSON-lines file of hook events, named `hook.<event>[.<tool>]` (a second
/// event of the same kind gets `.2`, and so on).
pub fn events_from_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out: Vec<(String, String)> = Vec::new();
    let mut kinds: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not a JSON hook event", path.display(), i + 1))?;
        let Some(event) = v["hook_event_name"].as_str() else {
            bail!("{}:{}: no \"hook_event_name\"", path.display(), i + 1);
        };
        let base = match v["tool_name"].as_str() {
            Some(tool) => format!("hook.{event}.{tool}"),
            None => format!("hook.{event}"),
        };
        let seen = kinds.entry(base.clone()).or_default();
        *seen += 1;
        let name = if *seen == 1 { base } else { format!("{base}.{seen}") };
        out.push((name, line.to_owned()));
    }
    if out.is_empty() {
        bail!("{}: no events", path.display());
    }
    Ok(out)
}

/// The directory of `bin` when every built-in plugin was built beside it.
fn builtins_beside(bin: &Path) -> Option<PathBuf> {
    let dir = bin.parent()?;
    BUILTIN_LIBS.iter().all(|l| dir.join(lib_file(l)).exists()).then(|| dir.to_path_buf())
}

/// Interleaved A/B: the two builds alternate (in a random order within each pair) on the same
/// events, each with its own home; samples pair by round.
pub struct AbOptions<'a> {
    pub runs: usize,
    pub baseline_plugins: Option<&'a Path>,
    pub candidate_plugins: Option<&'a Path>,
    /// JSON lines to replay instead of the built-in scenarios.
    pub events: Option<&'a Path>,
    /// Whether both sides get their build's built-in plugins.
    pub builtins: bool,
    /// Decide only on scenarios with these prefixes (all when empty).
    pub scenarios: &'a [String],
    /// Prefix of the two sample files to write.
    pub out: Option<&'a Path>,
    pub html: Option<&'a Path>,
}

/// How many memory layouts (fresh resident hosts, environments of other sizes) `regress ab`
/// spreads its runs over.
const LAYOUT_EPOCHS: usize = 8;

pub fn ab(config: &Config, old: &Path, new: &Path, o: &AbOptions, settings: &Settings, style: Style) -> anyhow::Result<ExitCode> {
    let (runs, html) = (o.runs, o.html);
    for b in [old, new] {
        if !b.is_file() {
            bail!("{} is not a file", b.display());
        }
    }
    // Each build brings its own built-in plugins, the ones built beside its binary: a plugin
    // that got slower is part of what is compared.
    let builtins = |bin: &Path| if o.builtins { Builtins::From(builtins_beside(bin)) } else { Builtins::Left };
    let events = match o.events {
        Some(file) => events_from_file(file)?,
        None => bench_events(),
    };
    let (mut base, mut cand) = (SampleSet::default(), SampleSet::default());
    let mut rng = Rng::new(0xab);
    let warmup = 3;
    // The runs fall into epochs, each with fresh homes (so fresh resident hosts) and an
    // environment of another size: where a process's stack and heap land moves with its
    // environment, and with it whether some copy hits the CPU's 4 KiB aliasing. One layout
    // for a whole measurement made the 482 KB Write 13-19 % slower or not for an 8-byte
    // change of the environment (BENCHMARKS.md, twenty-first session); both builds share each
    // epoch's layout padding, and the comparison averages over the epochs' layouts.
    let epochs = LAYOUT_EPOCHS.min(runs.max(1));
    let bar = progress((runs + warmup * epochs) as u64);
    let mut order: Vec<usize> = (0..events.len()).collect();
    let mut homes = Vec::new();
    let mut round_id = 0u64;
    for epoch in 0..epochs {
        let home_a = bench_home(config, builtins(old), o.baseline_plugins)?;
        let home_b = bench_home(config, builtins(new), o.candidate_plugins)?;
        let pad = "x".repeat(rng.below(4096));
        let epoch_runs = runs / epochs + usize::from(epoch < runs % epochs);
        for round in 0..epoch_runs + warmup {
            // Events in a new random order each round, as in `bench`: what one event leaves
            // behind (a large write, caches) then falls on a different scenario each time.
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for (name, payload) in order.iter().map(|&i| &events[i]) {
                let old_first = rng.uniform() < 0.5;
                let run = |bin: &Path, home: &Path| {
                    time_process(
                        bin,
                        &["hook"],
                        &[("CHRONICLE_HOME", home), ("CHRONICLE_BENCH_LAYOUT", Path::new(&pad))],
                        payload.as_bytes(),
                    )
                };
                let (a, b) = if old_first {
                    let a = run(old, home_a.path())?;
                    (a, run(new, home_b.path())?)
                } else {
                    let b = run(new, home_b.path())?;
                    (run(old, home_a.path())?, b)
                };
                if round >= warmup {
                    base.push(name, a, Some(round_id));
                    cand.push(name, b, Some(round_id));
                }
            }
            if round >= warmup {
                round_id += 1;
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
        homes.push((home_a, home_b));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Each plugin's own call time, paired by call: both sides saw the same events in the same
    // order (numbered across the epochs' homes).
    for (epoch, (home_a, home_b)) in homes.iter().enumerate() {
        for (set, home) in [(&mut base, home_a), (&mut cand, home_b)] {
            for (plugin, k, ns) in plugin_calls(home.path())? {
                set.push(&format!("plugin.{plugin}"), ns, Some(((epoch as u64) << 32) | k));
            }
        }
    }
    if let Some(prefix) = o.out {
        for (set, side) in [(&base, "baseline"), (&cand, "candidate")] {
            let mut path = prefix.as_os_str().to_owned();
            path.push(format!(".{side}.json"));
            std::fs::write(&path, set.to_json()).with_context(|| format!("cannot write {}", Path::new(&path).display()))?;
        }
    }
    let (base, cand) = (filter(&base, o.scenarios), filter(&cand, o.scenarios));
    let report = compare(&base, &cand, settings);
    if report.scenarios.is_empty() {
        bail!("no scenario starts with {}", o.scenarios.join(" or "));
    }
    write_plot(html, &report, &base, &cand)?;
    super::show::out(&render(&report, style))?;
    Ok(exit_for(&report))
}
