//! `chronicle-host`: the CLI, the in-process hook path and the resident host (`serve`).
//!
//! Claude Code runs the small `chronicle` client (src/bin/chronicle.rs), which hands each event
//! to a resident host and runs this binary for everything else. `hook` is parsed by hand (clap
//! costs ~0.1 ms per process); everything else goes through the clap CLI.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // `hook --help` is a question for clap, like any other command's.
    let help = args.get(1).is_some_and(|a| a == "--help" || a == "-h");
    if args.first().is_some_and(|a| a == "hook") && !help {
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
