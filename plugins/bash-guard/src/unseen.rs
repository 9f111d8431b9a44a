//! Code nobody can read before it runs: a download or decoded text handed to an interpreter as
//! its program (through a pipe, `bash -c "$(…)"`, `eval "$(…)"`, `source <(…)`), and a program
//! whose name is only known when the command runs (`$(echo rm) -rf /`).
//!
//! Data is not code: `curl … | python3 -m json.tool` or `| jq .` feed an interpreter what it
//! reads, not what it runs, and have no opinion here.

use crate::rules::{self, program_name, strip_wrappers, Context, Verdict};
use crate::shell::{self, Simple};

/// Shells: what they read as their program is shell script (the parser can look inside it).
pub const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "fish"];

const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c"];

/// Where an interpreter's program comes from.
#[derive(Debug, PartialEq, Eq)]
enum Program<'a> {
    /// Standard input: what a pipe feeds it.
    Stdin,
    /// The program's text itself: `-c TEXT` (`-e`, `--eval`).
    Text(&'a str),
    /// A word naming it: a script file, or Python's `-m MODULE`.
    Word(&'a str),
    /// Not an interpreter, or a flag whose program is elsewhere.
    Unknown,
}

/// The program of an interpreter command (`words` past any wrapper).
fn program(words: &[String]) -> Program<'_> {
    let Some(first) = words.first() else { return Program::Unknown };
    let name = program_name(first);
    // Per family: short flags whose value is the program text, the flag that reads the program
    // from stdin whatever follows, and short flags that take some other value.
    let (program_flags, stdin_flag, value_flags): (&str, Option<char>, &str) = match name {
        n if SHELLS.contains(&n) => ("c", Some('s'), "oO"),
        n if is_python(n) => ("cm", None, "WX"),
        "perl" => ("eE", None, "IMx"),
        "ruby" => ("e", None, "rIx"),
        "node" => ("ep", None, "r"),
        _ => return Program::Unknown,
    };
    let mut args = words[1..].iter();
    while let Some(a) = args.next() {
        let a = a.as_str();
        match a {
            "-" => return Program::Stdin,
            "--" => return args.next().map_or(Program::Stdin, |w| if w == "-" { Program::Stdin } else { Program::Word(w) }),
            "--eval" | "--print" | "--command" => return args.next().map_or(Program::Unknown, |w| Program::Text(w)),
            "--require" | "--import" | "--loader" | "--rcfile" | "--init-file" => {
                args.next();
                continue;
            }
            _ => {}
        }
        if a.starts_with("--") {
            continue;
        }
        let Some(letters) = a.strip_prefix('-').or_else(|| a.strip_prefix('+')) else {
            return Program::Word(a); // a script file
        };
        for (i, c) in letters.char_indices() {
            if program_flags.contains(c) {
                let attached = &letters[i + c.len_utf8()..];
                let given = if attached.is_empty() { args.next().map(String::as_str) } else { Some(attached) };
                // Python's `-m` names a module; every other such flag gives the program's text.
                let names = c == 'm' && is_python(name);
                return given.map_or(Program::Unknown, |w| if names { Program::Word(w) } else { Program::Text(w) });
            }
            if stdin_flag == Some(c) {
                return Program::Stdin;
            }
            if value_flags.contains(c) {
                if i + c.len_utf8() == letters.len() {
                    args.next();
                }
                break;
            }
        }
    }
    Program::Stdin
}

/// `python`, `python3`, `python3.12`, `python2`.
fn is_python(name: &str) -> bool {
    name.strip_prefix("python").is_some_and(|v| v.is_empty() || v.starts_with(['2', '3']))
}

/// The text of the program an interpreter command is given inline (`python3 -c TEXT`,
/// `perl -e TEXT`, `node --eval TEXT`), if it is given so.
pub fn inline_program(words: &[String]) -> Option<&str> {
    match program(words) {
        Program::Text(text) => Some(text),
        _ => None,
    }
}

/// Whether this interpreter command runs its standard input as its program.
pub fn reads_program_from_stdin(words: &[String]) -> bool {
    program(words) == Program::Stdin
}

/// Whether this command turns encoded or compressed text back into what it was: piped into an
/// interpreter, what runs cannot be read in the command.
fn decodes(words: &[String]) -> bool {
    let Some(first) = words.first() else { return false };
    let args = &words[1..];
    let short = |letters: &str| args.iter().any(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains(|c| letters.contains(c)));
    let long = |names: &[&str]| args.iter().any(|a| names.contains(&a.as_str()));
    match program_name(first) {
        "base64" | "base32" | "basenc" => short("dD") || long(&["--decode"]),
        "xxd" => short("r") || long(&["-revert"]),
        "openssl" => long(&["-d", "-decrypt"]),
        "gzip" | "bzip2" | "xz" | "zstd" | "lzma" | "lz4" => short("d") || long(&["--decompress", "--uncompress"]),
        "uudecode" | "zcat" | "gunzip" | "bzcat" | "bunzip2" | "xzcat" | "unxz" | "zstdcat" | "unzstd" | "lzcat" | "unlzma" | "rev" => true,
        _ => false,
    }
}

