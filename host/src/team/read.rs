//! Team views: `stats`, `events`, `sessions` and `report` with `--source`, read from the team
//! database in the shapes the local views print, plus each row's `machine`.
//!
//! Aggregates are computed by the server (`percentile_disc` is the nearest-rank percentile the
//! local report uses), so `stats` over a team's month moves a few rows, not every measurement.
//! Rows are joined to their event by (`machine`, `store_id`, `event_local_id`); ids shown are
//! the team database's own (`chronicle.events.id`), unique across machines.

use std::collections::BTreeMap;

use postgres::types::{ToSql, Type};
use postgres::Client;
use serde::Serialize;
use serde_json::{Map, Value};

use super::SyncError;
use crate::config::Thresholds;
use crate::store::read::{rfc3339, FaultInfo};
use crate::store::stats::{
    round, summarize, CacheStats, EventStats, MemoryStats, PerformanceStats, PluginStats, Stats, Summary, Violation, Window,
};
use crate::store::{EventFilter, EventRow, SessionMatch, SessionRow};

/// A connection to the team database, narrowed to one machine when asked.
pub struct Team {
    client: Client,
    shown: String,
    pub machine: Option<String>,
}

/// Per machine, in `stats --json`'s `machines`.
#[derive(Debug, Clone, Serialize)]
pub struct MachineStats {
    pub events: u64,
    pub decisions: BTreeMap<String, u64>,
    /// `hook.total` of the machine's events.
    pub hook_total: Summary,
    pub violations: u64,
    pub sessions: u64,
    pub last_event_at: Option<String>,
}

/// `stats --json` with `--source`: the local shape plus `machines`.
#[derive(Debug, Clone, Serialize)]
pub struct TeamStats {
    #[serde(flatten)]
    pub stats: Stats,
    pub machines: BTreeMap<String, MachineStats>,
}

/// The event filter every view shares: `$1` since (unix ns), `$2` session, `$3` machine.
const WINDOW: &str = "($1::bigint IS NULL OR e.received_at >= to_timestamp($1::bigint::float8 / 1e9))
     AND ($2::text IS NULL OR e.session_id = $2) AND ($3::text IS NULL OR e.machine = $3)";

/// Joins a child table `c` to its event `e`.
const JOIN: &str = "e.machine = c.machine AND e.store_id = c.store_id AND e.local_id = c.event_local_id";

impl Team {
    pub fn new(client: Client, shown: &str, machine: Option<String>) -> Team {
        Team { client, shown: shown.to_owned(), machine }
    }

