//! `chronicle events` and `chronicle sessions`.

use std::io::Write;
use std::process::ExitCode;

use chronicle::config::Config;
use chronicle::store::{EventFilter, SessionMatch, Store};

use super::source::SourceArgs;
use super::table::{self, Table};
use chronicle::team::read::Team;

pub fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        // A closed pipe (`| head`) is success.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `rows` as JSON lines (`--json`), one object per line.
fn out_json_lines<T: serde::Serialize>(rows: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    out(&text)
}

/// The full session id a `--session` value names: any unique prefix (tables show 8 characters).
pub fn resolve_session(store: &Store, session: Option<String>) -> anyhow::Result<Option<String>> {
    resolve_with(session, |p| Ok(store.resolve_session(p)?))
}

/// The same, in the team database.
pub fn resolve_team_session(team: &mut Team, session: Option<String>) -> anyhow::Result<Option<String>> {
    resolve_with(session, |p| Ok(team.resolve_session(p)?))
}

fn resolve_with(session: Option<String>, lookup: impl FnOnce(&str) -> anyhow::Result<SessionMatch>) -> anyhow::Result<Option<String>> {
    let Some(prefix) = session else { return Ok(None) };
    match lookup(&prefix)? {
        SessionMatch::One(id) => Ok(Some(id)),
        SessionMatch::None => anyhow::bail!("no session starts with {prefix:?} (`chronicle sessions` lists them)"),
        SessionMatch::Several(ids) => {
            anyhow::bail!("{prefix:?} could be any of these sessions; give more of the id:\n  {}", ids.join("\n  "))
        }
    }
}

/// What `chronicle events` shows.
pub struct EventsQuery {
    pub session: Option<String>,
    /// None: all of them.
    pub limit: Option<usize>,
    pub since: Option<String>,
    pub decision: Option<String>,
    pub tool: Option<String>,
    pub json: bool,
    /// Full times and cells instead of a table that fits 80 columns.
    pub wide: bool,
}

pub fn events(config: &Config, q: EventsQuery, source: &SourceArgs) -> anyhow::Result<ExitCode> {
    let since_ns = super::stats::window(q.since.as_deref(), None)?.since_ns;
    let team = super::source::team(config, source)?;
    let filtered = q.session.is_some() || since_ns.is_some() || q.decision.is_some() || q.tool.is_some() || source.machine.is_some();
    let (rows, team_view) = match team {
        Some(mut team) => {
            let session = resolve_team_session(&mut team, q.session)?;
            (team.events(&EventFilter { session, limit: q.limit, since_ns, decision: q.decision, tool: q.tool })?, true)
        }
        None => {
            let store = Store::open_existing(&config.db_path)?;
            let session = resolve_session(&store, q.session)?;
            (store.events(&EventFilter { session, limit: q.limit, since_ns, decision: q.decision, tool: q.tool })?, false)
        }
    };
    if rows.is_empty() {
        eprintln!("{}", if filtered { "no events match these filters" } else { "no events recorded yet" });
        return Ok(ExitCode::SUCCESS);
    }
    if q.json {
        out_json_lines(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    // 80 columns by default: local short times, the kind folded into the event column.
    let w = |narrow: usize, wide: usize| if q.wide { wide } else { narrow };
    // The team view adds the machine; to keep 80 columns it narrows the event and tool and
    // leaves the flags to --wide.
    let mut columns = vec![
        ("ID", 10, true),
        ("TIME", w(14, 24), false),
        ("EVENT", if team_view { w(12, 40) } else { w(16, 40) }, false),
        ("TOOL", w(10, 40), false),
        ("SESSION", w(8, 40), false),
        ("DECISION", 8, false),
        ("FLAGS", w(5, 20), false),
    ];
    let flags_shown = !team_view || q.wide;
    if team_view {
        columns.insert(1, ("MACHINE", w(8, 30), false));
        columns[4].1 = w(8, 40);
        if !flags_shown {
            columns.pop();
        }
    }
    let mut t = Table::new(&columns);
    for r in &rows {
        let mut flags = Vec::new();
        if r.redacted {
            flags.push(if q.wide { "redacted" } else { "R" });
        }
        if r.truncated {
            flags.push(if q.wide { "truncated" } else { "T" });
        }
        let event = match (r.kind.as_str(), &r.hook_event_name) {
            ("event", Some(name)) => name.clone(),
            (kind, Some(name)) => format!("{name} ({kind})"),
            (kind, None) => format!("({kind})"),
        };
        let session = r.session_id.clone().unwrap_or_default();
        let mut row = vec![
            r.id.to_string(),
            table::time(r.received_at_ns, q.wide),
            event,
            r.tool_name.clone().unwrap_or_default(),
            if q.wide { session } else { session.chars().take(8).collect() },
            table::decision(&r.decision),
            if q.wide { flags.join(",") } else { flags.concat() },
        ];
        if !flags_shown {
            row.pop();
        }
        if team_view {
            row.insert(1, r.machine.clone().unwrap_or_default());
        }
        t.row(row);
    }
    out(&t.render())?;
    Ok(ExitCode::SUCCESS)
}

pub fn sessions(config: &Config, json: bool, wide: bool, source: &SourceArgs) -> anyhow::Result<ExitCode> {
    let (rows, team_view) = match super::source::team(config, source)? {
        Some(mut team) => (team.sessions()?, true),
        None => (Store::open_existing(&config.db_path)?.sessions()?, false),
    };
    if rows.is_empty() {
        eprintln!("{}", if source.machine.is_some() { "no sessions match these filters" } else { "no sessions recorded yet" });
        return Ok(ExitCode::SUCCESS);
    }
    if json {
        out_json_lines(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    // 80 columns by default: short ids, local times, the home directory as `~`.
    let w = |narrow: usize, full: usize| if wide { full } else { narrow };
    let mut columns = vec![
        ("SESSION", w(8, 36), false),
        ("LAST SEEN", w(14, 24), false),
        ("EVENTS", 6, true),
        ("BRANCH", w(12, 30), false),
        ("ENDED", w(9, 18), false),
        ("CWD", w(if team_view { 16 } else { 25 }, 60), false),
    ];
    if team_view {
        columns.insert(1, ("MACHINE", w(8, 30), false));
    }
    let mut t = Table::new(&columns);
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty() && h != "/");
    for r in &rows {
        let cwd = r.cwd.clone().unwrap_or_default();
        let cwd = match &home {
            Some(h) if !wide && (cwd == *h || cwd.starts_with(&format!("{h}/"))) => format!("~{}", &cwd[h.len()..]),
            _ => cwd,
        };
        let mut row = vec![
            if wide { r.session_id.clone() } else { r.session_id.chars().take(8).collect() },
            table::time(r.last_seen_ns, wide),
            r.event_count.to_string(),
            r.git_branch.clone().unwrap_or_default(),
            r.end_reason.clone().or_else(|| r.ended_at.as_ref().map(|_| "yes".into())).unwrap_or_default(),
            cwd,
        ];
        if team_view {
            row.insert(1, r.machine.clone().unwrap_or_default());
        }
        t.row(row);
    }
    out(&t.render())?;
    Ok(ExitCode::SUCCESS)
}
