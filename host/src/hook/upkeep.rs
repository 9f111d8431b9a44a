//! Keeping the database's write-ahead log short without making an event wait: the background
//! checkpointer, restarting the log between events, and the in-line bound.

use std::io::{Read, Write};

use super::Host;

impl Host {
    /// Work that can wait until the answer is out (a resident host calls this after each
    /// answer): the store's log is checkpointed on a background thread instead of in `record`.
    pub fn upkeep(&mut self) {
        if self.recorded {
            self.ingest_spool(false);
        }
        if let Some(mut store) = self.store.if_open() {
            store.enforce_wal_bound();
        }
        // The host's own thread keeps the log; its siblings share its connection.
        if !self.keeps_log {
            return;
        }
        if self.checkpointer.is_none() {
            self.start_checkpointer();
        }
        // Woken only when its threshold is passed: a wake-up after every event cost a context
        // switch each, on a core the next clients wanted.
        let due = self.store.if_open().is_some_and(|store| store.wants_background_checkpoint());
        if let (Some(tx), true) = (&self.checkpointer, due) {
            let _ = tx.send(());
        }
    }

    /// For a hook process whose client relays the answer at the end mark, before the process
    /// exits: its commits leave the log alone, and [`Host::bound_log_after_answer`] bounds it.
    pub fn defer_log_bound(&mut self) {
        self.log_after_answer = true;
    }

    /// Once the answer is out (see [`Host::defer_log_bound`]): keeps the log short for the
    /// next process (see [`crate::store::Store::bound_wal_after_answer`]).
    pub fn bound_log_after_answer(&mut self) {
        if let (true, Some(mut store)) = (self.log_after_answer, self.store.if_open()) {
            store.bound_wal_after_answer();
        }
    }

    /// For a resident host that stops serving: leaves the log empty for the next process to
    /// open the database (see [`crate::store::Store::truncate_log`]). Nobody waits for this.
    pub fn leave_log_short(&mut self) {
        if let (true, Some(mut store)) = (self.keeps_log, self.store.if_open()) {
            store.truncate_log(std::time::Duration::from_millis(100));
        }
    }

    fn start_checkpointer(&mut self) {
        let Ok((ours, theirs)) = std::os::unix::net::UnixStream::pair() else { return };
        if ours.set_nonblocking(true).and_then(|()| theirs.set_nonblocking(true)).is_err() {
            return;
        }
        let Ok(mut store) = self.store() else { return };
        // A full socket buffer already says "checkpointed": a failed write loses nothing.
        let started = store.checkpoint_in_background(move || drop((&theirs).write(&[1])));
        drop(store);
        match started {
            Ok(tx) => {
                self.checkpointer = Some(tx);
                self.checkpointed = Some(ours);
            }
            Err(e) => tracing::warn!("cannot checkpoint in the background: {e}"),
        }
    }

    /// A descriptor that becomes readable when the background checkpointer has copied the
    /// whole log; the owner then calls [`Host::restart_log`] between events.
    pub fn log_checkpointed(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.checkpointed.as_ref().map(|s| s.as_fd())
    }

    /// Starts the checkpointed log afresh now, so the next event's commit does not (see
    /// [`crate::store::Store::restart_log`]).
    pub fn restart_log(&mut self) {
        let Some(s) = &self.checkpointed else { return };
        let mut buf = [0u8; 64];
        loop {
            match (&*s).read(&mut buf) {
                Ok(0) => {
                    // The checkpointer is gone: nothing will be signalled again.
                    self.checkpointed = None;
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Never poll a broken descriptor again (it would wake the loop forever).
                    tracing::warn!("checkpoint signal: {e}");
                    self.checkpointed = None;
                    return;
                }
            }
        }
        if let Ok(mut store) = self.store() {
            if let Err(e) = store.restart_log() {
                tracing::debug!("cannot restart the write-ahead log: {e}");
            }
        }
    }
}
