//! `chronicle bench --session [FILE] [--concurrency N]`: a session's events replayed in order,
//! as Claude Code sends them, by N clients at once, against `cat` fed the same bytes at the same
//! concurrency in the same run (passes alternate, so both see the machine in the same state).
//! Reports latency per event (p50, p99, and their ratios to `cat`'s) and throughput. With
//! `--distinct`, every Bash command is made new in every pass and client (a comment is
//! appended), so no plugin outcome is reused from the cache: the cost of new commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

use super::table::Table;
use chronicle::config::Config;
use chronicle::store::stats::percentile;

pub struct ReplayOptions {
    /// JSON lines; `None`: the bundled session.
    pub session: Option<PathBuf>,
    pub concurrency: usize,
    /// Passes of the whole session per side (each client replays it once per pass).
    pub rounds: usize,
    pub binary: Option<PathBuf>,
    pub extra_plugins: Option<PathBuf>,
    /// Make every Bash command new in every pass and client (see the module docs).
    pub distinct: bool,
    /// Leave out the events whose `tool_name` is one of these.
    pub skip_tools: Vec<String>,
}

/// The session's events, without those of the skipped tools (a line that is not a JSON object
/// with a `tool_name` is kept: hostile lines are part of a session too).
fn events_to_send(text: &str, skip_tools: &[String]) -> Vec<String> {
    let skipped = |line: &str| {
        !skip_tools.is_empty()
            && serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("tool_name").and_then(|t| t.as_str()).map(|t| skip_tools.iter().any(|s| s == t)))
                .unwrap_or(false)
    };
    text.lines().filter(|l| !l.trim().is_empty() && !skipped(l)).map(str::to_owned).collect()
}

/// What each client of one pass sends: the events as they are, or (`distinct`) with
/// ` # pass P client K` appended to every `tool_input.command`.
fn events_of_pass(events: &[String], clients: usize, distinct: Option<usize>) -> Vec<Vec<String>> {
    let Some(pass) = distinct else { return vec![events.to_vec(); clients] };
    (0..clients)
        .map(|client| {
            events
                .iter()
                .map(|e| {
                    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(e) else { return e.clone() };
                    match v.pointer_mut("/tool_input/command") {
                        Some(serde_json::Value::String(c)) => {
                            c.push_str(&format!(" # pass {pass} client {client}"));
                            v.to_string()
                        }
                        _ => e.clone(),
                    }
                })
                .collect()
        })
        .collect()
}

