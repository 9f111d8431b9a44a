//! The dispatch core: one event in, one answer and one record out.
//!
//! [`Host`] is deliberately not welded to `main`: it owns the config, the store connection and
//! the loaded plugins, so a long-lived server could feed it event after event. The `hook`
//! subcommand uses it for exactly one.
//!
//! The path of one event: classify the bytes ([`crate::payload`]) → pick the plugins that
//! subscribe to it, from the manifest index where possible ([`crate::plugin`]) → call them under
//! deadlines ([`crate::dispatch`]) → apply failure policies and merge ([`crate::answer`]) →
//! redact and record everything in one transaction ([`crate::store`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::answer::Answer;
use crate::cache::Cache;
use crate::config::Config;
use crate::input::RawInput;
use crate::output::Output;
use crate::payload::{self, Payload};
use crate::plugin::{self, index::IndexEntry, LoadedPlugin};
use crate::redact::Redactor;
use crate::store::{EventRecord, FaultRow};

mod health;
mod ingest;
mod measure;
mod plugins;
mod shared_store;
mod truncation;
mod upkeep;

pub use shared_store::{StoreGuard, StoreOpening, CLIENT_MAKES_DB_PATIENCE};
use shared_store::SharedStore;

use truncation::Truncation;

/// Bytes of an unparseable input kept in a `parse_error` record.
const MAX_PARSE_ERROR_BYTES: usize = 64 * 1024;

/// Who started the invocation being handled, for the process-level numbers of its record.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    /// This process is the `chronicle hook` Claude Code started.
    InProcess,
    /// This process took over from the `chronicle` client Claude Code started (which found no
    /// resident host); `hook.total` runs from the client's start. `spawned`: the client started
    /// it as a child (a handover) rather than exec'ing into it, so `ru_maxrss` is this
    /// process's own (see [`measure::peak_rss_of`]).
    TakenOver { started_unix_ns: i64, spawned: bool },
    /// A `chronicle hook` client handed the event to the resident host (this process).
    Client { started_unix_ns: i64, peak_rss_bytes: u64 },
}

/// What to tell Claude Code: exit code, stdout, lines for stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub exit_code: i32,
    pub stdout: Option<String>,
    pub stderr: Vec<String>,
    /// A plugin was abandoned on a thread that may never finish: a resident host should stop
    /// serving after this answer rather than carry a stuck plugin into later events.
    pub retire: bool,
}

/// An event as dispatch sees it: its top-level fields, and the whole tree built on first
/// need when large fields were deferred (see [`payload::DEFER_BYTES`]).
struct EventView<'a> {
    top: &'a Value,
    input: &'a RawInput,
    /// The top-level fields left out of `top`; their ranges index `input.bytes` (only an input
    /// taken verbatim, without a byte-order mark, defers any).
    deferred: &'a [payload::Deferred],
    full: std::cell::OnceCell<Value>,
    /// The members of each deferred object, indexed on first need: a cache key names several
    /// members of one field (file-guard: five of `tool_input`), and each search of a 241 KB
    /// field's text costs about what building it does.
    members: std::cell::RefCell<Vec<(usize, crate::rawjson::Members)>>,
}

impl<'a> EventView<'a> {
    fn new(top: &'a Value, input: &'a RawInput, deferred: &'a [payload::Deferred]) -> Self {
        EventView { top, input, deferred, full: std::cell::OnceCell::new(), members: Default::default() }
    }

    fn full(&self) -> &Value {
        if self.deferred.is_empty() {
            return self.top;
        }
        self.full.get_or_init(|| payload::full_value(self.input).unwrap_or_else(|| self.top.clone()))
    }

