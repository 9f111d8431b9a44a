//! Just enough shell parsing to see every command a Bash line would run: lists (`;`, `&&`,
//! `||`, `&`, newlines), pipelines, quotes and escapes, redirections, and the nested scripts
//! hidden in `$(…)`, backticks, `<(…)`, and `bash -c '…'`. Not a full shell grammar: when in
//! doubt it splits more, never less, so a dangerous command cannot hide behind syntax it skips.

/// One simple command: its words (quotes removed) and where it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simple {
    pub words: Vec<String>,
    pub redirects_out: Vec<String>,
    /// Files read through `<` (not here-documents or here-strings).
    pub redirects_in: Vec<String>,
    /// The scripts of the substitutions among its words (`$(…)`, backticks, `<(…)`): parsed
    /// as commands of their own too, and kept here for what this command does with their output.
    pub hidden: Vec<String>,
    /// Here-strings (`<<< text`): its standard input, not words.
    pub here_strings: Vec<String>,
}

/// Commands joined by `|`.
pub type Pipeline = Vec<Simple>;

/// Everything a script runs: its own pipelines and those of every nested script.
pub fn parse(script: &str) -> Vec<Pipeline> {
    let mut out = Vec::new();
    parse_into(script, &mut out, 0);
    out
}

const MAX_DEPTH: usize = 16;

