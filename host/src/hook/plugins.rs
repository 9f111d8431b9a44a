//! The plugins of one event: which subscribe and may see it, loading them (lazily, behind the
//! outcome cache), calling them under deadlines, standing in for the faulted by their failure
//! policy, and merging what they said.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronicle_plugin_api::{Decision, FailurePolicy, Outcome};
use serde_json::Value;

use crate::answer::{self, Answer, Opinion};
use crate::cache;
use crate::config::UnattendedAsk;
use crate::dispatch::{self, CallRecord, Job};
use crate::events::EventSpec;
use crate::output::Output;
use crate::plugin::{self, index::IndexEntry, Fault, Layout, LoadedPlugin, Refusal};
use crate::store::{CallRow, EventRecord, FaultRow};

use super::truncation::Truncation;
use super::{EventView, Host, Stages};

impl Host {
    /// Selects, loads and calls the plugins for a known event, and merges their outcomes.
    /// `truncation`: the event was cut at the size cap; plugins that cannot see what they read
    /// are not called but answered for by their failure policy, and nothing is cached.
    pub(super) fn dispatch(
        &mut self,
        spec: &'static EventSpec,
        event: &EventView,
        event_json: Arc<str>,
        truncation: Option<&Truncation>,
        record: &mut EventRecord,
        stages: &mut Stages,
    ) -> Answer {
        let tool_name = event.top.get("tool_name").and_then(Value::as_str);
        // In a cut event whose tool_name did not arrive, every plugin of the event is a
        // candidate: none can be ruled out.
        let tool_known = truncation.is_none_or(|t| t.visible(event.top, "/tool_name"));
        // Opinions of plugins that were not called (a cut event), merged with the rest.
        let mut forced: Vec<Opinion> = Vec::new();
        let (candidates, refusals) = stages.time("hook.discover", || self.plugin_files());
        for r in &refusals {
            record.faults.push(load_fault(r));
        }
        if candidates.is_empty() && refusals.is_empty() {
            return Answer::nothing();
        }

        let index_file = plugin::index::path(&self.config.data_dir);
        let index = stages.time("hook.index", || self.plugin_index(&index_file));
        let tool = (spec.tool_event && tool_known, tool_name);
        // A file refused unloaded (others can write it, it is not ours): if a plugin loaded from
        // its path before, that manifest's failure policy answers for the events it wanted. A
        // directory that cannot be listed: every plugin the index knows in it.
        for r in &refusals {
            let known: Vec<&IndexEntry> = match index.get(&*r.path.to_string_lossy()) {
                Some(entry) => vec![entry],
                None => index.values().filter(|e| Path::new(&e.path).parent() == Some(r.path.as_path())).collect(),
            };
            for entry in known {
                if let Some(info) = entry.manifest() {
                    let fault = Fault::LoadFailed(r.reason.clone());
                    forced.extend(self.stand_in_if_wanted(spec, &event_json, tool, truncation, info, entry.path.clone(), fault, record));
                }
            }
        }
        if candidates.is_empty() {
            return if forced.is_empty() { Answer::nothing() } else { self.merge(spec, event.top, forced, stages) };
        }

        let load_started = Instant::now();
        let mut index_updates = Vec::new();
        // Plugins that want this event. A cacheable one whose manifest the index already knows
        // is not loaded yet: a cache hit means it never needs to be.
        let mut selected: Vec<Chosen> = Vec::new();
        for c in &candidates {
            let key = c.path.to_string_lossy().into_owned();
            let known = plugin::index::fresh(&index, c);
            // What a plugin at this path said of itself when it last loaded (this file, or the
            // one before it): a file that does not load is answered for by that manifest.
            let previous = index.get(&key).and_then(IndexEntry::manifest);
            // Quarantined (it killed a host) or suspended (it keeps timing out): never loaded
            // or called; its failure policy answers for it below, when its manifest is known.
            let benched = known.and_then(|e| e.benched(crate::clock::unix_ns()));
            if let (Some(fault), Some(IndexEntry { info: None, .. })) = (&benched, known) {
                record.faults.push(load_fault(&Refusal {
                    path: c.path.clone(),
                    name: None,
                    reason: format!("{}: {}", fault.kind(), fault.message()),
                }));
                if let Some(info) = previous {
                    forced.extend(self.stand_in_if_wanted(spec, &event_json, tool, truncation, info, key, fault.clone(), record));
                }
                continue;
            }
            let (info, loaded) = match known {
                Some(IndexEntry { error: Some(reason), .. }) => {
                    record.faults.push(load_fault(&Refusal { path: c.path.clone(), name: None, reason: reason.clone() }));
                    if let Some(info) = previous {
                        let fault = Fault::LoadFailed(reason.clone());
                        forced.extend(self.stand_in_if_wanted(spec, &event_json, tool, truncation, info, key, fault, record));
                    }
                    continue;
                }
                // Borrowed from the index: a clone was ~10 allocations per plugin per event.
                Some(IndexEntry { info: Some(info), .. }) => (Cow::Borrowed(info), None),
                _ => {
                    self.divert_stdout();
                    match self.load(c) {
                        Ok(p) => {
                            index_updates.push(IndexEntry::for_candidate(c, Some(p.info.clone()), None).with_layout_checked(p.layout_checked));
                            (Cow::Owned(p.info.clone()), Some(p))
                        }
                        Err(failed) => {
                            // What this process's state caused is no property of the file: an
                            // index entry would have every process refuse it until it changed.
                            if let NotLoaded::Refused(reason) = &failed {
                                index_updates.push(IndexEntry::for_candidate(c, None, Some(reason.clone())));
                            }
                            record.faults.push(load_fault(&Refusal { path: c.path.clone(), name: None, reason: failed.to_string() }));
                            if let (NotLoaded::Refused(reason), Some(info)) = (&failed, previous) {
                                let fault = Fault::LoadFailed(reason.clone());
                                forced.extend(self.stand_in_if_wanted(spec, &event_json, tool, truncation, info, key, fault, record));
                            }
                            continue;
                        }
                    }
                }
            };
            match self.wants(spec, &event_json, tool, truncation, &info) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    record.faults.push(FaultRow { source: "plugin_load", plugin: Some(info.name.clone()), path: Some(key), message: e });
                    continue;
                }
            }
            let not_called = benched.or_else(|| truncation.and_then(|t| t.unseen(event.top, &info, spec.tool_event)).map(Fault::TooLarge));
            if let Some(fault) = not_called {
                record.faults.push(FaultRow {
                    source: "plugin_call",
                    plugin: Some(info.name.clone()),
                    path: Some(key.clone()),
                    message: format!("{}: {}", fault.kind(), fault.message()),
                });
                forced.extend(stand_in(spec, &info, key, &fault, record));
                continue;
            }
            let plugin = match loaded {
                Some(p) => Some(p),
                None if info.cache_ttl_ms.is_some() => None,
                None => {
                    self.divert_stdout();
                    match self.load(c) {
                        Ok(p) => Some(p),
                        Err(failed) => {
                            forced.extend(not_loaded(spec, &info, c, &failed, record));
                            continue;
                        }
                    }
                }
            };
            selected.push(Chosen { info, candidate: c.clone(), plugin, load_error: None });
        }
        stages.add("hook.load", load_started.elapsed());
        if !index_updates.is_empty() {
            if let Err(e) = plugin::index::update(&index_file, &index_updates) {
                tracing::warn!("cannot update the plugin index {}: {e}", index_file.display());
            }
        }
        if selected.is_empty() {
            return if forced.is_empty() { Answer::nothing() } else { self.merge(spec, event.top, forced, stages) };
        }

        // Cached outcomes first; only the rest are loaded (if not yet) and called.
        let now_ns = crate::clock::unix_ns();
        let mut cached: Vec<Option<Outcome>> = Vec::with_capacity(selected.len());
        if selected.iter().any(|p| p.info.cache_ttl_ms.is_some()) {
            // The persistent tier lives in the store: wait for it to open (it has had the
            // whole load phase to do so), outside the cache timing. A process still opening it
            // (in process: replaying the log, reading the schema) has nothing else to do
            // meanwhile, so it loads what a miss would need; a hit then wasted a load that
            // no event waited for. Stops once the store is open.
            let early = Instant::now();
            let mut loaded_early = false;
            for p in selected.iter_mut().filter(|p| p.plugin.is_none()) {
                if !self.store_still_opening() {
                    break;
                }
                loaded_early = true;
                self.divert_stdout();
                match self.load(&p.candidate) {
                    Ok(loaded) => p.plugin = Some(loaded),
                    Err(failed) => p.load_error = Some(failed),
                }
            }
            if loaded_early {
                stages.add("hook.load.early", early.elapsed());
            }
            let waited = Instant::now();
            let _ = self.store();
            stages.add("store.wait", waited.elapsed());
        }
        let cache_started = Instant::now();
        // A cut event's outcome is not one the whole event would get: neither reused nor kept.
        let keys: Vec<Option<String>> =
            selected.iter().map(|p| if truncation.is_some() { None } else { self.cache_key(p, event) }).collect();
        for key in &keys {
            let hit = key.as_ref().and_then(|key| {
                self.cache.get(key, now_ns).or_else(|| {
                    let (text, expires_at_ns) = self.store().ok()?.cache_get(key, now_ns).ok()??;
                    let outcome = cache::decode(&text)?;
                    // Kept in process too: a resident host would otherwise ask SQLite again at
                    // every event for an outcome an earlier process stored.
                    self.cache.put(key.clone(), outcome.clone(), expires_at_ns);
                    Some(outcome)
                })
            });
            cached.push(hit);
        }
        let cache_lookup = cache_started.elapsed();
        if selected.iter().any(|p| p.info.cache_ttl_ms.is_some()) {
            stages.add("cache.lookup", cache_lookup);
        }
        let late_load = Instant::now();
        let mut late = false;
        for (i, p) in selected.iter_mut().enumerate() {
            if cached[i].is_none() && p.plugin.is_none() {
                if let Some(failed) = p.load_error.take() {
                    forced.extend(not_loaded(spec, &p.info, &p.candidate, &failed, record));
                    continue;
                }
                late = true;
                self.divert_stdout();
                match self.load(&p.candidate) {
                    Ok(loaded) => p.plugin = Some(loaded),
                    Err(failed) => forced.extend(not_loaded(spec, &p.info, &p.candidate, &failed, record)),
                }
            }
        }
        if late {
            stages.add("hook.load.cache_miss", late_load.elapsed());
        }

        // Loading plugins (and opening the store) is the host's setup, not the event's growth.
        self.rss_at_start = (self.rss_of)();
        let mut jobs = Vec::new();
        let mut job_plugin = Vec::new();
        for (i, p) in selected.iter().enumerate() {
            if let (None, Some(plugin)) = (&cached[i], &p.plugin) {
                jobs.push(Job {
                    plugin: Arc::clone(plugin),
                    candidate: p.candidate.clone(),
                    config_json: self.config.plugin_init_json(&p.info.name, p.info.init_context),
                    timeout: p.info.timeout(Duration::from_millis(self.config.file.hook.plugin_timeout_ms)),
                });
                job_plugin.push(i);
            }
        }
        let budget = Duration::from_millis(if spec.name == "SessionEnd" {
            self.config.file.hook.dispatch_budget_ms.min(1000)
        } else {
            self.config.file.hook.dispatch_budget_ms
        });
        let probe = self.output.as_ref().and_then(Output::probe);
        let calls: Vec<CallRecord> =
            if jobs.is_empty() { Vec::new() } else { stages.time("hook.dispatch", || dispatch::run(jobs, event_json, budget, probe)) };
        let waited: u64 = calls.iter().map(|c| c.turn_wait_ns).sum();
        if waited > 0 {
            stages.add("hook.turn", Duration::from_nanos(waited));
        }
        let mut results: Vec<Option<CallRecord>> = vec![None; selected.len()];
        for c in calls {
            let slot = job_plugin[c.index];
            results[slot] = Some(CallRecord { index: slot, ..c });
        }

        let mut opinions = forced;
        // (selected plugin, whether its call timed out), for suspension.
        let mut timeouts: Vec<(usize, bool)> = Vec::new();
        for (i, p) in selected.iter().enumerate() {
            let info = &p.info;
            if let Some(outcome) = cached[i].take() {
                record.calls.push(CallRow {
                    plugin: info.name.clone(),
                    version: info.version.clone(),
                    path: p.candidate.path.to_string_lossy().into_owned(),
                    status: "cached".into(),
                    decision: outcome.decision().as_str().into(),
                    memory_source: "none".into(),
                    cache: Some("hit"),
                    ..CallRow::default()
                });
                opinions.push(Opinion { plugin: info.name.clone(), outcome });
                continue;
            }
            let Some(call) = results[i].take() else { continue };
            if call.turn_missed {
                // Not this plugin's timeout on this event: another event's call of it hangs.
                // The event goes back to its client, to be decided as if this host were gone.
                self.hand_back = true;
                continue;
            }
            timeouts.push((i, matches!(call.result, Err(Fault::TimedOut(_)))));
            if call.stdout_bytes > 0 {
                record.faults.push(FaultRow {
                    source: "plugin_call",
                    plugin: Some(info.name.clone()),
                    path: Some(p.candidate.path.to_string_lossy().into_owned()),
                    message: format!(
                        "wrote {} bytes to stdout{}; discarded (plugins must not print: stdout is Claude Code's)",
                        call.stdout_bytes,
                        if call.stdout_shared { " (or a plugin another event ran at the same time did)" } else { "" }
                    ),
                });
            }
            let mut row = CallRow {
                plugin: info.name.clone(),
                version: info.version.clone(),
                path: p.candidate.path.to_string_lossy().into_owned(),
                status: "ok".into(),
                decision: "none".into(),
                fault: None,
                wall_ns: call.wall_ns,
                cpu_ns: call.cpu_ns,
                allocations: call.stats.allocations,
                bytes_allocated: call.stats.bytes_allocated,
                peak_live_bytes: call.stats.peak_live_bytes,
                memory_source: call.memory_source.into(),
                stdout_bytes: call.stdout_bytes,
                cache: info.cache_ttl_ms.map(|_| "miss"),
            };
            match call.result {
                Ok(outcome) => {
                    row.decision = outcome.decision().as_str().into();
                    if let Some(key) = keys[i].clone() {
                        let ttl_ns = info.cache_ttl_ms.unwrap_or(0) as i64 * 1_000_000;
                        let encoded = cache::encode(&outcome);
                        self.cache.put(key.clone(), outcome.clone(), now_ns + ttl_ns);
                        record.cache_puts.push(crate::store::CachePut {
                            key,
                            plugin: info.name.clone(),
                            value: encoded,
                            expires_at_ns: now_ns + ttl_ns,
                        });
                    }
                    opinions.push(Opinion { plugin: info.name.clone(), outcome });
                }
                Err(fault) => {
                    row.status = fault.kind().into();
                    row.fault = Some(fault.message());
                    record.faults.push(FaultRow {
                        source: "plugin_call",
                        plugin: Some(info.name.clone()),
                        path: Some(p.candidate.path.to_string_lossy().into_owned()),
                        message: format!("{}: {}", fault.kind(), fault.message()),
                    });
                    if let Some(outcome) = fail_closed(spec, info.failure_policy(), &info.name, &fault) {
                        row.decision = outcome.decision().as_str().into();
                        opinions.push(Opinion { plugin: info.name.clone(), outcome });
                    }
                }
            }
            record.calls.push(row);
        }

        self.track_timeouts(&index, &index_file, &selected, &timeouts);
        self.merge(spec, event.top, opinions, stages)
    }

    /// A plugin that cannot be loaded now, answered for by a manifest the index knows (see
    /// [`IndexEntry::manifest`]) if that manifest wants this event: a `load_error` (or its
    /// benched fault's) call row and its failure policy.
    #[allow(clippy::too_many_arguments)]
    fn stand_in_if_wanted(
        &self,
        spec: &EventSpec,
        event_json: &str,
        tool: (bool, Option<&str>),
        truncation: Option<&Truncation>,
        info: &plugin::PluginInfo,
        path: String,
        fault: Fault,
        record: &mut EventRecord,
    ) -> Option<Opinion> {
        if self.wants(spec, event_json, tool, truncation, info) != Ok(true) {
            return None;
        }
        stand_in(spec, info, path, &fault, record)
    }

    /// Whether a plugin with this manifest is for this event: not disabled, subscribed (its
    /// matcher's error, if it has a bad one), and one of its trigger words in the event's text.
    /// A manifest that promised no opinion on an event without one of its words is, like a
    /// matcher that does not match, neither loaded nor called. A cut event's text may have lost
    /// the word, so it rules nothing out.
    fn wants(
        &self,
        spec: &EventSpec,
        event_json: &str,
        (tool_event, tool_name): (bool, Option<&str>),
        truncation: Option<&Truncation>,
        info: &plugin::PluginInfo,
    ) -> Result<bool, String> {
        if self.config.file.disabled_plugins.contains(&info.name) || !info.wants(spec.name, tool_event, tool_name)? {
            return Ok(false);
        }
        Ok(truncation.is_some() || info.triggered_by(event_json))
    }

    /// Merges opinions into the answer, after applying the unattended-mode rule
    /// ([`answer::deny_unattended_asks`], unless `[hook] unattended_ask = "ask"`).
    fn merge(&self, spec: &EventSpec, top: &Value, mut opinions: Vec<Opinion>, stages: &mut Stages) -> Answer {
        let stop_hook_active = top.get("stop_hook_active").and_then(Value::as_bool) == Some(true);
        stages.time("hook.merge", || {
            let mut notes = Vec::new();
            if self.config.file.hook.unattended_ask == UnattendedAsk::Deny {
                let mode = top.get("permission_mode").and_then(Value::as_str);
                notes = answer::deny_unattended_asks(spec, mode, &mut opinions);
            }
            let mut answer = answer::merge(spec, stop_hook_active, &opinions, self.config.file.hook.max_text_chars);
            answer.notes.extend(notes);
            answer
        })
    }

    /// The cache key of a cacheable plugin's outcome on `event`: its manifest's key, its file
    /// and its effective configuration (an edit reaches the next event).
    fn cache_key(&self, p: &Chosen, event: &EventView) -> Option<String> {
        p.info.cache_ttl_ms?;
        let config = self.config.plugin_config_json(&p.info.name);
        let file = p.candidate.identity();
        let subject = cache::Subject { name: &p.info.name, version: &p.info.version, key: &p.info.cache_key, file: &file, config: &config };
        Some(cache::key_for(&subject, event.top, |pointer| event.pointed(pointer)))
    }

    pub(super) fn load(&mut self, c: &plugin::Candidate) -> Result<Arc<LoadedPlugin>, NotLoaded> {
        // Held while loading: another serving thread wanting the same file waits for this load
        // instead of running the library's initialisers a second time.
        let mut loaded = self.loaded_plugins();
        if let Some((seen, p)) = loaded.get(&c.path) {
            if seen == c {
                return Ok(Arc::clone(p));
            }
            drop(loaded);
            // The loader would give this process the old code again: a resident host hands the
            // event back (a fresh process calls the new file) and retires, as when it notices
            // the change before taking an event. Going on without the plugin left a guard out.
            self.hand_back = true;
            return Err(NotLoaded::Stale);
        }
        // What the index says of this very file: its layout may have passed this build's check.
        let known = self.index.as_ref().and_then(|(_, index)| plugin::index::fresh(index, c)).cloned();
        let layout = if known.as_ref().is_some_and(IndexEntry::layout_checked_here) { Layout::CheckedBefore } else { Layout::Check };
        plugin::inflight::enter("load", c);
        let library = plugin::load_with(&c.path, layout);
        plugin::inflight::leave();
        let p = Arc::new(library.map_err(|e| NotLoaded::Refused(e.to_string()))?);
        loaded.insert(c.path.clone(), (c.clone(), Arc::clone(&p)));
        drop(loaded);
        // Known, but compared here (an index an older host wrote): say so once, so that the
        // next process skips the comparison.
        if let Some(entry) = known.filter(|e| p.layout_checked && e.info.is_some()) {
            let entry = entry.with_layout_checked(true);
            if entry.layout_checked_here() {
                let file = plugin::index::path(&self.config.data_dir);
                if let Err(e) = plugin::index::update(&file, &[entry]) {
                    tracing::warn!("cannot update the plugin index {}: {e}", file.display());
                }
            }
        }
        Ok(p)
    }
}

