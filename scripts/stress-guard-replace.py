#!/usr/bin/env python3
"""Breaks the guard at the boundary: bash-guard's library is replaced over and over while
clients send events, and every event must still be decided by it or by its failure policy.

    scripts/stress-guard-replace.py BUILD_DIR [CLIENTS] [EVENTS_PER_CLIENT]

BUILD_DIR holds `chronicle`, `chronicle-host` and `libchronicle_bash_guard.so` (e.g.
target/release). A fresh data directory gets the guard alone, and one event loads it (as an
installation has: a file that never loaded anywhere cannot be known for a guard); then CLIENTS threads each send
PreToolUse Bash events through `chronicle hook` (every third `rm -rf /`, the rest `echo`),
while another thread keeps either cutting the library to half its size in place (a copy cut
short) or renaming a whole copy over it, every 3-20 ms. Then it counts, from the database and
the answers: events recorded (each once), events with no bash-guard call row (the guard
silently gone), `rm -rf /` not denied, exit codes, `PRAGMA integrity_check`. Exit 1 if any
event lacks the guard, any `rm -rf /` got through, or an event is missing or doubled.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    home = tempfile.mkdtemp(prefix="stress-guard-")
    os.chmod(home, 0o700)
    os.makedirs(f"{home}/plugins", mode=0o700)
    lib = f"{build}/libchronicle_bash_guard.so"
    target = f"{home}/plugins/libchronicle_bash_guard.so"
    shutil.copy(lib, target)
    whole = open(lib, "rb").read()
    env = dict(os.environ, CHRONICLE_HOME=home)
    stop = threading.Event()

    def replace_whole():
        tmp = f"{home}/plugins/.incoming"
        with open(tmp, "wb") as f:
            f.write(whole)
        os.rename(tmp, target)

    def flip():
        while not stop.is_set():
            if random.random() < 0.5:
                with open(target, "r+b") as f:
                    f.truncate(0)
                    f.write(whole[: len(whole) // 2])
            else:
                replace_whole()
            time.sleep(random.uniform(0.003, 0.02))
        replace_whole()

    answers = {}

    def client(k: int):
        for i in range(per_client):
            command = f"rm -rf / # {k}-{i}" if i % 3 == 0 else f"echo {k}-{i}"
            event = {
                "session_id": "s",
                "transcript_path": "/tmp/t",
                "cwd": "/tmp/p",
                "permission_mode": "default",
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_input": {"command": command},
                "tool_use_id": f"t{k}-{i}",
            }
            run = subprocess.run([f"{build}/chronicle", "hook"], input=json.dumps(event).encode(), env=env, capture_output=True)
            out = run.stdout.decode()
            answers[command] = (run.returncode, json.loads(out)["hookSpecificOutput"]["permissionDecision"] if out.strip() else "none")

    # Installed: the guard loaded once, so the index knows what it is (`chronicle install`
    # writes the same entry). A file that never loaded anywhere cannot be known for a guard.
    warm = {"session_id": "s", "transcript_path": "/tmp/t", "cwd": "/tmp/p", "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "true"}, "tool_use_id": "warm"}
    subprocess.run([f"{build}/chronicle", "hook"], input=json.dumps(warm).encode(), env=env, capture_output=True, check=True)
    flipper = threading.Thread(target=flip)
    flipper.start()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    flipper.join()
    time.sleep(1.5)  # a handed-over host records after its client relayed the answer
    subprocess.run(["pkill", "-f", f"{build}/chronicle-host serve"])
    time.sleep(0.5)

    def q(sql: str) -> str:
        return subprocess.run(["sqlite3", f"file:{home}/chronicle.db?mode=ro", sql], capture_output=True, text=True).stdout.strip()

    expected = clients * per_client + 1
    events, distinct = int(q("SELECT count(*) FROM events")), int(q("SELECT count(DISTINCT tool_use_id) FROM events"))
    without = int(q("SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM plugin_calls c WHERE c.event_id = e.id AND c.plugin = 'bash-guard')"))
    let_through = [c for c, (_, d) in answers.items() if c.startswith("rm") and d != "deny"]
    print(f"events {events} (distinct {distinct}, expected {expected})")
    print("bash-guard rows (status|decision|count):", q("SELECT status, decision, count(*) FROM plugin_calls GROUP BY 1, 2").replace("\n", ", "))
    print(f"events without a bash-guard row: {without}")
    print(f"`rm -rf /` not denied: {len(let_through)}")
    print("exit codes:", sorted({rc for rc, _ in answers.values()}), " integrity:", q("PRAGMA integrity_check"))
    ok = (events, distinct, without, len(let_through)) == (expected, expected, 0, 0)
    if ok:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"kept {home}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
