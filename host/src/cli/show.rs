//! `chronicle events` and `chronicle sessions`.

use std::io::Write;
use std::process::ExitCode;

use chronicle::config::Config;
use chronicle::store::{EventFilter, SessionMatch, Store};

use super::table::{self, Table};

pub fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        // A closed pipe (`| head`) is success.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The full session id a `--session` value names: any unique prefix (tables show 8 characters).
pub fn resolve_session(store: &Store, session: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(prefix) = session else { return Ok(None) };
    match store.resolve_session(&prefix)? {
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

pub fn events(config: &Config, q: EventsQuery) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&config.db_path)?;
    let session = resolve_session(&store, q.session)?;
    let since_ns = super::stats::window(q.since.as_deref(), None)?.since_ns;
    let filtered = session.is_some() || since_ns.is_some() || q.decision.is_some() || q.tool.is_some();
    let rows = store.events(&EventFilter { session, limit: q.limit, since_ns, decision: q.decision, tool: q.tool })?;
    if rows.is_empty() {
        eprintln!("{}", if filtered { "no events match these filters" } else { "no events recorded yet" });
        return Ok(ExitCode::SUCCESS);
    }
    if q.json {
        let mut text = String::new();
        for r in &rows {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        out(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    // 80 columns by default: local short times, the kind folded into the event column.
    let w = |narrow: usize, wide: usize| if q.wide { wide } else { narrow };
    let mut t = Table::new(&[
        ("ID", 10, true),
        ("TIME", w(14, 24), false),
        ("EVENT", w(16, 40), false),
        ("TOOL", w(10, 40), false),
        ("SESSION", w(8, 40), false),
        ("DECISION", 8, false),
        ("FLAGS", w(5, 20), false),
    ]);
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
        t.row(vec![
            r.id.to_string(),
            table::time(r.received_at_ns, q.wide),
            event,
            r.tool_name.clone().unwrap_or_default(),
            if q.wide { session } else { session.chars().take(8).collect() },
            table::decision(&r.decision),
            flags.join(","),
        ]);
    }
    out(&t.render())?;
    Ok(ExitCode::SUCCESS)
}

pub fn sessions(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_existing(&config.db_path)?;
    let rows = store.sessions()?;
    if json {
        let mut text = String::new();
        for r in &rows {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        out(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        ("SESSION", 36, false),
        ("FIRST SEEN", 23, false),
        ("LAST SEEN", 23, false),
        ("EVENTS", 7, true),
        ("BRANCH", 20, false),
        ("ENDED", 18, false),
        ("CWD", 40, false),
    ]);
    for r in &rows {
        t.row(vec![
            r.session_id.clone(),
            r.first_seen.clone(),
            r.last_seen.clone(),
            r.event_count.to_string(),
            r.git_branch.clone().unwrap_or_default(),
            r.end_reason.clone().or_else(|| r.ended_at.as_ref().map(|_| "yes".into())).unwrap_or_default(),
            r.cwd.clone().unwrap_or_default(),
        ]);
    }
    out(&t.render())?;
    Ok(ExitCode::SUCCESS)
}
