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
event lacks the guard, any `rm -rf /` got through, an event is missing or doubled, a client
exited other than 0, or the database is not intact.
"""
import os
import random
import sys
import threading
import time

import hook_runs


def main() -> int:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    per_client = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    home = hook_runs.new_home(None, build, prefix="stress-guard-", plugins=["chronicle_bash_guard"])
    lib = f"{build}/libchronicle_bash_guard.so"
    target = f"{home}/plugins/libchronicle_bash_guard.so"
    whole = open(lib, "rb").read()
    env = dict(hook_runs.clean_env(), CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home)
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
            answers[command] = hook_runs.decide(f"{build}/chronicle", hook_runs.bash_event(command, f"t{k}-{i}"), env)

    # Installed: the guard loaded once, so the index knows what it is (`chronicle install`
    # writes the same entry). A file that never loaded anywhere cannot be known for a guard.
    if hook_runs.decide(f"{build}/chronicle", hook_runs.bash_event("true", "warm"), env)[0] != 0:
        sys.exit("the first event, which loads the guard, failed")
    hook_runs.storm(client, clients, flip, stop, home)

    def q(sql: str) -> str:
        return hook_runs.query(home, sql)

    expected = clients * per_client + 1
    events, distinct = hook_runs.recorded(home)
    without = int(q("SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM plugin_calls c WHERE c.event_id = e.id AND c.plugin = 'bash-guard')"))
    let_through = [c for c, (_, d) in answers.items() if c.startswith("rm") and d != "deny"]
    print(f"events {events} (distinct {distinct}, expected {expected})")
    print("bash-guard rows (status|decision|count):", q("SELECT status, decision, count(*) FROM plugin_calls GROUP BY 1, 2").replace("\n", ", "))
    print(f"events without a bash-guard row: {without}")
    print(f"`rm -rf /` not denied: {len(let_through)}")
    codes, integrity = sorted({rc for rc, _ in answers.values()}), q("PRAGMA integrity_check")
    print("exit codes:", codes, " integrity:", integrity)
    return hook_runs.finish(home, (events, distinct, without, len(let_through), codes, integrity) == (expected, expected, 0, 0, [0], "ok"))


if __name__ == "__main__":
    sys.exit(main())
