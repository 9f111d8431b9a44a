//! Validating JSON text without building it: where a value ends, checked against the grammar
//! serde_json accepts and its nesting limit.
//!
//! Why not serde_json itself: skipping a large field through it (`IgnoredAny`, `RawValue`)
//! validates strings a byte at a time, ~1.5 GB/s; a Write event's file content is JSON inside
//! JSON, an escape every few bytes, and that was 22 % of the resident host's CPU for a 482 KB
//! event. Strings here are checked 64 bytes at a time with bit masks (the escape handling is
//! simdjson's), ~5 GB/s on the same text. No crate offers validation that also reports where
//! each value lies in the input, which deferring needs.
//!
//! What is accepted is what `serde_json::from_slice::<Value>` accepts, with two differences
//! that only make this stricter (the caller then parses the usual way): numbers with a large
//! exponent or many digits, which serde_json may or may not find out of range; and nothing
//! but UTF-8, which the caller checks once for the whole input.

/// serde_json's nesting budget: entering a container spends one level, and parsing fails when
/// none is left (so 127 nested containers parse, 128 do not).
pub const SERDE_DEPTH: u8 = 128;

/// What a validated value's text holds, beyond being valid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    /// A `\uXXXX` or `\/` escape: some character is not written as itself (the other escapes
    /// stand for quotes, backslashes and control characters).
    pub spelled_escape: bool,
    /// Where the contents (inside the quotes) of strings of [`LONG_STRING`] bytes or more lie.
    pub long_strings: Vec<std::ops::Range<usize>>,
}

/// Strings from this length on are listed in [`Seen::long_strings`]: long enough that
/// redaction compares a repeat instead of searching it again (here and in the built tree).
pub const LONG_STRING: usize = 4096;

/// Offset just past the JSON value that starts exactly at `at`, or None when it is not valid
/// JSON or nests containers more deeply than `remaining` levels allow (each container entered
/// spends one; reaching zero fails, as in serde_json).
pub fn value_end(bytes: &[u8], at: usize, remaining: u8, seen: &mut Seen) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at, seen),
        b'{' => container_end(bytes, at, remaining, b'}', seen),
        b'[' => container_end(bytes, at, remaining, b']', seen),
        b't' => literal_end(bytes, at, b"true"),
        b'f' => literal_end(bytes, at, b"false"),
        b'n' => literal_end(bytes, at, b"null"),
        b'-' | b'0'..=b'9' => number_end(bytes, at),
        _ => None,
    }
}

/// Where the value a JSON pointer's `tokens` (already unescaped, as `Value::pointer` splits
/// them) name lies, inside the valid value starting at `at`: what `Value::pointer` would find
/// in the tree, found by skipping over the text instead of building it (a cache key that needs
/// a Write event's file path then does not build its 241 KB content).
pub fn find(bytes: &[u8], at: usize, tokens: &[&str]) -> Option<std::ops::Range<usize>> {
    let Some((token, rest)) = tokens.split_first() else {
        return Some(at..value_end(bytes, at, SERDE_DEPTH, &mut Seen::default())?);
    };
    let found = match bytes[at] {
        b'{' => member(&members(bytes, at)?, token),
        b'[' => {
            // serde_json's array index: digits only, no leading zero.
            if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
                return None;
            }
            let wanted: usize = token.parse().ok()?;
            let mut i = skip_ws(bytes, at + 1);
            let mut n = 0;
            loop {
                if bytes.get(i).is_none_or(|&b| b == b']') {
                    break None;
                }
                if n == wanted {
                    break Some(i);
                }
                i = skip_ws(bytes, value_end(bytes, i, SERDE_DEPTH, &mut Seen::default())?);
                if bytes.get(i) == Some(&b',') {
                    i = skip_ws(bytes, i + 1);
                }
                n += 1;
            }
        }
        _ => None,
    };
    find(bytes, found?, rest)
}

/// An object's members: each key (unescaped) and where its value starts, in order.
pub type Members = Vec<(String, usize)>;