/// What a command makes that no one has read: `curl` downloads, `base64 -d` decodes.
fn unread_source(words: &[String]) -> Option<(&str, &'static str)> {
    let name = program_name(words.first()?);
    if DOWNLOADERS.contains(&name) {
        Some((name, "downloads"))
    } else if decodes(words) {
        Some((name, "decodes"))
    } else {
        None
    }
}

/// `curl … | bash`, `base64 -d | sh`: a stage that makes unread text, and a later stage that
/// runs its standard input as a program.
pub fn check_pipeline(p: &[Simple], verdicts: &mut Vec<Verdict>) {
    for (i, s) in p.iter().enumerate() {
        let Some((source, how)) = unread_source(strip_wrappers(&s.words)) else { continue };
        let runs_stdin = p[i + 1..].iter().map(|s| strip_wrappers(&s.words)).find(|w| program(w) == Program::Stdin);
        if let Some(runner) = runs_stdin.and_then(|w| w.first()) {
            let runner = program_name(runner);
            verdicts.push(Verdict::Deny(if how == "downloads" {
                format!(
                    "piping a download from `{source}` straight into `{runner}` runs unreviewed code; refused. Download to a file, inspect it, then run it"
                )
            } else {
                format!(
                    "piping what `{source}` decodes into `{runner}` runs code nobody can read first; refused. Decode it to a file, inspect it, then run it"
                )
            }));
            return;
        }
    }
}

/// One command that runs a substitution's output as its program (`bash -c "$(curl …)"`,
/// `eval "$(base64 -d …)"`, `source <(curl …)`), or whose program name is only known when it
/// runs and whose arguments would be refused for `rm`.
pub fn check_simple(s: &Simple, ctx: &Context, verdicts: &mut Vec<Verdict>) {
    let words = strip_wrappers(&s.words);
    let Some(first) = words.first() else { return };
    let substituted = |w: &str| w.contains("$(…)") || w.contains("`…`") || w == "<(…)";
    // `bash <<< "$(curl …)"`, `source /dev/stdin <<< "$(curl …)"`.
    let stdin_substituted = s.here_strings.iter().any(|w| substituted(w));
    let stdin_path = |w: &str| matches!(w, "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0");
    let name = program_name(first);
    let runs_substitution = match name {
        "eval" => words[1..].iter().any(|w| substituted(w)),
        "source" | "." => words.get(1).is_some_and(|w| substituted(w) || (stdin_path(w) && stdin_substituted)),
        _ => match program(words) {
            Program::Text(w) | Program::Word(w) => substituted(w) || (stdin_path(w) && stdin_substituted),
            Program::Stdin => stdin_substituted,
            Program::Unknown => false,
        },
    };
    if runs_substitution {
        let unread = s.hidden.iter().flat_map(|script| shell::parse(script)).flatten().find_map(|inner| {
            let inner = strip_wrappers(&inner.words);
            unread_source(inner).map(|(source, how)| (source.to_owned(), how))
        });
        if let Some((source, how)) = unread {
            verdicts.push(Verdict::Deny(format!(
                "`{name}` would run what `{source}` {how} when the command runs: code nobody can read first; refused. Save it to a file, inspect it, then run it"
            )));
        }
    }
    if first.starts_with('$') || first.starts_with('`') || substituted(first) {
        let as_rm = Simple { words: std::iter::once("rm".to_owned()).chain(words[1..].iter().cloned()).collect(), ..Simple::default() };
        let mut found = Vec::new();
        rules::check_simple(&as_rm, ctx, &mut found);
        if let Some(Verdict::Deny(why)) = found.into_iter().find(|v| matches!(v, Verdict::Deny(_))) {
            verdicts
                .push(Verdict::Deny(format!("`{first}` names the program only when the command runs, and as `rm` it is refused: {why}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words;

    #[test]
    fn an_interpreters_program_comes_from_its_flag_its_script_or_stdin() {
        let cases = [
            ("bash", Program::Stdin),
            ("bash -s -- --yes", Program::Stdin),
            ("sh -", Program::Stdin),
            ("bash -o pipefail", Program::Stdin),
            ("bash -xc ls", Program::Text("ls")),
            ("bash install.sh", Program::Word("install.sh")),
            ("python3", Program::Stdin),
            ("python3 -m json.tool", Program::Word("json.tool")),
            ("python3 -W ignore -c print(1)", Program::Text("print(1)")),
            ("python3 tool.py", Program::Word("tool.py")),
            ("python3.12 -c pass", Program::Text("pass")),
            ("python3 -mjson.tool", Program::Word("json.tool")),
            ("pythonista -c x", Program::Unknown),
            ("node --eval 1", Program::Text("1")),
            ("perl -ne print", Program::Text("print")),
            ("perl -MJSON::PP", Program::Stdin),
            ("node -e 1", Program::Text("1")),
            ("node --require ts-node/register", Program::Stdin),
            ("jq .", Program::Unknown),
        ];
        for (line, want) in cases {
            assert_eq!(program(&words(line)), want, "{line}");
        }
    }

    #[test]
    fn decoders_are_known_by_their_flags() {
        for line in ["base64 -d", "base64 --decode", "base32 -di", "xxd -r -p", "openssl base64 -d", "gzip -dc", "zcat", "rev"] {
            assert!(decodes(&words(line)), "{line}");
        }
        for line in ["base64 -w0 x", "xxd file", "gzip -9 x", "openssl rand 16"] {
            assert!(!decodes(&words(line)), "{line}");
        }
    }
}
