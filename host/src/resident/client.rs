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

/// Starts a server for `endpoint` in the background unless one is already starting or running.
/// The child is detached: it holds none of Claude Code's pipes, so the hook's exit is not
/// delayed by it.
pub fn start_server(endpoint: &Endpoint) -> io::Result<()> {
    if let Ok(lock) = std::fs::File::open(&endpoint.lock) {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Ok(()); // a server holds it: it is starting or running
        }
    }
    use std::os::unix::process::CommandExt;
    std::process::Command::new(sibling(HOST_BIN))
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}