/// One pass: one thread per client feeds its events in order to `program`; per-event
/// latencies (ms) and the pass's wall time (s).
fn pass(program: &Path, args: &[&str], home: &Path, clients: &[Vec<String>]) -> anyhow::Result<(Vec<f64>, f64)> {
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|events| {
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(events.len());
                    for e in events {
                        let t = Instant::now();
                        let mut child = Command::new(program)
                            .args(args)
                            .env("CHRONICLE_HOME", home)
                            .env_remove("CHRONICLE_DB")
                            .env_remove("CHRONICLE_PLUGIN_PATH")
                            .env_remove("CLAUDE_PROJECT_DIR")
                            .stdin(Stdio::piped())
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .spawn()
                            .with_context(|| format!("cannot run {}", program.display()))?;
                        if let Some(mut pipe) = child.stdin.take() {
                            use std::io::Write;
                            let _ = pipe.write_all(e.as_bytes());
                        }
                        child.wait()?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok((all, wall))
}

pub fn run(config: &Config, o: &ReplayOptions) -> anyhow::Result<String> {
    let text = match &o.session {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => super::demo::SESSION.to_owned(),
    };
    let events = events_to_send(&text, &o.skip_tools);
    anyhow::ensure!(!events.is_empty(), "the session has no events{}", if o.skip_tools.is_empty() { "" } else { " to send" });
    let chronicle = match &o.binary {
        Some(b) => b.clone(),
        None => chronicle::resident::sibling(chronicle::resident::CLIENT_BIN),
    };
    let home = super::bench::bench_home_with_builtins(config, o.extra_plugins.as_deref())?;
    let cat = PathBuf::from("cat");
    // Pass 0 warms: the resident host started, the page cache holding both programs.
    let warm = events_of_pass(&events, 1, o.distinct.then_some(0));
    pass(&chronicle, &["hook"], home.path(), &warm)?;
    pass(&cat, &[], home.path(), &warm)?;
    let (mut ours, mut theirs, mut our_wall, mut their_wall) = (Vec::new(), Vec::new(), 0.0, 0.0);
    for round in 0..o.rounds.max(1) {
        // The same bytes for both sides of a round.
        let sent = events_of_pass(&events, o.concurrency, o.distinct.then_some(round + 1));
        // Alternate which goes first, so neither always follows the other.
        let order: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
        for chronicle_side in order {
            if chronicle_side {
                let (l, w) = pass(&chronicle, &["hook"], home.path(), &sent)?;
                ours.extend(l);
                our_wall += w;
            } else {
                let (l, w) = pass(&cat, &[], home.path(), &sent)?;
                theirs.extend(l);
                their_wall += w;
            }
        }
    }
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&ours, 50.0), percentile(&ours, 99.0));
    let (c50, c99) = (percentile(&theirs, 50.0), percentile(&theirs, 99.0));
    let (rate, cat_rate) = (ours.len() as f64 / our_wall, theirs.len() as f64 / their_wall);
    let mut t = Table::new(&[
        ("", 10, false),
        ("EVENTS", 7, true),
        ("P50", 9, true),
        ("P99", 9, true),
        ("P50/CAT", 7, true),
        ("P99/CAT", 7, true),
        ("EVENTS/S", 9, true),
        ("OF CAT'S", 8, true),
    ]);
    t.row(vec![
        "chronicle".into(),
        ours.len().to_string(),
        format!("{p50:.3} ms"),
        format!("{p99:.3} ms"),
        format!("{:.2}×", p50 / c50),
        format!("{:.2}×", p99 / c99),
        format!("{rate:.0}"),
        format!("{:.2}", rate / cat_rate),
    ]);
    t.row(vec![
        "cat".into(),
        theirs.len().to_string(),
        format!("{c50:.3} ms"),
        format!("{c99:.3} ms"),
        String::new(),
        String::new(),
        format!("{cat_rate:.0}"),
        String::new(),
    ]);
    let mut source = o.session.as_ref().map_or_else(|| "the bundled session".to_owned(), |f| f.display().to_string());
    if !o.skip_tools.is_empty() {
        source.push_str(&format!(" without {}", o.skip_tools.join(", ")));
    }
    Ok(format!(
        "{} events of {source} in order{}, {} client(s) at once, {} round(s); cat fed the same bytes in the same run\n{}",
        events.len(),
        if o.distinct { ", every command new" } else { "" },
        o.concurrency,
        o.rounds.max(1),
        t.render()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_passes_make_every_command_new_and_leave_other_events_alone() {
        let events = vec![
            r#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}"#.to_owned(),
            r#"{"hook_event_name":"Stop","session_id":"s"}"#.to_owned(),
        ];
        assert_eq!(events_of_pass(&events, 2, None), vec![events.clone(), events.clone()]);
        let command = |e: &str| serde_json::from_str::<serde_json::Value>(e).unwrap()["tool_input"]["command"].as_str().map(str::to_owned);
        let mut seen = std::collections::HashSet::new();
        for pass in 0..3 {
            for client in events_of_pass(&events, 4, Some(pass)) {
                assert_eq!(client[1], events[1], "an event without a command is sent as it is");
                let c = command(&client[0]).unwrap();
                assert!(c.starts_with("ls # pass "), "{c}");
                assert!(seen.insert(c), "a command repeated across passes or clients");
            }
        }
        assert_eq!(seen.len(), 12);
    }

    #[test]
    fn skipped_tools_leave_the_session_and_everything_else_stays_in_order() {
        let text = concat!(
            "{\"hook_event_name\":\"SessionStart\"}\n",
            "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Write\"}\n",
            "\n",
            "not json\n",
            "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\"}\n",
            "{\"hook_event_name\":\"PostToolUse\",\"tool_name\":\"Write\"}\n",
        );
        let all = events_to_send(text, &[]);
        assert_eq!(all.len(), 5, "only the blank line goes");
        let kept = events_to_send(text, &["Write".to_owned()]);
        assert_eq!(kept, vec![all[0].clone(), all[2].clone(), all[3].clone()]);
        assert_eq!(events_to_send(text, &["Write".to_owned(), "Bash".to_owned()]), vec![all[0].clone(), all[2].clone()]);
    }
}
