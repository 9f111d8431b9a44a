//! Credential detection and redaction, shared by the host (which redacts every payload before
//! it is stored) and the `secret-guard` plugin (which asks or blocks when input carries one).
//!
//! Speed matters: this runs on every hook event. An Aho-Corasick scan for trigger words
//! (case-insensitive) decides which rules can match at all; a rule's regex is compiled only the
//! first time its trigger appears, so an event without credentials costs one linear scan — and
//! for long texts a vectorised one (see [`LONG_TEXT`]).
//!
//! Every rule is anchored on something a credential *has* (a vendor prefix, a `BEGIN ... PRIVATE
//! KEY` line, a `password=` label), never on "long random-looking string": git SHAs, UUIDs and
//! base64 data stay untouched. This crate does no I/O.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod control;
pub mod files;
pub mod system;

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

/// One kind of credential.
struct Rule {
    /// Stable name, used in `[REDACTED:<name>]` and in findings.
    name: &'static str,
    /// Lower-case trigger words; the rule runs only when one occurs (case-insensitively).
    triggers: &'static [&'static str],
    pattern: &'static str,
    /// Capture group holding the secret (0 = the whole match).
    group: usize,
    /// Values that look like code rather than a credential (`password=None`).
    code_like_values_allowed: bool,
}