    /// Fails with a clear message when nothing has been pushed to this database yet.
    pub fn check_schema(&mut self) -> Result<(), SyncError> {
        let row = self
            .client
            .query_one("SELECT to_regclass('chronicle.events') IS NOT NULL", &[])
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        if row.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(SyncError::Config(format!("{} has no chronicle schema yet: run `chronicle sync` on a machine first", self.shown)))
        }
    }

    pub fn resolve_session(&mut self, prefix: &str) -> Result<SessionMatch, SyncError> {
        let rows = self
            .client
            .query(
                "SELECT DISTINCT session_id, session_id = $1 AS exact FROM chronicle.events
                 WHERE starts_with(session_id, $1) AND ($2::text IS NULL OR machine = $2) ORDER BY exact DESC, session_id LIMIT 11",
                &[&prefix, &self.machine],
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(match ids.as_slice() {
            [] => SessionMatch::None,
            [one] => SessionMatch::One(one.clone()),
            [first, ..] if first == prefix => SessionMatch::One(first.clone()),
            _ => SessionMatch::Several(ids.into_iter().take(10).collect()),
        })
    }

    /// Events, oldest first (the newest `limit` when a limit is given), with their faults.
    pub fn events(&mut self, f: &EventFilter) -> Result<Vec<EventRow>, SyncError> {
        let limit = f.limit.map(|l| l as i64);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT * FROM (
                         SELECT e.id, e.kind, e.hook_event_name, e.tool_name, e.session_id, e.tool_use_id, e.agent_id, e.received_at_ns,
                                e.redacted, e.truncated, e.decision, e.exit_code, e.error, e.payload_bytes, e.payload::text, e.machine,
                                e.store_id, e.local_id
                         FROM chronicle.events e
                         WHERE {WINDOW} AND ($4::text IS NULL OR e.decision = $4) AND ($5::text IS NULL OR e.tool_name = $5)
                         ORDER BY e.received_at DESC, e.id DESC LIMIT $6) x
                     ORDER BY received_at_ns, id"
                ),
                &[&f.since_ns, &f.session, &self.machine, &f.decision, &f.tool, &limit],
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        let mut events = Vec::with_capacity(rows.len());
        let mut keys: (Vec<String>, Vec<String>, Vec<i64>) = Default::default();
        for r in &rows {
            let kind: String = r.get(1);
            let text: String = r.get(14);
            let payload = serde_json::from_str(&text).unwrap_or(Value::String(text));
            let ns: i64 = r.get(7);
            keys.0.push(r.get(15));
            keys.1.push(r.get(16));
            keys.2.push(r.get(17));
            events.push(EventRow {
                id: r.get(0),
                kind,
                hook_event_name: r.get(2),
                tool_name: r.get(3),
                session_id: r.get(4),
                tool_use_id: r.get(5),
                agent_id: r.get(6),
                received_at: rfc3339(ns),
                received_at_ns: ns,
                redacted: r.get(8),
                truncated: r.get(9),
                decision: r.get(10),
                exit_code: r.get(11),
                error: r.get(12),
                payload_bytes: r.get::<_, i64>(13) as u64,
                payload,
                faults: Vec::new(),
                machine: Some(r.get(15)),
            });
        }
        if events.is_empty() {
            return Ok(events);
        }
        let faults = self
            .client
            .query(
                "SELECT k.n, c.source, c.plugin, c.path, c.message
                 FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS k(machine, store_id, local_id, n)
                 JOIN chronicle.faults c ON c.machine = k.machine AND c.store_id = k.store_id AND c.event_local_id = k.local_id
                 ORDER BY c.id",
                &[&keys.0, &keys.1, &keys.2],
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        for r in faults {
            let n: i64 = r.get(0);
            let source: String = r.get(1);
            if let Some(e) = events.get_mut((n - 1) as usize) {
                e.faults.push(FaultInfo::new(&source, r.get(2), r.get(3), r.get(4), None));
            }
        }
        Ok(events)
    }

    /// Every session, most recently seen last.
    pub fn sessions(&mut self) -> Result<Vec<SessionRow>, SyncError> {
        let rows = self
            .client
            .query(
                "SELECT session_id, (extract(epoch FROM first_seen) * 1e9)::bigint, (extract(epoch FROM last_seen) * 1e9)::bigint,
                        (extract(epoch FROM ended_at) * 1e9)::bigint, end_reason, cwd, project_dir, git_branch, event_count, machine
                 FROM chronicle.sessions WHERE ($1::text IS NULL OR machine = $1) ORDER BY last_seen",
                &[&self.machine],
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        Ok(rows
            .iter()
            .map(|r| SessionRow {
                session_id: r.get(0),
                first_seen: rfc3339(r.get(1)),
                last_seen: rfc3339(r.get(2)),
                last_seen_ns: r.get(2),
                ended_at: r.get::<_, Option<i64>>(3).map(rfc3339),
                end_reason: r.get(4),
                cwd: r.get(5),
                project_dir: r.get(6),
                git_branch: r.get(7),
                event_count: r.get(8),
                machine: Some(r.get(9)),
            })
            .collect())
    }

    fn summaries(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<BTreeMap<String, Summary>, SyncError> {
        let rows = self.client.query(sql, params).map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), summary(r, 1))).collect())
    }

    /// The local `stats` shape over the team's rows, plus `machines`.
    pub fn stats(&mut self, w: &Window, thresholds: &Thresholds) -> Result<TeamStats, SyncError> {
        let machine = self.machine.clone();
        let p: [&(dyn ToSql + Sync); 3] = [&w.since_ns, &w.session, &machine];
        let agg = |value: &str| {
            format!(
                "count(*), avg({value}), max({value}), percentile_disc(0.5) WITHIN GROUP (ORDER BY {value}),
                 percentile_disc(0.95) WITHIN GROUP (ORDER BY {value}), percentile_disc(0.99) WITHIN GROUP (ORDER BY {value})"
            )
        };
        let mut operations = self.summaries(
            &format!(
                "SELECT c.name, {} FROM chronicle.metrics c JOIN chronicle.events e ON {JOIN} WHERE {WINDOW} GROUP BY c.name",
                agg("c.value")
            ),
            &p,
        )?;
        let rss = operations.remove("process.peak_rss_mb").unwrap_or_else(|| summarize(Vec::new()));
        let resident_rss = operations.remove("resident.peak_rss_mb").unwrap_or_else(|| summarize(Vec::new()));
        operations.remove("hook.resident");
        let host_hits = operations.remove("cache.host.hit").map_or(0, |s| s.count);
        let host_misses = operations.remove("cache.host.miss").map_or(0, |s| s.count);
        let total_operations: u64 = operations.values().map(|s| s.count).sum();
        let avg_ms = if total_operations == 0 {
            0.0
        } else {
            round(operations.values().map(|s| s.avg_ms * s.count as f64).sum::<f64>() / total_operations as f64)
        };

        let violations: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM chronicle.violations c JOIN chronicle.events e ON {JOIN} WHERE {WINDOW}"), &p)
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?
            .get(0);
        let recent_violations = self
            .client
            .query(
                &format!(
                    "SELECT e.id, e.received_at_ns, c.metric, c.subject, c.value, c.threshold
                     FROM chronicle.violations c JOIN chronicle.events e ON {JOIN} WHERE {WINDOW} ORDER BY e.received_at DESC, c.id DESC LIMIT 10"
                ),
                &p,
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?
            .iter()
            .map(|r| Violation {
                event_id: r.get(0),
                at: rfc3339(r.get(1)),
                metric: r.get(2),
                subject: r.get(3),
                value: round(r.get(4)),
                threshold: r.get(5),
            })
            .collect();

        // Plugins: counts by status, decision and cache; times of the calls that ran.
        let mut plugins: BTreeMap<String, PluginStats> = BTreeMap::new();
        let (mut hits, mut misses) = (host_hits, host_misses);
        let counts = self
            .client
            .query(
                &format!(
                    "SELECT c.plugin, c.status, c.decision, c.cache, count(*) FROM chronicle.plugin_calls c
                     JOIN chronicle.events e ON {JOIN} WHERE {WINDOW} GROUP BY 1, 2, 3, 4"
                ),
                &p,
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        for r in counts {
            let (plugin, status, decision, cache, n): (String, String, String, Option<String>, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            let n = n as u64;
            let s = plugins.entry(plugin).or_insert_with(PluginStats::empty);
            s.calls += n;
            *s.decisions.entry(decision).or_default() += n;
            match cache.as_deref() {
                Some("hit") => hits += n,
                Some("miss") => misses += n,
                _ => {}
            }
            if status == "cached" {
                s.cached += n;
            } else if status != "ok" {
                *s.faults.entry(status).or_default() += n;
            }
        }
        let times = self
            .client
            .query(
                &format!(
                    "SELECT c.plugin, {}, max(c.peak_live_bytes), avg(c.allocations)::float8 FROM chronicle.plugin_calls c
                     JOIN chronicle.events e ON {JOIN} WHERE {WINDOW} AND c.status <> 'cached' GROUP BY c.plugin",
                    agg("c.wall_ns::float8 / 1e6")
                ),
                &p,
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        for r in times {
            if let Some(s) = plugins.get_mut(r.get::<_, &str>(0)) {
                s.time = summary(&r, 1);
                s.max_peak_live_bytes = r.get::<_, Option<i64>>(7).unwrap_or(0).max(0) as u64;
                s.avg_allocations = round(r.get::<_, Option<f64>>(8).unwrap_or(0.0));
            }
        }

        // Event types.
        let mut events: BTreeMap<String, EventStats> = BTreeMap::new();
        let name = "coalesce(e.hook_event_name, '(' || e.kind || ')')";
        for r in self
            .client
            .query(&format!("SELECT {name}, e.decision, count(*) FROM chronicle.events e WHERE {WINDOW} GROUP BY 1, 2"), &p)
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?
        {
            let e = events.entry(r.get(0)).or_insert_with(|| EventStats {
                count: 0,
                decisions: BTreeMap::new(),
                total_time: summarize(Vec::new()),
            });
            let n = r.get::<_, i64>(2) as u64;
            e.count += n;
            *e.decisions.entry(r.get(1)).or_default() += n;
        }
        for (k, s) in self.summaries(
            &format!(
                "SELECT {name}, {} FROM chronicle.events e JOIN chronicle.metrics c ON {JOIN} AND c.name = 'hook.total'
                 WHERE {WINDOW} GROUP BY 1",
                agg("c.value")
            ),
            &p,
        )? {
            if let Some(e) = events.get_mut(&k) {
                e.total_time = s;
            }
        }

        let machines = self.machines(&p)?;
        let stats = Stats {
            performance_stats: PerformanceStats { total_operations, avg_ms, operations, violations: violations as u64, recent_violations },
            // The persistent cache tier stays on each machine: no size for the team.
            cache_stats: CacheStats::from_lookups(0, hits, misses),
            thresholds: thresholds.clone(),
            plugins,
            events,
            memory: MemoryStats { peak_rss_mb: rss, resident_peak_rss_mb: resident_rss },
        };
        Ok(TeamStats { stats, machines })
    }

    fn machines(&mut self, p: &[&(dyn ToSql + Sync)]) -> Result<BTreeMap<String, MachineStats>, SyncError> {
        let mut out: BTreeMap<String, MachineStats> = BTreeMap::new();
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT e.machine, e.decision, count(*), count(DISTINCT e.session_id), max(e.received_at_ns)
                     FROM chronicle.events e WHERE {WINDOW} GROUP BY 1, 2"
                ),
                p,
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        for r in rows {
            let m = out.entry(r.get(0)).or_insert_with(|| MachineStats {
                events: 0,
                decisions: BTreeMap::new(),
                hook_total: summarize(Vec::new()),
                violations: 0,
                sessions: 0,
                last_event_at: None,
            });
            let n = r.get::<_, i64>(2) as u64;
            m.events += n;
            *m.decisions.entry(r.get(1)).or_default() += n;
            m.sessions = m.sessions.max(r.get::<_, i64>(3) as u64);
            let last = rfc3339(r.get::<_, Option<i64>>(4).unwrap_or(0));
            if m.last_event_at.as_ref().is_none_or(|l| *l < last) {
                m.last_event_at = Some(last);
            }
        }
        for (k, s) in self.summaries(
            &format!(
                "SELECT e.machine, count(*), avg(c.value), max(c.value), percentile_disc(0.5) WITHIN GROUP (ORDER BY c.value),
                        percentile_disc(0.95) WITHIN GROUP (ORDER BY c.value), percentile_disc(0.99) WITHIN GROUP (ORDER BY c.value)
                 FROM chronicle.events e JOIN chronicle.metrics c ON {JOIN} AND c.name = 'hook.total' WHERE {WINDOW} GROUP BY 1"
            ),
            p,
        )? {
            if let Some(m) = out.get_mut(&k) {
                m.hook_total = s;
            }
        }
        for r in self
            .client
            .query(
                &format!(
                    "SELECT e.machine, count(*) FROM chronicle.violations c JOIN chronicle.events e ON {JOIN} WHERE {WINDOW} GROUP BY 1"
                ),
                p,
            )
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?
        {
            if let Some(m) = out.get_mut(r.get::<_, &str>(0)) {
                m.violations = r.get::<_, i64>(1) as u64;
            }
        }
        // Sessions per machine counted over the whole window, not per decision.
        for r in self
            .client
            .query(&format!("SELECT e.machine, count(DISTINCT e.session_id) FROM chronicle.events e WHERE {WINDOW} GROUP BY 1"), p)
            .map_err(|e| SyncError::from_pg(&self.shown, &e))?
        {
            if let Some(m) = out.get_mut(r.get::<_, &str>(0)) {
                m.sessions = r.get::<_, i64>(1) as u64;
            }
        }
        Ok(out)
    }

    /// Rows of a query as JSON objects (column name → value), for the HTML report.
    pub fn query_json(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Map<String, Value>>, SyncError> {
        let rows = self.client.query(sql, params).map_err(|e| SyncError::from_pg(&self.shown, &e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (i, c) in r.columns().iter().enumerate() {
                    let v = match *c.type_() {
                        Type::INT8 => r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::from),
                        Type::INT4 => r.get::<_, Option<i32>>(i).map_or(Value::Null, Value::from),
                        Type::FLOAT8 => r.get::<_, Option<f64>>(i).map_or(Value::Null, Value::from),
                        Type::BOOL => r.get::<_, Option<bool>>(i).map_or(Value::Null, Value::from),
                        _ => r.get::<_, Option<String>>(i).map_or(Value::Null, Value::from),
                    };
                    m.insert(c.name().to_owned(), v);
                }
                m
            })
            .collect())
    }
}

/// Columns `from..from+6` of an aggregate row: count, avg, max, p50, p95, p99.
fn summary(r: &postgres::Row, from: usize) -> Summary {
    let f = |i: usize| round(r.get::<_, Option<f64>>(from + i).unwrap_or(0.0));
    Summary { count: r.get::<_, i64>(from).max(0) as u64, avg_ms: f(1), max_ms: f(2), p50_ms: f(3), p95_ms: f(4), p99_ms: f(5) }
}

impl crate::report::ReportRows for Team {
    fn rows(&mut self, which: crate::report::Rows, w: &Window) -> Result<Vec<Map<String, Value>>, crate::report::RowsError> {
        use crate::report::Rows;
        let sql = match which {
            Rows::Timeline => format!(
                "SELECT * FROM (
                     SELECT e.id, e.received_at_ns, coalesce(e.hook_event_name, e.kind) AS name, e.decision FROM chronicle.events e
                     WHERE {WINDOW} ORDER BY e.received_at DESC, e.id DESC LIMIT 2000) x
                 ORDER BY received_at_ns, id"
            ),
            Rows::TimelineTotal => format!("SELECT count(*) AS n FROM chronicle.events e WHERE {WINDOW}"),
            Rows::Sessions => format!(
                "SELECT e.session_id, min(e.received_at_ns) AS first_ns, max(e.received_at_ns) AS last_ns, count(*) AS events
                 FROM chronicle.events e WHERE e.session_id IS NOT NULL AND {WINDOW}
                 GROUP BY e.session_id ORDER BY last_ns DESC LIMIT 50"
            ),
            Rows::ToolSpans => "SELECT t.tool_use_id, t.tool_name, (extract(epoch FROM t.started_at) * 1e9)::bigint AS started_at_ns,
                        (extract(epoch FROM t.ended_at) * 1e9)::bigint AS ended_at_ns, t.duration_ms, t.status
                 FROM chronicle.tool_durations t
                 WHERE t.started_at IS NOT NULL AND t.ended_at IS NOT NULL
                   AND ($1::bigint IS NULL OR t.started_at >= to_timestamp($1::bigint::float8 / 1e9))
                   AND ($2::text IS NULL OR t.session_id = $2) AND ($3::text IS NULL OR t.machine = $3)
                 ORDER BY t.started_at LIMIT 500"
                .to_owned(),
            Rows::Decisions => format!(
                "SELECT e.id, e.received_at_ns, e.hook_event_name, e.tool_name, e.decision, e.answer FROM chronicle.events e
                 WHERE e.decision <> 'none' AND {WINDOW} ORDER BY e.received_at, e.id LIMIT 500"
            ),
            Rows::CacheCalls => format!(
                "SELECT e.received_at_ns AS t, c.cache FROM chronicle.plugin_calls c JOIN chronicle.events e ON {JOIN}
                 WHERE c.cache IS NOT NULL AND {WINDOW} ORDER BY e.received_at, e.id"
            ),
        };
        let machine = self.machine.clone();
        Ok(self.query_json(&sql, &[&w.since_ns, &w.session, &machine])?)
    }
}
