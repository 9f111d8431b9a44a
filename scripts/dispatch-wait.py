#!/usr/bin/env python3
"""What handing an event's plugin calls to the worker thread costs, per event that calls one.

    scripts/dispatch-wait.py [ROUNDS] [CLIENTS] BIN_DIR...

A resident host calls plugins on a worker thread (so that one that hangs can be abandoned at
its deadline) and the serving thread sleeps meanwhile: two wake-ups per event, and on a busy
machine each waits for a CPU. This replays the bundled session (every command made distinct,
no Write) ROUNDS times from CLIENTS clients at once against each build in turn (builds
interleaved, a home and resident host of their own each), then reads from each build's
database, over the events that called a plugin: `hook.dispatch` (the whole call phase) minus
the called plugins' own wall time, i.e. the hand-over there and back (median and mean), and
the mean `hook.dispatch`.

Each BIN_DIR holds chronicle, chronicle-host and the four built-in plugins.
"""
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading

import hook_runs
import resident_hosts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def session():
    with open(os.path.join(ROOT, "tests/corpus/session.jsonl")) as f:
        events = [json.loads(line) for line in f if line.strip()]
    return [e for e in events if not (e["hook_event_name"] == "PostToolUse" and e.get("tool_name") == "Write")]


def replay(client, env, events, clients, tag):
    def one_client(k):
        for i, e in enumerate(events):
            e = json.loads(json.dumps(e))
            if "command" in e.get("tool_input", {}):
                e["tool_input"]["command"] += f" # {tag}-{k}-{i}"
            os.waitpid(hook_runs.spawn([client, "hook"], json.dumps(e).encode(), env)[0], 0)

    threads = [threading.Thread(target=one_client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main():
    args = sys.argv[1:]
    rounds = int(args.pop(0)) if args and args[0].isdigit() else 5
    clients = int(args.pop(0)) if args and args[0].isdigit() else 1
    bins = [os.path.abspath(b) for b in args] or [os.path.abspath("target/release")]
    events = session()
    parent = tempfile.mkdtemp(prefix="chronicle-dispatch-")
    base = hook_runs.clean_env()
    homes = []
    try:
        for b in bins:
            home = hook_runs.new_home(parent, b)
            env = dict(base, CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home)
            replay(os.path.join(b, "chronicle"), env, events, 1, "warm")
            first = sqlite3.connect(os.path.join(home, "chronicle.db")).execute("SELECT max(id) FROM events").fetchone()[0]
            homes.append((b, home, env, first))
        for n in range(rounds):
            for b, home, env, _ in homes:
                replay(os.path.join(b, "chronicle"), env, events, clients, f"r{n}")
        print(f"{rounds} round(s) of {len(events)} events, {clients} client(s) at once")
        print(f"{'build':<40} {'events':>7} {'hand-over p50':>13} {'mean':>11} {'hook.dispatch mean':>14}")
        for b, home, _, first in homes:
            db = sqlite3.connect(os.path.join(home, "chronicle.db"))
            rows = db.execute(
                """SELECT d.value * 1000 - (SELECT sum(wall_ns) / 1000.0 FROM plugin_calls p WHERE p.event_id = d.event_id), d.value * 1000
                   FROM metrics d WHERE d.name = 'hook.dispatch' AND d.event_id > ?""",
                (first,),
            ).fetchall()
            waits = [w for w, _ in rows]
            print(f"{b:<40} {len(rows):>7} {statistics.median(waits):>8.1f} µs {statistics.mean(waits):>8.1f} µs "
                  f"{statistics.mean(d for _, d in rows):>11.1f} µs")
    finally:
        for _, home, _, _ in homes:
            resident_hosts.stop(home, 2.0)
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
