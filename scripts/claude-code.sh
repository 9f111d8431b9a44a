#!/usr/bin/env bash
# Installs the pinned Claude Code release (tests/claude-code.version) from npm into
# target/claude-code, for the end-to-end suite that runs the real client (tests/e2e/claude_code.rs).
# When the npm registry cannot be reached, it says so loudly and leaves target/claude-code/unreachable:
# the suite is then skipped with that message. Any other failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(tr -d '[:space:]' < tests/claude-code.version)"
dir=target/claude-code
bin="$dir/node_modules/.bin/claude"
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null | cut -d' ' -f1)" = "$version" ]; then
    exit 0
fi
mkdir -p "$dir"
rm -f "$dir/unreachable"
skip() {
    echo "$1" > "$dir/unreachable"
    echo "================================================================" >&2
    echo "SKIPPING the real Claude Code suite: $1" >&2
    echo "================================================================" >&2
    exit 0
}
command -v npm >/dev/null 2>&1 || skip "npm is not installed (Debian: apt-get install npm)"
if ! npm view "@anthropic-ai/claude-code@$version" version >/dev/null 2>"$dir/npm-view.log"; then
    if grep -q -E "ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|network" "$dir/npm-view.log"; then
        skip "the npm registry is unreachable ($(grep -m1 -o -E 'ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ENETUNREACH|network[^\n]*' "$dir/npm-view.log"))"
    fi
    cat "$dir/npm-view.log" >&2
    exit 1
fi
[ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"
# Its postinstall links the platform's native binary (an optional dependency) into place.
npm install --prefix "$dir" --no-audit --no-fund --save-exact "@anthropic-ai/claude-code@$version" >&2
"$bin" --version >/dev/null