/// Why a plugin file was not loaded.
pub(super) enum NotLoaded {
    /// Because of the file (not a plugin, an incompatible build, a bad manifest): the plugin
    /// index keeps the reason, and no process tries the same file again.
    Refused(String),
    /// This process loaded an older file at the same path, and the loader would give it the old
    /// code again: a fresh process loads the new one.
    Stale,
}

impl std::fmt::Display for NotLoaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotLoaded::Refused(reason) => f.write_str(reason),
            NotLoaded::Stale => f.write_str("the file changed after this process loaded it; the next event loads the new one"),
        }
    }
}

/// A plugin chosen for the current event; `plugin` is None until it has to be loaded.
pub(super) struct Chosen<'a> {
    pub(super) info: Cow<'a, plugin::PluginInfo>,
    pub(super) candidate: plugin::Candidate,
    pub(super) plugin: Option<Arc<LoadedPlugin>>,
    /// Why loading it while the store opened failed: reported only if its lookup misses.
    pub(super) load_error: Option<NotLoaded>,
}

/// A subscribed plugin whose manifest is known but whose file did not load this time (the
/// index knew it; loading failed now): a fault, a `load_error` call row, and its failure policy
/// answers for it. Leaving it out quietly would skip a guard.
fn not_loaded(spec: &EventSpec, info: &plugin::PluginInfo, c: &plugin::Candidate, failed: &NotLoaded, record: &mut EventRecord) -> Option<Opinion> {
    let reason = failed.to_string();
    record.faults.push(load_fault(&Refusal { path: c.path.clone(), name: Some(info.name.clone()), reason: reason.clone() }));
    stand_in(spec, info, c.path.to_string_lossy().into_owned(), &Fault::LoadFailed(reason), record)
}