    /// The JSON text (serde_json's serialisation) of what `pointer` names, as
    /// `full().pointer(pointer)` would give it, without building a deferred field's tree: only
    /// the value named is built.
    fn pointed(&self, pointer: &str) -> Option<String> {
        let built = if self.deferred.is_empty() { Some(self.top) } else { self.full.get() };
        if let Some(tree) = built {
            return tree.pointer(pointer).map(Value::to_string);
        }
        let Some(path) = pointer.strip_prefix('/') else {
            // "" names the whole event; anything else that does not start with '/' names nothing.
            return self.full().pointer(pointer).map(Value::to_string);
        };
        let tokens: Vec<String> = path.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
        let Some(field) = self.deferred.iter().position(|d| d.key == tokens[0]) else {
            return self.top.pointer(pointer).map(Value::to_string);
        };
        let bytes = &self.input.bytes[..];
        let mut at = self.deferred[field].range.start;
        let mut rest: Vec<&str> = tokens[1..].iter().map(String::as_str).collect();
        if bytes[at] == b'{' && !rest.is_empty() {
            let mut indexed = self.members.borrow_mut();
            let members = match indexed.iter().position(|(f, _)| *f == field) {
                Some(i) => &indexed[i].1,
                None => {
                    indexed.push((field, crate::rawjson::members(bytes, at)?));
                    &indexed[indexed.len() - 1].1
                }
            };
            at = crate::rawjson::member(members, rest.remove(0))?;
        }
        let range = crate::rawjson::find(bytes, at, &rest)?;
        serde_json::from_slice::<Value>(&bytes[range]).ok().map(|v| v.to_string())
    }
}

/// The outcome of handling one event: what to answer, and what to record.
pub struct Handled {
    pub answer: Answer,
    pub record: EventRecord,
}

/// An event handled and not yet recorded (see [`Host::prepare`]).
pub struct Pending {
    record: EventRecord,
    answer: Answer,
    stages: Stages,
    origin: Origin,
    /// The host's peak RSS when this event began: its growth is measured against it.
    rss_at_start: u64,
    /// Whether another thread handled events meanwhile (then the growth is not this event's).
    served_alone: crate::overlap::Watch<'static>,
    hand_back: bool,
}

impl Pending {
    /// A plugin of this event hung and was left on its thread: the host retires after
    /// answering, and takes no more events first.
    pub fn abandoned_a_plugin(&self) -> bool {
        self.hand_back || self.record.calls.iter().any(|c| c.status == "timeout")
    }

    /// A plugin of this event never got its turn (another thread's event hangs in it), or its
    /// file changed since this host loaded it (the loader would serve the old code). The
    /// event must not be answered or recorded here but handed back to its client (which
    /// decides it in a fresh process, as if this host had retired before taking it), and the
    /// host retires.
    pub fn hand_back(&self) -> bool {
        self.hand_back
    }
}

/// Times of the stages of one invocation, reported as `hook.<stage>` metrics.
#[derive(Debug, Default, Clone)]
pub struct Stages {
    pub entries: Vec<(String, Duration)>,
}

impl Stages {
    pub fn add(&mut self, name: &str, d: Duration) {
        self.entries.push((name.to_owned(), d));
    }

    /// Runs `f`, recording its duration under `name`.
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.add(name, t.elapsed());
        out
    }
}

/// Loaded libraries by path, with the file identity each was loaded from.
type Loaded = HashMap<PathBuf, (plugin::Candidate, Arc<LoadedPlugin>)>;

/// The host: config, store, plugins and output, for as many events as it is given.
pub struct Host {
    pub config: Config,
    redactor: Arc<Redactor>,
    /// The database connection, shared with this host's siblings; it may be opening on
    /// another thread while the event is parsed and plugins load.
    store: SharedStore,
    /// Loaded libraries, with the file identity they were loaded from; shared by the serving
    /// threads of a resident host (see [`Host::sibling`]).
    loaded: Arc<Mutex<Loaded>>,
    output: Option<Output>,
    cache: Arc<Cache>,
    /// Nudges the background checkpointer (resident host only).
    checkpointer: Option<std::sync::mpsc::Sender<()>>,
    /// Readable when the checkpointer has copied the whole log (see [`Host::log_checkpointed`]).
    checkpointed: Option<std::os::unix::net::UnixStream>,
    /// The plugin index as last read, and the identity of the file it was read from: a
    /// resident host re-reads it only when it was replaced (updates rename a new file in).
    index: Option<(std::fs::Metadata, Arc<HashMap<String, IndexEntry>>)>,
    /// Peak RSS once the current event's plugins are loaded (or when the host was created, for
    /// an event that calls none): `memory.growth` is what the event adds beyond the host's setup.
    rss_at_start: u64,
    /// How this process reads its peak RSS (see [`measure::peak_rss_of`]).
    rss_of: fn() -> u64,
    /// The last event was written to the database (so spooled ones may be ingested).
    recorded: bool,
    /// This host checkpoints the database's log in the background. A sibling ([`Host::sibling`])
    /// starts no checkpointer of its own: two checkpointers on one database take turns failing
    /// (SQLite gives a checkpoint that finds another one running `SQLITE_BUSY` without waiting,
    /// and a log copied by one is restarted only if no write from the other came in between, so
    /// under a steady stream the log grew to 20 MiB, measured). Its commits, on the shared
    /// connection, bound the log in line as the host's do.
    keeps_log: bool,
    /// The current event waited in vain for a plugin another thread's event hangs in, or one of
    /// its plugins' files changed since it was loaded (see [`Pending::hand_back`]).
    hand_back: bool,
    /// A hook process whose answer is relayed before it exits: the log is bounded after the
    /// answer ([`Host::bound_log_after_answer`]), not in `record`.
    log_after_answer: bool,
    /// The plugin directories under watch (a resident host's, shared by its serving threads;
    /// see [`Host::watch_plugin_dirs`]); None: listed at every event.
    watched: Option<Arc<Mutex<plugin::watch::Watched>>>,
}

