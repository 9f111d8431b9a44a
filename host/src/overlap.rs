//! Whether stretches of work overlapped, told without a lock: two counters per kind of work.
//!
//! A resident host serves events on several threads. Some measurements only mean something for
//! work that ran alone: a plugin's counting allocator counts every call of that plugin at once,
//! `mallinfo2` sees the whole process's heap, the diverted stdout collects every plugin's
//! writes. Each such measurement asks here whether anything else ran meanwhile and, if so, is
//! reported as unattributable rather than wrong.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

/// One kind of work: how many stretches of it run now, and how many ever began.
#[derive(Debug, Default)]
pub struct Overlaps {
    running: AtomicU32,
    began: AtomicU64,
}

/// Stretches of event handling in a resident host (one per serving thread while it holds
/// events), for measurements that see the whole process.
pub static SERVING: Overlaps = Overlaps::new();

impl Overlaps {
    pub const fn new() -> Overlaps {
        Overlaps { running: AtomicU32::new(0), began: AtomicU64::new(0) }
    }

    /// Begins a stretch; it ends when the result is dropped.
    pub fn begin(&self) -> Stretch<'_> {
        let others = self.running.fetch_add(1, SeqCst);
        let number = self.began.fetch_add(1, SeqCst) + 1;
        Stretch { of: self, number, shared: others > 0 }
    }

    /// How many stretches have begun so far.
    pub fn began(&self) -> u64 {
        self.began.load(SeqCst)
    }

    /// Starts watching, from outside any stretch of this kind or from inside exactly one
    /// (`own`: 1 when the watcher's own stretch is running, else 0).
    pub fn watch(&self, own: u32) -> Watch<'_> {
        let busy = self.running.load(SeqCst) > own;
        Watch { of: self, began: self.began.load(SeqCst), busy }
    }
}

/// A stretch of work being done; dropping it ends it.
#[derive(Debug)]
pub struct Stretch<'a> {
    of: &'a Overlaps,
    number: u64,
    /// Another stretch was running when this one began.
    shared: bool,
}

impl Stretch<'_> {
    /// Its place among the stretches of its kind (the first is 1).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Whether another stretch ran during any part of this one so far. Errs only towards yes
    /// (a stretch that begins as this one ends may count).
    pub fn overlapped(&self) -> bool {
        self.shared || self.of.began.load(SeqCst) != self.number
    }
}

impl Drop for Stretch<'_> {
    fn drop(&mut self) {
        self.of.running.fetch_sub(1, SeqCst);
    }
}

/// Watching for stretches of one kind other than the watcher's own.
#[derive(Debug)]
pub struct Watch<'a> {
    of: &'a Overlaps,
    began: u64,
    busy: bool,
}

impl Watch<'_> {
    /// Whether no other stretch ran between [`Overlaps::watch`] and now.
    pub fn alone(&self) -> bool {
        !self.busy && self.of.began.load(SeqCst) == self.began
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretches_know_whether_they_overlapped() {
        let work = Overlaps::new();
        let a = work.begin();
        assert!(!a.overlapped(), "alone so far");
        drop(a);
        let a = work.begin();
        let b = work.begin();
        assert!(b.overlapped(), "began while a ran");
        assert!(a.overlapped(), "b began during a");
        drop(a);
        drop(b);
        let c = work.begin();
        assert!(!c.overlapped(), "the others ended before c began");
    }

    #[test]
    fn a_watch_sees_other_stretches_and_not_its_own() {
        let work = Overlaps::new();
        let mine = work.begin();
        let watch = work.watch(1);
        assert!(watch.alone());
        let other = work.begin();
        assert!(!watch.alone(), "another stretch began");
        drop(other);
        let busy = work.begin();
        assert!(!work.watch(1).alone(), "another stretch is running");
        drop(busy);
        drop(mine);
        assert!(work.watch(0).alone());
    }
}
