//! More hosts when events arrive together. One host answers one event at a time, so clients of
//! parallel tool calls and subagents queued behind each other (measured: 0.59-0.72 of `cat`'s
//! throughput at 2-8 clients). When a host has an event's answer ready and finds another
//! client already waiting (one that connected before this client got its answer, so not this
//! client's next event), it starts a worker: another `chronicle-host serve` that inherits the listening
//! socket and accepts from it too, so the kernel hands each connection to whichever host is
//! free. Each worker is a whole host (its own plugins, database connection, in-flight marker),
//! so nothing about one event changes: it is recorded before it is answered, a crash costs only
//! the worker, and no plugin is ever called from two threads at once. Workers leave after a
//! minute without events (or when the socket stops being theirs); traffic that never overlaps
//! never starts one, so the one-at-a-time path is untouched.

use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::*;

/// The descriptor a worker finds the listening socket on.
const LISTEN_FD: i32 = 3;
/// A worker leaves after this long without events (or the host's own idle limit, if shorter).
pub const WORKER_IDLE: Duration = Duration::from_secs(60);

/// The workers a host started.
pub(super) struct Workers {
    children: Vec<Child>,
    max: usize,
}

impl Workers {
    pub(super) fn new() -> Workers {
        // One host per core: more would only take turns on the CPU.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Workers { children: Vec::new(), max: cores.saturating_sub(1).min(15) }
    }

    /// After an event during which another client queued: start a worker, if fewer run than
    /// cores allow.
    pub(super) fn add(&mut self, listener: &UnixListener, socket_ino: u64) {
        self.children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        if self.children.len() >= self.max {
            return;
        }
        match spawn(listener, socket_ino) {
            Ok(child) => {
                tracing::info!(pid = child.id(), workers = self.children.len() + 1, "clients are waiting: started a worker");
                self.children.push(child);
            }
            Err(e) => tracing::warn!("cannot start a worker: {e}"),
        }
    }
}

/// Whether a client is waiting to be accepted right now.
pub(super) fn pending(listener: &UnixListener) -> bool {
    let mut fd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut fd, 1, 0) == 1 && fd.revents & libc::POLLIN != 0 }
}

fn spawn(listener: &UnixListener, socket_ino: u64) -> io::Result<Child> {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new(sibling(HOST_BIN));
    cmd.args(["serve", "--worker-of", &socket_ino.to_string()]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec: dup2 onto the descriptor the
    // worker expects (dup2 clears close-on-exec on the copy) and fcntl when it is already there.
    unsafe {
        cmd.pre_exec(move || {
            if fd == LISTEN_FD {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, LISTEN_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// A worker: serves the inherited socket of the host whose socket file has inode
/// `socket_ino`, until idle for [`WORKER_IDLE`] (or `idle`, if shorter), the socket is no
/// longer that one, or it retires.
pub fn serve_worker(config: Config, socket_ino: u64, idle: Duration) -> Result<(), ResidentError> {
    let endpoint = Endpoint::for_config(&config)?;
    // SAFETY: fstat on a descriptor number; a closed one fails and is reported.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(LISTEN_FD, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    };
    if !is_socket {
        return Err(ResidentError::Io(io::Error::new(io::ErrorKind::InvalidInput, "a worker needs the host's socket on descriptor 3")));
    }
    // SAFETY: descriptor 3 is a socket this process now owns (checked above).
    let listener = unsafe { UnixListener::from_raw_fd(LISTEN_FD) };
    listener.set_nonblocking(true)?;
    let idle = idle.min(WORKER_IDLE);
    let mut host = Host::new(config);
    host.leave_log_upkeep();
    host.warm_up();
    host.upkeep();
    serve_socket(&mut host, &listener, &endpoint.socket, socket_ino, idle, "resident worker", |_| {})?;
    crate::plugin::inflight::finish();
    Ok(())
}
