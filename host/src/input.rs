//! Reading the event from stdin: to EOF, with a size cap and a deadline.
//!
//! Claude Code writes the payload and closes the pipe; if we stopped reading early its write
//! would fail with EPIPE, so bytes past the cap are drained and counted, not left in the pipe.
//! A writer that never closes stdin cannot hold us past the deadline: once a complete JSON
//! object has arrived and the pipe goes quiet for a moment, we proceed with what we have.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Bytes read from stdin, and how the read ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawInput {
    /// The first `cap` bytes.
    pub bytes: Vec<u8>,
    /// Every byte seen, kept or drained.
    pub total_bytes: u64,
    /// More than `cap` bytes arrived.
    pub truncated: bool,
    /// The deadline passed before EOF.
    pub timed_out: bool,
}

/// How long a pipe must stay quiet after a complete object before we stop waiting for EOF.
const QUIET_AFTER_OBJECT: Duration = Duration::from_millis(50);

/// Reads stdin until EOF, `deadline`, or a complete object followed by a quiet pipe.
pub fn read_stdin(cap: usize, deadline: Duration) -> io::Result<RawInput> {
    // Unbuffered on purpose: `poll` must see every byte that has not been consumed yet.
    // Widened first, not once an event proves large: a writer still has most of a large
    // event to write when the reader starts, and widened early it may write the rest at once.
    // (Widening after the first 64 KiB saves a small event the resize, ~5 µs; it was tried
    // and undone while chasing a gate result that turned out to be memory layout, and left
    // undone: BENCHMARKS.md, twenty-first session.)
    widen_pipe(0);
    read_fd(0, cap, deadline)
}

/// Bytes asked of one `read`: a widened pipe holds up to 1 MiB.
const READ_SIZE: usize = 256 * 1024;
/// The buffer grows (by `READ_SIZE`) only when less than this is left: an ordinary event
/// (a few KB) is read into one buffer and its EOF into the same one, with no remap between.
const MIN_ROOM: usize = 4096;

fn read_fd(fd: RawFd, cap: usize, deadline: Duration) -> io::Result<RawInput> {
    let start = Instant::now();
    let mut input = RawInput::default();
    let mut drain = Vec::new();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            input.timed_out = true;
            return Ok(input);
        }
        // Writers usually close stdin right after the event: when bytes or EOF are already
        // waiting, read on without asking whether what we have is complete (that parses it).
        if matches!(poll_readable(fd, Duration::ZERO)?, Readiness::TimedOut) {
            let mut wait = deadline - elapsed;
            if looks_complete(&input.bytes) {
                wait = wait.min(QUIET_AFTER_OBJECT);
            }
            match poll_readable(fd, wait)? {
                Readiness::Ready => {}
                Readiness::TimedOut => {
                    // The deadline, or a quiet pipe after a complete object (the writer is done
                    // but kept stdin open).
                    input.timed_out = true;
                    return Ok(input);
                }
            }
        }
        let room = cap.saturating_sub(input.bytes.len());
        // Into the kept bytes' spare capacity (no staging buffer, no copy, no zeroing; the
        // allocator grows a large buffer by remapping), or, past the cap, into a scratch buffer.
        let target = if room > 0 {
            if input.bytes.capacity() - input.bytes.len() < MIN_ROOM.min(room) {
                input.bytes.reserve(READ_SIZE.min(room));
            }
            &mut input.bytes
        } else {
            drain.clear();
            drain.reserve(READ_SIZE);
            &mut drain
        };
        let spare = target.spare_capacity_mut();
        let want = if room > 0 { spare.len().min(room) } else { spare.len() };
        // SAFETY: reads at most `want` bytes into memory the Vec owns and has not initialised;
        // exactly the `n` bytes read are then marked initialised.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) };
        let n = match n {
            0 => return Ok(input),
            n if n > 0 => n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        };
        // SAFETY: the kernel wrote `n <= want` bytes at the start of the spare capacity.
        unsafe { target.set_len(target.len() + n) };
        input.total_bytes += n as u64;
        if room == 0 {
            input.truncated = true;
        }
    }
}

/// Asks for a 1 MiB pipe buffer (Linux; up to the unprivileged limit): a large event then
/// arrives in a few reads instead of one wake-up per 64 KiB. Not a pipe, or refused: no matter.
fn widen_pipe(fd: RawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: fcntl on a descriptor we were given; failure changes nothing.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

/// A cheap check that avoids parsing on every chunk: only a buffer ending in `}` can be a
/// complete object, and only then is it worth a real parse.
fn looks_complete(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii_end();
    trimmed.last() == Some(&b'}') && serde_json::from_slice::<serde::de::IgnoredAny>(trimmed).is_ok()
}

enum Readiness {
    Ready,
    TimedOut,
}

fn poll_readable(fd: RawFd, wait: Duration) -> io::Result<Readiness> {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // Round a wait up to whole milliseconds, but keep zero a pure check.
    let ms = if wait.is_zero() { 0 } else { i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1) };
    loop {
        // SAFETY: one valid pollfd, count 1.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        // POLLHUP/POLLERR/POLLNVAL also mean "read will not block" (it returns 0 or an error).
        return Ok(if r == 0 { Readiness::TimedOut } else { Readiness::Ready });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    fn pipe() -> (std::fs::File, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        use std::os::fd::FromRawFd;
        // SAFETY: both descriptors were just created and are owned here.
        unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn reads_to_eof_and_caps_what_it_keeps() {
        let (r, mut w) = pipe();
        let writer = std::thread::spawn(move || {
            w.write_all(&[b'x'; 200_000]).unwrap();
        });
        let input = read_fd(r.as_raw_fd(), 1000, Duration::from_secs(5)).unwrap();
        writer.join().unwrap();
        assert_eq!(input.bytes.len(), 1000);
        assert_eq!(input.total_bytes, 200_000);
        assert!(input.truncated);
        assert!(!input.timed_out);
    }

    #[test]
    fn a_complete_object_on_a_pipe_held_open_does_not_wait_for_the_deadline() {
        let (r, mut w) = pipe();
        w.write_all(br#"{"hook_event_name":"Stop"}"#).unwrap();
        let started = Instant::now();
        let input = read_fd(r.as_raw_fd(), 1000, Duration::from_secs(10)).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(input.timed_out);
        assert_eq!(input.bytes, br#"{"hook_event_name":"Stop"}"#);
        drop(w);
    }

    #[test]
    fn an_incomplete_object_waits_until_the_deadline() {
        let (r, mut w) = pipe();
        w.write_all(br#"{"hook_event_name":"#).unwrap();
        let input = read_fd(r.as_raw_fd(), 1000, Duration::from_millis(200)).unwrap();
        assert!(input.timed_out);
        assert_eq!(input.bytes.len(), 19);
        drop(w);
    }
}
