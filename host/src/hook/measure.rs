//! The record phase's numbers: what one event cost (stage timings, per-plugin metrics, the
//! process's memory) and which thresholds it crossed, written with the event in one transaction.

use std::time::{Duration, Instant};

use crate::config::Thresholds;
use crate::store::{CallRow, EventRecord, MetricRow, StoreError, ViolationRow};

use super::{Host, Origin, Pending};

impl Host {
    /// Stores the records in one transaction, each with its stage timings, per-plugin metrics
    /// and every threshold violation. `hook.total` runs from the start of the process Claude
    /// Code started (see [`Origin`]) to the start of the write; the store adds `store.insert`
    /// and, with the next event, `store.commit`.
    pub(super) fn record_all(&mut self, batch: &mut [Pending]) -> Result<Vec<i64>, String> {
        let thresholds = self.config.file.thresholds.clone();
        let open_started = Instant::now();
        let mut store = self.store()?;
        let open_time = open_started.elapsed();
        for p in batch.iter_mut() {
            let mut stage_list = std::mem::take(&mut p.stages.entries);
            if !stage_list.iter().any(|(n, _)| n == "store.wait") {
                stage_list.push(("store.wait".into(), open_time));
            }
            let calls = p.record.calls.clone();
            // Peak RSS is the process's: another thread's event may have raised it meanwhile.
            let rss_at_start = p.served_alone.alone().then_some(p.rss_at_start);
            finish_measurements(&mut p.record, &stage_list, &calls, &thresholds, rss_at_start, p.origin);
        }
        let records: Vec<&EventRecord> = batch.iter().map(|p| &p.record).collect();
        store.record_all(&records).map_err(|e: StoreError| e.to_string())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How a host process reads its peak RSS: in a process the small client started (the resident
/// host, a handed-over event's child) `ru_maxrss` is its own and 70× cheaper than `VmHWM`
/// (three reads of `/proc/self/status` were ~60 µs of an in-process event); a process that
/// Claude Code's own child exec'd into reads `VmHWM`, since `ru_maxrss` survives `exec`.
pub(super) fn peak_rss_of(origin: Origin) -> fn() -> u64 {
    match origin {
        Origin::Client { .. } | Origin::TakenOver { spawned: true, .. } => crate::clock::rusage_max_rss_bytes,
        Origin::InProcess | Origin::TakenOver { spawned: false, .. } => crate::clock::peak_rss_bytes,
    }
}

/// Adds metrics and violations to the record. Stage names are documented in README.md.
fn finish_measurements(
    record: &mut EventRecord,
    stages: &[(String, Duration)],
    calls: &[CallRow],
    t: &Thresholds,
    rss_at_start: Option<u64>,
    origin: Origin,
) {
    let violate = |record: &mut EventRecord, metric: &str, subject: &str, value: f64, threshold: f64| {
        if value > threshold {
            record.violations.push(ViolationRow { metric: metric.into(), subject: subject.into(), value, threshold });
        }
    };
    for (name, d) in stages {
        record.metrics.push(MetricRow { name: name.clone(), value: ms(*d) });
        let threshold = match name.as_str() {
            "hook.parse" | "hook.redact" => Some(t.security_validation_ms),
            "cache.lookup" => Some(t.cache_operation_ms),
            "store.wait" => Some(t.database_operation_ms),
            _ => None,
        };
        if let Some(th) = threshold {
            violate(record, name, "host", ms(*d), th);
        }
    }
    for c in calls.iter().filter(|c| c.status != "cached") {
        let value = c.wall_ns as f64 / 1e6;
        record.metrics.push(MetricRow { name: format!("plugin.{}", c.plugin), value });
        violate(record, "plugin.call", &c.plugin, value, t.security_validation_ms);
        let mb = c.peak_live_bytes as f64 / (1024.0 * 1024.0);
        violate(record, "memory.growth", &c.plugin, mb, t.memory_growth_mb);
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let rss = peak_rss_of(origin)();
    if let Some(at_start) = rss_at_start {
        let growth = mib(rss.saturating_sub(at_start));
        violate(record, "memory.growth", "host", growth, t.memory_growth_mb);
    }
    record.insert_threshold_ms = Some(t.database_operation_ms);
    let total = match origin {
        Origin::InProcess => {
            record.metrics.push(MetricRow { name: "process.peak_rss_mb".into(), value: mib(rss) });
            ms(crate::clock::since_start())
        }
        Origin::TakenOver { started_unix_ns, .. } => {
            record.metrics.push(MetricRow { name: "process.peak_rss_mb".into(), value: mib(rss) });
            (crate::clock::unix_ns() - started_unix_ns).max(0) as f64 / 1e6
        }
        Origin::Client { started_unix_ns, peak_rss_bytes } => {
            // The client's own process is what Claude Code started; the resident host's memory
            // is reported beside it.
            record.metrics.push(MetricRow { name: "process.peak_rss_mb".into(), value: mib(peak_rss_bytes) });
            record.metrics.push(MetricRow { name: "resident.peak_rss_mb".into(), value: mib(rss) });
            record.metrics.push(MetricRow { name: "hook.resident".into(), value: 1.0 });
            (crate::clock::unix_ns() - started_unix_ns).max(0) as f64 / 1e6
        }
    };
    record.metrics.push(MetricRow { name: "hook.total".into(), value: total });
    violate(record, "hook.total", "host", total, t.hook_execution_ms);
}