impl Host {
    pub fn new(config: Config) -> Host {
        let redactor = Redactor::new(&config.file.redact_patterns).unwrap_or_else(|e| {
            tracing::warn!("{e}; extra redaction patterns disabled");
            Redactor::default()
        });
        Host::with(config, Arc::new(redactor), Arc::default(), Arc::new(Cache::new()), None)
    }

    fn with(config: Config, redactor: Arc<Redactor>, loaded: Arc<Mutex<Loaded>>, cache: Arc<Cache>, output: Option<Output>) -> Host {
        Host {
            config,
            redactor,
            store: SharedStore::default(),
            loaded,
            output,
            cache,
            checkpointer: None,
            checkpointed: None,
            index: None,
            // Read when an event starts (`prepare`), the way its origin allows.
            rss_at_start: 0,
            rss_of: crate::clock::peak_rss_bytes,
            recorded: false,
            keeps_log: true,
            hand_back: false,
            log_after_answer: false,
            watched: None,
        }
    }

    /// Another host for another thread of this process: the same configuration, loaded
    /// plugins, outcome cache, diverted stdout and database connection. The plugins'
    /// turns ([`LoadedPlugin::try_turn`]) keep a plugin from being called by two at once.
    /// The sibling leaves the log's upkeep to this host.
    pub fn sibling(&self) -> Host {
        let mut host = Host::with(
            self.config.clone(),
            Arc::clone(&self.redactor),
            Arc::clone(&self.loaded),
            Arc::clone(&self.cache),
            self.output.clone(),
        );
        host.store = self.store.clone();
        host.keeps_log = false;
        host.watched = self.watched.clone();
        host
    }

    /// From now on, lists the plugin directories again only when something in them changed
    /// (see [`plugin::watch`]): for a long-lived host.
    pub fn watch_plugin_dirs(&mut self) {
        self.watched = plugin::watch::Watched::new().map(|w| Arc::new(Mutex::new(w)));
    }

    /// The plugin files there are now, and those refused.
    fn plugin_files(&self) -> plugin::watch::Listing {
        match &self.watched {
            Some(watched) => watched.lock().unwrap_or_else(std::sync::PoisonError::into_inner).listing(&self.config.plugin_dirs),
            None => plugin::discover(&self.config.plugin_dirs),
        }
    }

    /// Starts opening the store on another thread (opening replays the write-ahead log, which
    /// is worth overlapping with parsing and plugin loading on a second core).
    pub fn open_store_in_background(&mut self) {
        self.store.open_in_background(&self.config.db_path);
    }

    /// Takes over a store that `opening` started to open for this host's configuration.
    pub fn adopt_store_opening(&mut self, opening: Option<StoreOpening>) {
        self.store.adopt(opening);
    }

    /// Whether the store is still being opened on another thread.
    fn store_still_opening(&self) -> bool {
        self.store.still_opening()
    }

