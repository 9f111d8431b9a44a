//! The rules: what a Bash command must not do. Each verdict carries a reason Claude can act on.

use chronicle_plugin_api::paths::{is_within, normalize};

use crate::shell::{Pipeline, Simple};

/// What the guard concluded about one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Deny(String),
    Ask(String),
}

/// Where the command runs and what counts as safe.
pub struct Context<'a> {
    pub cwd: &'a str,
    pub project: &'a str,
    pub home: &'a str,
    /// Extra directories where recursive deletes are fine (besides the project). Shared temporary
    /// directories are not among the defaults: they hold other sessions' and users' files.
    pub allowed_paths: &'a [String],
    pub protected_branches: &'a [String],
    /// Chronicle's own directories and config file (`chronicle_secrets::control`).
    pub chronicle: &'a [String],
}

/// Leading words that only wrap the real command.
pub fn strip_wrappers(words: &[String]) -> &[String] {
    let mut w = words;
    loop {
        let Some(first) = w.first() else { return w };
        let name = program_name(first);
        if is_assignment(first) {
            w = &w[1..];
            continue;
        }
        match name {
            "sudo" | "doas" => {
                w = &w[1..];
                // sudo's options; -u/-g/-C/-h/-p take a value.
                while let Some(opt) = w.first() {
                    if !opt.starts_with('-') {
                        break;
                    }
                    let takes_value = matches!(opt.as_str(), "-u" | "-g" | "-C" | "-h" | "-p" | "-U" | "-r" | "-t");
                    w = &w[if takes_value { 2.min(w.len()) } else { 1 }..];
                }
            }
            "env" => {
                w = &w[1..];
                while let Some(opt) = w.first() {
                    if opt.starts_with('-') || is_assignment(opt) {
                        w = &w[1..];
                    } else {
                        break;
                    }
                }
            }
            // `busybox rm …`: the applet is the next word.
            "nohup" | "time" | "command" | "exec" | "builtin" | "stdbuf" | "unbuffer" | "busybox" | "toybox" => w = &w[1..],
            "nice" | "ionice" => {
                w = &w[1..];
                while w.first().is_some_and(|o| o.starts_with('-')) {
                    let o = &w[0];
                    let takes_value = o == "-n" || o == "-c";
                    w = &w[if takes_value { 2.min(w.len()) } else { 1 }..];
                }
            }
            "timeout" => {
                w = &w[1..];
                while w.first().is_some_and(|o| o.starts_with('-')) {
                    w = &w[1..];
                }
                if !w.is_empty() {
                    w = &w[1..]; // the duration
                }
            }
            "xargs" => {
                w = &w[1..];
                while let Some(opt) = w.first().filter(|o| o.starts_with('-')) {
                    // -a FILE, -d DELIM, -E EOF, -I REPLACE, -L/-n/-P/-s NUMBER: the value may
                    // be the next word (`xargs -I {} rm {}`).
                    let takes_value = matches!(opt.as_str(), "-a" | "-d" | "-E" | "-I" | "-L" | "-n" | "-P" | "-s");
                    w = &w[if takes_value { 2.min(w.len()) } else { 1 }..];
                }
            }
            _ => return w,
        }
    }
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// `/usr/bin/rm` → `rm`.
pub fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

const SENDERS: &[&str] = &["curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh"];

/// Programs that read, copy, encode or display the files named in their arguments: handing
/// one a secret store puts the credentials into the transcript or somewhere else.
const READERS: &[&str] = &[
    "cat", "tac", "nl", "less", "more", "most", "head", "tail", "bat", "batcat", "view", "strings", "xxd", "od", "hexdump", "hd", "base64",
    "base32", "basenc", "uuencode", "gzip", "bzip2", "xz", "zstd", "zip", "7z", "tar", "cp", "mv", "install", "ln", "dd", "rsync", "scp",
    "grep", "egrep", "fgrep", "rg", "ag", "awk", "gawk", "mawk", "sed", "cut", "sort", "uniq", "diff", "cmp", "paste", "column", "fold",
    "jq", "yq", "openssl", "gpg", "vi", "vim", "nvim", "nano", "emacs", "source", ".", "xclip", "xsel", "pbcopy",
];

/// Why the file `raw` names (relative to the command's directory) is a secret store, if it is:
/// the list file-guard applies to the file tools.
fn secret_store(raw: &str, ctx: &Context) -> Option<String> {
    chronicle_secrets::files::secret_store(&normalize(raw, ctx.cwd, ctx.home), ctx.home, &[])
}

fn is_sensitive_path(raw: &str, ctx: &Context) -> bool {
    secret_store(raw, ctx).is_some()
}

/// The file operands of an argument list: plain words, and the values of `--opt=FILE` and
/// `if=FILE` forms.
fn file_operands(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter().filter_map(|a| match a.split_once('=') {
        Some((opt, value)) if opt.starts_with("--") || opt == "if" => Some(value),
        _ if a.starts_with('-') => None,
        _ => Some(a.as_str()),
    })
}

fn is_block_device(p: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "/dev/sd",
        "/dev/hd",
        "/dev/vd",
        "/dev/xvd",
        "/dev/nvme",
        "/dev/mmcblk",
        "/dev/disk",
        "/dev/md",
        "/dev/dm-",
        "/dev/mapper/",
        "/dev/loop",
        "/dev/rdisk",
    ];
    PREFIXES.iter().any(|pre| p.starts_with(pre))
}