const RULES: &[Rule] = &[
    Rule {
        name: "private-key",
        triggers: &["private"],
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "aws-access-key-id",
        triggers: &["akia", "asia", "abia", "acca"],
        pattern: r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "aws-secret-access-key",
        // Every spelling holds `secret`, which password-assignment watches for too.
        triggers: &["secret"],
        pattern: r#"(?i)(?:aws_?secret_?access_?key|aws-secret-access-key|secretaccesskey)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        group: 1,
        code_like_values_allowed: true,
    },
    Rule {
        name: "github-token",
        triggers: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "gitlab-token",
        triggers: &["glpat-", "gldt-", "glrt-"],
        pattern: r"\bgl(?:pat|dt|rt)-[A-Za-z0-9_\-]{20,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule { name: "anthropic-key", triggers: &["sk-"], pattern: r"\bsk-ant-[A-Za-z0-9_\-]{20,}", group: 0, code_like_values_allowed: true },
    Rule {
        name: "openai-key",
        triggers: &["sk-"],
        pattern: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "stripe-key",
        triggers: &["k_live_", "k_test_"],
        pattern: r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "slack-token",
        triggers: &["xox", "hooks.slack.com/"],
        pattern: r"\bxox[abprs]-[A-Za-z0-9\-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule { name: "google-api-key", triggers: &["aiza"], pattern: r"\bAIza[0-9A-Za-z_\-]{35}\b", group: 0, code_like_values_allowed: true },
    Rule {
        name: "jwt",
        triggers: &["eyj"],
        pattern: r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "bearer-token",
        triggers: &["bearer", "authorization"],
        pattern: r"(?i)\b(?:bearer|authorization:\s*(?:token|basic))\s+([A-Za-z0-9._~+/\-]{12,}=*)",
        group: 1,
        code_like_values_allowed: true,
    },
    Rule {
        name: "url-credentials",
        triggers: &["://"],
        // Unbounded, not {1,256}: 256 copies of a Unicode class took 7-8 ms to compile, paid by
        // every hook process whose event held a URL (0.36 ms now; matching is linear anyway).
        pattern: r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]+:([^/\s@]+)@",
        group: 1,
        code_like_values_allowed: false,
    },
    Rule { name: "npm-token", triggers: &["npm_"], pattern: r"\bnpm_[A-Za-z0-9]{36}\b", group: 0, code_like_values_allowed: true },
    Rule {
        name: "pypi-token",
        triggers: &["pypi-ageichlwas5vcmc"],
        pattern: r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule { name: "huggingface-token", triggers: &["hf_"], pattern: r"\bhf_[A-Za-z0-9]{34,40}\b", group: 0, code_like_values_allowed: true },
    Rule {
        name: "sendgrid-key",
        triggers: &["sg."],
        pattern: r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "azure-storage-key",
        triggers: &["accountkey", "access"],
        pattern: r"(?i)\b(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,}={0,2})",
        group: 1,
        code_like_values_allowed: true,
    },
    Rule {
        name: "digitalocean-token",
        triggers: &["_v1_"],
        pattern: r"\bdo[por]_v1_[a-f0-9]{64}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "shopify-token",
        triggers: &["shp"],
        pattern: r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "vault-token",
        triggers: &["hvs.", "hvb."],
        pattern: r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "databricks-token",
        triggers: &["dapi"],
        pattern: r"\bdapi[a-f0-9]{32}(?:-\d)?\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "telegram-bot-token",
        triggers: &[":aa"],
        pattern: r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule { name: "linear-key", triggers: &["lin_api_"], pattern: r"\blin_api_[A-Za-z0-9]{40}\b", group: 0, code_like_values_allowed: true },
    Rule {
        name: "doppler-token",
        triggers: &["dp."],
        pattern: r"\bdp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,}",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "age-secret-key",
        triggers: &["age-secret-key-1"],
        pattern: r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "google-oauth-secret",
        triggers: &["gocspx-"],
        pattern: r"\bGOCSPX-[A-Za-z0-9_\-]{28}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule { name: "groq-key", triggers: &["gsk_"], pattern: r"\bgsk_[A-Za-z0-9]{52}\b", group: 0, code_like_values_allowed: true },
    Rule { name: "xai-key", triggers: &["xai-"], pattern: r"\bxai-[A-Za-z0-9]{80}\b", group: 0, code_like_values_allowed: true },
    Rule {
        name: "postman-key",
        triggers: &["pmak-"],
        pattern: r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "discord-webhook",
        triggers: &["/api/webhooks/"],
        pattern: r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]+",
        group: 0,
        code_like_values_allowed: true,
    },
    Rule {
        name: "password-assignment",
        triggers: &[
            "passw",
            "pwd",
            "secret",
            "api_key",
            "apikey",
            "api-key",
            "token",
            "credential",
            "private",
            "signing",
            "encryption",
            "access",
        ],
        // The label ends in the word that makes the value a credential: `DB_PASSWORD=`,
        // `CLIENT_SECRET=`, `SECRET_KEY=`, `BOT_TOKEN=`, `JWT_SIGNING_KEY=` (not `max_tokens=`
        // or `next_token=`).
        pattern: r#"(?i)\b[a-z0-9_\-]*(?:password|passwd|pwd|secret|api[_\-]?key|(?:access|auth|api|bot|refresh|session|private)[_\-]?token|credentials?|(?:secret|private|signing|encryption|access)[_\-]?key)["']?\s*[:=]\s*["']?([^\s"'&;,)}\]]{4,})"#,
        group: 1,
        code_like_values_allowed: false,
    },
];

/// Values after `password=`-style labels that are code or placeholders, not credentials.
fn looks_like_code(value: &str) -> bool {
    const WORDS: &[&str] = &[
        "none",
        "null",
        "nil",
        "true",
        "false",
        "undefined",
        "str",
        "string",
        "bool",
        "int",
        "bytes",
        "optional",
        "required",
        "self",
        "this",
        "secret",
        "password",
        "token",
        "redacted",
    ];
    let lower = value.to_ascii_lowercase();
    WORDS.contains(&lower.as_str())
        || value.starts_with('$')
        || value.starts_with('{')
        || value.starts_with('<')
        || value.starts_with('[')
        || value.starts_with("os.")
        || value.starts_with("process.env")
        || value.starts_with("env(")
        || value.starts_with("getenv")
        || value.contains("REDACTED")
        || value.contains('(')
        || value.chars().all(|c| c == '*' || c == 'x' || c == 'X' || c == '.')
}

/// Texts at least this long are lower-cased and searched case-sensitively, leftmost-first: that
/// search runs a vectorised prefilter (Teddy) over the text, where the case-insensitive
/// overlapping search must step through every byte. 210 KB of code without trigger words:
/// 0.35 ms (byte-at-a-time DFA) → 0.05 ms. The few matches it reports are then re-examined with
/// the exact, overlapping search in a window around each.
pub const LONG_TEXT: usize = 1024;

struct Compiled {
    /// Trigger indices by their first byte: every occurrence in a short text or a window is
    /// found by trying the few triggers that start with each byte. An automaton for this cost
    /// ~0.1 ms to build in every process that handles an event (the host and secret-guard each
    /// built one), ten times what the scan of a typical event takes.
    by_first_byte: [Vec<u8>; 256],
    /// Case-sensitive, leftmost-first, over lower-cased text: finds at least one match
    /// overlapping every trigger occurrence, fast. Built with the first long text.
    first: OnceLock<AhoCorasick>,
    words: Vec<&'static str>,
    longest_trigger: usize,
    /// The rules each trigger pattern may start, as bits by index into `RULES`.
    trigger_rules: Vec<u64>,
    regexes: Vec<OnceLock<Option<Regex>>>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // One pattern per distinct word, naming every rule it triggers (`secret` serves two).
        let mut words: Vec<&'static str> = Vec::new();
        let mut trigger_rules: Vec<u64> = Vec::new();
        for (i, rule) in RULES.iter().enumerate() {
            for t in rule.triggers {
                match words.iter().position(|w| w == t) {
                    Some(at) => trigger_rules[at] |= 1 << i,
                    None => {
                        words.push(*t);
                        trigger_rules.push(1 << i);
                    }
                }
            }
        }
        let mut by_first_byte: [Vec<u8>; 256] = std::array::from_fn(|_| Vec::new());
        for (i, w) in words.iter().enumerate() {
            let i = u8::try_from(i).unwrap_or_else(|_| unreachable!("fewer than 256 triggers"));
            if let Some(b) = w.bytes().next() {
                by_first_byte[usize::from(b.to_ascii_lowercase())].push(i);
            }
        }
        let longest_trigger = words.iter().map(|w| w.len()).max().unwrap_or(0);
        let regexes = RULES.iter().map(|_| OnceLock::new()).collect();
        Compiled { by_first_byte, first: OnceLock::new(), words, longest_trigger, trigger_rules, regexes }
    })
}

// Non-contiguous NFAs build in microseconds; the default may build a DFA, which costs a few
// hundred microseconds in a process that lives for one event.
fn nfa() -> aho_corasick::AhoCorasickBuilder {
    AhoCorasick::builder().kind(Some(aho_corasick::AhoCorasickKind::NoncontiguousNFA)).clone()
}

fn never() -> AhoCorasick {
    AhoCorasick::new(["\u{0}never"]).unwrap_or_else(|_| unreachable!())
}

impl Compiled {
    fn first(&self) -> &AhoCorasick {
        self.first.get_or_init(|| {
            // Teddy puts pattern `i` in bucket `15 - i % 16` (of 16) and checks a text position
            // against each bucket's first three bytes, every pattern's nibbles OR-ed together:
            // words alike share a bucket here (sorted, then dealt out in runs), which keeps the
            // buckets narrow and the false candidates few. With the words in rule order, the
            // 482 KB Write event's search took 145 µs; so, 105 µs. NUL bytes, never in JSON
            // text, fill the last run.
            let mut sorted: Vec<&str> = self.words.clone();
            sorted.sort_by_key(|w| w.bytes().take(3).collect::<Vec<u8>>());
            let run = sorted.len().div_ceil(16);
            let mut dealt: Vec<&str> = vec!["\0\0\0"; run * 16];
            for (j, w) in sorted.iter().enumerate() {
                dealt[(j % run) * 16 + (15 - j / run)] = w;
            }
            nfa().match_kind(aho_corasick::MatchKind::LeftmostFirst).build(&dealt).unwrap_or_else(|_| never())
        })
    }

    fn regex(&self, rule: usize) -> Option<&Regex> {
        // The patterns are constants covered by tests; a failure to compile disables that rule
        // rather than panicking on the hot path.
        self.regexes[rule].get_or_init(|| Regex::new(RULES[rule].pattern).ok()).as_ref()
    }

    /// Rules whose trigger words occur in `text`, in rule order.
    fn candidate_rules(&self, text: &str) -> Vec<usize> {
        let mut hit = 0u64;
        // Every occurrence of every trigger, ASCII case ignored (the triggers are ASCII).
        let mut mark = |haystack: &[u8]| {
            for (at, b) in haystack.iter().enumerate() {
                for &t in &self.by_first_byte[usize::from(b.to_ascii_lowercase())] {
                    let word = self.words[usize::from(t)].as_bytes();
                    if haystack.get(at..at + word.len()).is_some_and(|h| h.eq_ignore_ascii_case(word)) {
                        hit |= self.trigger_rules[usize::from(t)];
                    }
                }
            }
        };
        let bytes = text.as_bytes();
        if bytes.len() < LONG_TEXT {
            mark(bytes);
        } else {
            // Lower-cased a chunk at a time into one small buffer (no allocation the size of the
            // text). Each chunk is searched with a trigger's length of the next one, so every
            // occurrence that starts in it is whole in the search. The leftmost-first search
            // skips occurrences that start inside a match it reports (`age-secret-key-1`
            // hides `secret`); each such one lies within a trigger's length of it.
            const CHUNK: usize = 32 * 1024;
            let reach = self.longest_trigger;
            let first = self.first();
            let mut lower = [0u8; CHUNK + 64];
            let mut start = 0;
            while start < bytes.len() {
                let end = (start + CHUNK + reach).min(bytes.len());
                let lower = &mut lower[..end - start];
                lower.copy_from_slice(&bytes[start..end]);
                lower.make_ascii_lowercase();
                for m in first.find_iter(&*lower) {
                    let (s, e) = (start + m.start(), start + m.end());
                    mark(&bytes[s.saturating_sub(reach)..(e + reach).min(bytes.len())]);
                }
                start += CHUNK;
            }
        }
        (0..RULES.len()).filter(|i| hit & (1 << i) != 0).collect()
    }
}

/// Teddy, the vectorised search that makes long texts cheap (see [`LONG_TEXT`]), takes at most
/// this many patterns; past it aho-corasick falls back to a scan 20 times slower (the 482 KB
/// Write event's redaction: 0.07 → 1.5 ms). Rules share trigger words to stay under it.
pub const MAX_TRIGGER_WORDS: usize = 64;

const _: () = assert!(RULES.len() <= 64, "rules are bits of a u64");

/// A credential found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule name (`aws-access-key-id`, `github-token`, ...).
    pub kind: &'static str,
    /// Byte range of the secret within the text.
    pub start: usize,
    pub end: usize,
}

