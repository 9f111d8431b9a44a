//! Claude Code's matcher semantics on `tool_name` (PROTOCOL.md §2.4).
//!
//! `*`, empty or absent match everything; a string of only letters, digits, `_`, `-`, space,
//! `,` and `|` is an exact name or a list; anything else is an unanchored regular expression.
//! Rust's `regex` is linear-time, so a hostile 10,000-character tool name cannot stall us.

use regex::Regex;

#[derive(Debug, Clone)]
pub enum Matcher {
    Any,
    Names(Vec<String>),
    Pattern(Regex),
}

impl Matcher {
    pub fn parse(matcher: Option<&str>) -> Result<Matcher, String> {
        let m = matcher.unwrap_or("").trim();
        if m.is_empty() || m == "*" {
            return Ok(Matcher::Any);
        }
        let simple = m.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ' | ',' | '|'));
        if simple {
            let names = m.split(['|', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            return Ok(Matcher::Names(names));
        }
        Regex::new(m).map(Matcher::Pattern).map_err(|e| format!("tool matcher {m:?} is not a valid regex: {e}"))
    }

    pub fn matches(&self, tool_name: Option<&str>) -> bool {
        match (self, tool_name) {
            (Matcher::Any, _) => true,
            (_, None) => false,
            (Matcher::Names(names), Some(t)) => names.iter().any(|n| n == t),
            (Matcher::Pattern(re), Some(t)) => re.is_match(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str, tool: &str) -> bool {
        Matcher::parse(Some(s)).unwrap().matches(Some(tool))
    }

    /// The client's stand-in (`failsafe::may_match`, no regex engine) agrees wherever the
    /// matcher is not a pattern, and says a pattern may match.
    #[test]
    fn the_clients_matcher_agrees_short_of_patterns() {
        let matchers = [None, Some(""), Some("*"), Some("Bash"), Some("Edit|Write"), Some("Edit, Write"), Some(" Read "), Some("mcp__.*")];
        for matcher in matchers {
            for tool in [None, Some("Bash"), Some("Write"), Some("Read"), Some("bash"), Some("NotebookEdit")] {
                let ours = Matcher::parse(matcher).unwrap();
                let pattern = matches!(ours, Matcher::Pattern(_));
                let expected = if pattern && tool.is_some() { true } else { ours.matches(tool) };
                assert_eq!(crate::failsafe::may_match(matcher, tool), expected, "{matcher:?} on {tool:?}");
            }
        }
    }

    #[test]
    fn claude_code_semantics() {
        assert!(m("*", "Bash"));
        assert!(m("", "Bash"));
        assert!(m("Bash", "Bash"));
        assert!(!m("Bash", "bash"));
        assert!(m("Edit|Write", "Write"));
        assert!(m("Edit, Write", "Write"));
        assert!(!m("code-reviewer", "senior-code-reviewer"));
        // Unanchored regex: Edit.* also matches NotebookEdit.
        assert!(m("Edit.*", "NotebookEdit"));
        assert!(!m("^Edit.*$", "NotebookEdit"));
        assert!(m("mcp__memory__.*", "mcp__memory__create_entities"));
        assert!(!m("mcp__memory", "mcp__memory__create_entities"));
    }

    #[test]
    fn a_matcher_needs_a_tool_name() {
        assert!(!Matcher::parse(Some("Bash")).unwrap().matches(None));
        assert!(Matcher::parse(None).unwrap().matches(None));
    }
}
