//! More serving threads when events arrive together. One thread answers one event (or one
//! group) at a time, so clients of parallel tool calls and subagents queued behind each other
//! (measured: 0.59-0.72 of `cat`'s throughput at 2-8 clients with one). When the host has an
//! event's answer ready and finds another client already waiting (one that connected before
//! this client got its answer, so not this client's next event), it starts a worker thread
//! that accepts from the same listening socket, so the kernel hands each connection to
//! whichever thread is free.
//!
//! A worker is a sibling host ([`Host::sibling`]): the same loaded plugins, outcome cache,
//! diverted stdout and database connection (one writer at a time, its page cache kept: see
//! `hook::shared_store`), an in-flight marker slot of its own. So events of different plugins
//! and their answers overlap, their recording takes turns, while a plugin is never
//! called by two threads at once unless its manifest allows it (`concurrent_calls`; otherwise
//! the threads take turns, [`crate::plugin::LoadedPlugin::try_turn`]). Each event is still
//! recorded before it is answered. A crash in plugin code ends the whole process: every client
//! it was serving hands its event to a child of its own, as with one thread. Workers leave
//! after a minute without events, and all of them as soon as one thread retires (a plugin
//! hung or its file changed) or the host stops; traffic that never overlaps never starts one,
//! so the one-at-a-time path is untouched.

use std::sync::atomic::AtomicBool;
use std::thread::{Scope, ScopedJoinHandle};

use super::*;

/// A worker leaves after this long without events (or the host's own idle limit, if shorter).
pub const WORKER_IDLE: Duration = Duration::from_secs(60);

/// Where the worker threads of one host serve, and when they stop.
pub(super) struct Post<'a> {
    pub listener: &'a UnixListener,
    pub socket: &'a Path,
    pub ino: u64,
    pub idle: Duration,
    /// Set when any thread retires or the host stops: every thread leaves at its next wake-up.
    pub stop: &'a AtomicBool,
}

/// The worker threads a host started.
pub(super) struct Workers<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    post: &'env Post<'env>,
    /// Each running worker and its in-flight marker slot (the host's own is 0).
    running: Vec<(ScopedJoinHandle<'scope, ()>, usize)>,
    max: usize,
}

impl<'scope, 'env> Workers<'scope, 'env> {
    pub(super) fn new(scope: &'scope Scope<'scope, 'env>, post: &'env Post<'env>) -> Workers<'scope, 'env> {
        Workers { scope, post, running: Vec::new(), max: max_workers() }
    }

    /// After an event during which another client queued: start a worker, if fewer run than
    /// cores allow.
    pub(super) fn add(&mut self, host: &Host) {
        self.running.retain(|(handle, _)| !handle.is_finished());
        if self.running.len() >= self.max {
            return;
        }
        let Some(slot) = (1..=self.max).find(|s| self.running.iter().all(|(_, used)| used != s)) else { return };
        let sibling = host.sibling();
        let post = self.post;
        let spawned = std::thread::Builder::new()
            .name(format!("chronicle-srv-{slot}"))
            .spawn_scoped(self.scope, move || serve_as_worker(sibling, post, slot));
        match spawned {
            Ok(handle) => {
                tracing::info!(slot, workers = self.running.len() + 1, "clients are waiting: started a worker thread");
                self.running.push((handle, slot));
            }
            Err(e) => tracing::warn!("cannot start a worker thread: {e}"),
        }
    }
}

/// Worker threads a host may start: one per core beyond its own (more would only take turns
/// on the CPU), within the in-flight marker's slots.
pub(super) fn max_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).min(crate::plugin::inflight::MAX_SLOTS - 1)
}

/// Whether a client is waiting to be accepted right now.
pub(super) fn pending(listener: &UnixListener) -> bool {
    let mut fd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLIN != 0 }
}

fn serve_as_worker(mut host: Host, post: &Post<'_>, slot: usize) {
    crate::plugin::inflight::use_slot(slot);
    host.upkeep();
    let idle = post.idle.min(WORKER_IDLE);
    if let Err(e) = serve_socket(&mut host, post.listener, post.socket, post.ino, idle, post.stop, "resident worker", |_| {}) {
        tracing::warn!("resident worker: {e}");
    }
}
