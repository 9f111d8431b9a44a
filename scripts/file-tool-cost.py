#!/usr/bin/env python3
"""What file-guard costs a file tool's event, build against build.

    scripts/file-tool-cost.py DIR_A DIR_B [ROUNDS] [--new-paths]

Each DIR holds a build's `chronicle`, `chronicle-host` and `libchronicle_file_guard.so`.
A PreToolUse Read and a PreToolUse Write of a real file in a fresh project directory (under
$HOME, so no scratch-space rule applies) go through `chronicle hook` with that build's
file-guard alone installed, ROUNDS times (default 150, after 5 warm-up rounds), the builds
interleaved round by round, each to its own resident host. The same path every round (a
build whose guard is cacheable answers from its cache) unless --new-paths. Reported per
build, medians from the database: `hook.total` (the client's start to the event's record),
`cache.lookup` and `hook.dispatch` where present, and the guard's calls (`plugin_calls`).
"""
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WARM_UP = 5


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) < 2:
        sys.exit(__doc__)
    new_paths = "--new-paths" in sys.argv
    builds = [Path(d).resolve() for d in args[:2]]
    rounds = int(args[2]) if len(args) > 2 else 150
    project = Path(tempfile.mkdtemp(prefix="file-tool-cost-", dir=Path.home()))
    homes = Path(tempfile.mkdtemp(prefix="file-tool-cost-"))
    try:
        (project / "src").mkdir()
        (project / "src" / "main.rs").write_text("fn main() {}\n")
        for i, b in enumerate(builds):
            home = homes / str(i)
            (home / "plugins").mkdir(parents=True, mode=0o700)
            home.chmod(0o700)
            shutil.copy(b / "libchronicle_file_guard.so", home / "plugins")
        for r in range(WARM_UP + rounds):
            path = project / "src" / (f"main{r}.rs" if new_paths else "main.rs")
            for i, b in enumerate(builds):
                for tool in ("Read", "Write"):
                    event = {
                        "session_id": "s1",
                        "transcript_path": "/tmp/t",
                        "cwd": str(project),
                        "hook_event_name": "PreToolUse",
                        "tool_name": tool,
                        "tool_use_id": "t",
                        "tool_input": {"file_path": str(path), "content": "fn main() {}\n"},
                    }
                    env = dict(os.environ, CHRONICLE_HOME=str(homes / str(i)))
                    subprocess.run([str(b / "chronicle"), "hook"], input=json.dumps(event).encode(), env=env, stdout=subprocess.DEVNULL, check=True)
        for i, b in enumerate(builds):
            subprocess.run(["pkill", "-f", f"{b}/chronicle-host serve"])
            db = sqlite3.connect(f"file:{homes / str(i) / 'chronicle.db'}?mode=ro", uri=True)
            first = 2 * WARM_UP
            parts = []
            for name in ("hook.total", "cache.lookup", "hook.dispatch"):
                values = [v for (v,) in db.execute("SELECT value FROM metrics WHERE name = ? AND event_id > ?", (name, first))]
                if values:
                    parts.append(f"{name} p50 {statistics.median(values) * 1000:.1f} µs")
            calls = [w for (w,) in db.execute("SELECT wall_ns FROM plugin_calls WHERE event_id > ? AND cache IS NOT 'hit'", (first,))]
            hits = db.execute("SELECT count(*) FROM plugin_calls WHERE event_id > ? AND cache = 'hit'", (first,)).fetchone()[0]
            parts.append(f"{len(calls)} calls" + (f" p50 {statistics.median(calls) / 1000:.1f} µs" if calls else "") + f", {hits} cache hits")
            print(f"{b}: " + "; ".join(parts))
    finally:
        shutil.rmtree(project, ignore_errors=True)
        shutil.rmtree(homes, ignore_errors=True)


if __name__ == "__main__":
    main()
