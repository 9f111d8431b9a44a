//! What a Python, Perl, Ruby or Node one-liner (`python3 -c '…'`, `perl -e '…'`) runs or
//! deletes, as shell commands the rules can judge: `python3 -c "import os; os.system('rm -rf /')"`
//! must not get past a guard that refuses `rm -rf /`.
//!
//! Not a parser for four languages: the code's string literals are what it could hand a shell
//! or delete. When the code calls something that runs commands, each literal is judged as a
//! command line, literals joined by `+` or `.` as the one string they make
//! (`os.system("rm" + " -rf /")`), and all of them in order as one command (the argument-list
//! form, `subprocess.run(["rm", "-rf", "/"])`); when it calls something that deletes a tree,
//! each literal (or joined string) is judged as `rm -rf` of that path. Code that does neither
//! judges nothing, so `python3 -c "print('rm -rf /')"` is left alone.

/// Names of calls that run a command line or a program (`os.system`, `subprocess.run`,
/// `child_process.execSync`, Perl's `system`/`exec`/`qx`, Ruby's backticks, `%x`, `spawn`, `Open3`).
const RUNNERS: &[&str] = &["system", "exec", "popen", "spawn", "subprocess", "child_process", "qx", "%x", "`", "Open3", "pty."];

/// Names of calls that delete a directory tree (`shutil.rmtree`, Perl's `rmtree`/`remove_tree`,
/// Ruby's `FileUtils.rm_rf`, Node's `fs.rmSync`/`fs.rm`, `rimraf`).
const DELETERS: &[&str] =
    &["rmtree", "remove_tree", "rm_rf", "rm_r", "remove_dir", "remove_entry", "rmSync", "rmdirSync", "fs.rm(", "rimraf"];

/// The shell commands `code` amounts to for the rules (empty: nothing to judge).
pub fn commands(code: &str) -> Vec<String> {
    let found = literals(code);
    if found.is_empty() {
        return Vec::new();
    }
    let strings: Vec<String> = found.iter().map(|l| l.text.clone()).chain(joined(code, &found)).collect();
    let mut out = Vec::new();
    if RUNNERS.iter().any(|r| code.contains(r)) {
        out.extend(strings.iter().cloned());
        if found.len() > 1 {
            out.push(found.iter().map(|l| quoted(&l.text)).collect::<Vec<_>>().join(" "));
        }
    }
    if DELETERS.iter().any(|d| code.contains(d)) {
        out.extend(strings.iter().map(|p| format!("rm -rf -- {}", quoted(p))));
    }
    out
}

/// One string literal: its text, and where it starts and ends in the code (by character).
struct Literal {
    text: String,
    from: usize,
    to: usize,
}

/// Literals joined into one string by `+` (Python, Ruby, Node), `.` (Perl) or nothing at all
/// (Python's adjacent literals): `"rm" + " -rf /"` is `rm -rf /`.
fn joined(code: &str, found: &[Literal]) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    // Each run's text and how many literals it joins.
    let mut runs: Vec<(String, usize)> = Vec::new();
    for (i, l) in found.iter().enumerate() {
        let glued = i > 0 && {
            let between: String = chars[found[i - 1].to..l.from].iter().filter(|c| !c.is_whitespace()).collect();
            matches!(between.as_str(), "" | "+" | ".")
        };
        match runs.last_mut() {
            Some((text, n)) if glued => {
                text.push_str(&l.text);
                *n += 1;
            }
            _ => runs.push((l.text.clone(), 1)),
        }
    }
    runs.into_iter().filter(|(_, n)| *n > 1).map(|(text, _)| text).collect()
}

/// The string literals of `code`, escapes decoded as far as a path or command needs: `'…'`,
/// `"…"`, `` `…` `` (a backslash keeps the next character), and Perl's `qx` / Ruby's `%x` with
/// a bracket or any other delimiter. Python's triple quotes come out as empty literals around
/// the text, which is what matters.
fn literals(code: &str) -> Vec<Literal> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '\'' | '"' | '`' => Some((c, i + 1)),
            'q' | '%' if chars.get(i + 1) == Some(&'x') && (i == 0 || !chars[i - 1].is_alphanumeric()) => {
                chars.get(i + 2).filter(|d| !d.is_alphanumeric() && !d.is_whitespace()).map(|&d| (closing(d), i + 3))
            }
            _ => None,
        };
        let Some((end, start)) = close else {
            i += 1;
            continue;
        };
        let mut text = String::new();
        let mut j = start;
        while j < chars.len() && chars[j] != end {
            if chars[j] == '\\' && j + 1 < chars.len() {
                j += 1;
            }
            text.push(chars[j]);
            j += 1;
        }
        out.push(Literal { text, from: i, to: (j + 1).min(chars.len()) });
        i = j + 1;
    }
    out
}

/// The delimiter that closes a quote-like operator opened with `open`.
fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '<' => '>',
        d => d,
    }
}

/// `text` as one shell word: bare if it is plain (so `~` still means home to the rules),
/// single-quoted otherwise.
fn quoted(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_alphanumeric() || "/~._-+=:,@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(code: &str) -> Vec<String> {
        literals(code).into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn literals_come_out_of_each_languages_quotes() {
        assert_eq!(texts(r#"import os; os.system("rm -rf /")"#), ["rm -rf /"]);
        assert_eq!(texts(r"system('a\'b', `c`)"), ["a'b", "c"]);
        assert_eq!(texts("print qx{ls -la}; %x(rm -r x)"), ["ls -la", "rm -r x"]);
        assert_eq!(texts("'''doc'''"), ["", "doc", ""]);
        assert_eq!(texts("exit 0"), Vec::<String>::new());
        assert_eq!(texts("unterminated 'rm -rf /"), ["rm -rf /"]);
    }

    #[test]
    fn literals_joined_by_an_operator_are_one_string() {
        let code = r#"os.system("rm" + ' -rf ' + "/"); f("a", "b"); $x = "rm" . " -r ~"; "ad" "jacent""#;
        assert_eq!(joined(code, &literals(code)), ["rm -rf /", "rm -r ~", "adjacent"]);
    }

    #[test]
    fn only_code_that_runs_or_deletes_something_is_judged() {
        assert_eq!(commands("print('rm -rf /')"), Vec::<String>::new());
        assert_eq!(commands("import subprocess; subprocess.run(['rm', '-rf', '/'])"), ["rm", "-rf", "/", "rm -rf /"]);
        assert_eq!(commands("require('fs').rmSync('~', {recursive: true})"), ["rm -rf -- fs", "rm -rf -- ~"]);
        assert_eq!(commands("shutil.rmtree('my dir')"), ["rm -rf -- 'my dir'"]);
        assert!(commands("os.system('rm' + ' -rf /')").contains(&"rm -rf /".to_owned()));
    }
}
