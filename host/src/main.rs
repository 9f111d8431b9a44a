//! The `chronicle` binary: `chronicle hook` is Claude Code's hook command (a hand-rolled fast
//! path: clap costs ~0.1 ms per process), everything else goes through the clap CLI.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let _program = args.next();
    let first = args.next();
    if first.as_deref() == Some(std::ffi::OsStr::new("hook")) && args.next().is_none() {
        // Exits the process itself: abandoned plugin threads must not keep it alive.
        cli::hook::run();
    }
    cli::run()
}
