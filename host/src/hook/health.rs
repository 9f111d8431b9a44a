//! Plugin health across processes: quarantine after a plugin killed a host process (see
//! [`crate::plugin::inflight`]), suspension after it kept timing out. Both live in the plugin
//! index, so every process (and the resident host's warm-up) honours them before any `dlopen`.

use std::collections::HashMap;
use std::path::Path;

use crate::plugin::{self, index::IndexEntry};
use crate::store::FaultRow;

use super::plugins::Chosen;
use super::Host;

impl Host {
    /// Counts timeouts in a row per plugin file in the index and suspends a plugin that reached
    /// `[hook] suspend_after_timeouts`; a call that did not time out resets its count. Writes
    /// the index only when a count changed.
    pub(super) fn track_timeouts(
        &self,
        index: &HashMap<String, IndexEntry>,
        index_file: &Path,
        selected: &[Chosen],
        calls: &[(usize, bool)],
    ) {
        let limit = self.config.file.hook.suspend_after_timeouts;
        let mut updates = Vec::new();
        for &(i, timed_out) in calls {
            let p = &selected[i];
            let before = plugin::index::fresh(index, &p.candidate);
            let count = before.map_or(0, |e| e.timeouts_in_a_row);
            if !timed_out && count == 0 {
                continue;
            }
            let mut entry = before.cloned().unwrap_or_else(|| IndexEntry::for_candidate(&p.candidate, Some(p.info.as_ref().clone()), None));
            entry.timeouts_in_a_row = if timed_out { count + 1 } else { 0 };
            entry.suspended_until_ns = (limit > 0 && entry.timeouts_in_a_row >= limit)
                .then(|| crate::clock::unix_ns() + self.config.file.hook.suspend_s as i64 * 1_000_000_000);
            updates.push(entry);
        }
        if !updates.is_empty() {
            if let Err(e) = plugin::index::update(index_file, &updates) {
                tracing::warn!("cannot update the plugin index {}: {e}", index_file.display());
            }
        }
    }

    /// Finds host processes that died inside plugin code (their in-flight markers, see
    /// [`plugin::inflight`]), quarantines each plugin that killed one, and returns the faults to
    /// record with the event being handled now. A process killed from outside while a plugin
    /// ran is reported, not blamed on the plugin.
    pub fn attribute_crashes(&mut self) -> Vec<FaultRow> {
        use plugin::inflight::{claim_dead, Death};
        let claims = claim_dead(&self.config.data_dir);
        if claims.dead.is_empty() {
            claims.release();
            return Vec::new();
        }
        let index_file = plugin::index::path(&self.config.data_dir);
        let index = plugin::index::load(&index_file);
        let mut updates = Vec::new();
        let mut faults = Vec::new();
        for d in &claims.dead {
            let key = d.plugin.path.to_string_lossy().into_owned();
            let known = plugin::index::fresh(&index, &d.plugin);
            let name = known.and_then(|e| e.info.as_ref()).map(|i| i.name.clone());
            let what = d.describe();
            if matches!(d.death, Death::Vanished | Death::Beside) {
                let message = match d.death {
                    Death::Beside => format!("a plugin {what}; not quarantined"),
                    _ => format!("the host process was killed from outside while a plugin {what}; not quarantined"),
                };
                faults.push(FaultRow { source: "host", plugin: name, path: Some(key), message });
                continue;
            }
            let mut entry = known.cloned().unwrap_or_else(|| IndexEntry::for_candidate(&d.plugin, None, None));
            let at = crate::store::read::rfc3339(crate::clock::unix_ns());
            entry.quarantined = Some(format!("it {what}; quarantined at {at} until its file changes"));
            updates.push(entry);
            faults.push(FaultRow {
                source: "plugin_call",
                plugin: name,
                path: Some(key),
                message: format!("crash: it {what}; quarantined until its file changes"),
            });
        }
        if let Err(e) = plugin::index::update(&index_file, &updates) {
            tracing::warn!("cannot quarantine in {}: {e}", index_file.display());
        }
        // Only now may other processes read the index: it quarantines what killed the host.
        claims.release();
        faults
    }
}