/// Top-level system directories (and the root itself).
fn is_system_root(p: &str) -> bool {
    const DIRS: &[&str] = &[
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib64",
        "/opt",
        "/proc",
        "/root",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/Users",
        "/System",
        "/Library",
        "/Applications",
    ];
    DIRS.contains(&p)
}

struct Flags {
    recursive: bool,
    force: bool,
    no_preserve_root: bool,
    operands: Vec<String>,
}

fn rm_flags(args: &[String]) -> Flags {
    let mut f = Flags { recursive: false, force: false, no_preserve_root: false, operands: Vec::new() };
    let mut end_of_options = false;
    for a in args {
        if end_of_options || !a.starts_with('-') || a == "-" {
            f.operands.push(a.clone());
            continue;
        }
        match a.as_str() {
            "--" => end_of_options = true,
            "--recursive" => f.recursive = true,
            "--force" => f.force = true,
            "--no-preserve-root" => f.no_preserve_root = true,
            long if long.starts_with("--") => {}
            short => {
                for c in short[1..].chars() {
                    match c {
                        'r' | 'R' => f.recursive = true,
                        'f' => f.force = true,
                        _ => {}
                    }
                }
            }
        }
    }
    f
}

fn describe(target: &str, ctx: &Context) -> Option<&'static str> {
    let t = target.trim();
    if t == "*" || t == "./*" || t == ".*" {
        return Some("everything in the current directory");
    }
    let has_glob = t.contains('*');
    let base = match t.strip_suffix("/*") {
        Some("") => "/",
        Some(b) => b,
        None => t.trim_end_matches('*'),
    };
    let n = normalize(base, ctx.cwd, ctx.home);
    if n == "/" && has_glob {
        return Some("every file on the system");
    }
    if let Some(what) = vital(&n, ctx) {
        return Some(what);
    }
    if t.starts_with('$') && !t.starts_with("$HOME") && !t.starts_with("${HOME}") {
        // `rm -rf $DIR/` deletes / when DIR is unset; without the value we cannot tell.
        return None;
    }
    let safe = is_within(&n, ctx.project) || ctx.allowed_paths.iter().any(|a| is_within(&n, &normalize(a, ctx.cwd, ctx.home)));
    if safe {
        return None;
    }
    // Under bypassPermissions nobody sees the command: `rm -rf /tmp/<someone's dir>` ran.
    if SHARED_TEMP.iter().any(|t| is_within(&n, t)) {
        return Some(
            "a shared temporary directory (other sessions' and users' files live there; add a scratch directory to allowed_paths)",
        );
    }
    Some("a path outside the project")
}

/// [`describe`] for every value an operand may take: `${HOME:?}` is the home directory, and
/// `${DIR:-/}` is `/` when `DIR` is unset.
fn describe_any(target: &str, ctx: &Context) -> Option<&'static str> {
    values(target).iter().find_map(|t| describe(t, ctx))
}

