//! What both binaries' own C `main`s do in place of Rust's start-up (`lang_start`), which they
//! skip for its cost (see `main.rs` and `bin/chronicle.rs`): the part of it they rely on.

/// Standard descriptors that are closed are opened on /dev/null (a socket, the database or an
/// event's memfd must never get descriptor 1), and SIGPIPE is ignored (a peer that went away
/// is an error to handle, not the end of the process).
pub fn prepare_process() {
    open_closed_standard_descriptors();
    // SAFETY: setting a signal's disposition to ignore has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Points descriptors 0-2 at /dev/null where they are closed, as Rust's start-up does.
fn open_closed_standard_descriptors() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: poll reads and writes the three entries it is given; zero timeout.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } <= 0 {
        return;
    }
    for pollfd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: open and dup2 on a path and descriptors this process owns.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 && null != pollfd.fd {
                libc::dup2(null, pollfd.fd);
                libc::close(null);
            }
        }
    }
}

/// The exit code of a `main` that panicked, as Rust's start-up gives it.
pub const PANICKED: i32 = 101;
