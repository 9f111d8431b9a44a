#!/usr/bin/env python3
"""Writes N PreToolUse Bash events with distinct commands (JSON lines) to stdout: the bundled
session's Bash commands in turn, each numbered. For issue #21's "distinct Bash events, many
clients" row, with `chronicle bench --session FILE --concurrency 16 --distinct`.

Usage: python3 scripts/bash-events.py 400 > /tmp/bash400.jsonl
"""
import json
import pathlib
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
session = pathlib.Path(__file__).resolve().parent.parent / "tests" / "corpus" / "session.jsonl"
bash = [
    e for e in (json.loads(line) for line in session.read_text().splitlines() if line.strip())
    if e.get("hook_event_name") == "PreToolUse" and e.get("tool_name") == "Bash"
]
if not bash:
    sys.exit("no Bash events in " + str(session))
for i in range(n):
    e = json.loads(json.dumps(bash[i % len(bash)]))
    e["tool_input"]["command"] = f'{e["tool_input"]["command"]} # event {i}'
    e["tool_use_id"] = f"toolu_bash_{i}"
    print(json.dumps(e, separators=(",", ":")))
