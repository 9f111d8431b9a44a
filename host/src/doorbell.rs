//! Waking one thread from another through a pipe instead of a futex.
//!
//! A serving thread hands each event's plugin calls to a worker thread and sleeps until they
//! are done (see [`crate::dispatch`]): two wake-ups per event that calls a plugin. Through a
//! futex (a channel, a condition variable) the woken thread went to whichever CPU the
//! scheduler found. A pipe write wakes its reader with the kernel's "sync" hint (the writer is
//! about to sleep), which lets the scheduler put the reader on the writer's CPU, where it runs
//! once the writer blocks. Measured on two cores (BENCHMARKS.md, twenty-second session): the
//! session's p50 at 2, 4 and 8 clients 0.03-0.07 × `cat` lower, one client unchanged.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A pipe: [`Doorbell::ring`] on one thread ends [`Doorbell::wait`] on another.
pub struct Doorbell {
    read: OwnedFd,
    write: OwnedFd,
}

impl Doorbell {
    pub fn new() -> io::Result<Doorbell> {
        let mut fds = [-1; 2];
        // SAFETY: a valid two-int out-array; both descriptors are owned below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just returned these two descriptors to us.
        Ok(unsafe { Doorbell { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) } })
    }

    /// Wakes the waiter (or makes its next wait return at once). A full pipe already has
    /// rings enough: the write is not retried.
    pub fn ring(&self) {
        // SAFETY: one byte from a valid buffer to a descriptor we own.
        let _ = unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }

    /// Waits until rung, at most `timeout` (`None`: without limit), and takes every ring that
    /// arrived: true if there was one. A ring left over from an earlier round (a worker that
    /// finished after it was given up) also ends a wait, so callers check what they wait for.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let ms = timeout.map_or(-1, |t| {
            // Rounded up: waking before the deadline would only come back here.
            let ms = t.as_nanos().div_ceil(1_000_000);
            libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
        });
        let mut fd = libc::pollfd { fd: self.read.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd. EINTR counts as a wake-up without a ring.
        if unsafe { libc::poll(&mut fd, 1, ms) } != 1 {
            return false;
        }
        let mut rung = false;
        let mut buf = [0u8; 64];
        // SAFETY: reads into a valid buffer of its length, from a descriptor we own.
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
            rung = true;
        }
        rung
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_ring_ends_a_wait_on_another_thread_and_is_taken_once() {
        let bell = Arc::new(Doorbell::new().unwrap());
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
}
