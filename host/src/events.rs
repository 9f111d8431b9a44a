//! The hook events Claude Code fires, and what each one lets a hook answer.
//!
//! This table is the host's reading of PROTOCOL.md §4.2 and §5.2. Event names are
//! case-sensitive exact strings; anything not listed is recorded as `event_unknown_type` and
//! answered with nothing.

/// How an event expresses "block".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStyle {
    /// The event cannot be blocked; a block/deny decision is recorded and dropped.
    Never,
    /// `hookSpecificOutput.permissionDecision` (PreToolUse).
    PermissionDecision,
    /// `hookSpecificOutput.decision.behavior` (PermissionRequest).
    PermissionBehavior,
    /// Top-level `decision: "block"` + `reason`.
    DecisionBlock,
    /// Only exit code 2 with the reason on stderr.
    ExitCode,
}

/// What one event accepts in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    pub name: &'static str,
    pub block: BlockStyle,
    /// Accepts `hookSpecificOutput.additionalContext`.
    pub context: bool,
    /// Carries `tool_name` and filters on it with matchers.
    pub tool_event: bool,
}

const fn spec(name: &'static str, block: BlockStyle, context: bool, tool_event: bool) -> EventSpec {
    EventSpec { name, block, context, tool_event }
}

use BlockStyle::*;

/// Every event in the Aug 2026 reference (v2.1.240). PreModelSwitch/PostModelSwitch (v2.1.251,
/// secondary sources) are not trusted yet: they are recorded as `event_unknown_type`.
pub const EVENTS: &[EventSpec] = &[
    spec("SessionStart", Never, true, false),
    spec("Setup", Never, true, false),
    spec("InstructionsLoaded", Never, false, false),
    spec("UserPromptSubmit", DecisionBlock, true, false),
    spec("UserPromptExpansion", DecisionBlock, true, false),
    spec("MessageDisplay", Never, false, false),
    spec("PreToolUse", PermissionDecision, true, true),
    spec("PermissionRequest", PermissionBehavior, false, true),
    spec("PermissionDenied", Never, false, true),
    spec("PostToolUse", DecisionBlock, true, true),
    spec("PostToolUseFailure", Never, true, true),
    spec("PostToolBatch", DecisionBlock, true, false),
    spec("Notification", Never, false, false),
    spec("SubagentStart", Never, true, false),
    spec("SubagentStop", DecisionBlock, true, false),
    spec("TaskCreated", DecisionBlock, false, false),
    spec("TaskCompleted", ExitCode, false, false),
    spec("Stop", DecisionBlock, true, false),
    spec("StopFailure", Never, false, false),
    spec("TeammateIdle", ExitCode, false, false),
    spec("ConfigChange", DecisionBlock, false, false),
    spec("CwdChanged", Never, false, false),
    spec("DirectoryAdded", Never, false, false),
    spec("FileChanged", Never, false, false),
    spec("WorktreeCreate", ExitCode, false, false),
    spec("WorktreeRemove", Never, false, false),
    spec("PreCompact", DecisionBlock, false, false),
    spec("PostCompact", Never, false, false),
    spec("Elicitation", ExitCode, false, false),
    spec("ElicitationResult", ExitCode, false, false),
    spec("SessionEnd", Never, false, false),
];

/// The spec of a known event, by exact name.
pub fn lookup(name: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.name == name)
}

impl EventSpec {
    pub fn can_block(&self) -> bool {
        self.block != BlockStyle::Never
    }

    /// Stop and SubagentStop re-fire with `stop_hook_active: true` after a hook blocked them.
    pub fn is_stop(&self) -> bool {
        matches!(self.name, "Stop" | "SubagentStop")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_case_sensitive() {
        let mut names: Vec<_> = EVENTS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENTS.len());
        assert!(lookup("pretooluse").is_none());
        assert_eq!(lookup("PreToolUse").map(|e| e.block), Some(BlockStyle::PermissionDecision));
    }
}
