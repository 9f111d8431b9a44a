//! What SIGTERM means to a hook process: "finish handing the event over", not "drop it".
//!
//! When a `claude -p` session ends, Claude Code sends SIGTERM to the process group of every
//! async hook still running, 8–40 ms after starting it (measured with 2.1.332; the hook is
//! then reported `cancelled`). A Stop event whose final message is a few MB was still being
//! read at that moment and was lost. Every step of a hook is bounded (the read timeout, the
//! resident host's patience, the dispatch budget), so the process simply goes on until the
//! event is recorded or spooled, then exits as it would have.
//!
//! A resident host is another matter: SIGTERM and SIGINT stop it the way idling out does
//! ([`stop_serving_on_sigterm`]).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

extern "C" fn noted(_signal: libc::c_int) {}

/// From now on SIGTERM is noted rather than fatal. A handler, not `SIG_IGN`: handlers are
/// reset by `exec`, so the processes this one starts (a resident host) still end on SIGTERM.
/// `SA_RESTART`: reads and writes in progress carry on.
pub fn finish_on_sigterm() {
    handle(&[libc::SIGTERM], noted);
}

/// Installs `handler` (which must be async-signal-safe) for `signals`, with `SA_RESTART`.
fn handle(signals: &[libc::c_int], handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction naming a handler the caller vouches for.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for &signal in signals {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The listening socket a resident host shuts when told to stop (-1: none yet, or closed).
static LISTENER: AtomicI32 = AtomicI32::new(-1);
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

extern "C" fn stop_serving(_signal: libc::c_int) {
    // Async-signal-safe: an atomic store and one system call.
    STOP_ASKED.store(true, Ordering::SeqCst);
    let fd = LISTENER.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: shutdown on the listening socket, which stays open until `forget_listener`.
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
}

/// What SIGTERM and SIGINT mean to a resident host: stop the way idling out does. Killed
/// outright, the process kept its listening socket open until its last thread was gone (up to
/// 15 ms here, a thread at the lowest priority finishing its exit), and every client that
/// connected meanwhile waited for the reset before handing its event over; an event in the
/// middle of its plugins was dropped and handled again by its client's child. Now the socket is
/// shut at once (new clients are refused and hand their events over), the serving threads
/// finish the events they hold, answer them, and leave ([`stop_asked`]).
pub fn stop_serving_on_sigterm(listener: RawFd) {
    LISTENER.store(listener, Ordering::SeqCst);
    handle(&[libc::SIGTERM, libc::SIGINT], stop_serving);
}

/// Whether SIGTERM or SIGINT asked this resident host to stop.
pub fn stop_asked() -> bool {
    STOP_ASKED.load(Ordering::SeqCst)
}

/// Before the listening socket closes: a late signal must not shut whatever reuses its number.
pub fn forget_listener() {
    LISTENER.store(-1, Ordering::SeqCst);
}
