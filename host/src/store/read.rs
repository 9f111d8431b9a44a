//! Reading the store back: events and sessions, as rows for the CLI's tables and `--json`.

use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use super::{Store, StoreError};

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub session: Option<String>,
    pub limit: Option<usize>,
    pub since_ns: Option<i64>,
    /// Only events with this recorded decision (`deny`, `ask`, `block`, ...).
    pub decision: Option<String>,
    /// Only events of this tool.
    pub tool: Option<String>,
}

/// One stored event. `--json` prints these field names; tools rely on them.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub hook_event_name: Option<String>,
    pub tool_name: Option<String>,
    pub session_id: Option<String>,
    pub tool_use_id: Option<String>,
    pub agent_id: Option<String>,
    pub received_at: String,
    pub received_at_ns: i64,
    pub redacted: bool,
    pub truncated: bool,
    pub decision: String,
    pub exit_code: i32,
    pub error: Option<String>,
    pub payload_bytes: u64,
    /// The stored JSON, or the raw text for parse errors.
    pub payload: Value,
    /// What went wrong while handling it: plugin faults, input problems, merge notes.
    pub faults: Vec<FaultInfo>,
    /// The machine it was recorded on (team views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// One recorded fault. `kind` is the fault's kind for plugin calls (`panic`, `timeout`,
/// `too_large`, ...) and its source otherwise (`plugin_load`, `input`, `answer`, ...).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FaultInfo {
    pub plugin: Option<String>,
    pub path: Option<String>,
    pub kind: String,
    pub message: String,
    /// When the event it happened in was received (RFC 3339), for the last-fault views.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl FaultInfo {
    pub(crate) fn new(source: &str, plugin: Option<String>, path: Option<String>, message: String, at: Option<String>) -> FaultInfo {
        // Plugin call faults are stored as "<kind>: <message>".
        let (kind, message) = match message.split_once(": ") {
            Some((kind, rest)) if source == "plugin_call" && !kind.contains(' ') => (kind.to_owned(), rest.to_owned()),
            _ => (source.to_owned(), message),
        };
        FaultInfo { plugin, path, kind, message, at }
    }
}

/// One Claude Code session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub session_id: String,
    pub first_seen: String,
    pub last_seen: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub cwd: Option<String>,
    pub project_dir: Option<String>,
    pub git_branch: Option<String>,
    pub event_count: i64,
    #[serde(skip)]
    pub last_seen_ns: i64,
    /// The machine it ran on (team views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let millis = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", tod / 3600, tod % 3600 / 60, tod % 60)
}

/// What a session id prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionMatch {
    One(String),
    None,
    /// Every session it could be (at most 10).
    Several(Vec<String>),
}

