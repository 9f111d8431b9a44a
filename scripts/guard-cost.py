#!/usr/bin/env python3
"""bash-guard's own time per call, build against build, on the decision table's commands.

    scripts/guard-cost.py DIR_A DIR_B [ROUNDS]

Each DIR holds a build's `chronicle`, `chronicle-host` and `libchronicle_bash_guard.so`
(e.g. `mkdir /tmp/B && cp target/release/{chronicle,chronicle-host,libchronicle_bash_guard.so} /tmp/B`).
Every bash-guard command of tests/corpus/guards.jsonl is sent through `chronicle hook` with
that build's guard alone installed, each round's commands made new (no cached outcome), the
builds interleaved round by round; then each build's `plugin_calls.wall_ns` of the guard (the
host's own measurement of the call) is summarised. HOME=/home/dev as in the table.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "guards.jsonl"


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    builds = [Path(d).resolve() for d in sys.argv[1:3]]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    rows = [json.loads(line) for line in TABLE.read_text().splitlines() if line.strip()]
    commands = [r["input"]["command"] for r in rows if r["plugin"] == "bash-guard"]
    with tempfile.TemporaryDirectory(prefix="guard-cost-") as tmp:
        homes = []
        for i, b in enumerate(builds):
            home = Path(tmp) / str(i)
            (home / "plugins").mkdir(parents=True, mode=0o700)
            home.chmod(0o700)
            shutil.copy(b / "libchronicle_bash_guard.so", home / "plugins")
            homes.append(home)
        for r in range(rounds):
            for b, home in zip(builds, homes):
                env = dict(os.environ, CHRONICLE_HOME=str(home), HOME="/home/dev")
                for c in commands:
                    event = {
                        "session_id": "s1",
                        "transcript_path": "/tmp/t",
                        "cwd": "/home/dev/code/acme-billing",
                        "permission_mode": "default",
                        "hook_event_name": "PreToolUse",
                        "tool_name": "Bash",
                        "tool_input": {"command": f"{c} # round {r}"},
                        "tool_use_id": "t",
                    }
                    subprocess.run([str(b / "chronicle"), "hook"], input=json.dumps(event).encode(), env=env, capture_output=True)
        for b, home in zip(builds, homes):
            subprocess.run(["pkill", "-f", f"{b}/chronicle-host serve"])
            out = subprocess.run(
                ["sqlite3", f"file:{home}/chronicle.db?mode=ro", "SELECT wall_ns FROM plugin_calls WHERE plugin = 'bash-guard' AND status = 'ok'"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            us = sorted(int(x) / 1000 for x in out)
            print(f"{b}: {len(us)} calls, p50 {statistics.median(us):.1f} µs, p90 {us[int(len(us) * 0.9)]:.1f} µs, mean {statistics.mean(us):.1f} µs")


if __name__ == "__main__":
    main()
