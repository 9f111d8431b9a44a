//! The words a plugin's manifest says an event must contain for it to have an opinion
//! (plugin-api 1.4, `only_if_text_contains`), searched for in the event's text, ASCII case
//! ignored.
//!
//! Each word list is prepared once per process. A short text is scanned byte by byte against
//! the words starting with that byte: building an Aho-Corasick automaton for secret-guard's
//! 47 words took 0.1-0.25 ms in a fresh process, more than the whole search of an ordinary
//! event. A long text (a 241 KB Write) is searched by such an automaton, built on first need.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aho_corasick::AhoCorasick;

/// Word lists longer than this are not searched: the plugin is simply called.
const MAX_WORDS: usize = 4096;

/// Texts from this length on are searched by the automaton.
const LONG_TEXT: usize = 16 * 1024;

/// Whether `text` contains any of `words`, ASCII case ignored. An empty word, or a list too long
/// to search, counts as found: the plugin is called.
pub fn mentions_any(text: &str, words: &[String]) -> bool {
    if words.iter().any(String::is_empty) || words.len() > MAX_WORDS {
        return true;
    }
    prepared(words).found_in(text.as_bytes())
}

/// One word list, ready to search.
struct Words {
    words: Vec<Vec<u8>>,
    /// Indexes into `words` by their first byte, lower-cased.
    by_first: Vec<Vec<u16>>,
    automaton: OnceLock<Option<AhoCorasick>>,
}

impl Words {
    fn new(words: &[String]) -> Words {
        let words: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_ascii_lowercase()).collect();
        let mut by_first = vec![Vec::new(); 256];
        for (i, w) in words.iter().enumerate() {
            // Non-empty and at most MAX_WORDS of them (checked by the caller).
            by_first[usize::from(w[0])].push(i as u16);
            if w[0].is_ascii_lowercase() {
                by_first[usize::from(w[0].to_ascii_uppercase())].push(i as u16);
            }
        }
        Words { words, by_first, automaton: OnceLock::new() }
    }

    fn found_in(&self, text: &[u8]) -> bool {
        if text.len() >= LONG_TEXT {
            let automaton = self.automaton.get_or_init(|| AhoCorasick::builder().ascii_case_insensitive(true).build(&self.words).ok());
            if let Some(a) = automaton {
                return a.is_match(text);
            }
        }
        text.iter().enumerate().any(|(at, b)| {
            self.by_first[usize::from(*b)].iter().any(|&w| {
                let word = &self.words[usize::from(w)];
                text.get(at..at + word.len()).is_some_and(|t| t.eq_ignore_ascii_case(word))
            })
        })
    }
}

fn prepared(words: &[String]) -> Arc<Words> {
    static PREPARED: OnceLock<Mutex<HashMap<Vec<String>, Arc<Words>>>> = OnceLock::new();
    let mut prepared = PREPARED.get_or_init(Default::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Looked up by the borrowed list: `entry` wants an owned key, a copy of every word at
    // every event (a tenth of a resident host's allocations per event).
    if let Some(words) = prepared.get(words) {
        return Arc::clone(words);
    }
    Arc::clone(prepared.entry(words.to_vec()).or_insert_with(|| Arc::new(Words::new(words))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn finds_any_word_with_ascii_case_ignored() {
        let w = words(&["sk-", "Private Key", "\\u"]);
        assert!(mentions_any(r#"{"command":"export K=SK-abc"}"#, &w));
        assert!(mentions_any("-----BEGIN PRIVATE KEY-----", &w));
        assert!(mentions_any("private key", &w));
        assert!(mentions_any(r#"{"a":"\u0041"}"#, &w));
        assert!(mentions_any(r#"{"a":"\U0041"}"#, &w), "case ignored for the escape as well: more calls, never fewer");
        assert!(mentions_any("ends with sk-", &w), "at the very end");
        assert!(!mentions_any("ends with sk", &w), "cut short at the end");
        assert!(!mentions_any(r#"{"command":"cargo test --workspace"}"#, &w));
        assert!(!mentions_any("", &w));
    }

    #[test]
    fn long_texts_get_the_same_answers() {
        let w = words(&["sk-", "Private Key", "\\u"]);
        let filler = "cargo test --workspace; ".repeat(LONG_TEXT / 10);
        assert!(filler.len() >= LONG_TEXT);
        for (tail, want) in [("", false), ("SK-1", true), ("PRIVATE key", true), ("\\U1", true), ("sk", false)] {
            let text = format!("{filler}{tail}");
            assert_eq!(mentions_any(&text, &w), want, "{tail:?}");
            let short = &text[text.len() - 100..];
            assert_eq!(mentions_any(short, &w), want, "short {tail:?}");
        }
    }

    #[test]
    fn an_empty_word_or_an_empty_list_behaves_as_promised() {
        assert!(mentions_any("anything", &words(&["zzz", ""])), "an empty word matches every text");
        assert!(!mentions_any("anything", &[]), "no words: silence promised everywhere");
    }

    #[test]
    fn non_ascii_words_match_their_bytes() {
        let w = words(&["clé"]);
        assert!(mentions_any("une CLé ici", &w));
        assert!(!mentions_any("une CLÉ ici", &w), "only ASCII letters fold");
    }
}