/// A subscribed plugin not called on this event (benched, blind to a cut event, not loaded):
/// its call row says why, and its failure policy's opinion stands in for its own.
fn stand_in(spec: &EventSpec, info: &plugin::PluginInfo, path: String, fault: &Fault, record: &mut EventRecord) -> Option<Opinion> {
    let outcome = fail_closed(spec, info.failure_policy(), &info.name, fault);
    record.calls.push(CallRow {
        plugin: info.name.clone(),
        version: info.version.clone(),
        path,
        status: fault.kind().into(),
        decision: outcome.as_ref().map_or(Decision::None, Outcome::decision).as_str().into(),
        fault: Some(fault.message()),
        memory_source: "none".into(),
        ..CallRow::default()
    });
    outcome.map(|outcome| Opinion { plugin: info.name.clone(), outcome })
}

/// The stand-in opinion for a faulted fail-closed plugin on an event that can be blocked.
fn fail_closed(spec: &EventSpec, policy: FailurePolicy, plugin: &str, fault: &Fault) -> Option<Outcome> {
    if policy != FailurePolicy::Closed || !spec.can_block() {
        return None;
    }
    let reason = match fault {
        Fault::TooLarge(unseen) => {
            format!("chronicle: this call is too large to check and {plugin} fails closed: {unseen}; split it into smaller calls")
        }
        Fault::LoadFailed(why) => format!(
            "chronicle: the file of plugin {plugin} does not load ({why}); it is configured to fail closed. The user can reinstall it (`chronicle plugins install`) or remove it"
        ),
        _ => format!("chronicle: plugin {plugin} failed ({}) and is configured to fail closed", fault.kind()),
    };
    Some(if spec.name == "PreToolUse" || spec.name == "PermissionRequest" { Outcome::deny(reason) } else { Outcome::block(reason) })
}

fn load_fault(r: &Refusal) -> FaultRow {
    FaultRow { source: "plugin_load", plugin: r.name.clone(), path: Some(r.path.to_string_lossy().into_owned()), message: r.reason.clone() }
}
