//! Keeping Claude Code's stdout clean.
//!
//! Before any plugin is loaded (a library's initialisers run inside `dlopen`), fd 1 is pointed
//! at an anonymous scratch file and the real stdout is kept on a duplicate descriptor that only
//! [`Output::write_answer`] uses. Nothing a plugin prints, now or from an abandoned thread
//! later, can reach Claude Code; the scratch file's size tells who printed how much.

use std::io;
use std::os::fd::RawFd;

/// Where the protocol answer goes. A copy shares the descriptors (they are never closed but
/// by [`Output::restore`]): the serving threads of a resident host share one diverted stdout.
#[derive(Clone)]
pub struct Output {
    answer_fd: RawFd,
    probe: Option<StdoutProbe>,
}

/// Reads how many bytes have been written to the diverted fd 1.
#[derive(Debug, Clone, Copy)]
pub struct StdoutProbe {
    fd: RawFd,
}

impl StdoutProbe {
    pub fn written(&self) -> u64 {
        // SAFETY: fstat into a zeroed stat struct on a descriptor we own.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(self.fd, &mut st) == 0 {
                st.st_size as u64
            } else {
                0
            }
        }
    }
}

impl Output {
    /// The answer goes straight to fd 1 (no plugin will run).
    pub fn direct() -> Output {
        Output { answer_fd: libc::STDOUT_FILENO, probe: None }
    }

    /// Diverts fd 1 to a scratch file and keeps the real stdout for the answer.
    pub fn divert() -> io::Result<Output> {
        // SAFETY: plain descriptor syscalls; every result is checked.
        unsafe {
            let answer_fd = libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3);
            if answer_fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let scratch = scratch_fd();
            if scratch < 0 {
                libc::close(answer_fd);
                return Err(io::Error::last_os_error());
            }
            if libc::dup2(scratch, libc::STDOUT_FILENO) < 0 {
                let err = io::Error::last_os_error();
                libc::close(answer_fd);
                libc::close(scratch);
                return Err(err);
            }
            Ok(Output { answer_fd, probe: Some(StdoutProbe { fd: scratch }) })
        }
    }

    /// Points fd 1 back at the real stdout (CLI commands that load plugins, then print).
    /// Hook mode never does this: an abandoned plugin thread could still write.
    pub fn restore(self) {
        // SAFETY: both descriptors are ours and open.
        unsafe {
            libc::dup2(self.answer_fd, libc::STDOUT_FILENO);
            libc::close(self.answer_fd);
        }
    }

    /// Lets go of the real stdout and of stderr (pointing them at `/dev/null`), so that the
    /// reader sees them close now rather than when the process is torn down. For a process
    /// about to exit: anything written later is lost.
    pub fn release(&self) {
        // SAFETY: plain descriptor syscalls on descriptors this process owns; failures leave
        // the descriptors as they were (closed at exit instead).
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if null < 0 {
                return;
            }
            if self.answer_fd == libc::STDOUT_FILENO {
                libc::dup2(null, libc::STDOUT_FILENO);
            } else {
                libc::close(self.answer_fd);
            }
            libc::dup2(null, libc::STDERR_FILENO);
            libc::close(null);
        }
    }

    pub fn probe(&self) -> Option<StdoutProbe> {
        self.probe
    }

    /// Writes the whole answer. A reader that went away (EPIPE) is not an error worth a fuss:
    /// Claude Code stopped waiting, and the event is already stored.
    pub fn write_answer(&self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: writing from a valid slice to a descriptor we own.
            let n = unsafe { libc::write(self.answer_fd, rest.as_ptr().cast(), rest.len()) };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::BrokenPipe => return Ok(()),
                    _ => return Err(err),
                }
            }
            rest = &rest[n as usize..];
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
unsafe fn scratch_fd() -> RawFd {
    // SAFETY: a static NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"chronicle-plugin-stdout".as_ptr(), libc::MFD_CLOEXEC) };
    if fd >= 0 {
        fd
    } else {
        unsafe { dev_null() }
    }
}

#[cfg(not(target_os = "linux"))]
unsafe fn scratch_fd() -> RawFd {
    unsafe { dev_null() }
}

unsafe fn dev_null() -> RawFd {
    // SAFETY: a static NUL-terminated path.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) }
}
