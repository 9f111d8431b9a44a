#!/usr/bin/env python3
"""Breaks the resident host mid-event: it is killed (SIGKILL) or frozen and thawed (SIGSTOP,
then SIGCONT) at random moments while clients send events, and every event must still be
answered once, decided as it would be, and recorded exactly once.

    scripts/kill-storm.py BUILD_DIR [CLIENTS] [EVENTS_PER_CLIENT] [BLOWS]

BUILD_DIR holds `chronicle`, `chronicle-host` and the four built-in plugins (e.g.
target/release). CLIENTS threads (default 4) each send EVENTS_PER_CLIENT (default 300)
PreToolUse Bash events through `chronicle hook`: every third is `rm -rf /`, the rest are
harmless, and repeated and new commands are mixed so that bash-guard's cache hits (in the host,
in the database) and misses all occur. Meanwhile another thread deals BLOWS (default 30)
blows to whatever resident host serves the home, 5-30 ms apart: SIGKILL, or SIGSTOP held for
up to 50 ms and then SIGCONT. Then it counts, from the answers and the database: events recorded
(each invocation once), `rm -rf /` not denied, anything else denied, exit codes other than 0,
`PRAGMA integrity_check`. Exit 1 if any of those is off.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import resident_hosts

PLUGINS = ["chronicle_bash_guard", "chronicle_secret_guard", "chronicle_file_guard", "chronicle_session_context"]


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    blows = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    home = tempfile.mkdtemp(prefix="kill-storm-")
    os.chmod(home, 0o700)
    os.makedirs(f"{home}/plugins", mode=0o700)
    for p in PLUGINS:
        shutil.copy(f"{build}/lib{p}.so", f"{home}/plugins/")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_") and k != "CLAUDE_PROJECT_DIR"}
    env.update(CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home)
    answers: dict[str, tuple[int, str]] = {}
    dealt = {"SIGKILL": 0, "SIGSTOP": 0}
    done = threading.Event()

    def client(k: int):
        for i in range(per_client):
            # A few commands recur across clients (cache hits); the rest are new.
            n = random.randrange(8) if random.random() < 0.3 else f"{k}-{i}"
            command = f"rm -rf / # {n}" if i % 3 == 0 else f"ls -la src/{n}"
            event = {
                "session_id": "s", "transcript_path": "/tmp/t", "cwd": "/tmp/p", "permission_mode": "default",
                "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command},
                "tool_use_id": f"t{k}-{i}",
            }
            run = subprocess.run([f"{build}/chronicle", "hook"], input=json.dumps(event).encode(), env=env, capture_output=True)
            out = run.stdout.decode()
            decision = json.loads(out)["hookSpecificOutput"]["permissionDecision"] if out.strip() else "none"
            answers[f"t{k}-{i}"] = (run.returncode, command, decision)

    def storm():
        for _ in range(blows):
            if done.wait(random.uniform(0.005, 0.03)):
                return
            for pid in resident_hosts.serving(home):
                try:
                    if random.random() < 0.5:
                        os.kill(pid, signal.SIGKILL)
                        dealt["SIGKILL"] += 1
                    else:
                        os.kill(pid, signal.SIGSTOP)
                        dealt["SIGSTOP"] += 1
                        time.sleep(random.uniform(0, 0.05))
                        os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    warm = {"session_id": "s", "transcript_path": "/tmp/t", "cwd": "/tmp/p", "hook_event_name": "PreToolUse",
            "tool_name": "Bash", "tool_input": {"command": "true"}, "tool_use_id": "warm"}
    subprocess.run([f"{build}/chronicle", "hook"], input=json.dumps(warm).encode(), env=env, capture_output=True, check=True)
    stormer = threading.Thread(target=storm)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads + [stormer]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    stormer.join()
    time.sleep(1.5)  # a handed-over host records after its client relayed the answer
    resident_hosts.stop(home)

    def q(sql: str) -> str:
        return subprocess.run(["sqlite3", f"file:{home}/chronicle.db?mode=ro", sql], capture_output=True, text=True).stdout.strip()

    expected = clients * per_client + 1
    events, distinct = int(q("SELECT count(*) FROM events")), int(q("SELECT count(DISTINCT tool_use_id) FROM events"))
    let_through = [c for rc, c, d in answers.values() if c.startswith("rm") and d != "deny"]
    wrongly_denied = [c for rc, c, d in answers.values() if not c.startswith("rm") and d == "deny"]
    codes = sorted({rc for rc, _, _ in answers.values()})
    integrity = q("PRAGMA integrity_check")
    print(f"blows dealt: {dealt['SIGKILL']} SIGKILL, {dealt['SIGSTOP']} SIGSTOP/SIGCONT")
    print(f"events {events} (distinct {distinct}, expected {expected})")
    print(f"`rm -rf /` not denied: {len(let_through)}; others denied: {len(wrongly_denied)}")
    print("exit codes:", codes, " integrity:", integrity)
    ok = (events, distinct, len(let_through), len(wrongly_denied), codes, integrity) == (expected, expected, 0, 0, [0], "ok")
    if ok:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"kept {home}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
