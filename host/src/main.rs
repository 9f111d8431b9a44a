//! `chronicle-host`: the CLI, the in-process hook path and the resident host (`serve`).
//!
//! Claude Code runs the small `chronicle` client (src/bin/chronicle.rs), which hands each event
//! to a resident host and runs this binary for everything else. `hook` is parsed by hand (clap
//! costs ~0.1 ms per process); everything else goes through the clap CLI.

// Its own C `main`: Rust's start-up (`lang_start`) asks glibc for the main thread's stack
// bounds to place a guard, and glibc reads all of `/proc/self/maps` for that; with its
// signal-stack setup it cost every process ~0.1 ms (`--version` 1.31 → 1.21 ms, a
// handed-over event ~0.15-0.3 ms; BENCHMARKS.md). What of it this binary relies on is done
// here: standard descriptors that are closed are opened on /dev/null (a database must never
// get descriptor 1), SIGPIPE is ignored, a panic is exit code 101, and stdout is flushed on
// exit. Lost: the "has overflowed its stack" message; the process still dies by a signal.
// (Not for its unit tests: the test harness brings its own `main`.)
#![cfg_attr(not(test), no_main)]

mod cli;

use std::process::ExitCode;

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    chronicle::start::prepare_process();
    let code = std::panic::catch_unwind(run).unwrap_or(ExitCode::from(chronicle::start::PANICKED as u8));
    // `ExitCode` has no stable accessor; it equals the `ExitCode::from(n)` it was made from.
    let code = (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).map_or(1, i32::from);
    // `exit` flushes stdout, as returning from Rust's `main` did.
    std::process::exit(code)
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // `hook --help` is a question for clap, like any other command's.
    let help = args.get(1).is_some_and(|a| a == "--help" || a == "-h");
    if args.first().is_some_and(|a| a == "hook") && !help {
        #[cfg(target_env = "gnu")]
        malloc_for_one_event();
        // Exits the process itself: abandoned plugin threads must not keep it alive.
        match cli::hook::Mode::parse(&args[1..]) {
            Some(mode) => cli::hook::run(mode),
            None => {
                eprintln!("chronicle: `hook` takes no arguments");
                return ExitCode::from(2);
            }
        }
    }
    cli::run()
}

/// A process that handles one event and exits: every thread allocates from the one heap, and
/// nothing is given back to the kernel. A thread's own arena grew by `mprotect` and large
/// blocks were `mmap`ed and `munmap`ed: in a process with several threads each of those
/// flushes the other CPUs' TLBs (an interprocessor interrupt, slow in a virtual machine).
#[cfg(target_env = "gnu")]
fn malloc_for_one_event() {
    // SAFETY: mallopt only sets glibc's allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
