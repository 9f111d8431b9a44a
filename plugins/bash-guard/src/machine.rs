//! Commands that act on the whole machine or account rather than on files: signalling every
//! process, stopping or restarting the machine, deleting every scheduled job, deleting
//! container volumes. None names a path, so the path rules never see them.

use crate::rules::Verdict;

/// The verdict on one command (`name` past any wrapper, `args` after it), if it has one.
pub fn check(name: &str, args: &[String], verdicts: &mut Vec<Verdict>) {
    match name {
        "kill" if signals_every_process(args) => verdicts.push(Verdict::Deny(
            "`kill -1` signals every process you may signal, Claude Code and this session among them; refused. Name the processes".into(),
        )),
        "shutdown" | "reboot" | "poweroff" | "halt" => verdicts.push(stops_the_machine(name)),
        "systemctl"
            if args.iter().any(|a| {
                matches!(a.as_str(), "poweroff" | "reboot" | "halt" | "kexec" | "suspend" | "hibernate" | "rescue" | "emergency")
            }) =>
        {
            verdicts.push(stops_the_machine(name))
        }
        "init" | "telinit" if args.iter().any(|a| matches!(a.as_str(), "0" | "1" | "6" | "s" | "S")) => {
            verdicts.push(stops_the_machine(name))
        }
        "crontab" if args.iter().any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('r')) => {
            verdicts.push(Verdict::Ask("`crontab -r` deletes every scheduled job of the account, with no copy kept; confirm".into()))
        }
        "docker" | "podman" if deletes_volumes(args) => verdicts
            .push(Verdict::Ask(format!("`{name}` would delete container volumes, and the databases and files kept in them; confirm"))),
        _ => {}
    }
}

fn stops_the_machine(name: &str) -> Verdict {
    Verdict::Ask(format!("`{name}` would stop or restart the machine, and this session with it; confirm"))
}

/// `kill -9 -1`, `kill -s KILL -1`, `kill -- -1`: process id -1 (the first word after `kill`
/// that starts with `-` is the signal, so `kill -1 1234` only sends SIGHUP to 1234).
fn signals_every_process(args: &[String]) -> bool {
    let mut rest = args.iter().map(String::as_str).peekable();
    match rest.peek() {
        Some(&"--") => {
            rest.next();
        }
        Some(&("-s" | "-n" | "--signal")) => {
            rest.nth(1);
        }
        Some(a) if a.starts_with('-') => {
            rest.next();
        }
        _ => {}
    }
    rest.any(|a| a == "-1")
}

/// `docker system prune --volumes`, `docker volume prune`, `docker volume rm`,
/// `docker compose down -v`.
fn deletes_volumes(args: &[String]) -> bool {
    let words: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    match words.as_slice() {
        ["system", "prune", ..] => flag("--volumes"),
        ["volume", "prune" | "rm", ..] => true,
        ["compose", .., "down"] | ["compose", "down", ..] => flag("-v") || flag("--volumes"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words;

    #[test]
    fn only_process_id_minus_one_is_every_process() {
        for line in ["-9 -1", "-KILL -1", "-s KILL -1", "-- -1", "-1 -1", "-TERM 12 -1"] {
            assert!(signals_every_process(&words(line)), "kill {line}");
        }
        for line in ["-1 1234", "-9 1234", "1234", "-s HUP 1"] {
            assert!(!signals_every_process(&words(line)), "kill {line}");
        }
    }

    #[test]
    fn deleting_volumes_is_told_from_other_cleanups() {
        for line in
            ["system prune -af --volumes", "volume prune -f", "volume rm db-data", "compose down -v", "compose -f x.yml down --volumes"]
        {
            assert!(deletes_volumes(&words(line)), "docker {line}");
        }
        for line in ["system prune -af", "image prune", "compose down", "rm -f web"] {
            assert!(!deletes_volumes(&words(line)), "docker {line}");
        }
    }
}