    /// The store, opened on first use; held by this thread until the guard is dropped. An
    /// error is kept for the rest of the event (reported once, not retried at each use); the
    /// next event tries again (see [`Host::prepare`]).
    pub fn store(&mut self) -> Result<StoreGuard<'_>, String> {
        let mut store = self.store.get(&self.config.db_path)?;
        if self.log_after_answer {
            store.defer_upkeep();
        }
        Ok(store)
    }

    /// Where this host's answer goes: the real stdout, kept aside once plugins were loaded.
    pub fn answer_output(&self) -> Output {
        self.output.clone().unwrap_or_else(Output::direct)
    }

    /// Points fd 1 away from Claude Code before the first plugin is loaded.
    fn divert_stdout(&mut self) {
        // From the first plugin on, a death in plugin code must be attributable.
        plugin::inflight::install(&self.config.data_dir);
        // Once per process: the serving threads of a resident host share fd 1, and a second
        // diversion would leave the first one's probe watching a file nobody writes to.
        static DIVERTED: std::sync::OnceLock<Option<Output>> = std::sync::OnceLock::new();
        if self.output.is_none() {
            self.output = DIVERTED
                .get_or_init(|| match Output::divert() {
                    Ok(o) => Some(o),
                    Err(e) => {
                        tracing::warn!("cannot divert stdout while plugins run: {e}");
                        None
                    }
                })
                .clone();
        }
    }

    /// Handles and records one event and says what to tell Claude Code. `faults` are problems
    /// found before the host saw the event (a broken config file, a lost resident host).
    /// `invocation` identifies the invocation: a second answer to the same one records nothing
    /// more.
    pub fn answer(
        &mut self,
        input: &RawInput,
        invocation: crate::resident::InvocationId,
        received_at_ns: i64,
        stages: &mut Stages,
        origin: Origin,
        faults: Vec<FaultRow>,
    ) -> Reply {
        let pending = self.prepare(input, invocation, received_at_ns, stages, origin, faults);
        self.conclude(vec![pending]).pop().unwrap_or_else(|| unreachable!("one reply per event"))
    }

    /// Handles one event without recording it: [`Host::conclude`] records a batch of these in
    /// one transaction, then answers them. Until then nothing about the event is answered.
    pub fn prepare(
        &mut self,
        input: &RawInput,
        invocation: crate::resident::InvocationId,
        received_at_ns: i64,
        stages: &mut Stages,
        origin: Origin,
        faults: Vec<FaultRow>,
    ) -> Pending {
        let served_alone = crate::overlap::SERVING.watch(u32::from(matches!(origin, Origin::Client { .. })));
        self.rss_of = measure::peak_rss_of(origin);
        self.rss_at_start = (self.rss_of)();
        self.hand_back = false;
        // A store that failed to open is tried again by each event, not once per process: a
        // resident host that met a full disk or a directory in the way recovers with them.
        self.store.forget_failure();
        let handled = self.handle(input, received_at_ns, stages);
        // Set again once the event's plugins are loaded (their loading is setup, not growth).
        let rss_at_start = self.rss_at_start;
        let mut record = handled.record;
        record.invocation_id = Some(invocation.text());
        record.faults.extend(faults);
        let hand_back = std::mem::take(&mut self.hand_back);
        Pending { record, answer: handled.answer, stages: std::mem::take(stages), origin, rss_at_start, served_alone, hand_back }
    }

    /// Records prepared events in one transaction (spooling them if it fails), then builds
    /// each one's reply, in order: an event is recorded before it is answered.
    pub fn conclude(&mut self, mut batch: Vec<Pending>) -> Vec<Reply> {
        // By reference: the records hold the payloads (up to the input cap); no copy on the hot path.
        let written = self.record_all(&mut batch);
        self.recorded = written.is_ok();
        batch
            .into_iter()
            .map(|pending| {
                let retire = pending.abandoned_a_plugin();
                let Pending { record, answer, .. } = pending;
                let mut stderr = Vec::new();
                if let Err(e) = &written {
                    tracing::error!("cannot record the event: {e}");
                    // Also one line on stderr: Claude Code keeps it in its debug log. Say where the
                    // event went only once it is there.
                    match crate::spool::append(&self.config.data_dir, &record, e) {
                        Ok(kept) => stderr.push(format!("chronicle: cannot record the event: {e} (kept in {})", kept.display())),
                        Err(spool_err) => {
                            tracing::error!("cannot spool the event either: {spool_err}");
                            stderr.push(format!("chronicle: the event was lost: cannot record it ({e}) nor spool it ({spool_err})"));
                        }
                    }
                }
                tracing::debug!(
                    kind = %record.kind,
                    event = record.hook_event_name.as_deref().unwrap_or("-"),
                    decision = %record.decision,
                    plugins = record.calls.len(),
                    "handled"
                );
                if let Some(err) = &answer.stderr {
                    stderr.push(err.lines().next().unwrap_or("").to_owned());
                }
                if record.kind == payload::Kind::ParseError.as_str() {
                    stderr.push(format!("chronicle: {}", record.error.as_deref().unwrap_or("input is not a hook event")));
                }
                Reply { exit_code: answer.exit_code, stdout: answer.stdout, stderr, retire }
            })
            .collect()
    }

    /// Whether the last event was written to the database.
    pub fn recorded(&self) -> bool {
        self.recorded
    }

    /// Loads every plugin file now (not calling it) and opens the store: a resident host does
    /// this once, before its first event, so no event pays for it.
    pub fn warm_up(&mut self) {
        let (candidates, _) = self.plugin_files();
        if !candidates.is_empty() {
            self.divert_stdout();
        }
        let index = self.plugin_index(&plugin::index::path(&self.config.data_dir));
        let now = crate::clock::unix_ns();
        for c in candidates.iter().filter(|c| plugin::index::benched(&index, c, now).is_none()) {
            if let Err(e) = self.load(c) {
                tracing::info!("{}: not loaded: {e}", c.path.display());
            }
        }
        if let Ok(store) = self.store() {
            store.remove_abandoned_builds();
        }
        self.ingest_spool(true);
    }

    fn plugin_index(&mut self, file: &Path) -> Arc<HashMap<String, IndexEntry>> {
        use std::os::unix::fs::MetadataExt;
        let same = |a: &std::fs::Metadata, b: &std::fs::Metadata| {
            (a.dev(), a.ino(), a.len(), a.mtime(), a.mtime_nsec()) == (b.dev(), b.ino(), b.len(), b.mtime(), b.mtime_nsec())
        };
        let Ok(now) = std::fs::metadata(file) else { return Arc::new(plugin::index::load(file)) };
        match &self.index {
            Some((seen, index)) if same(seen, &now) => Arc::clone(index),
            _ => {
                let index = Arc::new(plugin::index::load(file));
                self.index = Some((now, Arc::clone(&index)));
                index
            }
        }
    }

    fn loaded_plugins(&self) -> MutexGuard<'_, Loaded> {
        // Nothing panics while holding it but a failed allocation; the map is whole either way.
        self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A loaded plugin file has changed on disk since it was loaded. The dynamic loader keeps
    /// serving the old code for the same path, so a resident host must hand over to a fresh
    /// process.
    pub fn plugins_changed(&self) -> bool {
        let mut watched = self.watched.as_ref().map(|w| w.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        // While the directories' listing stands, it says what each file is now.
        let standing = watched.as_mut().and_then(|w| w.standing(&self.config.plugin_dirs));
        let now = |path: &Path| match standing.and_then(|(found, _)| found.iter().find(|c| c.path == path)) {
            Some(listed) => Some(listed.clone()),
            None => plugin::Candidate::stat(path),
        };
        self.loaded_plugins().values().any(|(c, _)| now(&c.path).is_some_and(|now| now != *c))
    }

    /// Whether the database this host has open was deleted or replaced since (a person moving
    /// a broken file aside, as doctor suggests): the host must not record into it.
    pub fn store_replaced(&self) -> bool {
        self.store.if_open().is_some_and(|store| store.replaced())
    }

    /// Classifies, dispatches and merges one event. Nothing is written yet.
    pub fn handle(&mut self, input: &RawInput, received_at_ns: i64, stages: &mut Stages) -> Handled {
        self.open_store_in_background();
        let payload = stages.time("hook.parse", || payload::classify(input));
        // The input as text, once: the stored payload and the plugins' event share it.
        let text: Option<Arc<str>> = match &payload {
            Payload::Invalid { .. } => None,
            _ => std::str::from_utf8(&input.bytes).ok().map(Arc::from),
        };
        let mut record = self.base_record(&payload, input, text.as_ref(), received_at_ns, stages);
        let answer = match &payload {
            Payload::Event { value, spec, verbatim, deferred } => {
                let view = EventView::new(value, input, deferred);
                // Plugins get the input as it came when it parsed as is (no second parse, no copy
                // of the tree); otherwise the repaired value, serialised.
                let event_json: Arc<str> = match &text {
                    Some(text) if *verbatim => Arc::clone(text),
                    _ => Arc::from(view.full().to_string()),
                };
                self.dispatch(spec, &view, event_json, None, &mut record, stages)
            }
            Payload::Truncated { value, spec: Some(spec), incomplete_field } => {
                record.faults.push(FaultRow {
                    source: "input",
                    plugin: None,
                    path: None,
                    message: format!(
                        "input of {} bytes exceeds hook.max_input_bytes ({}): recorded truncated; plugins saw only the fields that arrived whole",
                        input.total_bytes, self.config.file.hook.max_input_bytes
                    ),
                });
                // Guards still decide: on what arrived whole where that is all they read,
                // otherwise by their failure policy (see [`Truncation`]).
                let view = EventView::new(value, input, &[]);
                let truncation = Truncation {
                    incomplete_field: incomplete_field.as_deref(),
                    total_bytes: input.total_bytes,
                    cap: self.config.file.hook.max_input_bytes,
                };
                self.dispatch(spec, &view, Arc::from(value.to_string()), Some(&truncation), &mut record, stages)
            }
            _ => Answer::nothing(),
        };
        record.decision = answer.decision.as_str().to_owned();
        record.exit_code = answer.exit_code;
        record.answer = answer.stdout.clone().or_else(|| answer.stderr.clone());
        for note in &answer.notes {
            record.faults.push(FaultRow { source: "answer", plugin: None, path: None, message: note.clone() });
        }
        Handled { answer, record }
    }

    fn base_record(
        &mut self,
        payload: &Payload,
        input: &RawInput,
        text: Option<&Arc<str>>,
        received_at_ns: i64,
        stages: &mut Stages,
    ) -> EventRecord {
        let field = |k: &str| payload.str_field(k).map(|s| payload::truncate_chars(s, 512).to_owned());
        let mut record = EventRecord {
            kind: payload.kind().as_str().to_owned(),
            hook_event_name: field("hook_event_name"),
            session_id: field("session_id"),
            tool_name: field("tool_name"),
            tool_use_id: field("tool_use_id"),
            agent_id: field("agent_id"),
            cwd: field("cwd"),
            project_dir: std::env::var(crate::config::env::PROJECT_DIR).ok(),
            received_at_ns,
            payload_bytes: input.total_bytes,
            truncated: input.truncated,
            decision: "none".into(),
            ..EventRecord::default()
        };
        if input.timed_out {
            record.faults.push(FaultRow {
                source: "input",
                plugin: None,
                path: None,
                message: "stdin was not closed by the writer; read stopped at the deadline or after a complete object".into(),
            });
        }
        stages.time("hook.redact", || match payload {
            Payload::Invalid { reason } => {
                let kept = &input.bytes[..input.bytes.len().min(MAX_PARSE_ERROR_BYTES)];
                let text = String::from_utf8_lossy(kept);
                let redacted = self.redactor.text(&text);
                record.redacted = matches!(redacted, std::borrow::Cow::Owned(_)) && redacted != text;
                record.payload = Arc::from(redacted);
                record.truncated |= input.bytes.len() > MAX_PARSE_ERROR_BYTES;
                record.error = Some(reason.clone());
            }
            Payload::Event { value, .. } | Payload::Unknown { value, .. } | Payload::Truncated { value, .. } => {
                let deferred = match payload {
                    Payload::Event { deferred, .. } => &deferred[..],
                    _ => &[],
                };
                // Deferred fields are judged on their JSON text; only if that cannot clear them
                // is the whole tree built.
                // A trigger word on the raw text only says "look closer": `redacted` is set
                // only when a replacement was actually made.
                let maybe_secret = self.redactor.needed(value)
                    || (!deferred.is_empty() && !text.is_some_and(|t| self.redactor.deferred_clean(t, deferred)));
                let complete = !input.truncated && matches!(payload, Payload::Event { .. } | Payload::Unknown { .. });
                let original = |text: &Arc<str>| match text.strip_prefix('\u{feff}') {
                    Some(rest) => Arc::from(rest),
                    None => Arc::clone(text),
                };
                record.payload = match text {
                    // Nothing to redact and complete: keep the payload byte-exact, no copy of the tree.
                    Some(text) if !maybe_secret && complete => original(text),
                    _ => {
                        let mut stored = match deferred.is_empty() {
                            true => value.clone(),
                            false => payload::full_value(input).unwrap_or_else(|| value.clone()),
                        };
                        record.redacted = self.redactor.value(&mut stored);
                        match text {
                            Some(text) if !record.redacted && complete => original(text),
                            _ => Arc::from(stored.to_string()),
                        }
                    }
                };
                if let Payload::Unknown { reason, .. } = payload {
                    record.error = Some(reason.clone());
                }
                if let Payload::Truncated { incomplete_field, .. } = payload {
                    record.error = Some(match incomplete_field {
                        Some(f) => format!("truncated at field {f:?}; only complete top-level fields were kept"),
                        None => "truncated; only complete top-level fields were kept".into(),
                    });
                }
            }
        });
        if record.hook_event_name.as_deref() == Some("SessionStart") {
            if let Some(cwd) = &record.cwd {
                let started = Instant::now();
                record.git_branch = self.git_branch_cached(std::path::Path::new(cwd), &mut record.cache_puts, &mut record.metrics);
                stages.add("hook.git", started.elapsed());
            }
        }
        if record.hook_event_name.as_deref() == Some("SessionEnd") {
            record.end_reason = field("reason");
        }
        if let Some(ms) = payload.value().and_then(|v| v.get("duration_ms")).and_then(Value::as_f64) {
            record.reported_duration_ms = Some(ms);
        }
        record
    }

    /// The project's git branch, cached (in process and in the store) under a key that embeds
    /// HEAD's path, size and mtime: a checkout changes the key, so a hit is never stale.
    /// Lookups are counted as `cache.host.hit` / `cache.host.miss` metrics.
    fn git_branch_cached(
        &mut self,
        cwd: &std::path::Path,
        puts: &mut Vec<crate::store::CachePut>,
        metrics: &mut Vec<crate::store::MetricRow>,
    ) -> Option<String> {
        let (head, stamp) = crate::project::head_stamp(cwd)?;
        let key = format!("host:git-branch:{}:{stamp}", head.display());
        let mut count = |name: &str| metrics.push(crate::store::MetricRow { name: name.into(), value: 1.0 });
        if let Some(b) = self.cache.fact(&key) {
            count("cache.host.hit");
            return Some(b);
        }
        let now = crate::clock::unix_ns();
        if let Some((b, _)) = self.store().ok().and_then(|s| s.cache_get(&key, now).ok().flatten()) {
            self.cache.put_fact(key, b.clone());
            count("cache.host.hit");
            return Some(b);
        }
        count("cache.host.miss");
        let branch = crate::project::branch_from_head(&std::fs::read_to_string(&head).ok()?)?;
        self.cache.put_fact(key.clone(), branch.clone());
        puts.push(crate::store::CachePut {
            key,
            plugin: "host".into(),
            value: branch.clone(),
            expires_at_ns: now + 30 * 86_400 * 1_000_000_000,
        });
        Some(branch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache key's pointers into a deferred field (a Write event's file path beside its large
    /// content) give what the whole tree gives, and the tree is never built for them.
    #[test]
    fn pointers_into_deferred_fields_match_the_tree_without_building_it() {
        let content = "fn main() {}\n\"quoted\" \\ tab\t".repeat(2000);
        let event = serde_json::json!({
            "hook_event_name": "PreToolUse", "session_id": "s", "cwd": "/p", "tool_name": "Write",
            "tool_input": {"file_path": "/p/src/main.rs", "content": content, "edits": [{"old": "a"}, {"old": "b"}]},
            "tool_response": {"filePath": "/p/src/main.rs", "content": content},
        });
        let bytes = serde_json::to_vec(&event).unwrap();
        let input = RawInput { total_bytes: bytes.len() as u64, bytes, ..RawInput::default() };
        let Payload::Event { value, deferred, .. } = payload::classify(&input) else { panic!("not an event") };
        assert!(deferred.iter().any(|d| d.key == "tool_input"), "{deferred:?}");
        let view = EventView::new(&value, &input, &deferred);
        let pointers = [
            "/tool_name", "/cwd", "/tool_input/file_path", "/tool_input/path", "/tool_input/edits/1/old", "/tool_input/edits/2",
            "/tool_input/content", "/tool_response/filePath", "/nothing/here", "/tool_input", "",
        ];
        let found: Vec<Option<String>> = pointers.iter().map(|p| view.pointed(p)).collect();
        assert_eq!(found[2].as_deref(), Some("\"/p/src/main.rs\""));
        // Every pointer but "" (the whole event) was answered without the tree.
        assert!(view.full.get().is_some());
        let fresh = EventView::new(&value, &input, &deferred);
        for p in &pointers[..pointers.len() - 1] {
            fresh.pointed(p);
        }
        assert!(fresh.full.get().is_none(), "a pointer built the whole tree");
        for (p, got) in pointers.iter().zip(&found) {
            assert_eq!(got.as_deref(), event.pointer(p).map(Value::to_string).as_deref(), "{p}");
        }
    }
}