/// The members of the valid object starting at `at`, in one pass over it; look keys up with
/// [`member`].
pub fn members(bytes: &[u8], at: usize) -> Option<Members> {
    let mut out = Vec::new();
    let mut i = skip_ws(bytes, at + 1);
    while bytes.get(i) == Some(&b'"') {
        let key_end = string_end(bytes, i, &mut Seen::default())?;
        let raw = &bytes[i + 1..key_end - 1];
        let key = if raw.contains(&b'\\') {
            serde_json::from_slice::<String>(&bytes[i..key_end]).ok()?
        } else {
            String::from(std::str::from_utf8(raw).ok()?)
        };
        // Past the ':' (the value is valid: nothing else can be there).
        i = skip_ws(bytes, skip_ws(bytes, key_end) + 1);
        out.push((key, i));
        i = skip_ws(bytes, value_end(bytes, i, SERDE_DEPTH, &mut Seen::default())?);
        if bytes.get(i) == Some(&b',') {
            i = skip_ws(bytes, i + 1);
        }
    }
    Some(out)
}

/// Where `key`'s value starts among `members`: a repeated key means its last value, as in the
/// tree serde_json builds.
pub fn member(members: &Members, key: &str) -> Option<usize> {
    members.iter().rev().find(|(k, _)| k == key).map(|&(_, at)| at)
}

/// Past the whitespace serde_json skips, from `i`.
pub fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn literal_end(bytes: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    (bytes.get(at..at + word.len())? == word).then_some(at + word.len())
}

fn container_end(bytes: &[u8], at: usize, remaining: u8, close: u8, seen: &mut Seen) -> Option<usize> {
    let remaining = remaining.checked_sub(1).filter(|&r| r > 0)?;
    let is_object = close == b'}';
    let mut i = skip_ws(bytes, at + 1);
    if bytes.get(i) == Some(&close) {
        return Some(i + 1);
    }
    loop {
        if is_object {
            i = skip_ws(bytes, string_end(bytes, i, seen)?);
            if bytes.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(bytes, i + 1);
        }
        i = skip_ws(bytes, value_end(bytes, i, remaining, seen)?);
        match *bytes.get(i)? {
            b',' => i = skip_ws(bytes, i + 1),
            c if c == close => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Numbers as serde_json reads them: `` -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? ``
///
/// serde_json fails on numbers beyond f64's range (~1.8e308). Rather than decide that boundary
/// exactly, anything that could come near it is refused (the caller's usual parse decides):
/// more than 300 digits, an exponent of three digits or more, or integer digits plus a positive
/// exponent past 300.
fn number_end(bytes: &[u8], at: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some((i, i - start))
    };
    let mut i = at + usize::from(bytes.get(at) == Some(&b'-'));
    let mut integer_digits = 0;
    if bytes.get(i) == Some(&b'0') {
        i += 1;
    } else {
        (i, integer_digits) = digits(i)?;
    }
    let mut all_digits = integer_digits;
    if bytes.get(i) == Some(&b'.') {
        let (end, n) = digits(i + 1)?;
        (i, all_digits) = (end, all_digits + n);
    }
    let mut exponent = 0;
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        let negative = bytes.get(i) == Some(&b'-');
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (end, n) = digits(i)?;
        if n > 2 {
            return None;
        }
        let value = bytes[i..end].iter().fold(0usize, |v, d| v * 10 + usize::from(d - b'0'));
        exponent = if negative { 0 } else { value };
        i = end;
    }
    (all_digits <= 300 && integer_digits + exponent <= 300).then_some(i)
}

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// Past the closing quote of the string that starts (with its opening quote) at `at`.
///
/// 64 bytes at a time: masks of backslashes, quotes, control characters, valid escape letters
/// and `u`. The bytes escaped by an odd run of backslashes (carried across blocks) are found
/// without a loop; the first unescaped quote ends the string; before it there must be no
/// control character and every escaped byte must be a valid escape. Only `\u` escapes (rare)
/// are checked one by one: four hex digits, and surrogates in pairs, as serde_json wants
/// when it builds the string.
pub fn string_end(bytes: &[u8], at: usize, seen: &mut Seen) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let mut pos = at + 1;
    // Whether the first byte of the next block is escaped by a backslash ending this one.
    let mut carry = 0u64;
    // Where the `u` of the low surrogate that completes the last high one must be.
    let mut low_expected = None;
    loop {
        let n = bytes.len().checked_sub(pos).filter(|&n| n > 0)?.min(64);
        let mut padded = [b' '; 64];
        let block: &[u8; 64] = match bytes[pos..].first_chunk::<64>() {
            Some(full) => full,
            None => {
                padded[..n].copy_from_slice(&bytes[pos..]);
                &padded
            }
        };
        let m = Masks::of(block);
        let in_block = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };

        let backslash = m.backslash & !carry;
        let follows_escape = (backslash << 1) | carry;
        let odd_starts = backslash & !EVEN_BITS & !follows_escape;
        let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
        let escaped = (EVEN_BITS ^ (even_starts << 1)) & follows_escape;
        carry = u64::from(overflow);

        let quotes = m.quote & !escaped & in_block;
        let before_end = if quotes != 0 { (quotes & quotes.wrapping_neg()) - 1 } else { in_block };
        if m.control & before_end != 0 {
            return None;
        }
        let escaped = escaped & before_end;
        if escaped & !(m.escape_letter | m.u) != 0 {
            return None;
        }
        seen.spelled_escape |= escaped & (m.u | m.slash) != 0;
        let mut unicode = escaped & m.u;
        while unicode != 0 {
            let i = pos + unicode.trailing_zeros() as usize;
            unicode &= unicode - 1;
            low_expected = unicode_escape(bytes, i, low_expected)?;
        }
        if quotes != 0 {
            let close = pos + quotes.trailing_zeros() as usize;
            if close - at > LONG_STRING {
                seen.long_strings.push(at + 1..close);
            }
            return Some(close + 1);
        }
        if n < 64 {
            return None;
        }
        pos += 64;
    }
}