fn for_each_finding(text: &str, mut f: impl FnMut(Finding)) {
    let c = compiled();
    for rule_index in c.candidate_rules(text) {
        let rule = &RULES[rule_index];
        let Some(re) = c.regex(rule_index) else { continue };
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(rule.group) else { continue };
            if !rule.code_like_values_allowed && looks_like_code(m.as_str()) {
                continue;
            }
            f(Finding { kind: rule.name, start: m.start(), end: m.end() });
        }
    }
}

/// Every credential in `text`, ordered by position.
pub fn find(text: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    for_each_finding(text, |f| found.push(f));
    // Earliest first, longest first at one position; a finding inside an earlier one is the
    // same secret seen by a second rule (`Bearer ghp_...`) and is dropped.
    found.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        if kept.last().is_none_or(|last| f.start >= last.end) {
            kept.push(f);
        }
    }
    kept
}

/// Every rule's trigger words, lower case: a text holding none of them, ASCII case ignored,
/// holds no credential (see [`mentions_trigger`]).
pub fn trigger_words() -> impl Iterator<Item = &'static str> {
    compiled().words.iter().copied()
}

/// True when a trigger word of any rule occurs in `text` (case-insensitively): without one,
/// `text` carries no credential. Cheaper than [`find`], which also runs the rules' patterns.
///
/// No trigger word contains `"` or `\`, so in JSON text none can straddle a string's quotes:
/// callers may search a string's contents and the text around it separately.
pub fn mentions_trigger(text: &str) -> bool {
    !compiled().candidate_rules(text).is_empty()
}

