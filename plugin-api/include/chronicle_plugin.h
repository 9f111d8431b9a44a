/*
 * chronicle_plugin.h — the C ABI for Chronicle plugins (C, C++, Zig, anything that can export
 * C symbols from a shared library). Version 1.
 *
 * A plugin is a shared library exporting the functions below. Everything crosses as UTF-8 JSON
 * text, so this ABI stays frozen while Claude Code's event schema grows.
 *
 * Threading: the host calls init once, then handle, from one thread at a time (possibly a
 * different thread each time), unless the manifest says "concurrent_calls": true; then handle
 * may run on several threads at once. A call
 * that does not return within the plugin's timeout is abandoned (the process exits soon after),
 * so never hold resources that must be released. Never write to stdout: it belongs to Claude
 * Code (the host diverts it while plugins run and records what was written as a fault).
 */
#ifndef CHRONICLE_PLUGIN_H
#define CHRONICLE_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CHRONICLE_PLUGIN_ABI_VERSION 1

/*
 * Required. A static, NUL-terminated JSON object describing the plugin:
 *   {"name": "my-plugin", "version": "1.0.0", "abi_version": 1,
 *    "events": ["PreToolUse"],            // hook event names, or ["*"]
 *    "tool_matcher": "Bash",              // optional: Claude Code matcher on tool_name
 *    "timeout_ms": 100,                   // optional: per-call deadline (default: the host's
 *                                         //   hook.plugin_timeout_ms, 1000; every plugin of one
 *                                         //   event shares hook.dispatch_budget_ms, 5000, and
 *                                         //   SessionEnd at most 1000: Claude Code waits that
 *                                         //   long, so a slow plugin costs every event its time)
 *    "failure_policy": "open",            // optional: "open" (default) or "closed"
 *    "cache_ttl_ms": 60000,               // optional: outcome may be reused this long...
 *    "cache_key": ["/tool_input/command"],// ...for events equal at these JSON pointers
 *    "concurrent_calls": false,           // optional: true lets a host run handle on several
 *                                         //   threads at once (only if it is thread-safe)
 *    "only_if_text_contains": ["sk-"]     // optional (hosts from plugin-api 1.4 on): handle
 *                                         //   returns NULL on every event whose JSON text
 *                                         //   holds none of these (ASCII case ignored), so a
 *                                         //   host need not load or call the plugin for it
 *   }
 * Unknown keys are an error (so a typo does not silently change behaviour).
 */
const char *chronicle_plugin_manifest(void);

/*
 * Optional. Receives the plugin's config section (`[plugins.<name>]`) as JSON text (`null` when
 * there is none): NUL-terminated, `len` bytes not counting the NUL, valid only until init
 * returns (copy what you keep). Called once per host process before the first handle; a
 * resident host lives for many events, an in-process host for one, so keep nothing in memory
 * that must survive a process. Return 0 on success; anything else disables the plugin for this
 * event.
 */
int chronicle_plugin_init(const char *config_json, size_t len);

/*
 * Required. Receives the event JSON (Claude Code's stdin payload, snake_case keys):
 * NUL-terminated, `len` bytes not counting the NUL, valid only until handle returns. Returns NULL
 * for "no opinion", or a NUL-terminated JSON object allocated by the plugin, which the host
 * passes back to chronicle_plugin_free:
 *   {"decision": "deny",                  // none | allow | ask | defer | deny | block
 *    "reason": "why, for Claude or the user",
 *    "additional_context": "text for Claude",
 *    "system_message": "warning for the user",
 *    "updated_input": { ... },            // replaces the tool input (PreToolUse, with allow/ask)
 *    "stop_reason": "stops Claude entirely (continue:false)",
 *    "error": "the plugin failed; the host applies its failure policy"}
 * Every key is optional. Never answer "allow" for "no opinion": it bypasses Claude Code's prompts.
 * The returned string must stay valid until the host passes it to chronicle_plugin_free, which
 * it does once, right after reading it.
 */
char *chronicle_plugin_handle(const char *event_json, size_t len);

/* Required. Frees a string returned by chronicle_plugin_handle. */
void chronicle_plugin_free(char *answer);

#ifdef __cplusplus
}
#endif

#endif /* CHRONICLE_PLUGIN_H */