/// The spellings a word starting with `${NAME<op>…}` may stand for, as `describe` reads them:
/// `${NAME}` itself (so `$HOME` forms are known), and the default of `:-`/`-`/`:=`/`=`.
fn values(word: &str) -> Vec<String> {
    let Some(inner) = word.strip_prefix("${") else { return vec![word.to_owned()] };
    let Some(close) = inner.find('}') else { return vec![word.to_owned()] };
    let (expr, rest) = (&inner[..close], &inner[close + 1..]);
    let name_len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
    let (name, op) = expr.split_at(name_len);
    let mut out = vec![format!("${{{name}}}{rest}")];
    for prefix in [":-", ":=", "-", "="] {
        if let Some(default) = op.strip_prefix(prefix) {
            out.push(format!("{default}{rest}"));
            break;
        }
    }
    out
}

/// What the normalised path `n` is, if removing, moving or opening up all of it would break
/// the system or the user's account: `/`, the home directory, a top-level system directory.
fn vital(n: &str, ctx: &Context) -> Option<&'static str> {
    if n == "/" {
        Some("the whole filesystem")
    } else if n == normalize(ctx.home, "/", ctx.home) {
        Some("your home directory")
    } else if is_system_root(n) {
        Some("a system directory")
    } else {
        None
    }
}

/// [`vital`] for every value the operand `target` may take.
fn catastrophic(target: &str, ctx: &Context) -> Option<&'static str> {
    values(target).iter().find_map(|t| vital(&normalize(t.trim_end_matches('*'), ctx.cwd, ctx.home), ctx))
}

/// Temporary directories every session and user shares.
const SHARED_TEMP: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