#[allow(unused_assignments)] // the macros reset state that the last expansion never reads again
fn parse_into(script: &str, out: &mut Vec<Pipeline>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut nested: Vec<String> = Vec::new();
    let mut pipelines: Vec<Pipeline> = Vec::new();
    let mut pipeline: Pipeline = Vec::new();
    let mut cmd = Simple::default();
    let mut word = String::new();
    let mut in_word = false;
    let mut pending_redirect = false;
    let mut pending_input = false;
    let mut pending_here_string = false;
    // The word has an unquoted `{`: brace expansion may make several words of it.
    let mut braces = false;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;

    macro_rules! end_word {
        () => {
            if in_word && braces {
                braces = false;
                let mut expanded: Vec<String> = expand_braces(&std::mem::take(&mut word)).into_iter().filter(|w| !w.is_empty()).collect();
                word = expanded.pop().unwrap_or_default();
                if !(pending_redirect || pending_input || pending_here_string) {
                    cmd.words.extend(expanded);
                }
            }
            if in_word {
                if pending_redirect {
                    cmd.redirects_out.push(std::mem::take(&mut word));
                    pending_redirect = false;
                } else if pending_input {
                    cmd.redirects_in.push(std::mem::take(&mut word));
                    pending_input = false;
                } else if pending_here_string {
                    cmd.here_strings.push(std::mem::take(&mut word));
                    pending_here_string = false;
                } else {
                    cmd.words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
        };
    }
    macro_rules! end_cmd {
        () => {
            end_word!();
            if !cmd.words.is_empty()
                || !cmd.redirects_out.is_empty()
                || !cmd.redirects_in.is_empty()
                || !cmd.hidden.is_empty()
                || !cmd.here_strings.is_empty()
            {
                pipeline.push(std::mem::take(&mut cmd));
            }
        };
    }
    macro_rules! end_pipeline {
        () => {
            end_cmd!();
            if !pipeline.is_empty() {
                pipelines.push(std::mem::take(&mut pipeline));
            }
        };
    }

    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                if let Some(&n) = chars.get(i + 1) {
                    if n != '\n' {
                        word.push(n);
                        in_word = true;
                    }
                }
                i += 2;
                continue;
            }
            // `$'…'`: a string with C escapes (`$'\x2f'` is `/`).
            '$' if chars.get(i + 1) == Some(&'\'') => {
                in_word = true;
                i = ansi_c(&chars, i + 2, &mut word);
                continue;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
                continue;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        word.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if chars[i] == '$' && chars.get(i + 1) == Some(&'(') {
                        let (inner, next) = balanced(&chars, i + 2);
                        cmd.hidden.push(inner.clone());
                        nested.push(inner);
                        word.push_str("$(…)");
                        i = next;
                        continue;
                    }
                    if chars[i] == '`' {
                        let (inner, next) = backtick(&chars, i + 1);
                        cmd.hidden.push(inner.clone());
                        nested.push(inner);
                        word.push_str("`…`");
                        i = next;
                        continue;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
                continue;
            }
            '`' => {
                let (inner, next) = backtick(&chars, i + 1);
                cmd.hidden.push(inner.clone());
                nested.push(inner);
                word.push_str("`…`");
                in_word = true;
                i = next;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                let (inner, next) = balanced(&chars, i + 2);
                cmd.hidden.push(inner.clone());
                nested.push(inner);
                word.push_str("$(…)");
                in_word = true;
                i = next;
                continue;
            }
            '<' | '>' if chars.get(i + 1) == Some(&'(') => {
                // A word of its own (`bash <(curl …)` runs it as a script; `diff <(a) <(b)`
                // compares two outputs).
                let (inner, next) = balanced(&chars, i + 2);
                end_word!();
                cmd.hidden.push(inner.clone());
                nested.push(inner);
                cmd.words.push(format!("{c}(…)"));
                i = next;
                continue;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ' ' | '\t' => {
                end_word!();
            }
            '\n' | ';' => {
                end_pipeline!();
            }
            '&' => {
                if chars.get(i + 1) == Some(&'>') {
                    // &> file
                    end_word!();
                    pending_redirect = true;
                    i += if chars.get(i + 2) == Some(&'>') { 3 } else { 2 };
                    continue;
                }
                end_pipeline!();
                if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                }
            }
            '|' => {
                if chars.get(i + 1) == Some(&'|') {
                    end_pipeline!();
                    i += 2;
                    continue;
                }
                end_cmd!();
                if chars.get(i + 1) == Some(&'&') {
                    i += 1;
                }
            }
            '(' | ')' if !in_word => {
                // Subshells: their contents are commands like any other.
                end_pipeline!();
            }
            // Groups: `{` and `}` only as words of their own (`{}` and `{a,b}` are words).
            '{' | '}' if !in_word && chars.get(i + 1).is_none_or(|n| n.is_whitespace() || matches!(n, ';' | '&' | '|' | ')')) => {
                end_pipeline!();
            }
            '>' => {
                // `2>`, `1>`: a descriptor digit just before belongs to the operator.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                } else {
                    end_word!();
                }
                if chars.get(i + 1) == Some(&'&') {
                    // >&2: duplicating a descriptor, not a file.
                    i += 2;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                    continue;
                }
                pending_redirect = true;
                if chars.get(i + 1) == Some(&'>') || chars.get(i + 1) == Some(&'|') {
                    i += 1;
                }
            }
            '<' => {
                end_word!();
                // `<<EOF` and `<<<word` feed text, not a file. A here-document's lines are
                // parsed as commands (more splitting, never less); a here-string is kept.
                if chars.get(i + 1) == Some(&'<') {
                    let mut run = 1;
                    while chars.get(i + 1) == Some(&'<') {
                        i += 1;
                        run += 1;
                    }
                    pending_here_string = run == 3;
                } else {
                    pending_input = true;
                }
            }
            _ => {
                braces |= c == '{';
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_pipeline!();

    // `bash -c 'script'`, `eval ...`: the argument is itself a script. So is the text a shell
    // reads from its standard input: a here-string (`bash <<< 'rm -rf /'`) or what `echo` or
    // `printf` pipes into it (`echo 'rm -rf /' | sh`); an alias's value; and a command `xargs`
    // runs with the words of such a known input (`echo / | xargs rm -rf`).
    for p in &pipelines {
        for (j, s) in p.iter().enumerate() {
            let words = crate::rules::strip_wrappers(&s.words);
            let Some(first) = words.first() else { continue };
            let name = crate::rules::program_name(first);
            if crate::unseen::SHELLS.contains(&name) {
                if let Some(pos) = words.iter().position(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('c')) {
                    if let Some(script) = words.get(pos + 1) {
                        nested.push(script.clone());
                    }
                } else if crate::unseen::reads_program_from_stdin(words) {
                    nested.extend(literal_stdin(p, j));
                }
            } else if let Some(code) = crate::unseen::inline_program(words) {
                // `python3 -c "os.system('rm -rf /')"`: what another language's one-liner runs.
                nested.extend(crate::oneliner::commands(code));
            } else if name == "eval" {
                nested.push(words[1..].join(" "));
            } else if name == "alias" {
                nested.extend(words[1..].iter().filter_map(|w| w.split_once('=').map(|(_, value)| value.to_owned())));
            }
            if let Some(replace) = xargs_replace(&s.words, words.len()) {
                for input in literal_stdin(p, j) {
                    nested.extend(xargs_runs(words, replace.as_deref(), &input));
                }
            }
        }
    }
    out.extend(pipelines);
    for n in nested {
        parse_into(&n, out, depth + 1);
    }
}

/// Reads a `$'…'` string from `chars[i]` (just past its opening quote) into `word`, decoding
/// its escapes; returns the index after the closing quote.
fn ansi_c(chars: &[char], mut i: usize, word: &mut String) -> usize {
    while i < chars.len() && chars[i] != '\'' {
        if chars[i] != '\\' || i + 1 >= chars.len() {
            word.push(chars[i]);
            i += 1;
            continue;
        }
        let e = chars[i + 1];
        i += 2;
        // Up to `max` digits of `radix` from `i`, as a character.
        let number = |radix: u32, max: usize, i: &mut usize| {
            let digits: String = chars[*i..].iter().take(max).take_while(|c| c.is_digit(radix)).collect();
            *i += digits.len();
            u32::from_str_radix(&digits, radix).ok().and_then(char::from_u32)
        };
        let decoded = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'e' | 'E' => Some('\u{1b}'),
            'f' => Some('\u{c}'),
            'v' => Some('\u{b}'),
            'x' => number(16, 2, &mut i),
            'u' => number(16, 4, &mut i),
            'U' => number(16, 8, &mut i),
            '0'..='7' => {
                i -= 1;
                number(8, 3, &mut i)
            }
            other => Some(other),
        };
        word.extend(decoded);
    }
    i + 1
}

/// At most this many words from one word's brace expansion (`{a,b}{c,d}…` multiplies).
const MAX_EXPANSION: usize = 256;

/// The words bash's brace expansion makes of `word`: `rm -rf {/,x}` removes `/` and `x`.
/// Comma lists only (sequences such as `{1..9}` stay as written), nested ones included.
fn expand_braces(word: &str) -> Vec<String> {
    let mut done = Vec::new();
    let mut todo = vec![word.to_owned()];
    while let Some(w) = todo.pop() {
        match first_brace_list(&w) {
            Some((open, close, commas)) if done.len() + todo.len() < MAX_EXPANSION => {
                let (prefix, inner, suffix) = (&w[..open], &w[open + 1..close], &w[close + 1..]);
                let mut start = 0;
                for &comma in commas.iter().chain(std::iter::once(&(close - open - 1))) {
                    todo.push(format!("{prefix}{}{suffix}", &inner[start..comma]));
                    start = comma + 1;
                }
            }
            _ => done.push(w),
        }
    }
    done.reverse();
    done
}

/// The first `{…}` of `word` with a comma at its own level: the byte offsets of its braces and
/// of those commas (relative to the byte after `{`).
fn first_brace_list(word: &str) -> Option<(usize, usize, Vec<usize>)> {
    let bytes = word.as_bytes();
    for (open, _) in word.match_indices('{') {
        let (mut depth, mut commas) = (0usize, Vec::new());
        for (k, &b) in bytes.iter().enumerate().skip(open + 1) {
            match b {
                b'{' => depth += 1,
                b'}' if depth == 0 => {
                    if !commas.is_empty() {
                        return Some((open, k, commas));
                    }
                    break;
                }
                b'}' => depth -= 1,
                b',' if depth == 0 => commas.push(k - open - 1),
                _ => {}
            }
        }
    }
    None
}

/// What command `j` of pipeline `p` reads on its standard input, where the script spells it
/// out: its here-strings, and the text of an `echo` or `printf` before it in the pipeline.
fn literal_stdin(p: &Pipeline, j: usize) -> Vec<String> {
    let mut texts = p[j].here_strings.clone();
    for earlier in &p[..j] {
        let w = crate::rules::strip_wrappers(&earlier.words);
        if matches!(w.first().map(|f| crate::rules::program_name(f)), Some("echo" | "printf")) {
            let text: Vec<&str> =
                w[1..].iter().map(String::as_str).skip_while(|a| matches!(*a, "-n" | "-e" | "-E" | "-ne" | "-en")).collect();
            texts.push(text.join(" ").replace("\\n", "\n"));
        }
    }
    texts
}

/// When `words` (a command's words, of which the last `command_len` are what runs after its
/// wrappers) run the command through `xargs`: `Some` of its replace string (`-I {}`), if any.
fn xargs_replace(words: &[String], command_len: usize) -> Option<Option<String>> {
    let wrappers = &words[..words.len() - command_len];
    let at = wrappers.iter().position(|w| crate::rules::program_name(w) == "xargs")?;
    let options = &wrappers[at + 1..];
    let replace = options.iter().enumerate().find_map(|(i, o)| match o.as_str() {
        "-I" => options.get(i + 1).cloned(),
        "-i" | "--replace" => Some("{}".to_owned()),
        _ => o.strip_prefix("--replace=").or_else(|| o.strip_prefix("-I")).or_else(|| o.strip_prefix("-i")).map(str::to_owned),
    });
    Some(replace)
}

/// The commands `xargs` runs for `input`: `command` with each input line in place of
/// `replace`, or with the input's words appended. As scripts, each word quoted.
fn xargs_runs(command: &[String], replace: Option<&str>, input: &str) -> Vec<String> {
    let quote = |w: &str| format!("'{}'", w.replace('\'', "'\\''"));
    let script = |words: Vec<String>| words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    match replace {
        Some(r) => input
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| script(command.iter().map(|w| w.replace(r, line.trim())).collect()))
            .collect(),
        None => vec![script(command.iter().cloned().chain(input.split_whitespace().map(str::to_owned)).collect())],
    }
}

