#!/usr/bin/env python3
"""Breaks the resident host mid-event: it is killed (SIGKILL), told to stop (SIGTERM) or frozen
and thawed (SIGSTOP, then SIGCONT) at random moments while clients send events, and every event
must still be answered once, decided as it would be, and recorded exactly once.

    scripts/kill-storm.py BUILD_DIR [CLIENTS] [EVENTS_PER_CLIENT] [BLOWS]

BUILD_DIR holds `chronicle`, `chronicle-host` and the four built-in plugins (e.g.
target/release). CLIENTS threads (default 4) each send EVENTS_PER_CLIENT (default 300)
PreToolUse Bash events through `chronicle hook`: every third is `rm -rf /`, the rest are
harmless, and repeated and new commands are mixed so that bash-guard's cache hits (in the host,
in the database) and misses all occur. Meanwhile another thread deals BLOWS (default 30)
blows to whatever resident host serves the home, 5-30 ms apart: SIGKILL, SIGTERM, or SIGSTOP
held for up to 50 ms and then SIGCONT. Then it counts, from the answers and the database: events recorded
(each invocation once), `rm -rf /` not denied, anything else denied, exit codes other than 0,
`PRAGMA integrity_check`. Exit 1 if any of those is off.
"""
import os
import random
import signal
import sys
import threading
import time

import hook_runs
import resident_hosts


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    blows = int(sys.argv[4]) if len(sys.argv) > 4 else 30
    home = hook_runs.new_home(None, build, prefix="kill-storm-")
    env = dict(hook_runs.clean_env(), CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home)
    answers: dict[str, tuple[int, str]] = {}
    dealt = {"SIGKILL": 0, "SIGTERM": 0, "SIGSTOP": 0}
    done = threading.Event()

    def client(k: int):
        for i in range(per_client):
            # A few commands recur across clients (cache hits); the rest are new.
            n = random.randrange(8) if random.random() < 0.3 else f"{k}-{i}"
            command = f"rm -rf / # {n}" if i % 3 == 0 else f"ls -la src/{n}"
            rc, decision = hook_runs.decide(f"{build}/chronicle", hook_runs.bash_event(command, f"t{k}-{i}"), env)
            answers[f"t{k}-{i}"] = (rc, command, decision)

    def storm():
        for _ in range(blows):
            if done.wait(random.uniform(0.005, 0.03)):
                return
            for pid in resident_hosts.serving(home):
                try:
                    blow = random.random()
                    if blow < 0.35:
                        os.kill(pid, signal.SIGKILL)
                        dealt["SIGKILL"] += 1
                    elif blow < 0.65:
                        os.kill(pid, signal.SIGTERM)
                        dealt["SIGTERM"] += 1
                    else:
                        os.kill(pid, signal.SIGSTOP)
                        dealt["SIGSTOP"] += 1
                        time.sleep(random.uniform(0, 0.05))
                        os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    if hook_runs.decide(f"{build}/chronicle", hook_runs.bash_event("true", "warm"), env)[0] != 0:
        sys.exit("the first event, which starts the resident host, failed")
    hook_runs.storm(client, clients, storm, done, home)

    expected = clients * per_client + 1
    events, distinct = hook_runs.recorded(home)
    let_through = [c for rc, c, d in answers.values() if c.startswith("rm") and d != "deny"]
    wrongly_denied = [c for rc, c, d in answers.values() if not c.startswith("rm") and d == "deny"]
    codes = sorted({rc for rc, _, _ in answers.values()})
    integrity = hook_runs.query(home, "PRAGMA integrity_check")
    print(f"blows dealt: {dealt['SIGKILL']} SIGKILL, {dealt['SIGTERM']} SIGTERM, {dealt['SIGSTOP']} SIGSTOP/SIGCONT")
    print(f"events {events} (distinct {distinct}, expected {expected})")
    print(f"`rm -rf /` not denied: {len(let_through)}; others denied: {len(wrongly_denied)}")
    print("exit codes:", codes, " integrity:", integrity)
    return hook_runs.finish(home, (events, distinct, len(let_through), len(wrongly_denied), codes, integrity) == (expected, expected, 0, 0, [0], "ok"))


if __name__ == "__main__":
    sys.exit(main())
