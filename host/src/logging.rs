//! Diagnostics through `tracing`, never to stdout: in hook mode stdout is Claude Code's.
//!
//! The level comes from `CHRONICLE_LOG`, else the config's `[log] level` (default `warn`).
//! In hook mode logs go to `[log] file`, default `<data dir>/logs/chronicle.log`, opened only
//! when the first line is written (a quiet event costs nothing) and rotated at 1 MiB keeping
//! three old files. The CLI logs to stderr unless a file is configured.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;

/// Size at which the log file is rotated.
pub const ROTATE_BYTES: u64 = 1024 * 1024;
/// Rotated files kept (`chronicle.log.1` … `.3`).
pub const KEEP: usize = 3;

fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => return None,
    })
}

/// The default log file for a data directory.
pub fn default_file(data_dir: &Path) -> PathBuf {
    data_dir.join("logs").join("chronicle.log")
}

/// Renames `file` to `file.1` (and older ones up) when it is past `ROTATE_BYTES`.
fn rotate_if_big(file: &Path) {
    if std::fs::metadata(file).map_or(true, |m| m.len() < ROTATE_BYTES) {
        return;
    }
    for i in (1..KEEP).rev() {
        let from = PathBuf::from(format!("{}.{i}", file.display()));
        let to = PathBuf::from(format!("{}.{}", file.display(), i + 1));
        let _ = std::fs::rename(from, to);
    }
    let _ = std::fs::rename(file, format!("{}.1", file.display()));
}

/// A log file opened on first write.
struct LazyFile {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl LazyFile {
    fn write_line(&self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = crate::private::create_private_dir(dir);
            }
            rotate_if_big(&self.path);
            use std::os::unix::fs::OpenOptionsExt;
            *guard = Some(std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?);
        }
        match guard.as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
}

struct LazyWriter(&'static LazyFile);

impl Write for LazyWriter {
    /// A line the log file cannot take (its disk is full, its directory not ours) is dropped:
    /// an error here would have tracing-subscriber print its own complaint on the hook's stderr
    /// for every line, while what matters (an event not recorded) is said there already.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(self.0.write_line(buf).unwrap_or(buf.len()))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where logs go.
pub enum Destination<'a> {
    Stderr,
    File(&'a Path),
}

/// Installs the global subscriber. Safe to call once; later calls do nothing.
pub fn init(config_level: &str, destination: Destination<'_>) {
    let level = std::env::var(crate::config::env::LOG)
        .ok()
        .and_then(|l| parse_level(&l))
        .or_else(|| parse_level(config_level))
        .unwrap_or(LevelFilter::WARN);
    let file: Option<&'static LazyFile> = match destination {
        Destination::Stderr => None,
        Destination::File(path) => Some(Box::leak(Box::new(LazyFile { path: path.to_owned(), file: Mutex::new(None) }))),
    };
    let build = move || {
        let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false).with_ansi(false);
        match file {
            None => tracing::Dispatch::new(builder.with_writer(std::io::stderr).finish()),
            Some(file) => tracing::Dispatch::new(builder.with_writer(move || LazyWriter(file)).finish()),
        }
    };
    let _ = tracing::subscriber::set_global_default(Deferred { level, inner: std::sync::OnceLock::new(), build: Box::new(build) });
}

/// The formatting subscriber, built when the first line is logged: building it (its span
/// registry allocates per-thread slabs) was ~50 µs of every hook process, most of which log
/// nothing. Which lines are enabled is known without it.
struct Deferred {
    level: LevelFilter,
    inner: std::sync::OnceLock<tracing::Dispatch>,
    build: Box<dyn Fn() -> tracing::Dispatch + Send + Sync>,
}

impl Deferred {
    fn inner(&self) -> &tracing::Dispatch {
        self.inner.get_or_init(|| (self.build)())
    }
}

impl tracing::Subscriber for Deferred {
    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if self.enabled(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.level)
    }
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.inner().new_span(span)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.inner().record(span, values)
    }
    fn record_follows_from(&self, span: &tracing::span::Id, follows: &tracing::span::Id) {
        self.inner().record_follows_from(span, follows)
    }
    fn event(&self, event: &tracing::Event<'_>) {
        self.inner().event(event)
    }
    fn enter(&self, span: &tracing::span::Id) {
        self.inner().enter(span)
    }
    fn exit(&self, span: &tracing::span::Id) {
        self.inner().exit(span)
    }
    fn clone_span(&self, id: &tracing::span::Id) -> tracing::span::Id {
        self.inner().clone_span(id)
    }
    fn try_close(&self, id: tracing::span::Id) -> bool {
        self.inner().try_close(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deferred_subscriber_filters_by_level_and_writes_what_passes() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("logs").join("x.log");
        let file: &'static LazyFile = Box::leak(Box::new(LazyFile { path: path.clone(), file: Mutex::new(None) }));
        let built = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let built_by = std::sync::Arc::clone(&built);
        let deferred = Deferred {
            level: LevelFilter::WARN,
            inner: std::sync::OnceLock::new(),
            build: Box::new(move || {
                built_by.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::Dispatch::new(
                    tracing_subscriber::fmt().with_max_level(LevelFilter::WARN).with_ansi(false).with_writer(move || LazyWriter(file)).finish(),
                )
            }),
        };
        tracing::subscriber::with_default(deferred, || {
            tracing::info!("quiet line");
            assert!(!built.load(std::sync::atomic::Ordering::SeqCst), "a filtered line builds nothing");
            tracing::warn!(answer = 42, "loud line");
            assert!(built.load(std::sync::atomic::Ordering::SeqCst));
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("loud line") && text.contains("answer=42"), "{text}");
        assert!(!text.contains("quiet line"), "{text}");
    }

    #[test]
    fn rotates_past_the_limit_and_keeps_three() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c.log");
        for round in 0..5 {
            std::fs::write(&f, vec![b'x'; ROTATE_BYTES as usize + round]).unwrap();
            rotate_if_big(&f);
        }
        assert!(!f.exists());
        for i in 1..=KEEP {
            assert!(PathBuf::from(format!("{}.{i}", f.display())).exists(), "{i}");
        }
        assert!(!PathBuf::from(format!("{}.{}", f.display(), KEEP + 1)).exists());
        assert_eq!(std::fs::metadata(format!("{}.1", f.display())).unwrap().len(), ROTATE_BYTES + 4);
    }
}