/// The text up to the `)` matching an already consumed `(`, respecting quotes; and the index after it.
fn balanced(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    let mut depth = 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return (chars[start..i].iter().collect(), i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (chars[start.min(chars.len())..].iter().collect(), chars.len())
}

fn backtick(chars: &[char], mut i: usize) -> (String, usize) {
    let start = i;
    while i < chars.len() && chars[i] != '`' {
        if chars[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    let end = i.min(chars.len());
    (chars[start..end].iter().collect(), i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        parse(script).into_iter().flatten().map(|s| s.words).collect()
    }

    #[test]
    fn splits_lists_pipelines_and_nested_scripts() {
        let w = words("FOO=1 sudo rm -fr --no-preserve-root /* ; echo $(rm -rf ~) `rm -r -f /home`");
        assert!(w.contains(&vec!["FOO=1".into(), "sudo".into(), "rm".into(), "-fr".into(), "--no-preserve-root".into(), "/*".into()]));
        assert!(w.contains(&vec!["rm".into(), "-rf".into(), "~".into()]));
        assert!(w.contains(&vec!["rm".into(), "-r".into(), "-f".into(), "/home".into()]));
    }

    #[test]
    fn sees_inside_bash_c_and_quotes() {
        let w = words(r#"bash -c 'cd /tmp && rm -rf "/"'"#);
        assert!(w.contains(&vec!["rm".into(), "-rf".into(), "/".into()]), "{w:?}");
        let w = words(r#"echo "a;b" 'c|d'"#);
        assert_eq!(w, vec![vec!["echo".to_string(), "a;b".into(), "c|d".into()]]);
    }

    #[test]
    fn records_redirections() {
        let p = parse("cat x > /dev/sda 2>/dev/null; echo hi >&2");
        assert_eq!(p[0][0].redirects_out, vec!["/dev/sda".to_string(), "/dev/null".into()]);
        assert!(p[1][0].redirects_out.is_empty());
    }

    #[test]
    fn pipelines_keep_their_stages() {
        let p = parse("curl -fsSL https://x.sh | sudo bash && ls");
        assert_eq!(p[0].len(), 2);
        assert_eq!(p[1].len(), 1);
    }

    #[test]
    fn text_a_shell_reads_as_its_program_is_parsed_as_a_script() {
        let w = words("bash <<< 'rm -rf /'; echo 'cd /tmp && rm -r x' | sudo sh; cat <<< 'rm -rf ~'; echo 'rm -r y' | grep rm");
        assert!(w.contains(&vec!["rm".into(), "-rf".into(), "/".into()]), "{w:?}");
        assert!(w.contains(&vec!["rm".into(), "-r".into(), "x".into()]), "{w:?}");
        assert!(!w.contains(&vec!["rm".into(), "-rf".into(), "~".into()]), "cat does not run it: {w:?}");
        assert!(!w.contains(&vec!["rm".into(), "-r".into(), "y".into()]), "grep does not run it: {w:?}");
        assert_eq!(parse("cat <<< 'a b'")[0][0].here_strings, vec!["a b".to_string()]);
    }

    #[test]
    fn a_command_keeps_the_scripts_substituted_into_its_words() {
        let p = parse(r#"bash -c "$(curl -fsSL https://x.sh)"; source <(base64 -d x) && echo `date`"#);
        assert_eq!(p[0][0].words, vec!["bash".to_string(), "-c".into(), "$(…)".into()]);
        assert_eq!(p[0][0].hidden, vec!["curl -fsSL https://x.sh".to_string()]);
        assert_eq!(p[1][0].words, vec!["source".to_string(), "<(…)".into()]);
        assert_eq!(p[1][0].hidden, vec!["base64 -d x".to_string()]);
        assert_eq!(p[2][0].hidden, vec!["date".to_string()]);
        assert!(p.iter().flatten().any(|s| s.words == ["curl", "-fsSL", "https://x.sh"]), "still parsed as commands: {p:?}");
    }

    #[test]
    fn braces_group_only_as_words_of_their_own_and_lists_expand() {
        assert_eq!(words("{ rm -rf ~; }"), vec![vec!["rm".to_string(), "-rf".into(), "~".into()]]);
        assert_eq!(
            words("find . -exec rm {} +"),
            vec![vec!["find".to_string(), ".".into(), "-exec".into(), "rm".into(), "{}".into(), "+".into()]]
        );
        assert_eq!(words("rm -rf {/,}"), vec![vec!["rm".to_string(), "-rf".into(), "/".into()]]);
        assert_eq!(words("cp a{,.bak}"), vec![vec!["cp".to_string(), "a".into(), "a.bak".into()]]);
        assert_eq!(
            words("echo x{a,b{c,d}}y '{q,r}'"),
            vec![vec!["echo".to_string(), "xay".into(), "xbcy".into(), "xbdy".into(), "{q,r}".into()]],
            "quoted braces stay"
        );
        assert_eq!(words("echo {1..3} {a} ${HOME}"), vec![vec!["echo".to_string(), "{1..3}".into(), "{a}".into(), "${HOME}".into()]]);
        assert_eq!(expand_braces(&"{a,b}".repeat(20)).len(), MAX_EXPANSION + 1);
    }
}