pub(crate) fn check_simple(s: &Simple, ctx: &Context, verdicts: &mut Vec<Verdict>) {
    for target in &s.redirects_out {
        if is_block_device(target) {
            verdicts.push(Verdict::Deny(format!("writing to the block device {target} would destroy the disk's data; refused")));
        }
    }
    // `cmd < ~/.netrc` reads the file whatever the command is.
    for source in &s.redirects_in {
        if let Some(why) = secret_store(source, ctx) {
            verdicts.push(Verdict::Deny(format!(
                "reading `{source}` into a command exposes it: {why}; refused. Ask the user for the specific value you need instead"
            )));
        }
    }
    let words = strip_wrappers(&s.words);
    let Some(first) = words.first() else { return };
    let name = program_name(first);
    let args = &words[1..];
    check_control_files(s, name, args, ctx, verdicts);
    if READERS.contains(&name) {
        for file in file_operands(args) {
            if let Some(why) = secret_store(file, ctx) {
                verdicts.push(Verdict::Deny(format!(
                    "`{name}` would read `{file}`: {why}; refused. Ask the user for the specific value you need instead"
                )));
            }
        }
    }
    check_recursive_search(name, args, ctx, verdicts);
    crate::machine::check(name, args, verdicts);
    match name {
        "rm" => {
            let f = rm_flags(args);
            if f.no_preserve_root {
                verdicts.push(Verdict::Deny("`rm --no-preserve-root` disables the last protection against deleting `/`; refused".into()));
            }
            if f.recursive {
                for op in &f.operands {
                    if let Some(what) = describe_any(op, ctx) {
                        verdicts.push(Verdict::Deny(format!(
                            "`rm -r{}` on `{op}` would delete {what}; refused. Delete specific paths inside the project instead",
                            if f.force { "f" } else { "" }
                        )));
                    }
                }
            }
        }
        n if n == "mkfs" || n.starts_with("mkfs.") || n == "mke2fs" || n == "mkswap" || n == "wipefs" => {
            verdicts.push(Verdict::Deny(format!("`{n}` formats or wipes a device; refused")));
        }
        "dd" => {
            for a in args {
                if let Some(dst) = a.strip_prefix("of=") {
                    if dst.starts_with("/dev/") && !matches!(dst, "/dev/null" | "/dev/zero" | "/dev/stdout" | "/dev/stderr") {
                        verdicts.push(Verdict::Deny(format!("`dd of={dst}` overwrites a device; refused")));
                    }
                }
            }
        }
        "shred" if args.iter().any(|a| is_block_device(a)) => {
            verdicts.push(Verdict::Deny("`shred` on a block device destroys the disk; refused".into()));
        }
        "chmod" | "chown" | "chgrp" => {
            let recursive =
                args.iter().any(|a| a == "-R" || a == "--recursive" || (a.starts_with('-') && !a.starts_with("--") && a.contains('R')));
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                let n = normalize(a, ctx.cwd, ctx.home);
                let absolute = a.starts_with('/') || a.starts_with('~') || a.starts_with('$');
                let system = (recursive && vital(&n, ctx).is_some()) || (n == "/" && name == "chmod");
                if absolute && system {
                    verdicts.push(Verdict::Deny(format!("`{name} -R` on `{a}` would change permissions across the system; refused")));
                }
            }
        }
        "mv" => {
            let operands: Vec<&str> = file_operands(args).collect();
            for source in operands.iter().take(operands.len().saturating_sub(1)) {
                if let Some(what) = catastrophic(source, ctx) {
                    verdicts.push(Verdict::Deny(format!("`mv {source}` would move {what} away; refused")));
                }
            }
        }
        "rsync" if args.iter().any(|a| a == "--del" || a.starts_with("--delete")) => {
            // The destination loses every file the source does not have, like `rm -r`.
            let destination = file_operands(args).last().filter(|d| !d.contains(':'));
            if let Some(what) = destination.and_then(|d| describe_any(d, ctx)) {
                verdicts.push(Verdict::Deny(format!(
                    "`rsync --delete` into `{}` would delete files in {what}; refused. Sync into a directory inside the project instead",
                    destination.unwrap_or_default()
                )));
            }
        }
        "git" => check_git(args, ctx, verdicts),
        "find" => check_find(args, ctx, verdicts),
        "chronicle" | "chronicle-host" => {
            // Past `--config FILE`: the subcommand and its own.
            let mut words = args.iter().map(String::as_str);
            let mut command = Vec::new();
            while let Some(w) = words.next() {
                if w == "--config" {
                    words.next();
                } else if !w.starts_with('-') {
                    command.push(w);
                }
            }
            match command.as_slice() {
                ["uninstall", ..] => verdicts.push(Verdict::Ask(
                    "`chronicle uninstall` removes Chronicle's hooks from Claude Code's settings, and with them every guard; confirm"
                        .into(),
                )),
                ["plugins", "install", ..] => verdicts.push(Verdict::Ask(
                    "`chronicle plugins install` adds code that runs inside every hook from then on; confirm the plugin".into(),
                )),
                _ => {}
            }
        }
        "curl" | "wget" => {
            for (i, a) in args.iter().enumerate() {
                let value = if let Some(v) = a.strip_prefix('@') {
                    Some(v)
                } else if matches!(
                    a.as_str(),
                    "-d" | "--data"
                        | "--data-binary"
                        | "--data-raw"
                        | "--data-urlencode"
                        | "-F"
                        | "--form"
                        | "-T"
                        | "--upload-file"
                        | "--post-file"
                        | "--body-file"
                ) {
                    args.get(i + 1).map(|v| v.rsplit('@').next().unwrap_or(v).trim_start_matches('<'))
                } else {
                    a.split_once("=@").map(|(_, v)| v)
                };
                if let Some(file) = value {
                    if is_sensitive_path(file, ctx) {
                        verdicts.push(Verdict::Deny(format!("`{name}` would upload `{file}`, which holds credentials; refused")));
                    }
                }
            }
        }
        "scp" | "rsync" | "sftp" => {
            let remote = args.iter().any(|a| a.contains(':') && !a.starts_with('-'));
            if remote {
                for a in args.iter().filter(|a| !a.starts_with('-') && !a.contains(':')) {
                    if is_sensitive_path(a, ctx) {
                        verdicts
                            .push(Verdict::Deny(format!("`{name}` would copy `{a}`, which holds credentials, to another host; refused")));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Writing, moving or deleting a file that decides whether the guards run (Claude Code's
/// settings, Chronicle's files and the project's plugins, git hooks and configuration), a
/// secret store or a system file: refused or confirmed as file-guard does for the file tools
/// (system files are only confirmed here).
fn check_control_files(s: &Simple, name: &str, args: &[String], ctx: &Context, verdicts: &mut Vec<Verdict>) {
    let in_place = args.iter().any(|a| a == "--in-place" || (a.starts_with('-') && !a.starts_with("--") && a.contains('i')));
    let mut targets: Vec<&str> = s.redirects_out.iter().map(String::as_str).collect();
    match name {
        // `ln`: a link to a control file is a way to write it under another name (the guards
        // judge paths as written, not where links lead).
        "rm" | "rmdir" | "unlink" | "mv" | "tee" | "truncate" | "shred" | "chmod" | "chown" | "chgrp" | "chattr" | "touch" | "ln" => {
            targets.extend(file_operands(args))
        }
        "cp" | "install" | "rsync" => targets.extend(file_operands(args).last()),
        "sed" | "perl" if in_place => targets.extend(file_operands(args)),
        "dd" => targets.extend(args.iter().filter_map(|a| a.strip_prefix("of="))),
        _ => {}
    }
    let what = if targets.len() > s.redirects_out.len() { format!("`{name}`") } else { "a redirection".to_owned() };
    // Adding a key to `authorized_keys`, truncating or deleting a credential file (changing
    // its mode or owner is fine: `chmod 600 ~/.ssh/id_rsa` is a fix).
    let metadata_only = matches!(name, "chmod" | "chown" | "chgrp" | "chattr" | "touch");
    let changed = if metadata_only { &targets[..s.redirects_out.len()] } else { &targets[..] };
    for target in changed {
        if let Some(why) = secret_store(target, ctx) {
            verdicts.push(Verdict::Deny(format!("{what} would change or remove `{target}`: {why}; refused")));
        }
    }
    // `ln -s /etc/hosts here` writes `here`, not the file it points to.
    let written = if name == "ln" { &changed[changed.len().saturating_sub(1)..] } else { changed };
    for target in written {
        let path = normalize(target, ctx.cwd, ctx.home);
        if chronicle_secrets::system::changes_system(&path, ctx.home, &[ctx.project.to_owned()]) {
            // Asked, not refused: setting up a container's system can be the task, and the user
            // can say so (an unattended session turns this into a denial).
            verdicts.push(Verdict::Ask(format!("{what} would change `{target}`, a system file, not the project's; confirm")));
        }
    }
    for target in targets {
        match chronicle_secrets::control::control_file(&normalize(target, ctx.cwd, ctx.home), ctx.chronicle) {
            Some(chronicle_secrets::control::Control::Deny(why)) => verdicts.push(Verdict::Deny(format!("{what} refused: {why}"))),
            Some(chronicle_secrets::control::Control::Ask(why)) => {
                verdicts.push(Verdict::Ask(format!("{what} needs your confirmation: {why}")))
            }
            None => {}
        }
    }
}

/// `grep -r password ~`, `rg --hidden token /`: a search that prints the lines it finds in
/// every file under a directory holding secret stores (hidden files included) prints the
/// credentials, as file-guard's rule for the Grep tool says. Listing or counting the matching
/// files prints no contents, and `--include`/`--glob`/`-g`/`-t` pick files by name.
fn check_recursive_search(name: &str, args: &[String], ctx: &Context, verdicts: &mut Vec<Verdict>) {
    let has = |long: &[&str], short: &str| {
        args.iter().take_while(|a| a.as_str() != "--").any(|a| {
            long.iter().any(|l| a == l || a.strip_prefix(l).is_some_and(|v| v.starts_with('=')))
                || (a.starts_with('-') && !a.starts_with("--") && a[1..].chars().any(|c| short.contains(c)))
        })
    };
    // rg's `-uu` (or `-uuu`) searches hidden files too.
    let unrestricted = || args.iter().any(|a| a.len() >= 3 && a.starts_with('-') && a[1..].chars().all(|c| c == 'u'));
    let recursive = match name {
        "grep" | "egrep" | "fgrep" => has(&["--recursive", "--dereference-recursive"], "rR") || has(&["--directories=recurse"], ""),
        "rg" => has(&["--hidden"], ".") || unrestricted(),
        "ag" => has(&["--hidden", "--unrestricted", "--all-types"], "uU"),
        _ => false,
    };
    if !recursive {
        return;
    }
    let names_only = has(&["--files-with-matches", "--files-without-match", "--count", "--quiet", "--silent", "--files"], "lLcq");
    // grep's `-G` is its basic regexps, not a file filter.
    let picks_files = has(
        &["--include", "--glob", "--iglob", "--type", "--file-search-regex"],
        if name == "rg" {
            "gt"
        } else if name == "ag" {
            "G"
        } else {
            ""
        },
    );
    if names_only || picks_files {
        return;
    }
    // The pattern is the first operand unless `-e`/`-f` gave it; the rest are where to search.
    let explicit_pattern = has(&["--regexp", "--file"], "ef");
    let mut operands = args.iter().filter(|a| !a.starts_with('-')).map(String::as_str).skip(usize::from(!explicit_pattern)).peekable();
    let dirs: Vec<&str> = if operands.peek().is_none() { vec![ctx.cwd] } else { operands.collect() };
    for dir in dirs {
        let at = normalize(dir, ctx.cwd, ctx.home);
        if let Some(why) = chronicle_secrets::files::reaches_secret_stores(&at, ctx.home) {
            verdicts.push(Verdict::Deny(format!(
                "`{name}` would print what it finds in every file under `{dir}`, hidden ones included: {why}; refused. Search a narrower directory or name the files (`--include`, `-g`)"
            )));
            return;
        }
    }
}

/// `find PATH … -delete` (or `-exec rm`) deletes under each starting point, like `rm -r`.
fn check_find(args: &[String], ctx: &Context, verdicts: &mut Vec<Verdict>) {
    let deletes = args.iter().enumerate().any(|(i, a)| {
        a == "-delete"
            || (matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")
                && args.get(i + 1).is_some_and(|c| program_name(c) == "rm" || program_name(c) == "shred"))
    });
    if !deletes {
        return;
    }
    // The starting points: after the symlink options (-H, -L, -P, -D opts, -Olevel), before
    // the first test, option or operator.
    let mut rest = args;
    while let Some(first) = rest.first() {
        match first.as_str() {
            "-H" | "-L" | "-P" => rest = &rest[1..],
            "-D" => rest = &rest[2.min(rest.len())..],
            o if o.starts_with("-O") => rest = &rest[1..],
            _ => break,
        }
    }
    let starts = rest.iter().take_while(|a| !a.starts_with('-') && !matches!(a.as_str(), "(" | "!" | ","));
    for start in starts {
        if let Some(what) = describe_any(start, ctx) {
            verdicts.push(Verdict::Deny(format!(
                "`find {start} … -delete` would delete files in {what}; refused. Delete specific paths inside the project instead"
            )));
        }
    }
}

fn check_git(args: &[String], ctx: &Context, verdicts: &mut Vec<Verdict>) {
    // Skip global options (-C dir, -c k=v) to find the subcommand.
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        i += if matches!(args[i].as_str(), "-C" | "-c" | "--git-dir" | "--work-tree") { 2 } else { 1 };
    }
    match args.get(i).map(String::as_str) {
        Some("push") => {}
        Some("config") => return check_git_config(&args[i + 1..], verdicts),
        Some(sub) => return check_git_discards(sub, &args[i + 1..], verdicts),
        None => return,
    }
    let rest = &args[i + 1..];
    let force_flag = rest.iter().any(|a| {
        a == "-f"
            || a == "--force"
            || a.starts_with("--force-with-lease")
            || a == "--mirror"
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('f'))
    });
    let positional: Vec<&String> = rest.iter().filter(|a| !a.starts_with('-')).collect();
    let refspecs = positional.get(1..).unwrap_or(&[]);
    let plus_refspec = refspecs.iter().any(|r| r.starts_with('+'));
    // `git push origin --delete main`, `git push origin :main`: the branch is gone for everyone.
    let deletes = rest.iter().any(|a| a == "--delete" || a == "-d") || refspecs.iter().any(|r| r.starts_with(':'));
    if deletes {
        let named = |r: &str| r.trim_start_matches(':').trim_start_matches("refs/heads/").to_owned();
        if let Some(branch) = refspecs.iter().map(|r| named(r)).find(|b| ctx.protected_branches.iter().any(|p| p == b)) {
            verdicts.push(Verdict::Ask(format!(
                "`git push` would delete the remote branch {branch} for everyone; confirm that this is intended"
            )));
            return;
        }
    }
    if !force_flag && !plus_refspec {
        return;
    }
    let protected = |r: &str| {
        let dst = r.trim_start_matches('+').rsplit(':').next().unwrap_or(r).trim_start_matches("refs/heads/");
        ctx.protected_branches.iter().any(|b| b == dst)
    };
    if refspecs.is_empty() || refspecs.iter().any(|r| protected(r)) {
        let target = if refspecs.is_empty() {
            "the current branch (which may be protected)".to_owned()
        } else {
            refspecs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        };
        verdicts.push(Verdict::Ask(format!("force-push to {target} rewrites shared history; confirm that this is intended")));
    }
}

/// Git commands that throw away work no commit holds, beyond what the reflog can bring back:
/// uncommitted changes (`reset --hard`, `checkout -- .`, `restore .`), untracked files
/// (`clean -f`, with `-x` the ignored ones too: `.env`, local databases), stashes
/// (`stash clear`). Asked: often what the user wants, never something to find out afterwards.
fn check_git_discards(sub: &str, args: &[String], verdicts: &mut Vec<Verdict>) {
    let short = |c: char| args.iter().any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains(c));
    let long = |l: &str| args.iter().any(|a| a == l);
    // After `--` every word is a path; before it, `.`, `:/` or `*` still name the whole tree.
    let whole_tree = args.iter().any(|a| matches!(a.as_str(), "." | "./" | ":/" | "*" | ":/*" | "./*"));
    let why = match sub {
        "reset" if long("--hard") => "`git reset --hard` discards every uncommitted change in the working tree",
        "clean" if (short('f') || long("--force")) && !(short('n') || long("--dry-run")) => {
            if short('x') || short('X') {
                "`git clean -x` deletes untracked and ignored files (`.env`, local databases, build caches)"
            } else {
                "`git clean -f` deletes every untracked file it finds"
            }
        }
        "checkout" if whole_tree => "`git checkout` of the whole tree discards its uncommitted changes",
        "restore" if whole_tree && !(long("--staged") && !long("--worktree") && !short('W')) => {
            "`git restore` of the whole tree discards its uncommitted changes"
        }
        "stash" if args.first().is_some_and(|a| a == "clear") => "`git stash clear` deletes every stash",
        _ => return,
    };
    verdicts.push(Verdict::Ask(format!("{why}, and no commit holds what is lost; confirm (or commit or stash it first)")));
}

/// `git config KEY VALUE` (or `git config set KEY VALUE`, any scope) where the value is a
/// program git runs later on its own, outside any guard: asked, as writing a git hook is.
fn check_git_config(args: &[String], verdicts: &mut Vec<Verdict>) {
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            // Reading, listing, removing or renaming change nothing that runs.
            "--get" | "--get-all" | "--get-regexp" | "--get-urlmatch" | "--get-color" | "--get-colorbool" | "-l" | "--list" | "--unset"
            | "--unset-all" | "--remove-section" | "--rename-section" => return,
            "-f" | "--file" | "--blob" | "--type" | "--default" | "--comment" | "--value" => i += 1,
            _ if a.starts_with('-') => {}
            _ => positional.push(a),
        }
        i += 1;
    }
    let (key, value) = match positional.as_slice() {
        ["set", key, value, ..] => (*key, *value),
        [sub, ..] if matches!(*sub, "get" | "list" | "unset" | "rename-section" | "remove-section" | "edit") => return,
        [key, value, ..] => (*key, *value),
        _ => return,
    };
    if names_a_program(key, value) {
        verdicts.push(Verdict::Ask(format!(
            "`git config {key}` names a program git runs later on its own, outside any guard (`{value}`); confirm"
        )));
    }
}

/// Whether git configuration `key` = `value` is a program git runs (or a file of more settings).
fn names_a_program(key: &str, value: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let section = key.split('.').next().unwrap_or("");
    let last = key.rsplit('.').next().unwrap_or("");
    matches!(
        key.as_str(),
        "core.hookspath"
            | "core.fsmonitor"
            | "core.sshcommand"
            | "core.editor"
            | "core.pager"
            | "core.askpass"
            | "sequence.editor"
            | "diff.external"
            | "uploadpack.packobjectshook"
            | "include.path"
    ) || matches!((section, last), ("filter", "clean" | "smudge" | "process") | ("diff", "textconv" | "command"))
        || matches!((section, last), ("merge", "driver") | ("gpg", "program") | ("includeif", "path") | ("credential", "helper"))
        || section == "pager"
        || (section == "alias" && value.trim_start().starts_with('!'))
}

fn check_pipeline(p: &Pipeline, ctx: &Context, verdicts: &mut Vec<Verdict>) {
    for s in p {
        check_simple(s, ctx, verdicts);
        crate::unseen::check_simple(s, ctx, verdicts);
    }
    crate::unseen::check_pipeline(p, verdicts);
    let names: Vec<&str> = p.iter().map(|s| strip_wrappers(&s.words).first().map_or("", |w| program_name(w))).collect();
    // Reading a credential file into something that sends data elsewhere.
    for (i, s) in p.iter().enumerate() {
        let reads_secret = strip_wrappers(&s.words).iter().skip(1).any(|a| !a.starts_with('-') && is_sensitive_path(a, ctx));
        if reads_secret {
            if let Some(sender) = names[i + 1..].iter().find(|n| SENDERS.contains(n)) {
                verdicts.push(Verdict::Deny(format!("piping a credential file into `{sender}` sends it off this machine; refused")));
            }
        }
    }
}

/// The verdict on a whole command line: the most severe of its parts, or none.
pub fn check(command: &str, ctx: &Context) -> Option<Verdict> {
    let mut verdicts = Vec::new();
    if is_fork_bomb(command) {
        verdicts.push(Verdict::Deny("this is a fork bomb: it would exhaust the machine's processes; refused".into()));
    }
    // `cd /tmp && rm -r x` deletes /tmp/x: a `cd` moves where the later commands' relative
    // paths point. A target that cannot be known here (`cd "$DIR"`) leaves it where it was.
    let mut cwd = ctx.cwd.to_owned();
    for p in crate::shell::parse(command) {
        check_pipeline(&p, &Context { cwd: &cwd, ..*ctx }, &mut verdicts);
        if let [only] = p.as_slice() {
            if let Some(dir) = cd_target(only, ctx.home) {
                cwd = normalize(&dir, &cwd, ctx.home);
            }
        }
    }
    verdicts.iter().find(|v| matches!(v, Verdict::Deny(_))).or_else(|| verdicts.first()).cloned()
}

/// Where a `cd`/`pushd` on its own moves to, if that can be known without running anything.
fn cd_target(s: &Simple, home: &str) -> Option<String> {
    let words = strip_wrappers(&s.words);
    if !matches!(words.first().map(|w| program_name(w)), Some("cd" | "pushd")) {
        return None;
    }
    let Some(dir) = words[1..].iter().find(|w| !w.starts_with('-') || w.as_str() == "-") else { return Some(home.to_owned()) };
    let dir = match dir.as_str() {
        "-" => return None,
        "~" => home.to_owned(),
        d if d.contains('$') || d.contains('`') || d.contains('*') => return None,
        d => d.to_owned(),
    };
    Some(dir)
}

/// Whether `command` defines a function that pipes itself into itself in the background
/// (`:(){ :|:& };:`, whitespace anywhere): the body, up to its first `}`, holds `NAME|NAME&`
/// with NAME the function's own name. Hand-written rather than a regex: compiling one cost
/// ~0.5 ms in every process that saw a new command (every in-process event), for one pattern.
fn is_fork_bomb(command: &str) -> bool {
    let compact: Vec<u8> = command.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut from = 0;
    while let Some(at) = find(&compact[from..], b"(){").map(|i| from + i) {
        from = at + 3;
        // The name: the run of name bytes before `(`, starting at a letter, `_` or `:`.
        let mut start = at;
        while start > 0 && is_name(compact[start - 1]) {
            start -= 1;
        }
        while start < at && compact[start].is_ascii_digit() {
            start += 1;
        }
        let name = &compact[start..at];
        if name.is_empty() {
            continue;
        }
        let body = &compact[from..];
        let body = &body[..body.iter().position(|&b| b == b'}').unwrap_or(body.len())];
        let call: Vec<u8> = [name, b"|", name, b"&"].concat();
        let mut i = 0;
        while let Some(hit) = find(&body[i..], &call).map(|h| i + h) {
            if hit == 0 || !is_name(body[hit - 1]) {
                return true;
            }
            i = hit + 1;
        }
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
