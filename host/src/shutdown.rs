//! What SIGTERM means to a hook process: "finish handing the event over", not "drop it".
//!
//! When a `claude -p` session ends, Claude Code sends SIGTERM to the process group of every
//! async hook still running, 8–40 ms after starting it (measured with 2.1.332; the hook is
//! then reported `cancelled`). A Stop event whose final message is a few MB was still being
//! read at that moment and was lost. Every step of a hook is bounded (the read timeout, the
//! resident host's patience, the dispatch budget), so the process simply goes on until the
//! event is recorded or spooled, then exits as it would have.

extern "C" fn noted(_signal: libc::c_int) {}

/// From now on SIGTERM is noted rather than fatal. A handler, not `SIG_IGN`: handlers are
/// reset by `exec`, so the processes this one starts (a resident host) still end on SIGTERM.
/// `SA_RESTART`: reads and writes in progress carry on.
pub fn finish_on_sigterm() {
    // SAFETY: a zeroed sigaction with a handler that does nothing.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = noted as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}