/// Checks the escape whose `u` is at `u`: four hex digits; a high surrogate must be followed
/// by `\u` and a low one (whose position is returned), and a low one is only accepted where a
/// high one said it would be.
fn unicode_escape(bytes: &[u8], u: usize, low_expected: Option<usize>) -> Option<Option<usize>> {
    let hex = |at: usize| -> Option<u16> {
        let digits = bytes.get(at..at + 4)?;
        digits.iter().try_fold(0u16, |v, d| Some((v << 4) | (*d as char).to_digit(16)? as u16))
    };
    match hex(u + 1)? {
        0xD800..=0xDBFF => {
            let next = (bytes.get(u + 5..u + 7)? == b"\\u").then(|| hex(u + 7)).flatten()?;
            (0xDC00..=0xDFFF).contains(&next).then_some(Some(u + 6))
        }
        0xDC00..=0xDFFF => (low_expected == Some(u)).then_some(None),
        _ => Some(None),
    }
}

/// Bit `i` set when byte `i` of a 64-byte block is of each kind.
struct Masks {
    backslash: u64,
    quote: u64,
    control: u64,
    /// `"`, `\`, `/`, `b`, `f`, `n`, `r`, `t`: escapes that need nothing after them.
    escape_letter: u64,
    u: u64,
    slash: u64,
}

