//! The metrics report (`chronicle stats`): what every operation cost, what was violated, how
//! the cache did, per plugin and per event type. The JSON shape is the seed's
//! (`performance_stats`, `cache_stats`, `thresholds`) plus breakdowns; field names are stable.

use std::collections::BTreeMap;

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};
use crate::config::Thresholds;

/// Which events the report covers.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub since_ns: Option<i64>,
    pub session: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(mut values: Vec<f64>) -> Summary {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let count = values.len() as u64;
    let avg = if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
    Summary {
        count,
        avg_ms: round(avg),
        max_ms: round(values.last().copied().unwrap_or(0.0)),
        p50_ms: round(percentile(&values, 50.0)),
        p95_ms: round(percentile(&values, 95.0)),
        p99_ms: round(percentile(&values, 99.0)),
    }
}

/// Rounded to the microsecond (values are milliseconds), as every report shows them.
pub fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub event_id: i64,
    pub at: String,
    pub metric: String,
    pub subject: String,
    pub value: f64,
    pub threshold: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerformanceStats {
    pub total_operations: u64,
    pub avg_ms: f64,
    pub operations: BTreeMap<String, Summary>,
    pub violations: u64,
    pub recent_violations: Vec<Violation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CacheStats {
    pub size: u64,
    pub max_size: u64,
    pub hit_ratio: f64,
    pub hits: u64,
    pub misses: u64,
}

impl CacheStats {
    /// The report's cache section from the entries held and the lookups counted.
    pub fn from_lookups(size: u64, hits: u64, misses: u64) -> CacheStats {
        let lookups = hits + misses;
        CacheStats {
            size,
            max_size: crate::cache::L2_CAPACITY as u64,
            hit_ratio: if lookups == 0 { 0.0 } else { round(hits as f64 / lookups as f64) },
            hits,
            misses,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PluginStats {
    pub calls: u64,
    pub cached: u64,
    pub faults: BTreeMap<String, u64>,
    pub decisions: BTreeMap<String, u64>,
    pub time: Summary,
    pub max_peak_live_bytes: u64,
    pub avg_allocations: f64,
}

impl PluginStats {
    /// A plugin with no calls counted yet (the local and the team report fill it in).
    pub fn empty() -> PluginStats {
        PluginStats {
            calls: 0,
            cached: 0,
            faults: BTreeMap::new(),
            decisions: BTreeMap::new(),
            time: summarize(Vec::new()),
            max_peak_live_bytes: 0,
            avg_allocations: 0.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EventStats {
    pub count: u64,
    pub decisions: BTreeMap<String, u64>,
    pub total_time: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryStats {
    /// The process Claude Code started (the client, when a resident host answered).
    pub peak_rss_mb: Summary,
    /// The resident host's own peak, for the events it answered.
    pub resident_peak_rss_mb: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub performance_stats: PerformanceStats,
    pub cache_stats: CacheStats,
    pub thresholds: Thresholds,
    pub plugins: BTreeMap<String, PluginStats>,
    pub events: BTreeMap<String, EventStats>,
    pub memory: MemoryStats,
}

const EVENT_FILTER: &str = "(?1 IS NULL OR e.received_at_ns >= ?1) AND (?2 IS NULL OR e.session_id = ?2)";

impl Store {
    pub fn stats(&self, w: &Window, thresholds: &Thresholds) -> Result<Stats, StoreError> {
        let conn = self.conn();
        let err = |e| self.err(e);

        // Every metric value in the window, grouped by name.
        let mut by_name: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare(&format!("SELECT m.name, m.value FROM metrics m JOIN events e ON e.id = m.event_id WHERE {EVENT_FILTER}"))
                .map_err(err)?;
            let rows =
                stmt.query_map(params![w.since_ns, w.session], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))).map_err(err)?;
            for row in rows {
                let (name, value) = row.map_err(err)?;
                by_name.entry(name).or_default().push(value);
            }
        }
        let rss = by_name.remove("process.peak_rss_mb").unwrap_or_default();
        let resident_rss = by_name.remove("resident.peak_rss_mb").unwrap_or_default();
        // A marker on the events a resident host answered (always 1), not a duration.
        by_name.remove("hook.resident");
        // Host-side cache lookups (project context) are counts, not durations.
        let host_hits = by_name.remove("cache.host.hit").map_or(0, |v| v.len() as u64);
        let host_misses = by_name.remove("cache.host.miss").map_or(0, |v| v.len() as u64);
        let all: Vec<f64> = by_name.values().flatten().copied().collect();
        let total_operations = all.len() as u64;
        let avg_ms = if all.is_empty() { 0.0 } else { round(all.iter().sum::<f64>() / all.len() as f64) };
        let operations: BTreeMap<String, Summary> = by_name.into_iter().map(|(k, v)| (k, summarize(v))).collect();

        let violations: u64 = conn
            .query_row(
                &format!("SELECT count(*) FROM violations v JOIN events e ON e.id = v.event_id WHERE {EVENT_FILTER}"),
                params![w.since_ns, w.session],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)? as u64;
        let recent_violations = {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT v.event_id, e.received_at_ns, v.metric, v.subject, v.value, v.threshold FROM violations v JOIN events e ON e.id = v.event_id
                     WHERE {EVENT_FILTER} ORDER BY v.id DESC LIMIT 10"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map(params![w.since_ns, w.session], |r| {
                    Ok(Violation {
                        event_id: r.get(0)?,
                        at: super::read::rfc3339(r.get(1)?),
                        metric: r.get(2)?,
                        subject: r.get(3)?,
                        value: round(r.get(4)?),
                        threshold: r.get(5)?,
                    })
                })
                .map_err(err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(err)?
        };

        // Plugins.
        let mut plugins: BTreeMap<String, PluginStats> = BTreeMap::new();
        let mut plugin_times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut allocs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let (mut hits, mut misses) = (0u64, 0u64);
        {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT c.plugin, c.status, c.decision, c.wall_ns, c.peak_live_bytes, c.allocations, c.cache
                     FROM plugin_calls c JOIN events e ON e.id = c.event_id WHERE {EVENT_FILTER}"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map(params![w.since_ns, w.session], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ))
                })
                .map_err(err)?;
            for row in rows {
                let (plugin, status, decision, wall_ns, peak, allocations, cache) = row.map_err(err)?;
                let p = plugins.entry(plugin.clone()).or_insert_with(PluginStats::empty);
                p.calls += 1;
                *p.decisions.entry(decision).or_default() += 1;
                match cache.as_deref() {
                    Some("hit") => hits += 1,
                    Some("miss") => misses += 1,
                    _ => {}
                }
                if status == "cached" {
                    p.cached += 1;
                    continue;
                }
                if status != "ok" {
                    *p.faults.entry(status).or_default() += 1;
                }
                p.max_peak_live_bytes = p.max_peak_live_bytes.max(peak.max(0) as u64);
                plugin_times.entry(plugin.clone()).or_default().push(wall_ns as f64 / 1e6);
                let a = allocs.entry(plugin).or_default();
                a.0 += allocations.max(0) as u64;
                a.1 += 1;
            }
        }
        for (name, p) in plugins.iter_mut() {
            p.time = summarize(plugin_times.remove(name).unwrap_or_default());
            if let Some((sum, n)) = allocs.get(name) {
                p.avg_allocations = round(*sum as f64 / (*n).max(1) as f64);
            }
        }

        // Events.
        let mut events: BTreeMap<String, EventStats> = BTreeMap::new();
        let mut event_times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT coalesce(e.hook_event_name, '(' || e.kind || ')'), e.decision,
                            (SELECT value FROM metrics m WHERE m.event_id = e.id AND m.name = 'hook.total')
                     FROM events e WHERE {EVENT_FILTER}"
                ))
                .map_err(err)?;
            let rows = stmt
                .query_map(params![w.since_ns, w.session], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<f64>>(2)?))
                })
                .map_err(err)?;
            for row in rows {
                let (name, decision, total) = row.map_err(err)?;
                let e = events.entry(name.clone()).or_insert_with(|| EventStats {
                    count: 0,
                    decisions: BTreeMap::new(),
                    total_time: summarize(Vec::new()),
                });
                e.count += 1;
                *e.decisions.entry(decision).or_default() += 1;
                if let Some(t) = total {
                    event_times.entry(name).or_default().push(t);
                }
            }
        }
        for (name, e) in events.iter_mut() {
            e.total_time = summarize(event_times.remove(name).unwrap_or_default());
        }

        let size: i64 = conn.query_row("SELECT count(*) FROM cache", [], |r| r.get(0)).map_err(err)?;
        hits += host_hits;
        misses += host_misses;
        Ok(Stats {
            performance_stats: PerformanceStats { total_operations, avg_ms, operations, violations, recent_violations },
            cache_stats: CacheStats::from_lookups(size as u64, hits, misses),
            thresholds: thresholds.clone(),
            plugins,
            events,
            memory: MemoryStats { peak_rss_mb: summarize(rss), resident_peak_rss_mb: summarize(resident_rss) },
        })
    }
}

/// Parses `30s`, `10m`, `2h`, `7d` into nanoseconds.
pub fn parse_duration_ns(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(secs)?.checked_mul(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = summarize(v);
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms, s.count), (50.0, 95.0, 99.0, 100.0, 100));
        assert_eq!(summarize(vec![]).count, 0);
        assert_eq!(summarize(vec![3.0]).p99_ms, 3.0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("10m"), Some(600_000_000_000));
        assert_eq!(parse_duration_ns("2h"), Some(7_200_000_000_000));
        assert_eq!(parse_duration_ns("x"), None);
        assert_eq!(parse_duration_ns("5y"), None);
    }
}
