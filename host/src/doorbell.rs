//! Waking one thread from another through a pipe instead of a futex.
//!
//! A serving thread hands each event's plugin calls to a worker thread and sleeps until they
//! are done (see [`crate::dispatch`]): two wake-ups per event that calls a plugin. Through a
//! futex (a channel, a condition variable) the woken thread went to whichever CPU the
//! scheduler found. A pipe write wakes its reader with the kernel's "sync" hint (the writer is
//! about to sleep), which lets the scheduler put the reader on the writer's CPU, where it runs
//! once the writer blocks. Measured on two cores (BENCHMARKS.md, twenty-second session): the
//! session's p50 at 2, 4 and 8 clients 0.03-0.07 × `cat` lower, one client unchanged.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// [`Doorbell::ring`] on one thread ends [`Doorbell::wait`] on another: through a pipe, or,
/// where none can be made (a process at its descriptor limit, as a resident host started
/// under a low `ulimit -n` may be), a condition variable, so that no event goes without its
/// plugins for want of two descriptors.
pub enum Doorbell {
    Pipe { read: OwnedFd, write: OwnedFd },
    Futex { rung: Mutex<bool>, wake: Condvar },
}

impl Doorbell {
    pub fn new() -> Doorbell {
        let mut fds = [-1; 2];
        // SAFETY: a valid two-int out-array; both descriptors are owned below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            tracing::debug!("no pipe for a doorbell ({}): a condition variable instead", std::io::Error::last_os_error());
            return Doorbell::Futex { rung: Mutex::new(false), wake: Condvar::new() };
        }
        // SAFETY: pipe2 just returned these two descriptors to us.
        unsafe { Doorbell::Pipe { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) } }
    }

    /// Wakes the waiter (or makes its next wait return at once). A full pipe already has
    /// rings enough: the write is not retried.
    pub fn ring(&self) {
        match self {
            Doorbell::Pipe { write, .. } => {
                // SAFETY: one byte from a valid buffer to a descriptor we own.
                let _ = unsafe { libc::write(write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
            }
            Doorbell::Futex { rung, wake } => {
                *rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
                wake.notify_one();
            }
        }
    }

    /// Waits until rung, at most `timeout` (`None`: without limit), and takes every ring that
    /// arrived: true if there was one. A ring left over from an earlier round (a worker that
    /// finished after it was given up) also ends a wait, so callers check what they wait for.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        match self {
            Doorbell::Pipe { read, .. } => wait_for_pipe(read, timeout),
            Doorbell::Futex { rung, wake } => {
                let guard = rung.lock().unwrap_or_else(|p| p.into_inner());
                let mut guard = match timeout {
                    None => wake.wait_while(guard, |rung| !*rung).unwrap_or_else(|p| p.into_inner()),
                    Some(t) => wake.wait_timeout_while(guard, t, |rung| !*rung).unwrap_or_else(|p| p.into_inner()).0,
                };
                std::mem::replace(&mut *guard, false)
            }
        }
    }
}

fn wait_for_pipe(read: &OwnedFd, timeout: Option<Duration>) -> bool {
    let ms = timeout.map_or(-1, |t| {
        // Rounded up: waking before the deadline would only come back here.
        let ms = t.as_nanos().div_ceil(1_000_000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    });
    let mut fd = libc::pollfd { fd: read.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd. EINTR counts as a wake-up without a ring.
    if unsafe { libc::poll(&mut fd, 1, ms) } != 1 {
        return false;
    }
    let mut rung = false;
    let mut buf = [0u8; 64];
    // SAFETY: reads into a valid buffer of its length, from a descriptor we own.
    while unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
        rung = true;
    }
    rung
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn a_ring_ends_a_wait_on_another_thread_and_is_taken_once(bell: Doorbell) {
        let bell = Arc::new(bell);
        let ringer = Arc::clone(&bell);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            ringer.ring();
            ringer.ring();
        });
        assert!(bell.wait(None));
        t.join().unwrap();
        // Both rings were taken by the first wait (or the second arrived since): at most one
        // more wake-up, then a wait without a ring times out.
        bell.wait(Some(Duration::ZERO));
        let started = Instant::now();
        assert!(!bell.wait(Some(Duration::from_millis(30))));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_pipe_ring_ends_a_wait_on_another_thread() {
        let bell = Doorbell::new();
        assert!(matches!(bell, Doorbell::Pipe { .. }));
        a_ring_ends_a_wait_on_another_thread_and_is_taken_once(bell);
    }

    #[test]
    fn without_a_pipe_a_condition_variable_does_the_same() {
        a_ring_ends_a_wait_on_another_thread_and_is_taken_once(Doorbell::Futex { rung: Mutex::new(false), wake: Condvar::new() });
    }
}