impl Masks {
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 of the block's 64
        // bytes (unaligned loads).
        unsafe {
            let splat = |b: u8| _mm_set1_epi8(b as i8);
            let bits = |v: __m128i, k: usize| u64::from(_mm_movemask_epi8(v) as u16) << (16 * k);
            let mut m = Masks { backslash: 0, quote: 0, control: 0, escape_letter: 0, u: 0, slash: 0 };
            for k in 0..4 {
                let x = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
                let eq = |b: u8| _mm_cmpeq_epi8(x, splat(b));
                let backslash = eq(b'\\');
                let quote = eq(b'"');
                m.backslash |= bits(backslash, k);
                m.quote |= bits(quote, k);
                // x <= 0x1F, unsigned.
                m.control |= bits(_mm_cmpeq_epi8(_mm_min_epu8(x, splat(0x1F)), x), k);
                let slash = eq(b'/');
                m.slash |= bits(slash, k);
                let mut letter = _mm_or_si128(_mm_or_si128(backslash, quote), slash);
                for b in [b'b', b'f', b'n', b'r', b't'] {
                    letter = _mm_or_si128(letter, eq(b));
                }
                m.escape_letter |= bits(letter, k);
                m.u |= bits(eq(b'u'), k);
            }
            m
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; 64]) -> Masks {
        let mut m = Masks { backslash: 0, quote: 0, control: 0, escape_letter: 0, u: 0, slash: 0 };
        for (i, &b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            m.backslash |= if b == b'\\' { bit } else { 0 };
            m.quote |= if b == b'"' { bit } else { 0 };
            m.control |= if b < 0x20 { bit } else { 0 };
            m.escape_letter |= if matches!(b, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') { bit } else { 0 };
            m.u |= if b == b'u' { bit } else { 0 };
            m.slash |= if b == b'/' { bit } else { 0 };
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json says about `text` as one complete value: accepted, and how long.
    fn serde_accepts(text: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(text).is_ok()
    }

    /// `value_end` agrees with serde_json on `text` (a value possibly followed by junk): it
    /// never accepts what serde_json rejects, and where it accepts, it ends the value where
    /// serde_json's own value ends.
    fn agrees(text: &[u8]) {
        match value_end(text, 0, SERDE_DEPTH, &mut Seen::default()) {
            Some(end) => {
                assert!(serde_accepts(&text[..end]), "accepted what serde_json rejects: {:?}", String::from_utf8_lossy(text));
                let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<serde_json::Value>();
                if let Some(Ok(_)) = stream.next() {
                    assert_eq!(stream.byte_offset(), end, "ends elsewhere: {:?}", String::from_utf8_lossy(text));
                }
            }
            None => {
                // Stricter only where documented: numbers with exponents of three digits or
                // more, or hundreds of digits.
                let t = String::from_utf8_lossy(text);
                let numbers_only = !t.contains('"');
                let documented = numbers_only && (t.contains(['e', 'E']) || t.len() > 300);
                assert!(!serde_accepts(text) || documented, "rejected what serde_json accepts: {t:?}");
            }
        }
    }

    #[test]
    fn strings_agree_with_serde_json_at_every_block_position() {
        // Escapes of every kind placed across the 64-byte block boundaries, runs of
        // backslashes of every length ending at every position.
        let pieces: &[&str] = &[
            "a",
            "\\\"",
            "\\\\",
            "\\/",
            "\\b",
            "\\f",
            "\\n",
            "\\r",
            "\\t",
            "\\u00e9",
            "\\uD83D\\uDE00",
            "é",
            "\u{1F600}",
            "\\",
            "\\x",
            "\\u12",
            "\\u12G4",
            "\\uD83D",
            "\\uDE00",
            "\\uD83Dx",
            "\x01",
            "\x1f",
            "\t",
            "\"",
        ];
        for pad in 0..70 {
            for p in pieces {
                for q in pieces {
                    let body = format!("{}{p}{}{q}", "x".repeat(pad), "y".repeat(pad % 7));
                    agrees(format!("\"{body}\"").as_bytes());
                    agrees(format!("\"{body}\" , 1").as_bytes());
                    agrees(format!("\"{body}").as_bytes());
                }
            }
            for run in 0..5 {
                let text = format!("\"{}{}\"\" tail", "z".repeat(pad), "\\".repeat(run));
                agrees(text.as_bytes());
            }
        }
    }

    #[test]
    fn scalars_and_containers_agree_with_serde_json() {
        for text in [
            "0",
            "-0",
            "01",
            "-",
            "1.",
            "1.5",
            ".5",
            "1e5",
            "1E+5",
            "1e-5",
            "1e",
            "1e+",
            "-12.5e3",
            "1e999",
            "123456789012345678901234567890",
            "true",
            "tru",
            "false",
            "null",
            "nul",
            "nulll",
            "[]",
            "[ ]",
            "[1,2]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{}",
            "{ }",
            "{\"a\":1}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":}",
            "{\"a\":1 \"b\":2}",
            "[{\"a\":[true,false,null,\"x\",-1.5e3]}]",
            "[\"\\u0000\"]",
            "{\"k\":\"\\uDE00\"}",
            "[1]]",
            "[[1]",
            "\"\"",
            "{\"\":\"\"}",
            "[\n1\t,\r2 ]",
            "1e99",
            "-1.5E+99",
            "1e-99",
        ] {
            agrees(text.as_bytes());
        }
        // Near f64's limit: never accepted where serde_json finds the number out of range.
        for digits in [1, 200, 209, 210, 250, 299, 300, 301, 400] {
            for exponent in ["", "e99", "e-99", "e9", "E+60"] {
                agrees(format!("1{}{exponent}", "0".repeat(digits - 1)).as_bytes());
                agrees(format!("[-0.{}1{exponent}]", "0".repeat(digits)).as_bytes());
            }
        }
    }

    #[test]
    fn escapes_that_spell_characters_are_reported() {
        let seen = |text: &str| {
            let mut seen = Seen::default();
            let pad = "x".repeat(70);
            assert!(value_end(format!("[\"{pad}{text}{pad}\"]").as_bytes(), 0, SERDE_DEPTH, &mut seen).is_some(), "{text}");
            seen.spelled_escape
        };
        assert!(seen("\\u0041") && seen("\\/") && seen("\\uD83D\\uDE00"));
        assert!(!seen("\\n\\t\\\"\\\\") && !seen("/u") && !seen("\\\\u0041") && !seen("\\\\/"));
    }

    #[test]
    fn long_strings_are_listed_by_their_contents() {
        let long = "a\\\"b".repeat(LONG_STRING);
        let text = format!(r#"{{"k":"{long}","short":"x","list":["{long}"]}}"#);
        let mut seen = Seen::default();
        assert_eq!(value_end(text.as_bytes(), 0, SERDE_DEPTH, &mut seen), Some(text.len()));
        assert_eq!(seen.long_strings.len(), 2);
        for r in &seen.long_strings {
            assert_eq!(&text[r.clone()], long);
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for depth in [1, 2, 126, 127, 128, 129, 1000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                value_end(text.as_bytes(), 0, SERDE_DEPTH, &mut Seen::default()).is_some(),
                serde_accepts(text.as_bytes()),
                "depth {depth}"
            );
        }
        // From inside an object the budget is smaller by one, as in serde_json.
        let inner = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(value_end(inner.as_bytes(), 0, SERDE_DEPTH - 1, &mut Seen::default()).is_none());
        assert!(!serde_accepts(format!("{{\"a\":{inner}}}").as_bytes()));
    }

    /// `find` names what `Value::pointer` names, for every pointer tried on documents with
    /// escaped and repeated keys, arrays, nesting, whitespace and values of every type.
    #[test]
    fn find_agrees_with_value_pointer() {
        let docs = [
            r#"{"tool_input":{"file_path":"/p/a.rs","content":"x\"y\\z","n":[1,{"k":"v"},[true,null]]}}"#,
            r#" { "a" : { "b" : 1 , "b" : { "c" : "last" } } , "e" : [ ] , "o" : { } } "#,
            r#"{"fi\u006ce_path":"escaped key","a/b":1,"m~n":2,"":{"":"empty keys"},"x":{"y":[0,1,2,3,4,5,6,7,8,9,10,11]}}"#,
            r#"[{"a":1},{"a":2}]"#,
            r#""a string""#,
            r#"{"num":-1.5e3,"t":true,"f":false,"z":null,"s":"\ud83d\ude00 \u00e9"}"#,
        ];
        let pointers = [
            "", "/", "/tool_input", "/tool_input/file_path", "/tool_input/content", "/tool_input/n", "/tool_input/n/0",
            "/tool_input/n/1/k", "/tool_input/n/2/1", "/tool_input/n/3", "/tool_input/n/01", "/tool_input/n/+1", "/tool_input/n/-1",
            "/tool_input/missing", "/a", "/a/b", "/a/b/c", "/e", "/e/0", "/o", "/o/x", "/file_path", "/a~1b", "/m~0n", "//",
            "/x/y/10", "/x/y/11", "/x/y/12", "/0", "/1/a", "/2", "/num", "/t", "/f", "/z", "/s", "/s/0", "tool_input", "/0/a",
        ];
        for doc in docs {
            let tree: serde_json::Value = serde_json::from_str(doc).unwrap();
            let at = skip_ws(doc.as_bytes(), 0);
            for pointer in pointers {
                let expected = tree.pointer(pointer);
                let found = match pointer.strip_prefix('/') {
                    None if pointer.is_empty() => find(doc.as_bytes(), at, &[]),
                    None => None,
                    Some(path) => {
                        let tokens: Vec<String> = path.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect();
                        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
                        find(doc.as_bytes(), at, &tokens)
                    }
                };
                let found: Option<serde_json::Value> = found.map(|r| serde_json::from_str(&doc[r]).unwrap());
                assert_eq!(found.as_ref(), expected, "{pointer:?} in {doc}");
            }
        }
    }
}
