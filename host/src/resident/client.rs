//! The client's side: asking the server for an answer, and starting one.

use super::*;

/// Why the client got no answer from a server.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No server is listening (none started yet, or it exited): start one.
    #[error("no resident host is listening: {0}")]
    Unavailable(io::Error),
    /// A server took the event but did not answer (it died, or is stuck).
    #[error("the resident host took the event but did not answer: {0}")]
    Lost(io::Error),
}

/// How long a client waits for its answer: long enough for a queue of slow events ahead of
/// its own (each bounded by the dispatch budget); a server that takes longer is treated as lost.
pub fn patience(dispatch_budget_ms: u64) -> Duration {
    Duration::from_millis(2 * dispatch_budget_ms + 5000)
}

/// Sends one event to the server and waits up to `timeout` for its answer.
pub fn ask(endpoint: &Endpoint, request: &Request, timeout: Duration) -> Result<Response, AskError> {
    let stream = endpoint.connect().map_err(AskError::Unavailable)?;
    exchange(stream, request, timeout).map_err(AskError::Lost)
}

/// Sends one event over a connected stream and waits up to `timeout` for the answer.
pub fn exchange(mut stream: UnixStream, request: &Request, timeout: Duration) -> io::Result<Response> {
    stream.set_write_timeout(Some(timeout))?;
    stream.set_read_timeout(Some(timeout))?;
    request.write_to(&mut stream)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Response::decode(&reply)
}

/// Whether a server holds `endpoint`'s lock: it is starting or running.
fn server_holds_lock(endpoint: &Endpoint) -> bool {
    let Ok(lock) = std::fs::File::open(&endpoint.lock) else { return false };
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// Starts a server for `endpoint` in the background unless one is already starting or
/// running. The caller forks, and the fork becomes the server: detached (its own process
/// group, /dev/null for stdin, stdout and stderr, no other descriptor of the caller's), so
/// the hook's exit is not delayed by it, and the caller does not wait for the server's
/// program to be mapped: `Command::spawn`, used before, returned only once the new program was
/// exec'd, 0.3-1 ms here that Claude Code waited for with the answer already written (the
/// first event after an idle-out and a configuration's first event start a server). A failed
/// exec is not reported (`_exit(127)`): the next event finds no server and starts one again.
pub fn start_server(endpoint: &Endpoint) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if server_holds_lock(endpoint) {
        return Ok(());
    }
    // Everything the fork needs is made before it: between fork and exec only
    // async-signal-safe calls run, whatever other threads held.
    let host = std::ffi::CString::new(sibling(HOST_BIN).into_os_string().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let argv = [host.as_ptr(), c"serve".as_ptr(), std::ptr::null()];
    // SAFETY: sysconf has no preconditions.
    let open_max = match unsafe { libc::sysconf(libc::_SC_OPEN_MAX) } {
        n if n > 3 => n.min(1 << 16) as libc::c_int,
        _ => 1024,
    };
    // SAFETY: the child calls only async-signal-safe functions on memory prepared above, and
    // leaves by exec or `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => unsafe {
            // Its own process group (Claude Code may signal the hook's group), none of
            // Claude Code's pipes (its hook would not end while the server held them), no
            // signal blocked. Nor any other descriptor the client had without close-on-exec:
            // the event's memfd, whatever Claude Code passed down; a host keeps them for as
            // long as it serves (`Command`, used before, closed none of them).
            libc::setpgid(0, 0);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                for fd in 0..3 {
                    libc::dup2(null, fd);
                }
            }
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                for fd in 3..open_max {
                    libc::close(fd);
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::execv(host.as_ptr(), argv.as_ptr());
            libc::_exit(127)
        },
        _ => Ok(()),
    }
}