impl Store {
    /// The session a prefix names (tables show ids 8 characters long); an exact id wins.
    pub fn resolve_session(&self, prefix: &str) -> Result<SessionMatch, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT DISTINCT session_id FROM events
                 WHERE substr(session_id, 1, length(?1)) = ?1 ORDER BY session_id = ?1 DESC, session_id LIMIT 11",
            )
            .map_err(|e| self.err(e))?;
        let ids: Vec<String> =
            stmt.query_map(params![prefix], |r| r.get(0)).map_err(|e| self.err(e))?.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        Ok(match ids.as_slice() {
            [] => SessionMatch::None,
            [one] => SessionMatch::One(one.clone()),
            [first, ..] if first == prefix => SessionMatch::One(first.clone()),
            _ => SessionMatch::Several(ids.into_iter().take(10).collect()),
        })
    }

    /// Events, oldest first (the newest `limit` when a limit is given).
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        let limit = filter.limit.map_or(-1, |l| l as i64);
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT * FROM (
                     SELECT id, kind, hook_event_name, tool_name, session_id, tool_use_id, agent_id, received_at_ns,
                            redacted, truncated, decision, exit_code, error, payload_bytes, payload
                     FROM events
                     WHERE (?1 IS NULL OR session_id = ?1) AND (?2 IS NULL OR received_at_ns >= ?2)
                       AND (?4 IS NULL OR decision = ?4) AND (?5 IS NULL OR tool_name = ?5)
                     ORDER BY id DESC LIMIT ?3)
                 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![filter.session, filter.since_ns, limit, filter.decision, filter.tool], |r| {
                let kind: String = r.get(1)?;
                let text: String = r.get(14)?;
                let payload =
                    if kind == "parse_error" { Value::String(text) } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
                let ns: i64 = r.get(7)?;
                Ok(EventRow {
                    id: r.get(0)?,
                    kind,
                    hook_event_name: r.get(2)?,
                    tool_name: r.get(3)?,
                    session_id: r.get(4)?,
                    tool_use_id: r.get(5)?,
                    agent_id: r.get(6)?,
                    received_at: rfc3339(ns),
                    received_at_ns: ns,
                    redacted: r.get(8)?,
                    truncated: r.get(9)?,
                    decision: r.get(10)?,
                    exit_code: r.get(11)?,
                    error: r.get(12)?,
                    payload_bytes: r.get::<_, i64>(13)? as u64,
                    payload,
                    faults: Vec::new(),
                    machine: None,
                })
            })
            .map_err(|e| self.err(e))?;
        let mut events = rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))?;
        let (Some(first), Some(last)) = (events.first().map(|e| e.id), events.last().map(|e| e.id)) else { return Ok(events) };
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT event_id, source, plugin, path, message FROM faults WHERE event_id BETWEEN ?1 AND ?2 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let faults = stmt
            .query_map(params![first, last], |r| {
                let source: String = r.get(1)?;
                Ok((r.get::<_, i64>(0)?, FaultInfo::new(&source, r.get(2)?, r.get(3)?, r.get(4)?, None)))
            })
            .map_err(|e| self.err(e))?;
        for f in faults {
            let (event_id, fault) = f.map_err(|e| self.err(e))?;
            if let Ok(i) = events.binary_search_by_key(&event_id, |e| e.id) {
                events[i].faults.push(fault);
            }
        }
        Ok(events)
    }

    /// The most recent fault of each plugin file, keyed by its path.
    pub fn last_faults(&self) -> Result<std::collections::HashMap<String, FaultInfo>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT f.source, f.plugin, f.path, f.message, e.received_at_ns FROM faults f JOIN events e ON e.id = f.event_id
                 WHERE f.id IN (SELECT MAX(id) FROM faults WHERE path IS NOT NULL GROUP BY path)",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let source: String = r.get(0)?;
                let path: String = r.get(2)?;
                Ok((path.clone(), FaultInfo::new(&source, r.get(1)?, Some(path), r.get(3)?, Some(rfc3339(r.get(4)?)))))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every session, most recently seen last.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT session_id, first_seen_ns, last_seen_ns, ended_at_ns, end_reason, cwd, project_dir, git_branch, event_count
                 FROM sessions ORDER BY last_seen_ns",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SessionRow {
                    session_id: r.get(0)?,
                    first_seen: rfc3339(r.get(1)?),
                    last_seen: rfc3339(r.get(2)?),
                    ended_at: r.get::<_, Option<i64>>(3)?.map(rfc3339),
                    end_reason: r.get(4)?,
                    cwd: r.get(5)?,
                    project_dir: r.get(6)?,
                    git_branch: r.get(7)?,
                    event_count: r.get(8)?,
                    last_seen_ns: r.get(2)?,
                    machine: None,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The HTML report's row sets (see [`crate::report::Rows`] for their columns).
    pub fn report_rows(
        &self,
        which: crate::report::Rows,
        w: &super::stats::Window,
    ) -> Result<Vec<serde_json::Map<String, Value>>, StoreError> {
        use crate::report::Rows;
        let sql = match which {
            Rows::Timeline => {
                "SELECT * FROM (
                     SELECT id, received_at_ns, coalesce(hook_event_name, kind) AS name, decision FROM events
                     WHERE (?1 IS NULL OR received_at_ns >= ?1) AND (?2 IS NULL OR session_id = ?2) ORDER BY id DESC LIMIT 2000)
                 ORDER BY id"
            }
            Rows::TimelineTotal => {
                "SELECT count(*) AS n FROM events WHERE (?1 IS NULL OR received_at_ns >= ?1) AND (?2 IS NULL OR session_id = ?2)"
            }
            Rows::Sessions => {
                "SELECT session_id, min(received_at_ns) AS first_ns, max(received_at_ns) AS last_ns, count(*) AS events FROM events
                 WHERE session_id IS NOT NULL AND (?1 IS NULL OR received_at_ns >= ?1) AND (?2 IS NULL OR session_id = ?2)
                 GROUP BY session_id ORDER BY last_ns DESC LIMIT 50"
            }
            Rows::ToolSpans => {
                "SELECT tool_use_id, tool_name, started_at_ns, ended_at_ns, duration_ms, status FROM tool_durations
                 WHERE started_at_ns IS NOT NULL AND ended_at_ns IS NOT NULL AND (?1 IS NULL OR started_at_ns >= ?1)
                   AND (?2 IS NULL OR session_id = ?2)
                 ORDER BY started_at_ns LIMIT 500"
            }
            Rows::Decisions => {
                "SELECT id, received_at_ns, hook_event_name, tool_name, decision, answer FROM events
                 WHERE decision <> 'none' AND (?1 IS NULL OR received_at_ns >= ?1) AND (?2 IS NULL OR session_id = ?2) ORDER BY id LIMIT 500"
            }
            Rows::CacheCalls => {
                "SELECT e.received_at_ns AS t, c.cache AS cache FROM plugin_calls c JOIN events e ON e.id = c.event_id
                 WHERE c.cache IS NOT NULL AND (?1 IS NULL OR e.received_at_ns >= ?1) AND (?2 IS NULL OR e.session_id = ?2) ORDER BY e.id"
            }
        };
        self.query_json(sql, &[&w.since_ns, &w.session])
    }

    /// Rows of a table-shaped query, for reports (column name → value).
    pub fn query_json(&self, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<serde_json::Map<String, Value>>, StoreError> {
        let mut stmt = self.conn().prepare_cached(sql).map_err(|e| self.err(e))?;
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let rows = stmt
            .query_map(args, |r| {
                let mut m = serde_json::Map::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(x) => Value::from(x),
                        rusqlite::types::ValueRef::Real(x) => Value::from(x),
                        rusqlite::types::ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                        rusqlite::types::ValueRef::Blob(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
                    };
                    m.insert(n.clone(), v);
                }
                Ok(m)
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_unix_time_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_000_000_123_000_000), "2026-11-18T11:06:40.123Z");
    }
}