/// True when `text` carries at least one credential.
pub fn contains_secret(text: &str) -> bool {
    !find(text).is_empty()
}

/// `text` with every credential replaced by `[REDACTED:<kind>]`; borrowed when nothing matched.
pub fn redact(text: &str) -> Cow<'_, str> {
    let found = find(text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for f in found {
        out.push_str(&text[pos..f.start]);
        out.push_str("[REDACTED:");
        out.push_str(f.kind);
        out.push(']');
        pos = f.end;
    }
    out.push_str(&text[pos..]);
    Cow::Owned(out)
}

/// The kinds of credential in `text`, deduplicated, for messages that must not echo the secret.
pub fn kinds(text: &str) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = find(text).into_iter().map(|f| f.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

#[cfg(test)]
mod tests {

    #[test]
    fn no_trigger_word_holds_a_quote_or_backslash() {
        // `mentions_trigger` promises this to callers that split JSON text at string quotes.
        for rule in RULES {
            for t in rule.triggers {
                assert!(!t.contains(['"', '\\']), "{t}");
            }
        }
    }

    use super::*;

    #[test]
    fn the_trigger_words_fit_the_vectorised_search() {
        let words = compiled().words.len();
        assert!(words <= MAX_TRIGGER_WORDS, "{words} trigger words: long texts would lose their fast search");
    }

    #[test]
    fn every_rule_compiles() {
        for (i, rule) in RULES.iter().enumerate() {
            assert!(compiled().regex(i).is_some(), "rule {} does not compile", rule.name);
        }
    }

    /// (input, kinds that must be found). An empty list means: leave it alone.
    const CASES: &[(&str, &[&str])] = &[
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE aws s3 ls", &["aws-access-key-id"]),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws", &["aws-secret-access-key"]),
        ("curl -H 'Authorization: token ghp_EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0000'", &["github-token"]),
        ("mysql -u root password=hunter2-NOT-REAL", &["password-assignment"]),
        ("DATABASE_URL=postgres://billing:s3cr3t-EXAMPLE@db:5432/b", &["url-credentials"]),
        ("STRIPE_KEY=sk_test_EXAMPLE000000000000000000", &["stripe-key"]),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nEXAMPLEONLY\n-----END OPENSSH PRIVATE KEY-----\n", &["private-key"]),
        ("key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345", &["anthropic-key"]),
        ("export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyzABCDEF0123", &["openai-key"]),
        ("token xoxb-123456789012-abcdefghijkl", &["slack-token"]),
        ("glpat-abcdefghijklmnopqrst12", &["gitlab-token"]),
        ("Authorization: Bearer abc.def-ghi_jkl~mno+pqr", &["bearer-token"]),
        ("npm publish with npm_EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAM", &["npm-token"]),
        ("HF_HUB_TOKEN hf_EXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPL", &["huggingface-token"]),
        ("SENDGRID SG.EXAMPLE0EXAMPLE0EXAMPL.EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXA", &["sendgrid-key"]),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EX==;EndpointSuffix=core.windows.net",
            &["azure-storage-key"],
        ),
        ("doctl auth init -t dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", &["digitalocean-token"]),
        ("VAULT_TOKEN hvs.EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0", &["vault-token"]),
        ("bot 1234567890:AAEXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0E", &["telegram-bot-token"]),
        ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", &["age-secret-key"]),
        ("GROQ gsk_EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAMPLE0EXAM", &["groq-key"]),
        ("https://discord.com/api/webhooks/123456789/EXAMPLE-token_value", &["discord-webhook"]),
        ("SECRET_KEY = 'django-insecure-EXAMPLE-not-real'", &["password-assignment"]),
        ("export SLACK_BOT_TOKEN=EXAMPLEbottoken123", &["password-assignment"]),
        ("JWT_SIGNING_KEY: EXAMPLE-signing-0123", &["password-assignment"]),
        ("max_tokens=1024", &[]),
        ("next_token=abc123def456", &[]),
        ("AWS_ACCESS_KEY_ID=$KEY_ID", &[]),
        ("msg.data and SG.x and hf_x and npm_install", &[]),
        // Not secrets.
        ("git checkout 3f786850e387550fdab836ed7e6dc881de23001b", &[]),
        ("session 6f1c2a9e-3b7d-4c5e-9a21-0d8e4b7c1f33", &[]),
        ("data: aGVsbG8gd29ybGQgdGhpcyBpcyBqdXN0IGJhc2U2NCB0ZXN0IGRhdGEgZm9yIHVuaXQgdGVzdHM=", &[]),
        ("def login(password=None):", &[]),
        ("password: str", &[]),
        ("token = os.environ['TOKEN']", &[]),
        ("password=${DB_PASSWORD}", &[]),
        ("mkdir -p task-runner && disk-usage", &[]),
        ("https://example.com/path@version", &[]),
        ("the secret: is out", &[]),
    ];

    #[test]
    fn finds_what_it_should_and_nothing_else() {
        for (input, expected) in CASES {
            assert_eq!(kinds(input), expected.to_vec(), "input: {input}");
        }
    }

    #[test]
    fn redaction_keeps_the_text_around_the_secret() {
        assert_eq!(redact("id AKIAIOSFODNN7EXAMPLE end"), "id [REDACTED:aws-access-key-id] end");
        assert_eq!(redact("postgres://u:pw1234@h/db"), "postgres://u:[REDACTED:url-credentials]@h/db");
        let long = "p".repeat(300);
        assert_eq!(redact(&format!("https://u:{long}@h")), "https://u:[REDACTED:url-credentials]@h");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn redaction_never_leaves_the_secret_behind() {
        for (input, expected) in CASES.iter().filter(|(_, k)| !k.is_empty()) {
            let out = redact(input);
            for f in find(input) {
                let secret = &input[f.start..f.end];
                assert!(!out.contains(secret), "{secret} survived in {out} ({expected:?})");
            }
        }
    }

    /// The rules whose triggers occur in `text`, ASCII case ignored: the definition the
    /// searches implement.
    fn rules_by_definition(text: &str) -> Vec<usize> {
        let c = compiled();
        let lower = text.to_ascii_lowercase();
        let mut hit = 0u64;
        for (w, rules) in c.words.iter().zip(&c.trigger_rules) {
            if lower.contains(&w.to_ascii_lowercase()) {
                hit |= rules;
            }
        }
        (0..RULES.len()).filter(|i| hit & (1 << i) != 0).collect()
    }

    /// Every trigger, in any case, at the start, middle and end of a short text, alone and
    /// overlapping others (`aws_secret` holds `secret`, `ASIAIZA` holds `asia` and `aiza`).
    #[test]
    fn short_texts_find_every_trigger_in_any_case() {
        let c = compiled();
        let cased = |w: &str, k: usize| -> String {
            w.chars().enumerate().map(|(i, ch)| if (i + k) % 2 == 0 { ch.to_ascii_uppercase() } else { ch }).collect()
        };
        for (w, rules) in c.words.iter().zip(&c.trigger_rules) {
            let rule = rules.trailing_zeros() as usize;
            for k in 0..2 {
                let word = cased(w, k);
                for text in [word.clone(), format!("{word} tail"), format!("head {word}"), format!("h{word}t")] {
                    assert!(text.len() < LONG_TEXT);
                    let found = c.candidate_rules(&text);
                    assert!(found.contains(&rule), "{} not found in {text:?}", RULES[rule].name);
                    assert_eq!(found, rules_by_definition(&text), "{text:?}");
                }
            }
        }
        for text in ["AWS_SECRET=abc", "ASIAIZA", "x-api-key: Bearer sk-ant-", "", "s", "plain words only", "ak ia sk - to ken"] {
            assert_eq!(c.candidate_rules(text), rules_by_definition(text), "{text:?}");
        }
        assert!(c.candidate_rules("plain words only").is_empty());
    }

    /// The long-text search must find exactly the rules the exact search finds, including
    /// triggers hidden inside another trigger's match and at the edges of the text.
    #[test]
    fn long_texts_find_the_same_rules_as_short_ones() {
        let c = compiled();
        let filler = "let x = compute(y); // plain code\n".repeat(LONG_TEXT / 30 + 1);
        for (input, _) in CASES {
            for text in [format!("{filler}{input}"), format!("{input}{filler}"), format!("{filler}{input}{filler}")] {
                assert!(text.len() >= LONG_TEXT);
                assert_eq!(c.candidate_rules(&text), rules_by_definition(&text), "input: {input}");
            }
        }
        // Around chunk boundaries (32 KiB), every offset a trigger could straddle.
        let long_filler = " ".repeat(3 * 32 * 1024);
        for (input, _) in CASES.iter().filter(|(_, k)| !k.is_empty()) {
            for at in (32 * 1024 - 24)..(32 * 1024 + 8) {
                let text = format!("{}{input}{}", &long_filler[..at], &long_filler[at..]);
                assert_eq!(kinds(&text), kinds(input), "input {input} at {at}");
            }
        }
        // `aws_secret` is reported first and hides `secret` (password-assignment's trigger).
        let hidden = format!("{filler}AWS_SECRET=abc");
        let rules: Vec<&str> = c.candidate_rules(&hidden).iter().map(|i| RULES[*i].name).collect();
        assert_eq!(rules, ["aws-secret-access-key", "password-assignment"]);
        // `asia` is reported; `aiza` starts inside it and ends past it.
        let straddling = format!("{filler}ASIAIZA");
        let rules: Vec<&str> = c.candidate_rules(&straddling).iter().map(|i| RULES[*i].name).collect();
        assert_eq!(rules, ["aws-access-key-id", "google-api-key"]);
        assert_eq!(kinds(&format!("{filler}password=hunter2-NOT-REAL{filler}")), ["password-assignment"]);
    }

    #[test]
    fn unterminated_private_key_is_redacted_to_the_end() {
        let out = redact("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...");
        assert_eq!(out, "[REDACTED:private-key]");
    }
}
